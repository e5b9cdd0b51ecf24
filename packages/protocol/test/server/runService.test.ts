import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { type ServiceLogger, loggerOptions, runService } from '../../src/server/runService.ts'

class RecordingLogger implements ServiceLogger {
  readonly lines: { level: string; fields: object; message: string | undefined }[] = []
  debug(fields: object, message?: string): void {
    this.lines.push({ level: 'debug', fields, message })
  }
  info(fields: object, message?: string): void {
    this.lines.push({ level: 'info', fields, message })
  }
  warn(fields: object, message?: string): void {
    this.lines.push({ level: 'warn', fields, message })
  }
  error(fields: object, message?: string): void {
    this.lines.push({ level: 'error', fields, message })
  }
  fatal(fields: object, message?: string): void {
    this.lines.push({ level: 'fatal', fields, message })
  }
}

function harness() {
  const logger = new RecordingLogger()
  const signals = new EventEmitter()
  const exits: number[] = []
  let exited: (code: number) => void = () => {}
  const nextExit = new Promise<number>((resolve) => (exited = resolve))
  const exit = (code: number) => {
    exits.push(code)
    exited(code)
  }
  return { logger, signals, exits, nextExit, exit }
}

describe('runService', () => {
  it('logs a service that cannot start as fatal and exits 1', async () => {
    const { logger, signals, exits, exit } = harness()
    const err = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })
    await runService(logger, () => Promise.reject(err), { exit, signals })
    expect(exits).toEqual([1])
    expect(logger.lines).toEqual([{ level: 'fatal', fields: { err: { message: 'listen EADDRINUSE', code: 'EADDRINUSE' } }, message: 'failed to start' }])
    expect(signals.listenerCount('SIGTERM')).toBe(0)
  })

  it('stops the service on the first SIGTERM or SIGINT only, then exits 0', async () => {
    const { logger, signals, exits, nextExit, exit } = harness()
    let stops = 0
    await runService(logger, async () => ({ stop: async () => void stops++ }), { exit, signals })
    expect(exits).toEqual([])
    signals.emit('SIGTERM')
    signals.emit('SIGINT')
    expect(await nextExit).toBe(0)
    expect(stops).toBe(1)
    expect(logger.lines).toEqual([{ level: 'info', fields: { signal: 'SIGTERM' }, message: 'shutting down' }])
  })

  it('exits 1 when stopping fails', async () => {
    const { logger, signals, nextExit, exit } = harness()
    await runService(logger, async () => ({ stop: () => Promise.reject(new Error('disk gone')) }), { exit, signals })
    signals.emit('SIGINT')
    expect(await nextExit).toBe(1)
    expect(logger.lines.at(-1)).toEqual({ level: 'error', fields: { err: 'Error: disk gone' }, message: 'unclean stop' })
  })

  it('exits 1 when stopping takes longer than the timeout', async () => {
    const { logger, signals, nextExit, exit } = harness()
    await runService(logger, async () => ({ stop: () => new Promise<void>(() => {}) }), { exit, signals, stopTimeoutMs: 20 })
    // The timer is unref'd; keep the test's event loop busy until it fires.
    const keepAlive = setInterval(() => {}, 5)
    signals.emit('SIGTERM')
    expect(await nextExit).toBe(1)
    clearInterval(keepAlive)
  })
})

describe('loggerOptions', () => {
  it('gives pino the level and base fields, and pino-pretty only when asked', () => {
    expect(loggerOptions({ logLevel: 'debug', logPretty: false }, { node: 'n1' })).toEqual({ level: 'debug', base: { node: 'n1' } })
    expect(loggerOptions({ logLevel: 'info', logPretty: true }, { gateway: 'h:1' })).toEqual({ level: 'info', base: { gateway: 'h:1' }, transport: { target: 'pino-pretty' } })
  })
})

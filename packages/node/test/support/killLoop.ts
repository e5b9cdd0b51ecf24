// Shared by the crash tests: run a writer process, SIGKILL it at a chosen
// moment, and return exactly the lines it printed (its acknowledgements).
import { type ChildProcess, spawn } from 'node:child_process'

export type KillMoment = { sinceAckMs: number } | { sinceSpawnMs: number }

/**
 * Starts `node script ...args` and SIGKILLs it, `sinceAckMs` after its first
 * acknowledgement or `sinceSpawnMs` after it started; returns the whole lines
 * it printed. `children` tracks it, so the caller's afterEach can kill it by
 * PID if the test fails midway.
 */
export async function runUntilKilled(script: string, args: string[], children: Set<ChildProcess>, when: KillMoment): Promise<string[]> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const lines: string[] = []
  let partial = ''
  let stderr = ''
  let firstAck: () => void = () => {}
  const acked = new Promise<void>((resolve) => (firstAck = resolve))
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    // Only whole lines count: a line cut by the kill was never fully acknowledged.
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
    if (lines.length > 0) firstAck()
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  // 'close' comes after exit and after stdout is drained, so no acknowledgement is missed.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  const kill = (): void => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
  }
  const name = `${script.split('/').at(-1)} ${args.join(' ')}`

  if ('sinceAckMs' in when) {
    const started = await within(15_000, Promise.race([acked.then(() => true), closed.then(() => false)]))
    if (started !== true) {
      kill()
      throw new Error(`${name} acknowledged nothing (${started === undefined ? 'timed out' : 'exited'}):\n${stderr}`)
    }
    await sleep(when.sinceAckMs)
  } else {
    await sleep(when.sinceSpawnMs)
  }
  kill()
  if ((await within(5_000, closed.then(() => true))) !== true) throw new Error(`${name} did not die`)
  if (child.signalCode !== 'SIGKILL') throw new Error(`${name} ended before the kill (${child.exitCode}):\n${stderr}`)
  children.delete(child)
  return lines
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** `promise`'s value, or undefined once `ms` pass. */
export async function within<T>(ms: number, promise: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

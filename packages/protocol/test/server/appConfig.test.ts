import { describe, expect, it, vi } from 'vitest'
import { ConfigError, hostPort, logLevelOf, parseOrExit } from '../../src/server/appConfig.ts'

describe('app config helpers', () => {
  it('reads HOST:PORT, with IPv6 in brackets, and names the flag when it cannot', () => {
    expect(hostPort('127.0.0.1:7410', '--api')).toEqual({ host: '127.0.0.1', port: 7410 })
    expect(hostPort('[::1]:80', '--api')).toEqual({ host: '::1', port: 80 })
    expect(() => hostPort('localhost', '--listen')).toThrow(new ConfigError('--listen must be HOST:PORT, got localhost'))
    expect(() => hostPort('h:99999', '--api')).toThrow(ConfigError)
  })

  it("accepts pino's log levels only", () => {
    expect(logLevelOf('debug')).toBe('debug')
    expect(() => logLevelOf('verbose')).toThrow(/--log-level must be one of trace, debug, info/)
  })

  it('exits 2 with the message and the help on a ConfigError; other errors propagate', () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    const exit = vi.fn((code: number): never => {
      throw new Error(`exit ${code}`)
    })
    try {
      expect(parseOrExit('weft x', 'HELP TEXT', () => 42, exit)).toBe(42)
      expect(() => parseOrExit('weft x', 'HELP TEXT', () => { throw new ConfigError('bad flag') }, exit)).toThrow('exit 2')
      expect(write).toHaveBeenCalledWith('weft x: bad flag\n\nHELP TEXT')
      expect(() => parseOrExit('weft x', 'HELP TEXT', () => { throw new TypeError('a bug') }, exit)).toThrow(TypeError)
      expect(exit).toHaveBeenCalledTimes(1)
    } finally {
      write.mockRestore()
    }
  })
})

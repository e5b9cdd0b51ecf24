// Durability under process crashes: a writer process is SIGKILLed mid-commit again and
// again on one store; afterwards every commit it acknowledged must be there, intact.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, expect, it } from 'vitest'
import { LmdbStorage } from '../../src/storage/LmdbStorage.ts'
import { commitKeys, crashValue } from './crashWriter.ts'

const RUNS = 24
const writerScript = fileURLToPath(new URL('./crashWriter.ts', import.meta.url))

const children = new Set<ChildProcess>()
let dir: string | undefined
let reader: LmdbStorage | undefined

afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  children.clear()
  await reader?.close()
  reader = undefined
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

it(`keeps every acknowledged commit through ${RUNS} SIGKILLs`, async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-crash-'))
  const acknowledged: string[] = []
  for (let run = 0; run < RUNS; run++) {
    // Kill anywhere from the first acknowledgement to well into the stream.
    acknowledged.push(...(await runUntilKilled(dir, run, Math.random() * 100)))
  }

  reader = await LmdbStorage.open(dir)
  const broken = acknowledged.flatMap(commitKeys).filter((key) => {
    const stored = reader?.get(key)
    return stored === undefined || !Buffer.from(stored).equals(crashValue(key))
  })
  expect(broken, `${broken.length} of ${acknowledged.length * 2} acknowledged keys lost or damaged`).toEqual([])
  expect(acknowledged.length).toBeGreaterThanOrEqual(RUNS)

  // Commits that were cut off before their acknowledgement must still be whole or absent.
  const halves = new Map<string, number>()
  for (const [key, value] of reader.range({})) {
    expect(Buffer.from(value).equals(crashValue(key)), key).toBe(true)
    const name = key.slice(0, key.lastIndexOf('/'))
    halves.set(name, (halves.get(name) ?? 0) + 1)
  }
  expect([...halves].filter(([, count]) => count !== 2)).toEqual([])
})

/** Starts a writer, SIGKILLs it `delayMs` after its first acknowledgement, returns what it acknowledged. */
async function runUntilKilled(path: string, run: number, delayMs: number): Promise<string[]> {
  const child = spawn(process.execPath, [writerScript, path, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] })
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

  const started = await within(10_000, Promise.race([acked.then(() => true), closed.then(() => false)]))
  if (started !== true) {
    child.kill('SIGKILL')
    throw new Error(`writer run ${run} made no commit (${started === undefined ? 'timed out' : 'exited'}):\n${stderr}`)
  }
  await new Promise((resolve) => setTimeout(resolve, delayMs))
  child.kill('SIGKILL')
  if ((await within(5_000, closed.then(() => true))) !== true) throw new Error(`writer run ${run} did not die`)
  if (child.signalCode !== 'SIGKILL') throw new Error(`writer run ${run} ended before the kill:\n${stderr}`)
  children.delete(child)
  return lines
}

/** `promise`'s value, or undefined once `ms` pass. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

// Durability under process crashes: a writer process is SIGKILLed mid-commit again and
// again on one store; afterwards every commit it acknowledged must be there, intact.
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, expect, it } from 'vitest'
import { LmdbStorage } from '../../src/storage/LmdbStorage.ts'
import { commitKeys, crashValue } from './crashWriter.ts'
import { runUntilKilled } from '../support/killLoop.ts'

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
    acknowledged.push(...(await runUntilKilled(writerScript, [dir, String(run)], children, { sinceAckMs: Math.random() * 100 })))
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

// The storage floor under bench:core's durable sets: LmdbStorage alone, no
// VersionedStore, no Yjs. `inFlight` writers each commit (1 or 5 small puts,
// the shape of one set) and await it before the next, as bench:core's writers
// do; a commit resolves once LMDB has synced it. Prints commits/s and the CPU
// per commit of this whole process (lmdb's writer thread included).
//
//   npm run bench:storage                 1 / 8 / 50 in flight, 1 and 5 puts, 3 s each
//   node test/bench/storage.ts --quick    0.5 s each
//
// Prints only; docs/benchmarks.md quotes it by hand.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LmdbStorage } from '../../packages/node/src/storage/LmdbStorage.ts'
import type { StorageWrite } from '../../packages/node/src/storage/StorageAdapter.ts'
import { codeVersion, fmtInt, loadText, log, sleep } from './lib.ts'

const QUICK = process.argv.includes('--quick')
const RUN_MS = QUICK ? 500 : 3000
const WARMUP_MS = QUICK ? 200 : 500
const VALUE = new Uint8Array(150).fill(7)

async function measure(inFlight: number, puts: number): Promise<{ perSecond: number; cpuMicros: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-storage-'))
  const storage = await LmdbStorage.open(dir)
  try {
    let commits = 0
    let stop = false
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const writes: StorageWrite[] = Array.from({ length: puts }, (_, p) => ({ type: 'put', key: `r\u0000k/${w}/${i}\u0000main\u0000${p}`, value: VALUE }))
        await storage.commit(writes)
        commits++
      }
    }
    const writers = Array.from({ length: inFlight }, (_, w) => writer(w))
    await sleep(WARMUP_MS)
    commits = 0
    const cpu = process.cpuUsage()
    const start = performance.now()
    await sleep(RUN_MS)
    const elapsed = performance.now() - start
    const used = process.cpuUsage(cpu)
    const done = commits
    stop = true
    await Promise.all(writers)
    return { perSecond: (done / elapsed) * 1000, cpuMicros: (used.user + used.system) / done }
  } finally {
    await storage.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

log(`bench:storage${QUICK ? ' --quick' : ''}: ${codeVersion('packages/node/src/storage')}, load average ${loadText()}, stores under ${tmpdir()}`)
console.log('| Puts per commit | In flight | Durable commits/s | CPU per commit (µs, whole process) |')
console.log('|---|---|---|---|')
for (const puts of [1, 5]) {
  for (const inFlight of [1, 8, 50]) {
    const { perSecond, cpuMicros } = await measure(inFlight, puts)
    console.log(`| ${puts} | ${inFlight} | ${fmtInt(perSecond)} | ${fmtInt(cpuMicros)} |`)
  }
}
log(`load average after: ${loadText()}`)

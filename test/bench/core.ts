// Core figures of the versioned store on its real on-disk storage (LmdbStorage in a
// temp dir, VersionedStore with its defaults): durable sets/s, head gets/s, reads of
// old revisions, memory for 1M keys, reopen time. Prints them and writes the table in
// docs/benchmarks.md.
//
//   npm run bench:core                      the real run (writes docs/benchmarks.md)
//   node test/bench/core.ts --quick         smoke run with small sizes (writes nothing)
//   node test/bench/core.ts --quick --write-docs
//
// WEFT_BENCH_DIR picks where the temp stores go (default: the OS temp dir).
// Internally the script also runs itself as fresh child processes:
//   core.ts --child fill <dir> <keys> <inflight>   (with --expose-gc)
//   core.ts --child reopen <dir> <keys> <getMs>
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { NodeId } from '../../packages/core/src/index.ts'
import { LmdbStorage, VersionedStore } from '../../packages/node/src/index.ts'
import {
  type Figure,
  childWatchdog,
  describeMachine,
  dirBytes,
  fmtBytes,
  fmtInt,
  fmtMs,
  installCleanup,
  killChildren,
  log,
  machine,
  makeTempDir,
  markdownTable,
  percentile,
  removeTempDirs,
  rssBreakdown,
  runChild,
  sendResult,
  throttled,
  withProgress,
  writeDocSection,
  codeVersion,
  loadText,
} from './lib.ts'

const SCRIPT = fileURLToPath(import.meta.url)
const DOCS = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url))
const HEADING = 'Core (npm run bench:core)'
const NODE_ID = 'bench' as NodeId
const PROGRESS_MS = 3000

const args = process.argv.slice(2)
const QUICK = args.includes('--quick')

const SIZES = QUICK
  ? { warmupMs: 300, setMs: 500, getMs: 300, repeatedPool: 200, revisions: 5_000, reads: 300, keys: 20_000 }
  : { warmupMs: 1000, setMs: 3000, getMs: 2000, repeatedPool: 1000, revisions: 100_000, reads: 2000, keys: 1_000_000 }
/** Hard time limits (ms), so a regression cannot hang the run. */
const LIMITS = QUICK
  ? { revisionSetup: 60_000, reads: 30_000, fill: 120_000, reopen: 60_000 }
  : { revisionSetup: 300_000, reads: 120_000, fill: 1_200_000, reopen: 60_000 }
const HISTORY_INFLIGHT = 100
const FILL_INFLIGHT = 200

const value = (n: number) => ({ replicas: n, image: 'api:1' })

async function openStore(dir: string): Promise<VersionedStore> {
  const storage = await LmdbStorage.open(dir)
  return new VersionedStore({ storage, nodeId: NODE_ID })
}

// ---- 1. durable sets --------------------------------------------------------

interface SetRun {
  readonly sets: number
  readonly ms: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
}

/**
 * `writers` concurrent loops, each awaiting its set before the next, for `ms`.
 * Keys: a new one per set (distinct) or random picks from `pool` (repeated).
 */
async function runSets(store: VersionedStore, label: string, writers: number, ms: number, keyOf: (writer: number, i: number) => string): Promise<SetRun> {
  const latencies: number[] = []
  let sets = 0
  const start = performance.now()
  const end = start + ms
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now()
      await store.set(keyOf(w, i), value(i))
      latencies.push(performance.now() - t0)
      sets++
    }
  }
  await withProgress(
    PROGRESS_MS,
    () => log(`  ${label}: ${fmtInt(sets)} sets so far`),
    () => Promise.all(Array.from({ length: writers }, (_, w) => writer(w))),
  )
  const elapsed = performance.now() - start
  const run = { sets, ms: elapsed, perSecond: (sets / elapsed) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
  log(`  ${label}: ${fmtInt(run.perSecond)} sets/s (${fmtInt(sets)} in ${fmtMs(elapsed)} ms; latency p50 ${fmtMs(run.p50)} ms, p99 ${fmtMs(run.p99)} ms)`)
  return run
}

// ---- 3. old revisions -------------------------------------------------------

interface ReadRun {
  readonly reads: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly wrong: number
}

/** Random reads of one key's history by index or by id, each timed; checks what comes back. */
function readRevisions(store: VersionedStore, key: string, ids: readonly string[], by: 'index' | 'revision', reads: number, label: string): ReadRun {
  const latencies: number[] = []
  let wrong = 0
  const end = performance.now() + LIMITS.reads
  const progress = throttled(PROGRESS_MS, () => log(`  ${label}: ${latencies.length} reads so far`))
  for (let i = 0; i < reads && performance.now() < end; i++) {
    const index = 1 + Math.floor(Math.random() * ids.length)
    const id = ids[index - 1]!
    const t0 = performance.now()
    const got = by === 'index' ? store.get(key, 'main', { index }) : store.get(key, 'main', { revision: id })
    latencies.push(performance.now() - t0)
    if (got.revision.id !== id || got.revision.index !== index) wrong++
    progress.maybe()
  }
  const run = { reads: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies), wrong }
  log(`  ${label}: p50 ${fmtMs(run.p50)} ms, p99 ${fmtMs(run.p99)} ms, max ${fmtMs(run.max)} ms over ${run.reads} reads${wrong ? `, ${wrong} WRONG` : ''}`)
  return run
}

// ---- children: 4. fill 1M keys, 5. reopen --------------------------------------

const fillKey = (i: number) => `svc/${String(i).padStart(7, '0')}`

async function childFill(dir: string, keys: number, inflight: number): Promise<void> {
  childWatchdog(LIMITS.fill)
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run the fill child with --expose-gc')
  const store = await openStore(dir)
  let next = 0
  let done = 0
  const start = performance.now()
  const writer = async (): Promise<void> => {
    for (let i = next++; i < keys; i = next++) {
      await store.set(fillKey(i), value(i % 10))
      done++
    }
  }
  await withProgress(
    PROGRESS_MS,
    () => {
      const s = (performance.now() - start) / 1000
      log(`  [fill child] ${fmtInt(done)} / ${fmtInt(keys)} keys, ${fmtInt(done / s)} sets/s, rss ${fmtBytes(process.memoryUsage().rss)}`)
    },
    () => Promise.all(Array.from({ length: inflight }, writer)),
  )
  const fillMs = performance.now() - start
  const peakRss = process.resourceUsage().maxRSS * 1024
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const memory = process.memoryUsage()
  const check = store.get(fillKey(keys - 1))
  sendResult({
    keys: done,
    fillMs,
    heapUsed: memory.heapUsed,
    heapTotal: memory.heapTotal,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    rss: memory.rss,
    ...rssBreakdown(),
    peakRss,
    sizeBytes: store.sizeBytes(),
    lastValue: check.value,
  })
  await store.close()
}

async function childReopen(dir: string, keys: number, getMs: number): Promise<void> {
  childWatchdog(LIMITS.reopen)
  const key = fillKey(Math.floor(Math.random() * keys))
  const t0 = performance.now()
  const storage = await LmdbStorage.open(dir)
  const t1 = performance.now()
  const store = new VersionedStore({ storage, nodeId: NODE_ID })
  const t2 = performance.now()
  const got = store.get(key)
  const t3 = performance.now()
  // Then random head gets over all the keys (after a short unmeasured warm-up).
  const w0 = performance.now()
  while (getMs > 0 && performance.now() - w0 < 500) store.get(fillKey(Math.floor(Math.random() * keys)))
  let gets = 0
  const g0 = performance.now()
  while (performance.now() - g0 < getMs) {
    for (let j = 0; j < 1000; j++) store.get(fillKey(Math.floor(Math.random() * keys)))
    gets += 1000
  }
  const getsPerSecond = (gets / (performance.now() - g0)) * 1000
  sendResult({
    getsPerSecond,
    // performance.now() counts from process start: t3 includes node's startup and module loading.
    sinceProcessStartMs: t3,
    openStorageMs: t1 - t0,
    newStoreMs: t2 - t1,
    firstGetMs: t3 - t2,
    openToFirstGetMs: t3 - t0,
    key,
    value: got.value,
    sizeBytes: store.sizeBytes(),
    rss: process.memoryUsage().rss,
  })
  await store.close()
}

// ---- the run ------------------------------------------------------------------

async function main(): Promise<void> {
  installCleanup()
  const m = machine()
  const date = new Date().toISOString().slice(0, 10)
  const base = process.env.WEFT_BENCH_DIR ?? os.tmpdir()
  const root = makeTempDir(base, 'weft-bench-')
  log(`bench:core${QUICK ? ' --quick' : ''}: ${describeMachine(m)}; stores under ${root}`)
  const figures: Figure[] = []
  const code = codeVersion('packages')
  const loadBefore = loadText()
  log(`code: ${code}; load average before: ${loadBefore}`)

  try {
    // 1. Durable sets, 2. head gets: one store.
    log('1. durable sets')
    let store = await openStore(join(root, 'sets'))
    const written: string[] = []
    await runSets(store, 'warm-up (50 writers)', 50, SIZES.warmupMs, (w, i) => `warm/${w}/${i}`)
    const pool = Array.from({ length: SIZES.repeatedPool }, (_, i) => `rep/${i}`)
    await Promise.all(pool.map((key, i) => store.set(key, value(i))))
    written.push(...pool)
    const pick = () => pool[Math.floor(Math.random() * pool.length)]!
    const distinct = (tag: string) => (w: number, i: number) => {
      const key = `${tag}/${w}/${i}`
      written.push(key)
      return key
    }
    for (const writers of [1, 50]) {
      const d = await runSets(store, `${writers} writer(s), distinct keys`, writers, SIZES.setMs, distinct(`d${writers}`))
      const r = await runSets(store, `${writers} writer(s), repeated keys (${pool.length})`, writers, SIZES.setMs, pick)
      const target = writers === 50 ? '≥ 50,000/s' : '—'
      for (const [run, kind] of [[d, 'new key each set'], [r, `random of ${pool.length} existing keys`]] as const) {
        figures.push({
          figure: `Durable sets/s, ${writers} concurrent writer${writers > 1 ? 's' : ''}, ${kind}`,
          result: `${fmtInt(run.perSecond)}/s (latency p50 ${fmtMs(run.p50)} ms, p99 ${fmtMs(run.p99)} ms)`,
          target,
          ...(writers === 50 && { met: run.perSecond >= 50_000 }),
        })
      }
    }

    log(`2. current-value gets over ${fmtInt(written.length)} keys`)
    {
      let gets = 0
      let missing = 0
      const progress = throttled(PROGRESS_MS, () => log(`  ${fmtInt(gets)} gets so far`))
      const start = performance.now()
      const end = start + SIZES.getMs
      while (performance.now() < end) {
        for (let j = 0; j < 1000; j++) {
          if (store.get(written[Math.floor(Math.random() * written.length)]!).value === undefined) missing++
        }
        gets += 1000
        progress.maybe()
      }
      const elapsed = performance.now() - start
      const perSecond = (gets / elapsed) * 1000
      log(`  ${fmtInt(perSecond)} gets/s (${fmtInt(gets)} in ${fmtMs(elapsed)} ms${missing ? `, ${missing} MISSING` : ''})`)
      figures.push({ figure: `Current-value gets/s in-process (random of ${fmtInt(written.length)} keys)`, result: `${fmtInt(perSecond)}/s`, target: '≥ 200,000/s', met: perSecond >= 200_000 })
    }
    await store.close()

    // 3. One key with 100k revisions.
    log(`3. one key with ${fmtInt(SIZES.revisions)} revisions (writing them, ${HISTORY_INFLIGHT} in flight)`)
    const historyDir = join(root, 'history')
    store = await openStore(historyDir)
    const key = 'deploy/api'
    const ids: string[] = new Array<string>(SIZES.revisions)
    {
      let next = 0
      let done = 0
      const start = performance.now()
      const deadline = start + LIMITS.revisionSetup
      const writer = async (): Promise<void> => {
        for (let i = next++; i < SIZES.revisions; i = next++) {
          if (performance.now() > deadline) throw new Error(`writing ${fmtInt(SIZES.revisions)} revisions took over ${LIMITS.revisionSetup} ms`)
          const result = await store.set(key, value(i))
          ids[result.revision.index - 1] = result.revision.id
          done++
        }
      }
      await withProgress(PROGRESS_MS, () => log(`  ${fmtInt(done)} / ${fmtInt(SIZES.revisions)} revisions`), () => Promise.all(Array.from({ length: HISTORY_INFLIGHT }, writer)))
      const elapsed = performance.now() - start
      log(`  wrote ${fmtInt(done)} revisions in ${fmtMs(elapsed)} ms (${fmtInt((done / elapsed) * 1000)}/s), ${store.info(key).revisionCount} in history`)
      if (ids.some((id) => id === undefined)) throw new Error('some revision index was never returned')
    }
    const readFigures = (run: ReadRun, by: string, when: string): Figure => ({
      figure: `Read a random revision of a ${fmtInt(SIZES.revisions)}-revision key by ${by}, ${when}`,
      result: `p50 ${fmtMs(run.p50)} ms, p99 ${fmtMs(run.p99)} ms (max ${fmtMs(run.max)} ms, ${run.reads} reads${run.wrong ? `, ${run.wrong} wrong` : ''})`,
      target: 'p99 ≤ 10 ms',
      met: run.p99 <= 10 && run.wrong === 0,
    })
    // Right after writing (the fork's live state, checkpoint list included, is cached) ...
    figures.push(readFigures(readRevisions(store, key, ids, 'index', SIZES.reads, 'by index, same process'), 'index', 'after writing it'))
    figures.push(readFigures(readRevisions(store, key, ids, 'revision', SIZES.reads, 'by revision id, same process'), 'revision id', 'after writing it'))
    await store.close()
    // ... and from a reopened store that has not loaded the key.
    store = await openStore(historyDir)
    figures.push(readFigures(readRevisions(store, key, ids, 'index', SIZES.reads, 'by index, reopened store'), 'index', 'reopened store'))
    figures.push(readFigures(readRevisions(store, key, ids, 'revision', SIZES.reads, 'by revision id, reopened store'), 'revision id', 'reopened store'))
    await store.close()

    // 4. Memory for 1M keys, 5. reopen: fresh processes.
    log(`4. ${fmtInt(SIZES.keys)} keys in a fresh process (${FILL_INFLIGHT} in flight)`)
    const bigDir = join(root, 'big')
    const fill = await runChild(SCRIPT, ['--child', 'fill', bigDir, String(SIZES.keys), String(FILL_INFLIGHT)], {
      execArgv: ['--expose-gc'],
      timeoutMs: LIMITS.fill + 30_000,
      label: 'fill child',
    })
    const n = (field: string) => fill[field] as number
    log(`  ${fmtInt(n('keys'))} keys in ${fmtMs(n('fillMs'))} ms (${fmtInt((n('keys') / n('fillMs')) * 1000)} sets/s)`)
    log(`  after gc: heapUsed ${fmtBytes(n('heapUsed'))}, rss ${fmtBytes(n('rss'))} (anon ${fmtBytes(n('rssAnon'))}, file/mmap ${fmtBytes(n('rssFile'))}), peak rss ${fmtBytes(n('peakRss'))}`)
    figures.push({
      figure: `Heap after writing ${fmtInt(SIZES.keys)} small keys (fresh process, after gc)`,
      result: `heapUsed ${fmtBytes(n('heapUsed'))} (external ${fmtBytes(n('external'))})`,
      target: '—',
    })
    figures.push({
      figure: `RSS after writing ${fmtInt(SIZES.keys)} small keys (fresh process, after gc)`,
      result: `${fmtBytes(n('rss'))} (anon ${fmtBytes(n('rssAnon'))}, LMDB mmap ${fmtBytes(n('rssFile'))}; peak ${fmtBytes(n('peakRss'))})`,
      target: '≤ 1 GB',
      met: n('rss') <= 1e9,
    })
    figures.push({
      figure: `Sets/s while writing the ${fmtInt(SIZES.keys)} keys (${FILL_INFLIGHT} in flight)`,
      result: `${fmtInt((n('keys') / n('fillMs')) * 1000)}/s (${fmtMs(n('fillMs') / 1000)} s)`,
      target: '—',
    })

    log(`5. reopening the ${fmtInt(SIZES.keys)}-key store in fresh processes`)
    const reopens: Record<string, unknown>[] = []
    for (let i = 0; i < 3; i++) {
      const r = await runChild(SCRIPT, ['--child', 'reopen', bigDir, String(SIZES.keys), String(i === 0 ? SIZES.getMs : 0)], { timeoutMs: LIMITS.reopen + 30_000, label: 'reopen child' })
      log(
        `  run ${i + 1}: open ${fmtMs(r.openStorageMs as number)} ms + new store ${fmtMs(r.newStoreMs as number)} ms + first get ${fmtMs(r.firstGetMs as number)} ms = ${fmtMs(r.openToFirstGetMs as number)} ms; ${fmtMs(r.sinceProcessStartMs as number)} ms from process start`,
      )
      reopens.push(r)
    }
    const first = reopens[0]!
    const bigGets = first.getsPerSecond as number
    log(`  current-value gets over all ${fmtInt(SIZES.keys)} keys (run 1, right after the reopen): ${fmtInt(bigGets)}/s`)
    figures.push({ figure: `Current-value gets/s in-process, random of all ${fmtInt(SIZES.keys)} keys (the reopened store)`, result: `${fmtInt(bigGets)}/s`, target: '≥ 200,000/s', met: bigGets >= 200_000 })
    const worst = Math.max(...reopens.map((r) => r.openToFirstGetMs as number))
    const disk = await dirBytes(bigDir)
    log(`  on disk: ${fmtBytes(disk.allocated)} allocated (${fmtBytes(disk.apparent)} apparent), ${fmtBytes(first.sizeBytes as number)} of LMDB pages in use`)
    figures.push({
      figure: `Reopen the ${fmtInt(SIZES.keys)}-key store: open + first get (fresh process)`,
      result: `${fmtMs(first.openToFirstGetMs as number)} ms (worst of 3: ${fmtMs(worst)} ms; ${fmtMs(first.sinceProcessStartMs as number)} ms from process start)`,
      target: '≤ 2 s',
      met: worst <= 2000,
    })
    figures.push({
      figure: `Size on disk of the ${fmtInt(SIZES.keys)}-key store`,
      result: `${fmtBytes(disk.allocated)} allocated (${fmtBytes(disk.apparent)} apparent; ${fmtBytes(first.sizeBytes as number)} of pages in use)`,
      target: '—',
    })
  } finally {
    killChildren()
    removeTempDirs()
  }

  const loadAfter = loadText()
  log(`load average after: ${loadAfter}`)
  const machineText = describeMachine(m)
  const table = markdownTable(figures, date, machineText)
  process.stdout.write(`\n${table}\n\n`)
  if (!QUICK || args.includes('--write-docs')) {
    const body = [
      `Command: \`npm run bench:core\`${QUICK ? ' (here `--quick`: smoke sizes, not the real figures)' : ''} ([test/bench/core.ts](../test/bench/core.ts)), run ${date} on ${machineText}, ${m.os}; code: ${code}. Load average (1/5/15 min) before ${loadBefore}, after ${loadAfter}: the machine is shared, so other work may have run alongside.`,
      '',
      'Setup: `VersionedStore` with its defaults (cache 2000 forks, a checkpoint every 128 revisions) and node id `bench`, on `LmdbStorage` with its defaults (durable: a set resolves only after its commit is fdatasync\'ed) in a fresh temp dir on the local disk, removed afterwards. Values are small JSON objects (`{replicas: n, image: \'api:1\'}`). Each writer awaits its set before the next. Set figures run ' +
        `${SIZES.setMs / 1000} s each after a ${SIZES.warmupMs / 1000} s warm-up; gets run ${SIZES.getMs / 1000} s (over the keys the set figures wrote, then over all keys of the reopened big store after a 0.5 s warm-up); the history key is written with ${HISTORY_INFLIGHT} sets in flight, then read ${SIZES.reads} times at random per row. ` +
        `The ${fmtInt(SIZES.keys)}-key store is written by a fresh \`node --expose-gc\` process (${FILL_INFLIGHT} sets in flight), measured after 3 forced GCs with the store still open, then reopened by fresh processes (page cache warm). "LMDB mmap" is the file-backed part of RSS (/proc RssFile): pages of the memory-mapped database, which the kernel can drop.`,
      '',
      table,
    ].join('\n')
    writeDocSection(DOCS, HEADING, body)
    log(`wrote the "${HEADING}" section of ${DOCS}`)
  } else {
    log('--quick: docs/benchmarks.md left alone (add --write-docs to write it)')
  }
}

// ---- entry ----------------------------------------------------------------------

if (args[0] === '--child') {
  const [, mode, dir, count, extra] = args
  if (mode === 'fill' && dir && count && extra) await childFill(dir, Number(count), Number(extra))
  else if (mode === 'reopen' && dir && count && extra) await childReopen(dir, Number(count), Number(extra))
  else throw new Error(`bad child arguments: ${args.join(' ')}`)
} else {
  await main()
}

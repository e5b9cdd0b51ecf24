// The load generator of bench:compare, the same for every system: `inFlight`
// workers, each with its own connection, each awaiting its request before
// sending the next (closed loop). A warm-up, then a fixed measured window;
// ops/s and latency percentiles over the window, plus the CPU the servers
// and this process used in it.
import { fmtInt, fmtMs, log, machineCpuSeconds, percentile, processCpuSeconds } from './lib.ts'

/** One request of worker `worker` (0..inFlight-1); its `seq`-th. */
export type Op = (worker: number, seq: number) => Promise<void>

export interface Measurement {
  readonly ops: number
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  /** CPU cores the server processes used in the window (summed). */
  readonly serverCores: number
  /** The same per server process, in the order of MeasureOptions.pids. */
  readonly serverCoresEach: readonly number[]
  /** CPU cores this (load generator) process used in the window. */
  readonly benchCores: number
  /** CPU cores the rest of the machine used in the window (busy time in /proc/stat minus the above). */
  readonly otherCores: number
}

export interface MeasureOptions {
  readonly warmupMs: number
  readonly runMs: number
  /** Server PIDs whose CPU is reported. */
  readonly pids: readonly number[]
  readonly progressMs?: number
}

/** utime + stime of a process, in ms (Linux /proc; 0 elsewhere). */
const cpuMsOf = (pid: number): number => (processCpuSeconds(pid) || 0) * 1000

/** Busy CPU time of the whole machine, ms (user, nice, system, irq, softirq, steal; /proc/stat). */
function machineBusyMs(): number {
  const { busy, steal } = machineCpuSeconds()
  return (busy + steal) * 1000
}

const benchCpuMs = () => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

/** Runs `op` from `inFlight` closed-loop workers; measures `runMs` after `warmupMs`. */
export async function measure(label: string, inFlight: number, op: Op, options: MeasureOptions): Promise<Measurement> {
  let latencies = new Float64Array(1 << 16)
  let count = 0
  let errors = 0
  let firstError: unknown
  let recording = false
  let stopped = false
  const record = (ms: number) => {
    if (count === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2)
      bigger.set(latencies)
      latencies = bigger
    }
    latencies[count++] = ms
  }
  const worker = async (w: number) => {
    let seq = 0
    while (!stopped) {
      const t0 = performance.now()
      try {
        await op(w, seq++)
      } catch (err) {
        errors++
        firstError ??= err
        if (errors > 100) {
          stopped = true
          break
        }
        continue
      }
      if (recording) record(performance.now() - t0)
    }
  }
  const workers = Array.from({ length: inFlight }, (_, w) => worker(w))
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
  await sleep(options.warmupMs)
  if (stopped) {
    await Promise.allSettled(workers)
    throw new Error(`${label}: failed in warm-up: ${String(firstError)}`)
  }
  errors = 0
  recording = true
  const t0 = performance.now()
  const server0 = options.pids.map(cpuMsOf)
  const bench0 = benchCpuMs()
  const machine0 = machineBusyMs()
  const progressMs = options.progressMs ?? 2000
  const timer = setInterval(() => {
    const elapsed = (performance.now() - t0) / 1000
    log(`    ${label}: ${fmtInt(count / elapsed)} ops/s so far (${elapsed.toFixed(0)} s of ${(options.runMs / 1000).toFixed(0)})`)
  }, progressMs)
  await sleep(options.runMs)
  clearInterval(timer)
  recording = false
  const elapsedMs = performance.now() - t0
  const serverMsEach = options.pids.map((pid, i) => cpuMsOf(pid) - server0[i]!)
  const serverMs = serverMsEach.reduce((a, b) => a + b, 0)
  const benchMs = benchCpuMs() - bench0
  const machineMs = machineBusyMs() - machine0
  stopped = true
  // Requests in flight finish on their own (each has its own timeout).
  await Promise.allSettled(workers)
  if (errors > 0) throw new Error(`${label}: ${errors} errors in the measured window; first: ${String(firstError)}`)
  const samples = latencies.subarray(0, count)
  const result: Measurement = {
    ops: count,
    opsPerSec: (count * 1000) / elapsedMs,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    errors,
    serverCores: serverMs / elapsedMs,
    serverCoresEach: serverMsEach.map((ms) => ms / elapsedMs),
    benchCores: benchMs / elapsedMs,
    otherCores: Math.max(0, machineMs - serverMs - benchMs) / elapsedMs,
  }
  log(
    `  ${label}: ${fmtInt(result.opsPerSec)} ops/s, p50 ${fmtMs(result.p50Ms)} ms, p99 ${fmtMs(result.p99Ms)} ms; ` +
      `server CPU ${result.serverCores.toFixed(2)} cores${options.pids.length > 1 ? ` (${result.serverCoresEach.map((c) => c.toFixed(2)).join(' + ')})` : ''}, load generator ${result.benchCores.toFixed(2)} cores, other processes ${result.otherCores.toFixed(2)} cores`,
  )
  return result
}

/** CPU cores the rest of the machine (not `pids`, not this process) uses over `sampleMs`. */
export async function otherCoresNow(pids: readonly number[], sampleMs = 1000): Promise<number> {
  const t0 = performance.now()
  const machine0 = machineBusyMs()
  const server0 = pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0)
  const bench0 = benchCpuMs()
  await new Promise<void>((resolve) => setTimeout(resolve, sampleMs))
  const ms = machineBusyMs() - machine0 - (pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0) - server0) - (benchCpuMs() - bench0)
  return Math.max(0, ms) / (performance.now() - t0)
}

/**
 * Waits (at most `maxMs`) until other processes use under `quietCores`; returns
 * what they used at the last sample. The measurement runs either way.
 */
export async function waitForQuiet(pids: readonly number[], quietCores: number, maxMs: number): Promise<number> {
  const deadline = performance.now() + maxMs
  let other = await otherCoresNow(pids)
  if (other < quietCores) return other
  log(`    other processes use ${other.toFixed(2)} cores; waiting up to ${(maxMs / 1000).toFixed(0)} s for them to go under ${quietCores}`)
  while (other >= quietCores && performance.now() < deadline) other = await otherCoresNow(pids)
  log(`    other processes: ${other.toFixed(2)} cores${other >= quietCores ? ' (still busy: measuring anyway)' : ''}`)
  return other
}

// What one event costs on this machine, with no weft code: a client process
// sends 200-byte messages over loopback TCP at a fixed rate (open loop) to an
// echo process, and reads the echoes. Prints the CPU (user + system) both
// processes spend per round trip at each rate. On a machine where waking a
// process is cheap this is ~10-20 µs whatever the rate; a figure that grows as
// the rate falls is the per-wakeup cost every node pays per message at low and
// moderate rates (bench:cluster's latency figures sit on top of it).
//
//   npm run bench:events               200 / 1,000 / 5,000 / 20,000 per s, 3 s each
//   node test/bench/events.ts --quick  0.5 s each
//
// Prints only; docs/benchmarks.md quotes it by hand. The echo process is
// stopped by PID, also on failure.
import { type ChildProcess, spawn } from 'node:child_process'
import net from 'node:net'
import { fmtInt, loadText, log, processCpuSeconds, sleep } from './lib.ts'

const QUICK = process.argv.includes('--quick')
const RUN_MS = QUICK ? 500 : 3000
const RATES = [200, 1000, 5000, 20_000]
const MESSAGE = Buffer.alloc(200, 7)

const ECHO = `
const server = require('node:net').createServer((socket) => socket.on('data', (data) => socket.write(data)))
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
setTimeout(() => process.exit(3), ${RATES.length * (RUN_MS + 5000) + 10_000}).unref()
`

async function startEcho(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`echo process exited (${code})`)))
    child.stdout!.once('data', (data: Buffer) => resolve(Number(data.toString().trim())))
  })
  return { child, port }
}

async function measure(port: number, echoPid: number, rate: number): Promise<{ done: number; client: number; echo: number }> {
  const socket = net.connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  let received = 0
  socket.on('data', (data: Buffer) => (received += data.length))
  const total = Math.round((rate * RUN_MS) / 1000)
  const echoBefore = processCpuSeconds(echoPid)
  const clientBefore = process.cpuUsage()
  const start = performance.now()
  for (let i = 0; i < total; i++) {
    const wait = start + (i / rate) * 1000 - performance.now()
    if (wait > 1) await sleep(wait)
    socket.write(MESSAGE)
  }
  const deadline = performance.now() + 5000
  while (received < total * MESSAGE.length && performance.now() < deadline) await sleep(5)
  const client = process.cpuUsage(clientBefore)
  const echo = processCpuSeconds(echoPid) - echoBefore
  socket.destroy()
  const done = Math.floor(received / MESSAGE.length)
  return { done, client: (client.user + client.system) / done, echo: (echo * 1e6) / done }
}

log(`bench:events${QUICK ? ' --quick' : ''}: loopback TCP round trips between two processes, load average ${loadText()}`)
const { child, port } = await startEcho()
try {
  console.log('| Offered round trips/s | Done | CPU per round trip: client | echo process | both (µs) |')
  console.log('|---|---|---|---|---|')
  for (const rate of RATES) {
    const { done, client, echo } = await measure(port, child.pid!, rate)
    console.log(`| ${fmtInt(rate)} | ${fmtInt(done)} | ${fmtInt(client)} | ${fmtInt(echo)} | ${fmtInt(client + echo)} |`)
  }
} finally {
  child.kill('SIGKILL')
}
log(`load average after: ${loadText()}`)

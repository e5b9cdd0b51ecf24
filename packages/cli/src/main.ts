#!/usr/bin/env node
// The `weft` command: wires the process (argv, env, streams, signals) to run().
import { readFile } from 'node:fs/promises'
import { ExitCode } from './ExitCode.ts'
import { run } from './run.ts'

const controller = new AbortController()
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A second Ctrl-C does not wait for a clean stop.
    if (interrupted) process.exit(ExitCode.interrupted)
    interrupted = true
    controller.abort()
  })
}
// A reader that went away (`weft watch | head`) ends the command quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') controller.abort()
})

const code = await run(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin: async () => {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return new Uint8Array(Buffer.concat(chunks))
  },
  readFile: async (path) => new Uint8Array(await readFile(path)),
  signal: controller.signal,
})
process.exitCode = code
// Whatever still holds the event loop (a socket in its close handshake) does not hold the shell.
setTimeout(() => process.exit(code), 1000).unref()

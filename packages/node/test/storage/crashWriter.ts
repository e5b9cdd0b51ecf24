// The victim of crash.test.ts, run as its own process: `crashWriter.ts <dir> <run>`.
// Commits forever from concurrent writers and prints a commit's name only after
// commit() resolved, so every printed line is a promise that the commit is durable.
import { fileURLToPath } from 'node:url'
import { LmdbStorage } from '../../src/storage/LmdbStorage.ts'

export const WRITERS = 20

/** The two keys one commit writes; both or neither may survive a crash. */
export function commitKeys(name: string): [string, string] {
  return [`${name}/a`, `${name}/b`]
}

/** The value stored under `key`, so the test can check it byte for byte. */
export function crashValue(key: string): Uint8Array {
  const seq = Number(key.split('/')[2])
  // Every tenth commit spans many pages, so kills also land inside big writes.
  return Buffer.from(`${key};`.repeat(seq % 10 === 0 ? 4000 : 1 + (seq % 20)))
}

async function main(path: string, run: string): Promise<void> {
  // Never outlive a test that forgot us.
  setTimeout(() => process.exit(3), 15_000).unref()
  const storage = await LmdbStorage.open(path)
  const writer = async (writer: number): Promise<never> => {
    for (let seq = 0; ; seq++) {
      const name = `run${run}/writer${writer}/${seq}`
      await storage.commit(commitKeys(name).map((key) => ({ type: 'put', key, value: crashValue(key) })))
      // Synchronous on Linux pipes: once write returns, the line is the kernel's.
      process.stdout.write(`${name}\n`)
    }
  }
  await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)))
}

const [, script, path, run] = process.argv
if (script === fileURLToPath(import.meta.url)) {
  if (path === undefined || run === undefined) throw new Error('usage: crashWriter.ts <dir> <run>')
  await main(path, run)
}

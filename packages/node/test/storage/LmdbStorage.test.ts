import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LmdbStorage } from '../../src/storage/LmdbStorage.ts'
import type { StorageAdapter } from '../../src/storage/StorageAdapter.ts'
import { WriteAheadLog, encodeRecord } from '../../src/storage/WriteAheadLog.ts'
import { runStorageAdapterTests } from './storageConformance.ts'

// Each test gets its own store under one root, so a test that dies early still
// leaves nothing behind once the root goes.
let root: string
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-lmdb-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

runStorageAdapterTests('LmdbStorage', async () => {
  const path = await mkdtemp(join(root, 'store-'))
  let current: StorageAdapter = await LmdbStorage.open(path)
  return {
    adapter: current,
    reopen: async () => {
      await current.close()
      current = await LmdbStorage.open(path)
      return current
    },
    teardown: async () => {
      await current.close()
      await rm(path, { recursive: true, force: true })
    },
  }
}, { persistent: true })

describe('LmdbStorage write-ahead log', () => {
  it('replays logged commits on open, up to a torn tail, and then starts a fresh log', async () => {
    const path = await mkdtemp(join(root, 'wal-'))
    const first = await LmdbStorage.open(path)
    await first.commit([{ type: 'put', key: 'kept', value: new TextEncoder().encode('in lmdb') }])
    await first.close()
    // Commits acknowledged from the log that LMDB never got, as after a crash.
    const wal = await WriteAheadLog.create(join(path, 'wal'), 1)
    await wal.append([{ type: 'put', key: 'a', value: new TextEncoder().encode('from the log') }, { type: 'del', key: 'kept' }]).durable
    await wal.append([{ type: 'put', key: 'b', value: new TextEncoder().encode('also') }]).durable
    await wal.close()
    const [segment] = await readdir(join(path, 'wal'))
    await appendFile(join(path, 'wal', segment!), encodeRecord(3, [{ type: 'put', key: 'torn', value: new Uint8Array(10) }]).subarray(0, 20))

    const reopened = await LmdbStorage.open(path)
    const decoder = new TextDecoder()
    expect(Array.from(reopened.range({}), ([key, value]) => [key, decoder.decode(value)])).toEqual([
      ['a', 'from the log'],
      ['b', 'also'],
    ])
    await reopened.commit([{ type: 'put', key: 'c', value: new Uint8Array(1) }])
    await reopened.close()
    // A clean close leaves no log behind to replay.
    expect(await readdir(join(path, 'wal'))).toEqual([])
  })
})

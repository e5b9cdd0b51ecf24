import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { LmdbStorage } from '../../src/storage/LmdbStorage.ts'
import type { StorageAdapter } from '../../src/storage/StorageAdapter.ts'
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

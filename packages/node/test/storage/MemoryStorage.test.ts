import { MemoryStorage } from '../../src/storage/MemoryStorage.ts'
import { runStorageAdapterTests } from './storageConformance.ts'

runStorageAdapterTests('MemoryStorage', async () => {
  const adapter = new MemoryStorage()
  return { adapter, teardown: () => adapter.close() }
}, { persistent: false })

export * from './VersionedStore.ts'

export * from './storage/index.ts'
export * from './store/index.ts'

export * from './codec.ts'
export * from './peer.ts'

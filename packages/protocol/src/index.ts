export * from './codec.ts'
export * from './peer.ts'
export * from './messages.ts'
export * from './httpStatus.ts'

// @weft/protocol/server: what a node and a gateway share in serving the
// protocol (Node only: `ws` and node:http), apart from the pure contract in
// the package's main entry, which browsers load too.
export * from './FrameServer.ts'
export * from './FrameSession.ts'
export * from './SessionWatches.ts'
export * from './httpReplies.ts'
export * from './corkedSend.ts'
export * from './dropUndefined.ts'
export * from './runService.ts'
export * from './appConfig.ts'

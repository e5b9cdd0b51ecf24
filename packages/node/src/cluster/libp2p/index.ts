// The libp2p transport's public surface; everything else in this folder is internal.
export { Libp2pTransport, TransportRequestError, type Libp2pTransportOptions } from './Libp2pTransport.ts'
export { IDENTITY_FILE, loadOrCreateIdentity, peerIdOf } from './identity.ts'
export { generateSwarmKey, parseSwarmKey, readSwarmKey } from './swarmKey.ts'

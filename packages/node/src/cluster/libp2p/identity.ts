// A node's libp2p identity: an Ed25519 key kept in <dataDir>/identity.key, so a
// restarted node comes back as the same peer (same PeerId, same gossip author).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import type { PeerId } from '../ClusterTransport.ts'

export const IDENTITY_FILE = 'identity.key'

/** Loads `<dataDir>/identity.key`, or creates it (mode 0600) with a new Ed25519 key. */
export async function loadOrCreateIdentity(dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, IDENTITY_FILE)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw new Error(`cannot read identity key ${path}: ${errorMessage(err)}`, { cause: err })
    return createIdentity(dataDir, path)
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new Error(`${path} is not a libp2p private key (${errorMessage(err)}); move it away to start as a new peer`, { cause: err })
  }
}

export function peerIdOf(privateKey: PrivateKey): PeerId {
  return peerIdFromPrivateKey(privateKey).toString() as PeerId
}

async function createIdentity(dataDir: string, path: string): Promise<PrivateKey> {
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  // Write then rename, so a crash never leaves a half-written key behind.
  const temporary = `${path}.${process.pid}.tmp`
  await writeFile(temporary, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  await rename(temporary, path)
  return key
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

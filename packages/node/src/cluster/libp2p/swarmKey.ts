// The private-network secret (@libp2p/pnet): the go-ipfs swarm.key file format,
//   /key/swarm/psk/1.0.0/\n/base16/\n<64 hex digits>
// A node without the same key cannot finish a connection to the cluster.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'

const HEADER = '/key/swarm/psk/1.0.0/'
const CODEC = '/base16/'
const KEY_BYTES = 32

/** A new random swarm key, as the bytes of a key file. */
export function generateSwarmKey(): Uint8Array {
  return encode(randomBytes(KEY_BYTES).toString('hex'))
}

/** Reads and checks a swarm key file; the error says what is wrong with it. */
export async function readSwarmKey(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new Error(`cannot read swarm key file ${path}: ${reason}`, { cause: err })
  }
  return parseSwarmKey(bytes, path)
}

/** Checks swarm key bytes and returns them in canonical form (lower-case hex, trailing newline). */
export function parseSwarmKey(bytes: Uint8Array, source = 'swarm key'): Uint8Array {
  const lines = new TextDecoder().decode(bytes).trim().split(/\r\n|\r|\n/)
  const [header, codec, hex, ...rest] = lines.map((line) => line.trim())
  if (header !== HEADER) throw invalid(source, `first line is ${JSON.stringify(header ?? '')}`)
  if (codec !== CODEC) throw invalid(source, `second line is ${JSON.stringify(codec ?? '')}; only base16 is supported`)
  if (hex === undefined || !/^[0-9a-fA-F]{64}$/.test(hex)) throw invalid(source, `third line must be ${KEY_BYTES * 2} hex digits`)
  if (rest.length > 0) throw invalid(source, 'unexpected lines after the key')
  return encode(hex.toLowerCase())
}

function invalid(source: string, why: string): Error {
  return new Error(`${source} is not a valid swarm key: ${why} (expected "${HEADER}", "${CODEC}" and 64 hex digits, one per line)`)
}

function encode(hex: string): Uint8Array {
  return new TextEncoder().encode(`${HEADER}\n${CODEC}\n${hex}\n`)
}

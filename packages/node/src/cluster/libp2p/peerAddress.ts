// Turns a configured peer ("/ip4/…/tcp/…/p2p/<id>", "/dns4/name/tcp/…", or plain
// "host:port") into a TCP multiaddr to dial plus the peer id when it is known.
import { isIPv4, isIPv6 } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'

export interface PeerAddress {
  /** The multiaddr to dial, without /p2p/<id>. */
  readonly address: string
  /** Known when the configured address ends in /p2p/<id>; otherwise learnt by dialling. */
  readonly peerId?: string
  /** A DNS name: re-dialled by name, so a peer that came back on a new IP is found. */
  readonly dns: boolean
}

const P2P_CODE = 421
const DNS_PROTOCOLS = new Set(['dns', 'dns4', 'dns6'])

export function parsePeerAddress(input: string): PeerAddress {
  const text = input.trim()
  if (text.startsWith('/')) return fromMultiaddr(text)
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text)
  const plain = /^([^:/\s]+):(\d+)$/.exec(text)
  const match = bracketed ?? plain
  if (!match) throw new Error(`peer address ${JSON.stringify(input)} is neither a multiaddr nor host:port`)
  const [, host = '', portText = ''] = match
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`peer address ${JSON.stringify(input)} has an invalid port`)
  if (isIPv6(host)) return { address: `/ip6/${host}/tcp/${port}`, dns: false }
  if (bracketed) throw new Error(`peer address ${JSON.stringify(input)}: brackets are for IPv6 addresses`)
  if (isIPv4(host)) return { address: `/ip4/${host}/tcp/${port}`, dns: false }
  return { address: `/dns4/${host}/tcp/${port}`, dns: true }
}

function fromMultiaddr(text: string): PeerAddress {
  let parsed
  try {
    parsed = multiaddr(text)
  } catch (err) {
    throw new Error(`peer address ${JSON.stringify(text)} is not a valid multiaddr: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  const protocols = parsed.protoNames()
  if (!protocols.includes('tcp')) throw new Error(`peer address ${JSON.stringify(text)} is not a TCP address (only TCP is supported)`)
  const peerId = parsed.getPeerId() ?? undefined
  if (peerId === undefined && protocols.includes('p2p')) throw new Error(`peer address ${JSON.stringify(text)} has an invalid /p2p/ peer id`)
  const address = (peerId === undefined ? parsed : parsed.decapsulateCode(P2P_CODE)).toString()
  const dns = protocols.some((name) => DNS_PROTOCOLS.has(name))
  return peerId === undefined ? { address, dns } : { address, peerId, dns }
}

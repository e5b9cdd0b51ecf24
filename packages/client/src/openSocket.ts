// The one place that knows which WebSocket implementation runs: the global one
// (browsers, Node 22+), else `ws` (older Node). Both are driven through the
// standard WHATWG surface below, so the client has a single code path.

/** The part of the standard WebSocket the client uses (met by browsers, Node's global and `ws`). */
export interface SocketLike {
  binaryType: string
  readonly readyState: number
  readonly bufferedAmount: number
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { readonly data: unknown }) => void) | null
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
}

export interface SocketRequest {
  /** The URL to open, token query parameter included. */
  readonly url: string
  /** Headers to send where the platform allows it (Node); browsers cannot. */
  readonly headers: Readonly<Record<string, string>>
}

/** Opens a socket; the client sets its handlers right after. */
export type WebSocketFactory = (request: SocketRequest) => SocketLike | Promise<SocketLike>

export const SocketState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const

/** Node's (undici's) and `ws`'s constructors take headers in a second argument; browsers' take subprotocols there. */
type NodeSocketConstructor = new (url: string, init?: { headers?: Record<string, string> }) => SocketLike
type BrowserSocketConstructor = new (url: string) => SocketLike

export function isNode(): boolean {
  const process = (globalThis as { process?: { versions?: { node?: string } } }).process
  return typeof process?.versions?.node === 'string'
}

export const openSocket: WebSocketFactory = async ({ url, headers }) => {
  const Global = (globalThis as { WebSocket?: unknown }).WebSocket
  const node = isNode()
  if (typeof Global === 'function') {
    if (node && Object.keys(headers).length > 0) return new (Global as NodeSocketConstructor)(url, { headers: { ...headers } })
    return new (Global as BrowserSocketConstructor)(url)
  }
  if (!node) throw new Error('no WebSocket implementation: this platform has no global WebSocket')
  const { WebSocket } = await import('ws')
  return new WebSocket(url, { headers: { ...headers }, perMessageDeflate: false }) as unknown as SocketLike
}

// Many small frames go out in one event-loop turn under load (a gateway
// relays answers that came in one read from a node, and requests of many
// clients): holding the socket corked until the turn ends sends them in one
// write instead of one each.
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'

const corked = new WeakSet<Socket>()

export function corkedSend(ws: WebSocket, bytes: Uint8Array): void {
  // ws keeps its socket in `_socket`; without it (never seen), send plainly.
  const socket = (ws as unknown as { _socket?: Socket })._socket
  if (socket && !corked.has(socket)) {
    corked.add(socket)
    socket.cork()
    process.nextTick(() => {
      corked.delete(socket)
      socket.uncork()
    })
  }
  ws.send(bytes)
}

// What a request in the node protocol needs, for front ends that authorize
// frames (the WebSocket server) the way the HTTP routes do: reads need read,
// writes need write, on the key, or on the whole prefix for prefix ops and
// listings ('' for all keys); members needs read on every key; ping (it tells
// only which node answered, and is how a client checks its token at connect)
// and unwatch (of one's own watch) need only a valid token.
import { Access } from './Authorizer.ts'

export interface RequiredAccess {
  readonly access: Access
  /** The key, or the prefix every touched key starts with. */
  readonly scope: string
}

const READS: ReadonlySet<string> = new Set(['get', 'keys', 'history', 'info', 'diff', 'watch'])
const WRITES: ReadonlySet<string> = new Set(['set', 'delete', 'revert', 'fork', 'merge'])

/** undefined: authentication alone is enough (ping, unwatch) or the op is unknown (refused elsewhere). */
export function requiredAccess(op: string, params: Readonly<Record<string, unknown>>): RequiredAccess | undefined {
  const scope = typeof params.key === 'string' ? params.key : typeof params.prefix === 'string' ? params.prefix : ''
  if (READS.has(op)) return { access: Access.read, scope }
  if (WRITES.has(op)) return { access: Access.write, scope }
  if (op === 'members') return { access: Access.read, scope: '' }
  return undefined
}

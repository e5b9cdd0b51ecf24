// One client request on the store: each data op maps to one store call (prefix
// forks and merges to forkPrefix / mergePrefix). Writes with a requestId go
// through the dedup map, so a retry is applied once.
import { pack } from '@weft/protocol'
import type { Request, RequestOf, Results, Selector } from '@weft/protocol'
import { createHash } from 'node:crypto'
import type { VersionedStore } from '../store/VersionedStore.ts'
import type { RequestDedup } from './RequestDedup.ts'

export type StoreOp = 'get' | 'set' | 'delete' | 'keys' | 'history' | 'info' | 'diff' | 'revert' | 'fork' | 'merge'
export type StoreRequest = RequestOf<StoreOp>

export function isStoreRequest(request: Request): request is StoreRequest {
  return STORE_OPS.has(request.op)
}

const STORE_OPS: ReadonlySet<string> = new Set<StoreOp>(['get', 'set', 'delete', 'keys', 'history', 'info', 'diff', 'revert', 'fork', 'merge'])

export async function runStoreOp(store: VersionedStore, dedup: RequestDedup, request: StoreRequest): Promise<Results[StoreOp]> {
  switch (request.op) {
    case 'get':
      return store.get(request.key, request.fork, selectorOf(request))
    case 'keys':
      return store.keys({ prefix: request.prefix, fork: request.fork, limit: request.limit, after: request.after })
    case 'history':
      return store.history(request.key, request.fork, { limit: request.limit, before: request.before, values: request.values, patches: request.patches })
    case 'info':
      return store.info(request.key, request.fork)
    case 'diff':
      return store.diff(request.key, request.from, request.to)
    default:
      return request.requestId === undefined ? write(store, request) : dedup.run(request.requestId, fingerprint(request), () => write(store, request))
  }
}

type WriteRequest = RequestOf<'set' | 'delete' | 'revert' | 'fork' | 'merge'>

async function write(store: VersionedStore, request: WriteRequest): Promise<Results[WriteRequest['op']]> {
  const meta = { author: request.author, message: request.message }
  // Single-key writes record their requestId in the revision, so a retry on
  // another node that has the revision (by gossip) is not applied twice.
  const once = { ...meta, requestId: request.requestId }
  switch (request.op) {
    case 'set':
      return store.set(request.key, request.value, { fork: request.fork, ifHead: request.ifHead, ...once })
    case 'delete':
      return store.delete(request.key, { fork: request.fork, ifHead: request.ifHead, ...once })
    case 'revert':
      return store.revert(request.key, selectorOf(request), { fork: request.fork, ...once })
    case 'fork':
      if (request.prefix !== undefined) return store.forkPrefix(request.prefix, { from: request.from, to: request.to, at: request.at, ...meta })
      return store.fork(request.key, { from: request.from, to: request.to, ...selectorOf(request), ...once })
    case 'merge': {
      const options = { from: request.from, into: request.into, strategy: request.strategy, ...meta }
      return request.prefix !== undefined ? store.mergePrefix(request.prefix, options) : store.merge(request.key, { ...options, requestId: request.requestId })
    }
  }
}

function selectorOf(request: Selector): Selector {
  return { revision: request.revision, index: request.index, at: request.at }
}

/** What a write asks for, minus its frame id: a reused requestId must ask for the same. */
function fingerprint(request: WriteRequest): string {
  const { id: _id, ...rest } = request
  return createHash('sha256').update(pack(rest)).digest('base64')
}

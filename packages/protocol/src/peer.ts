// What nodes say to each other: gossip on topics, and the anti-entropy
// request/response protocol. Everything here arrives from another process and
// is validated before use; revisions are validated again by the store.
import { ErrorCode, WeftError } from '@weft/core'
import { unpack } from './codec.ts'

export const Topics = {
  revisions: 'weft/revisions/1',
  members: 'weft/members/1',
} as const

export const SYNC_PROTOCOL = '/weft/sync/1.0.0'

/** A revision as it travels between nodes (the store checks every field). */
export interface WireRevision {
  readonly id: string
  readonly key: string
  readonly fork: string
  readonly kind: string
  readonly delta: Uint8Array
  readonly from?: { readonly fork: string; readonly revision: string }
  readonly author?: string
  readonly message?: string
  readonly requestId?: string
}

export interface RevisionBatch {
  readonly t: 'revs'
  readonly revisions: readonly unknown[]
}

export interface Heartbeat {
  readonly t: 'hb'
  readonly peer: string
  readonly name: string
  readonly addresses: readonly string[]
  /** Where clients reach this node's API (ws://host:port/v1/ws); empty if unknown. */
  readonly api: string
  readonly version: string
  readonly startedAt: number
  readonly keys: number
  readonly load: number
  readonly feed: { readonly epoch: string; readonly seq: number }
  readonly sentAt: number
}

export type SyncRequest =
  | { readonly t: 'head' }
  | { readonly t: 'feed'; readonly after: number; readonly limit: number }
  | { readonly t: 'get'; readonly refs: readonly (readonly [string, string, string])[] }

export type SyncResponse =
  | { readonly t: 'head'; readonly epoch: string; readonly seq: number }
  | { readonly t: 'feed'; readonly epoch: string; readonly entries: readonly (readonly [number, string, string, string])[] }
  | { readonly t: 'get'; readonly revisions: readonly WireRevision[] }
  | { readonly t: 'error'; readonly code: string; readonly message: string }

function bad(what: string): WeftError {
  return new WeftError(ErrorCode.BAD_FRAME, `malformed peer message: ${what}`)
}

function record(bytes: Uint8Array): Record<string, unknown> {
  const value = unpack(bytes, ErrorCode.BAD_FRAME)
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) throw bad('not a map')
  return value as Record<string, unknown>
}

const isString = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length <= max
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

export function parseRevisionBatch(bytes: Uint8Array): RevisionBatch {
  const r = record(bytes)
  if (r.t !== 'revs' || !Array.isArray(r.revisions)) throw bad('revision batch')
  return { t: 'revs', revisions: r.revisions }
}

export function parseHeartbeat(bytes: Uint8Array): Heartbeat {
  const r = record(bytes)
  const feed = r.feed as Record<string, unknown> | null
  if (
    r.t !== 'hb' || !isString(r.peer, 128) || !isString(r.name, 128) || !isString(r.version, 64) || !isString(r.api, 512) ||
    !Array.isArray(r.addresses) || r.addresses.length > 32 || !r.addresses.every((a) => isString(a, 512)) ||
    !isCount(r.startedAt) || !isCount(r.keys) || typeof r.load !== 'number' || !isCount(r.sentAt) ||
    feed === null || typeof feed !== 'object' || !isString(feed.epoch, 64) || !isCount(feed.seq)
  ) {
    throw bad('heartbeat')
  }
  return r as unknown as Heartbeat
}

export const SyncLimits = {
  feedPage: 5000,
  refsPerGet: 1000,
  /** Revisions per get response stop once this many delta bytes are packed. */
  getBytes: 2 * 1024 * 1024,
} as const

export function parseSyncRequest(bytes: Uint8Array): SyncRequest {
  const r = record(bytes)
  switch (r.t) {
    case 'head':
      return { t: 'head' }
    case 'feed':
      if (!isCount(r.after) || !isCount(r.limit) || r.limit < 1 || r.limit > SyncLimits.feedPage) throw bad('feed request')
      return { t: 'feed', after: r.after, limit: r.limit }
    case 'get':
      if (!Array.isArray(r.refs) || r.refs.length > SyncLimits.refsPerGet) throw bad('get request')
      for (const ref of r.refs) {
        if (!Array.isArray(ref) || ref.length !== 3 || !ref.every((part) => isString(part, 2048))) throw bad('revision ref')
      }
      return { t: 'get', refs: r.refs as [string, string, string][] }
    default:
      throw bad(`unknown sync request ${String(r.t).slice(0, 32)}`)
  }
}

export function parseSyncResponse(bytes: Uint8Array): SyncResponse {
  const r = record(bytes)
  switch (r.t) {
    case 'head':
      if (!isString(r.epoch, 64) || !isCount(r.seq)) throw bad('head response')
      return { t: 'head', epoch: r.epoch, seq: r.seq }
    case 'feed':
      if (!isString(r.epoch, 64) || !Array.isArray(r.entries) || r.entries.length > SyncLimits.feedPage) throw bad('feed response')
      for (const e of r.entries) {
        if (!Array.isArray(e) || e.length !== 4 || !isCount(e[0]) || !isString(e[1], 2048) || !isString(e[2], 256) || !isString(e[3], 128)) throw bad('feed entry')
      }
      return { t: 'feed', epoch: r.epoch, entries: r.entries as [number, string, string, string][] }
    case 'get':
      if (!Array.isArray(r.revisions)) throw bad('get response')
      return { t: 'get', revisions: r.revisions as WireRevision[] }
    case 'error':
      return { t: 'error', code: String(r.code).slice(0, 64), message: String(r.message).slice(0, 1024) }
    default:
      throw bad('unknown sync response')
  }
}

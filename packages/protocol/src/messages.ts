// The client wire contract: what a client (or the gateway) sends a node, and what
// comes back. Every WebSocket binary message is one msgpack map (see codec.ts);
// docs/PROTOCOL.md describes the same in prose. Pure: no node-only imports.
import {
  type Change,
  type Conflict,
  ErrorCode,
  MergeStrategy,
  type RevisionInfo,
  type RevisionRef,
  type Value,
  WeftError,
} from '@weft/core'
import { unpack } from './codec.ts'

export type RequestId = number | string

export const Op = {
  get: 'get',
  set: 'set',
  delete: 'delete',
  keys: 'keys',
  history: 'history',
  info: 'info',
  diff: 'diff',
  revert: 'revert',
  fork: 'fork',
  merge: 'merge',
  watch: 'watch',
  unwatch: 'unwatch',
  members: 'members',
  ping: 'ping',
} as const
export type Op = (typeof Op)[keyof typeof Op]

/** Ops that change data: they take `author`, `message` and `requestId`. */
export const WRITE_OPS: ReadonlySet<Op> = new Set([Op.set, Op.delete, Op.revert, Op.fork, Op.merge])

export const MessageLimits = {
  requestIdChars: 64,
  /** Idempotency keys of writes (`requestId`). */
  idempotencyKeyChars: 128,
  cursorChars: 128,
} as const

// ---- requests ---------------------------------------------------------------

/** Which revision of a fork: one of an id, a 1-based index, or a time (ms); none means the head. */
export interface Selector {
  readonly revision?: string
  readonly index?: number
  readonly at?: number
}

export interface WriteMeta {
  readonly author?: string
  readonly message?: string
  /** Idempotency key: a retried write with the same requestId is applied once. */
  readonly requestId?: string
}

/** A single key, or every key under a prefix. */
export type Target = { readonly key: string; readonly prefix?: undefined } | { readonly prefix: string; readonly key?: undefined }

interface Base<O extends Op> {
  readonly id: RequestId
  readonly op: O
}

export type GetRequest = Base<'get'> & Selector & { readonly key: string; readonly fork?: string }
export type SetRequest = Base<'set'> & WriteMeta & { readonly key: string; readonly value: unknown; readonly fork?: string; readonly ifHead?: string | null }
export type DeleteRequest = Base<'delete'> & WriteMeta & { readonly key: string; readonly fork?: string; readonly ifHead?: string | null }
export type KeysRequest = Base<'keys'> & { readonly prefix?: string; readonly fork?: string; readonly limit?: number; readonly after?: string }
export type HistoryRequest = Base<'history'> & {
  readonly key: string
  readonly fork?: string
  readonly limit?: number
  readonly before?: string
  readonly values?: boolean
  readonly patches?: boolean
}
export type InfoRequest = Base<'info'> & { readonly key: string; readonly fork?: string }
export type DiffSide = Selector & { readonly fork?: string }
export type DiffRequest = Base<'diff'> & { readonly key: string; readonly from: DiffSide; readonly to: DiffSide }
export type RevertRequest = Base<'revert'> & WriteMeta & Selector & { readonly key: string; readonly fork?: string }
/** With `prefix`, only `at` may select the revision (ids and indexes are per key). */
export type ForkRequest = Base<'fork'> & WriteMeta & Selector & Target & { readonly from?: string; readonly to: string }
export type MergeRequest = Base<'merge'> & WriteMeta & Target & { readonly from: string; readonly into?: string; readonly strategy?: MergeStrategy }
/**
 * `after`: a cursor of this node's feed. `since` (ms): replay what this node
 * stored from that time on (less a margin for clock skew and replication lag),
 * for a watch resumed on a node other than the one it started on; the receiver
 * drops what it already has by revision id. At most one of the two.
 */
export type WatchRequest = Base<'watch'> & Target & { readonly fork?: string; readonly after?: string; readonly since?: number }
export type UnwatchRequest = Base<'unwatch'> & { readonly watch: RequestId }
export type MembersRequest = Base<'members'>
export type PingRequest = Base<'ping'>

export type Request =
  | GetRequest
  | SetRequest
  | DeleteRequest
  | KeysRequest
  | HistoryRequest
  | InfoRequest
  | DiffRequest
  | RevertRequest
  | ForkRequest
  | MergeRequest
  | WatchRequest
  | UnwatchRequest
  | MembersRequest
  | PingRequest

export type RequestOf<O extends Op> = Extract<Request, { readonly op: O }>

// ---- results ----------------------------------------------------------------

export interface GetResult {
  readonly key: string
  readonly fork: string
  /** Absent when the revision read is a deletion. */
  readonly value?: Value
  readonly deleted: boolean
  readonly revision: RevisionInfo
}

export interface WriteResult {
  readonly key: string
  readonly fork: string
  readonly revision: RevisionInfo
}

export interface MergeResult extends WriteResult {
  readonly conflicts: readonly Conflict[]
}

export interface KeysResult {
  readonly keys: readonly { readonly key: string; readonly head: string; readonly revisionCount: number }[]
  /** Pass as `after` for the next page; absent on the last page. */
  readonly next?: string
}

export interface HistoryEntry extends RevisionInfo {
  readonly value?: Value
  readonly deleted?: boolean
  readonly patch?: readonly Change[]
}

export interface HistoryResult {
  readonly revisions: readonly HistoryEntry[]
  /** Pass as `before` for the next page; absent on the last page. */
  readonly next?: string
}

export interface InfoResult {
  readonly key: string
  readonly fork: string
  readonly revisionCount: number
  readonly head: RevisionInfo
  readonly deleted: boolean
  readonly forks: readonly { readonly fork: string; readonly from?: RevisionRef }[]
  readonly ancestors: readonly RevisionRef[]
  readonly sizeBytes: number
}

export interface DiffResult {
  readonly from: RevisionInfo
  readonly to: RevisionInfo
  readonly changes: readonly Change[]
}

/** The answer of a prefix fork or merge: one entry per key, each ok or not. */
export interface PrefixResult {
  readonly results: readonly (
    | { readonly key: string; readonly ok: true; readonly revision: RevisionInfo; readonly conflicts?: readonly Conflict[] }
    | { readonly key: string; readonly ok: false; readonly error: { readonly code: string; readonly message: string } }
  )[]
}

export interface WatchResult {
  readonly watch: RequestId
  /** Where the stream starts: pass as `after` to resume from here. */
  readonly cursor: string
}

export interface UnwatchResult {
  readonly watch: RequestId
  /** False when no such watch was open. */
  readonly removed: boolean
}

export interface MembersResult {
  readonly node: string
  readonly members: readonly unknown[]
}

export interface PingResult {
  readonly node: string
  /** The node's wall clock, ms. */
  readonly time: number
}

/** The result of each op (fork and merge: PrefixResult for `prefix` requests). */
export interface Results {
  readonly get: GetResult
  readonly set: WriteResult
  readonly delete: WriteResult
  readonly keys: KeysResult
  readonly history: HistoryResult
  readonly info: InfoResult
  readonly diff: DiffResult
  readonly revert: WriteResult
  readonly fork: WriteResult | PrefixResult
  readonly merge: MergeResult | PrefixResult
  readonly watch: WatchResult
  readonly unwatch: UnwatchResult
  readonly members: MembersResult
  readonly ping: PingResult
}

// ---- server frames ------------------------------------------------------------

export interface ErrorBody {
  readonly code: ErrorCode
  readonly message: string
  readonly details?: Readonly<Record<string, unknown>>
}

export interface OkResponse<O extends Op = Op> {
  readonly id: RequestId
  readonly ok: true
  readonly result: Results[O]
}

export interface ErrorResponse {
  /** null when the request's id could not be read. */
  readonly id: RequestId | null
  readonly ok: false
  readonly error: ErrorBody
}

export type Response = OkResponse | ErrorResponse

/** One revision stored on the node that matches a watch. */
export interface WatchEvent {
  /** `<epoch>:<seq>`: pass as `after` to resume right after this event. */
  readonly cursor: string
  readonly key: string
  readonly fork: string
  readonly revision: RevisionInfo
  /** The value as of this revision; absent when it is a deletion. */
  readonly value?: Value
  readonly deleted: boolean
}

export interface WatchEventFrame {
  /** The id of the watch request. */
  readonly id: RequestId
  readonly event: WatchEvent
}

/** The node ended a watch (e.g. its replay failed); no more events follow for it. */
export interface WatchEndFrame {
  readonly id: RequestId
  readonly ended: ErrorBody
}

export type ServerFrame = Response | WatchEventFrame | WatchEndFrame

// ---- cursors ------------------------------------------------------------------

export interface Cursor {
  /** Identifies one incarnation of a node's change feed. */
  readonly epoch: string
  /** Position in that feed: the event's own, or the last one seen. */
  readonly seq: number
}

export function formatCursor(cursor: Cursor): string {
  return `${cursor.epoch}:${cursor.seq}`
}

export function parseCursor(input: unknown): Cursor {
  const bad = () => new WeftError(ErrorCode.INVALID_ARGUMENT, 'cursor must be "<epoch>:<seq>"', { field: 'after' })
  if (typeof input !== 'string' || input.length > MessageLimits.cursorChars) throw bad()
  const colon = input.lastIndexOf(':')
  const epoch = input.slice(0, colon)
  const seq = input.slice(colon + 1)
  if (colon < 1 || !/^(0|[1-9][0-9]{0,15})$/.test(seq) || !Number.isSafeInteger(Number(seq))) throw bad()
  return { epoch, seq: Number(seq) }
}

// ---- validation -----------------------------------------------------------------

type Frame = Readonly<Record<string, unknown>>

/**
 * Decodes one binary frame into a map. Garbage, and anything but a map, is BAD_FRAME.
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  const frame = unpack(bytes, ErrorCode.BAD_FRAME)
  if (!isMap(frame)) throw new WeftError(ErrorCode.BAD_FRAME, `a frame must be a msgpack map, got ${describe(frame)}`)
  return frame
}

/** The id of a frame, if it has a valid one (to address an error about the rest of it). */
export function requestIdOf(frame: unknown): RequestId | null {
  if (!isMap(frame)) return null
  const id = frame.id
  return isRequestId(id) ? id : null
}

export function isRequestId(id: unknown): id is RequestId {
  if (typeof id === 'number') return Number.isSafeInteger(id) && id >= 0
  return typeof id === 'string' && id.length <= MessageLimits.requestIdChars
}

/**
 * Checks a decoded frame and returns it as a typed request. Throws WeftError and
 * nothing else: BAD_FRAME (not a map, no valid id or op), UNKNOWN_OP, or
 * INVALID_ARGUMENT (a field of the wrong type, an unknown field, a missing one).
 * Values, keys, forks and limits are left to the store, which refuses them with
 * their own codes. Optional fields may be sent as nil to mean absent (except
 * `ifHead`, where nil means "the fork must not exist").
 */
export function parseRequest(frame: unknown): Request {
  if (!isMap(frame)) throw new WeftError(ErrorCode.BAD_FRAME, `a frame must be a msgpack map, got ${describe(frame)}`)
  const id = frame.id
  if (!isRequestId(id)) {
    throw new WeftError(ErrorCode.BAD_FRAME, `id must be a non-negative integer or a string of at most ${MessageLimits.requestIdChars} chars`)
  }
  const op = frame.op
  if (typeof op !== 'string') throw new WeftError(ErrorCode.BAD_FRAME, 'op must be a string')
  if (!Object.hasOwn(Op, op)) throw new WeftError(ErrorCode.UNKNOWN_OP, `unknown op ${JSON.stringify(op.slice(0, 64))}`)
  const parser = parsers[op as Op]
  checkFields(frame, [...COMMON_FIELDS, ...parser.fields])
  return parser.parse(id, new Fields(frame)) as Request
}

const COMMON_FIELDS = ['id', 'op'] as const
const META_FIELDS = ['author', 'message', 'requestId'] as const
const SELECTOR_FIELDS = ['revision', 'index', 'at'] as const

interface OpParser {
  readonly fields: readonly string[]
  parse(id: RequestId, f: Fields): Request
}

const parsers: { readonly [O in Op]: OpParser } = {
  get: {
    fields: ['key', 'fork', ...SELECTOR_FIELDS],
    parse: (id, f): GetRequest => compact({ id, op: Op.get, key: f.string('key'), fork: f.optString('fork'), ...f.selector() }),
  },
  set: {
    fields: ['key', 'value', 'fork', 'ifHead', ...META_FIELDS],
    parse: (id, f): SetRequest =>
      compact({ id, op: Op.set, key: f.string('key'), value: f.present('value'), fork: f.optString('fork'), ifHead: f.ifHead(), ...f.meta() }),
  },
  delete: {
    fields: ['key', 'fork', 'ifHead', ...META_FIELDS],
    parse: (id, f): DeleteRequest => compact({ id, op: Op.delete, key: f.string('key'), fork: f.optString('fork'), ifHead: f.ifHead(), ...f.meta() }),
  },
  keys: {
    fields: ['prefix', 'fork', 'limit', 'after'],
    parse: (id, f): KeysRequest =>
      compact({ id, op: Op.keys, prefix: f.optString('prefix'), fork: f.optString('fork'), limit: f.optInteger('limit'), after: f.optString('after') }),
  },
  history: {
    fields: ['key', 'fork', 'limit', 'before', 'values', 'patches'],
    parse: (id, f): HistoryRequest =>
      compact({
        id,
        op: Op.history,
        key: f.string('key'),
        fork: f.optString('fork'),
        limit: f.optInteger('limit'),
        before: f.optString('before'),
        values: f.optBoolean('values'),
        patches: f.optBoolean('patches'),
      }),
  },
  info: {
    fields: ['key', 'fork'],
    parse: (id, f): InfoRequest => compact({ id, op: Op.info, key: f.string('key'), fork: f.optString('fork') }),
  },
  diff: {
    fields: ['key', 'from', 'to'],
    parse: (id, f): DiffRequest => compact({ id, op: Op.diff, key: f.string('key'), from: f.side('from'), to: f.side('to') }),
  },
  revert: {
    fields: ['key', 'fork', ...SELECTOR_FIELDS, ...META_FIELDS],
    parse: (id, f): RevertRequest => {
      const selector = f.selector()
      if (Object.keys(selector).length === 0) throw invalid('revision', 'revert needs one of revision, index or at')
      return compact({ id, op: Op.revert, key: f.string('key'), fork: f.optString('fork'), ...selector, ...f.meta() })
    },
  },
  fork: {
    fields: ['key', 'prefix', 'from', 'to', ...SELECTOR_FIELDS, ...META_FIELDS],
    parse: (id, f): ForkRequest => {
      const target = f.target()
      const selector = f.selector()
      if (target.prefix !== undefined && (selector.revision !== undefined || selector.index !== undefined)) {
        throw invalid(selector.revision !== undefined ? 'revision' : 'index', 'a prefix fork selects its revision by `at` only')
      }
      return compact({ id, op: Op.fork, ...target, from: f.optString('from'), to: f.string('to'), ...selector, ...f.meta() })
    },
  },
  merge: {
    fields: ['key', 'prefix', 'from', 'into', 'strategy', ...META_FIELDS],
    parse: (id, f): MergeRequest =>
      compact({ id, op: Op.merge, ...f.target(), from: f.string('from'), into: f.optString('into'), strategy: f.strategy(), ...f.meta() }),
  },
  watch: {
    fields: ['key', 'prefix', 'fork', 'after', 'since'],
    parse: (id, f): WatchRequest => {
      const after = f.optString('after')
      if (after !== undefined) parseCursor(after)
      const since = f.optNumber('since')
      if (after !== undefined && since !== undefined) throw invalid('since', 'give at most one of after, since')
      return compact({ id, op: Op.watch, ...f.target(), fork: f.optString('fork'), after, since })
    },
  },
  unwatch: {
    fields: ['watch'],
    parse: (id, f): UnwatchRequest => {
      const watch = f.present('watch')
      if (!isRequestId(watch)) throw invalid('watch', 'watch must be the id of a watch request')
      return { id, op: Op.unwatch, watch }
    },
  },
  members: { fields: [], parse: (id): MembersRequest => ({ id, op: Op.members }) },
  ping: { fields: [], parse: (id): PingRequest => ({ id, op: Op.ping }) },
}

/** Typed reads of a frame's fields, each throwing INVALID_ARGUMENT naming the field. */
class Fields {
  readonly #frame: Frame
  /** Names fields of a nested map in errors: `from.` */
  readonly #path: string

  constructor(frame: Frame, path = '') {
    this.#frame = frame
    this.#path = path
  }

  /** A required field, of any type (nil included). */
  present(name: string): unknown {
    if (!Object.hasOwn(this.#frame, name)) throw this.#invalid(name, `${name} is required`)
    return this.#frame[name]
  }

  string(name: string): string {
    const value = this.#frame[name]
    if (typeof value !== 'string') throw this.#invalid(name, `${name} must be a string`)
    return value
  }

  optString(name: string): string | undefined {
    return this.#absent(name) ? undefined : this.string(name)
  }

  optInteger(name: string): number | undefined {
    if (this.#absent(name)) return undefined
    const value = this.#frame[name]
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw this.#invalid(name, `${name} must be an integer`)
    return value
  }

  optNumber(name: string): number | undefined {
    if (this.#absent(name)) return undefined
    const value = this.#frame[name]
    if (typeof value !== 'number' || !Number.isFinite(value)) throw this.#invalid(name, `${name} must be a finite number`)
    return value
  }

  optBoolean(name: string): boolean | undefined {
    if (this.#absent(name)) return undefined
    const value = this.#frame[name]
    if (typeof value !== 'boolean') throw this.#invalid(name, `${name} must be a boolean`)
    return value
  }

  /** Absent: no condition; nil: the fork must not exist; a string: its head revision id. */
  ifHead(): string | null | undefined {
    if (!Object.hasOwn(this.#frame, 'ifHead')) return undefined
    const value = this.#frame.ifHead
    if (value !== null && typeof value !== 'string') throw this.#invalid('ifHead', 'ifHead must be a revision id or nil')
    return value
  }

  selector(): Selector {
    const selector = compact({ revision: this.optString('revision'), index: this.optInteger('index'), at: this.optNumber('at') })
    if (Object.keys(selector).length > 1) throw this.#invalid('revision', 'give at most one of revision, index, at')
    return selector
  }

  meta(): WriteMeta {
    const requestId = this.optString('requestId')
    if (requestId !== undefined && (requestId.length < 1 || requestId.length > MessageLimits.idempotencyKeyChars)) {
      throw this.#invalid('requestId', `requestId must be 1..${MessageLimits.idempotencyKeyChars} chars`)
    }
    return compact({ author: this.optString('author'), message: this.optString('message'), requestId })
  }

  target(): Target {
    const key = this.optString('key')
    const prefix = this.optString('prefix')
    if ((key === undefined) === (prefix === undefined)) throw this.#invalid('key', 'give exactly one of key, prefix')
    return key !== undefined ? { key } : { prefix: prefix! }
  }

  strategy(): MergeStrategy | undefined {
    const strategy = this.optString('strategy')
    if (strategy !== undefined && !Object.hasOwn(MergeStrategy, strategy)) {
      throw this.#invalid('strategy', `strategy must be one of ${Object.keys(MergeStrategy).join(', ')}`)
    }
    return strategy as MergeStrategy | undefined
  }

  side(name: 'from' | 'to'): DiffSide {
    const value = this.present(name)
    if (!isMap(value)) throw this.#invalid(name, `${name} must be a map of fork, revision, index, at`)
    for (const field of Object.keys(value)) {
      if (!['fork', ...SELECTOR_FIELDS].includes(field)) throw invalid(`${name}.${field}`, `unknown field ${name}.${field.slice(0, 64)}`)
    }
    const side = new Fields(value, `${name}.`)
    return compact({ fork: side.optString('fork'), ...side.selector() })
  }

  #invalid(name: string, message: string): WeftError {
    return invalid(this.#path + name, this.#path ? `${this.#path.slice(0, -1)}: ${message}` : message)
  }

  #absent(name: string): boolean {
    return !Object.hasOwn(this.#frame, name) || this.#frame[name] === undefined || this.#frame[name] === null
  }
}

function checkFields(frame: Frame, allowed: readonly string[]): void {
  for (const field of Object.keys(frame)) {
    if (!allowed.includes(field)) throw invalid(field, `unknown field ${JSON.stringify(field.slice(0, 64))} for op ${String(frame.op)}`)
  }
}

function invalid(field: string, message: string): WeftError {
  return new WeftError(ErrorCode.INVALID_ARGUMENT, message, { field })
}

function isMap(value: unknown): value is Frame {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

function describe(value: unknown): string {
  if (value === null) return 'nil'
  if (Array.isArray(value)) return 'an array'
  if (value instanceof Uint8Array) return 'bytes'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** A copy without the fields that are undefined (msgpackr would send them as an extension). */
function compact<T extends object>(value: T): T {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = v
  return out as T
}

/** The error frame for any failure: WeftErrors keep their code; anything else is INTERNAL. */
export function errorBody(err: unknown): ErrorBody {
  if (err instanceof WeftError) {
    return { code: err.code, message: err.message, ...(err.details !== undefined && { details: err.details }) }
  }
  return { code: ErrorCode.INTERNAL, message: 'internal error' }
}

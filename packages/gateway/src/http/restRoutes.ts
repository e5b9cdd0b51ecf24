// The versioned REST API under /v1 (docs/HTTP.md): one route per node
// operation, JSON in and out. Each request is routed, authorized, its body read
// (bounded) and checked with the protocol's own validation (parseRequest), and
// only then sent to the backend.
import { ErrorCode, WeftError } from '@weft/core'
import { parseRequest } from '@weft/protocol'
import { Access } from '../auth/Authorizer.ts'
import type { HttpContext } from './HttpContext.ts'
import type { HttpExchange } from './HttpExchange.ts'
import { splitKeyPath } from './paths.ts'
import { MethodNotAllowed, notFound } from './routeErrors.ts'
import {
  QueryKind,
  type QuerySpec,
  ifHeadFromHeaders,
  mergeParams,
  readBodyFields,
  readQuery,
  requestIdFromHeaders,
} from './restParams.ts'
import { serveWatch } from './serveWatch.ts'

const META = ['author', 'message', 'requestId'] as const
const SELECTOR_QUERY = { revision: QueryKind.string, index: QueryKind.integer, at: QueryKind.time } as const

interface OpRoute {
  readonly op: string
  readonly access: Access
  readonly query?: QuerySpec
  /** Fields the JSON body may carry; no body is read without it. */
  readonly body?: readonly string[]
  /** Honours If-Match / If-None-Match as `ifHead`. */
  readonly ifHead?: boolean
  /** A write: honours Idempotency-Key as `requestId`. */
  readonly write?: boolean
  /** Turns the query's fields into the op's params (diff). */
  readonly shape?: (params: Record<string, unknown>) => Record<string, unknown>
}

type MethodTable = Readonly<Record<string, OpRoute>>

/** `/v1/keys/{key}` and `/v1/keys/{key}/-/{sub}`, by sub-resource ('' for the key itself) and method. */
const KEY_ROUTES: Readonly<Record<string, MethodTable>> = {
  '': {
    GET: { op: 'get', access: Access.read, query: { fork: QueryKind.string, ...SELECTOR_QUERY } },
    PUT: { op: 'set', access: Access.write, query: { fork: QueryKind.string }, body: ['value', 'fork', 'ifHead', ...META], ifHead: true, write: true },
    DELETE: {
      op: 'delete',
      access: Access.write,
      query: { fork: QueryKind.string, author: QueryKind.string, message: QueryKind.string, requestId: QueryKind.string },
      body: ['fork', 'ifHead', ...META],
      ifHead: true,
      write: true,
    },
  },
  history: {
    GET: {
      op: 'history',
      access: Access.read,
      query: { fork: QueryKind.string, limit: QueryKind.integer, before: QueryKind.string, values: QueryKind.boolean, patches: QueryKind.boolean },
    },
  },
  info: { GET: { op: 'info', access: Access.read, query: { fork: QueryKind.string } } },
  diff: {
    GET: {
      op: 'diff',
      access: Access.read,
      query: { from: QueryKind.selector, to: QueryKind.selector, fromFork: QueryKind.string, toFork: QueryKind.string },
      shape: ({ from, to, fromFork, toFork }) => ({
        from: { ...(from as object | undefined), ...(fromFork !== undefined && { fork: fromFork }) },
        to: { ...(to as object | undefined), ...(toFork !== undefined && { fork: toFork }) },
      }),
    },
  },
  revert: { POST: { op: 'revert', access: Access.write, query: { fork: QueryKind.string }, body: ['fork', 'revision', 'index', 'at', ...META], write: true } },
  fork: { POST: { op: 'fork', access: Access.write, body: ['to', 'from', 'revision', 'index', 'at', ...META], write: true } },
  merge: { POST: { op: 'merge', access: Access.write, body: ['from', 'into', 'strategy', ...META], write: true } },
}

/** `/v1/prefixes/{prefix}/-/{sub}`: the write needs a grant on the whole prefix. */
const PREFIX_ROUTES: Readonly<Record<string, MethodTable>> = {
  fork: { POST: { op: 'fork', access: Access.write, body: ['to', 'from', 'at', ...META], write: true } },
  merge: { POST: { op: 'merge', access: Access.write, body: ['from', 'into', 'strategy', ...META], write: true } },
}

const KEYS_LIST: OpRoute = {
  op: 'keys',
  access: Access.read,
  query: { prefix: QueryKind.string, fork: QueryKind.string, limit: QueryKind.integer, after: QueryKind.string },
}

/** Answers a request whose path starts with `/v1/` (or is `/v1`). */
export async function serveRest(ctx: HttpContext, exchange: HttpExchange): Promise<void> {
  const rest = exchange.path.slice('/v1'.length)
  if (rest === '/keys') return runOp(ctx, exchange, pick(exchange, { GET: KEYS_LIST }), (query) => (query.prefix as string | undefined) ?? '')
  if (rest.startsWith('/keys/')) {
    const { name, sub } = splitKeyPath(rest.slice('/keys/'.length), ErrorCode.INVALID_KEY)
    const subName = sub?.join('/') ?? ''
    if ((sub !== undefined && subName === '') || !Object.hasOwn(KEY_ROUTES, subName)) return notFound(exchange)
    const route = pick(exchange, KEY_ROUTES[subName]!)
    if (name === '') throw new WeftError(ErrorCode.INVALID_KEY, 'the key is empty')
    return runOp(ctx, exchange, route, () => name, { key: name })
  }
  if (rest.startsWith('/prefixes/')) {
    const { name, sub } = splitKeyPath(rest.slice('/prefixes/'.length), ErrorCode.INVALID_KEY)
    const subName = sub?.join('/') ?? ''
    if (sub === undefined || !Object.hasOwn(PREFIX_ROUTES, subName)) return notFound(exchange)
    return runOp(ctx, exchange, pick(exchange, PREFIX_ROUTES[subName]!), () => name, { prefix: name })
  }
  if (rest === '/watch') {
    allowOnly(exchange, ['GET'])
    return serveWatch(ctx, exchange)
  }
  if (rest === '/cluster/members') {
    allowOnly(exchange, ['GET', 'HEAD'])
    readQuery(exchange, {})
    ctx.authorize(exchange, Access.read, '')
    exchange.sendJson(200, { members: ctx.backend.members() })
    return
  }
  if (rest === '/ping') {
    allowOnly(exchange, ['GET', 'HEAD'])
    readQuery(exchange, {})
    // A valid token is enough (as over WebSocket): ping tells only which node answered.
    const principal = ctx.authorize(exchange, undefined, '')
    exchange.sendJson(200, await ctx.call(exchange, principal, 'ping', {}))
    return
  }
  return notFound(exchange)
}

function allowOnly(exchange: HttpExchange, methods: readonly string[]): void {
  if (!methods.includes(exchange.method)) throw new MethodNotAllowed(exchange.method, methods)
}

/** The route for the request's method (HEAD reads like GET); 405 with Allow otherwise. */
function pick(exchange: HttpExchange, table: MethodTable): OpRoute {
  const method = exchange.method === 'HEAD' ? 'GET' : exchange.method
  const route = Object.hasOwn(table, method) ? table[method] : undefined
  if (route) return route
  const allow = Object.keys(table).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]))
  throw new MethodNotAllowed(exchange.method, allow)
}

async function runOp(
  ctx: HttpContext,
  exchange: HttpExchange,
  route: OpRoute,
  scopeOf: (query: Record<string, unknown>) => string,
  target: Record<string, unknown> = {},
): Promise<void> {
  const query = readQuery(exchange, route.query ?? {})
  const principal = ctx.authorize(exchange, route.access, scopeOf(query))
  let params: Record<string, unknown> = { ...target }
  mergeParams(params, route.shape ? route.shape(query) : query, 'query')
  if (route.body) mergeParams(params, await readBodyFields(exchange, route.body), 'body')
  if (route.ifHead) mergeParams(params, ifHeadFromHeaders(exchange), 'If-Match header')
  if (route.write) mergeParams(params, requestIdFromHeaders(exchange), 'Idempotency-Key header')
  params = validated(route.op, params)
  const result = await ctx.call(exchange, principal, route.op, params)
  exchange.sendJson(200, result, etagOf(result))
}

/** The params as the node will read them: checked by the protocol's parser, normalized (nil options dropped). */
function validated(op: string, params: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, op: _op, ...checked } = parseRequest({ ...params, id: 0, op }) as unknown as Record<string, unknown>
  return checked
}

/** `ETag: "<revision id>"` for answers about one revision, so it can go back as If-Match. */
export function etagOf(result: unknown): Record<string, string> {
  if (result === null || typeof result !== 'object') return {}
  const { revision, head } = result as { revision?: { id?: unknown }; head?: { id?: unknown } }
  const id = revision?.id ?? head?.id
  return typeof id === 'string' && /^[\x21\x23-\x7e]+$/.test(id) ? { ETag: `"${id}"` } : {}
}

// Routes with crush's paths and answers (github.com/queer/crush, the Elixir
// store, lib/crush_web/router.ex and controllers/api_controller.ex at
// e96614a), so crush's scripts keep working against weft. Differences, and
// why, are in docs/HTTP.md#crush-compatible-routes. In short:
// - values are bytes: PUT stores the raw body (JSON only with a JSON
//   Content-Type), GET answers base64, like crush;
// - crush's fork `default` is weft's `main`;
// - merge is weft's three-way CRDT merge, not crush's overwrite;
// - history is weft's (deletes keep it), so GET's revisions are weft revisions.
import { ErrorCode, WeftError, isWeftError } from '@weft/core'
import { errorBody, httpStatusOf } from '@weft/protocol'
import { once } from 'node:events'
import { Access, type Principal } from '../auth/Authorizer.ts'
import type { HttpContext } from './HttpContext.ts'
import { JSON_TYPE, type HttpExchange, errorHeaders } from './HttpExchange.ts'
import { fromJson, toJson } from './jsonValue.ts'
import { decodeSegment } from './paths.ts'
import { MethodNotAllowed, notFound } from './routeErrors.ts'

export const CRUSH_DEFAULT_FORK = 'default'
const MAIN_FORK = 'main'
/** History entries (with values) read per backend call while streaming `?revisions=`. */
const HISTORY_PAGE = 50
/** Keys read per backend call while streaming `/keys`. */
const KEYS_PAGE = 1000
const OK = '{"status":"ok"}'

interface HistoryEntry {
  readonly id: string
  readonly value?: unknown
  readonly deleted?: boolean
}

/** Answers a request outside /v1 (and not /healthz, /metrics): crush's routes, or 404. */
export async function serveCrush(ctx: HttpContext, exchange: HttpExchange): Promise<void> {
  const method = exchange.method === 'HEAD' ? 'GET' : exchange.method
  if (exchange.path === '/keys' && method === 'GET') return listKeys(ctx, exchange)
  const raw = exchange.path.slice(1).split('/')
  if (!exchange.path.startsWith('/') || raw.some((segment) => segment === '') || raw.length > 4) return notFound(exchange)
  try {
    const [key, a, b, c] = raw.map((segment) => decodeSegment(segment, ErrorCode.INVALID_KEY)) as [string, ...(string | undefined)[]]
    if (raw.length === 1 || (raw.length === 2 && !(a === 'info' && method === 'GET'))) {
      const fork = weftFork(a ?? CRUSH_DEFAULT_FORK)
      if (method === 'GET') return await getKey(ctx, exchange, key, fork)
      if (method === 'PUT') return await setKey(ctx, exchange, key, fork)
      if (method === 'DELETE') return await deleteKey(ctx, exchange, key, fork)
      throw new MethodNotAllowed(exchange.method, ['GET', 'HEAD', 'PUT', 'DELETE'])
    }
    if (raw.length === 2 || (raw.length === 3 && b === 'info')) {
      if (method !== 'GET') throw new MethodNotAllowed(exchange.method, ['GET', 'HEAD'])
      return await keyInfo(ctx, exchange, key, weftFork(raw.length === 2 ? CRUSH_DEFAULT_FORK : a!))
    }
    if (raw.length === 4 && (b === 'fork' || b === 'merge')) {
      if (method !== 'POST') throw new MethodNotAllowed(exchange.method, ['POST'])
      if (b === 'fork') return await forkKey(ctx, exchange, key, weftFork(a!), weftFork(c!))
      return await mergeKey(ctx, exchange, key, weftFork(a!), weftFork(c!))
    }
  } catch (err) {
    return sendCrushError(exchange, err)
  }
  return notFound(exchange)
}

/** crush's default fork is weft's main. */
export function weftFork(crushFork: string): string {
  return crushFork === CRUSH_DEFAULT_FORK ? MAIN_FORK : crushFork
}

function crushForkName(fork: string): string {
  return fork === MAIN_FORK ? CRUSH_DEFAULT_FORK : fork
}

/** GET /:key[/:fork]?revisions=N|all&patch=true|false → `[value, revisions]`, or `[]` when absent. */
async function getKey(ctx: HttpContext, exchange: HttpExchange, key: string, fork: string): Promise<void> {
  const principal = ctx.authorize(exchange, Access.read, key)
  const count = crushRevisionCount(exchange.query.get('revisions'))
  const patch = exchange.query.get('patch') === 'true'
  if (count === 0) {
    let result: { value?: unknown }
    try {
      result = (await ctx.call(exchange, principal, 'get', { key, fork })) as { value?: unknown }
    } catch (err) {
      if (isAbsent(err)) return exchange.sendText(200, '[]', { 'Content-Type': JSON_TYPE })
      throw err
    }
    return exchange.sendText(200, JSON.stringify([base64(crushBytes(result.value)), []]), { 'Content-Type': JSON_TYPE })
  }
  await streamJson(ctx, exchange, historyChunks(ctx, exchange, principal, key, fork, count, patch))
}

/** crush reads `revisions` as "all", or the integer it starts with; anything else is 0. */
export function crushRevisionCount(raw: string | null): number {
  if (raw === 'all') return Number.POSITIVE_INFINITY
  const match = /^[+-]?[0-9]+/.exec(raw ?? '')
  if (!match) return 0
  const count = Number(match[0])
  return Number.isFinite(count) && count > 0 ? count : 0
}

/**
 * The value, then each earlier revision newest first: its value (patch=true)
 * or crush's patch from the newer one to it (patch=false). Read page by page.
 */
async function* historyChunks(
  ctx: HttpContext,
  exchange: HttpExchange,
  principal: Principal,
  key: string,
  fork: string,
  count: number,
  patch: boolean,
): AsyncGenerator<string> {
  let before: string | undefined
  let newer: Uint8Array | undefined
  let emitted = 0
  let deadline = exchange.deadline
  while (true) {
    const want = newer === undefined ? count + 1 : count - emitted
    const params = { key, fork, values: true, limit: Math.min(HISTORY_PAGE, want), ...(before !== undefined && { before }) }
    let page: { revisions: readonly HistoryEntry[]; next?: string }
    try {
      page = (await ctx.call(exchange, principal, 'history', params, deadline)) as typeof page
    } catch (err) {
      if (newer === undefined && isAbsent(err)) {
        yield '[]'
        return
      }
      throw err
    }
    deadline = Date.now() + ctx.limits.requestTimeoutMs
    let entries = page.revisions
    let chunk = ''
    if (newer === undefined) {
      const head = entries[0]
      if (head === undefined || head.deleted === true) {
        yield '[]'
        return
      }
      newer = crushBytes(head.value)
      chunk = `[${JSON.stringify(base64(newer))},[`
      entries = entries.slice(1)
    }
    for (const entry of entries) {
      if (emitted >= count) break
      const bytes = entry.deleted === true ? new Uint8Array(0) : crushBytes(entry.value)
      chunk += (emitted > 0 ? ',' : '') + JSON.stringify(patch ? base64(bytes) : crushPatch(newer, bytes))
      newer = bytes
      emitted++
    }
    if (emitted >= count || page.next === undefined) {
      yield `${chunk}]]`
      return
    }
    yield chunk
    before = page.next
  }
}

/**
 * crush's patch (Elixir `Differ`) turns the newer value into the older:
 * `[["eq", b64], ["del", b64], ["ins", b64], …]`. This one keeps the common
 * start and end and replaces the middle: a valid, not always minimal, script.
 */
export function crushPatch(newer: Uint8Array, older: Uint8Array): [string, string][] {
  let start = 0
  const shortest = Math.min(newer.length, older.length)
  while (start < shortest && newer[start] === older[start]) start++
  let end = 0
  while (end < shortest - start && newer[newer.length - 1 - end] === older[older.length - 1 - end]) end++
  const ops: [string, string][] = []
  const add = (op: string, bytes: Uint8Array) => {
    if (bytes.length > 0) ops.push([op, base64(bytes)])
  }
  add('eq', newer.subarray(0, start))
  add('del', newer.subarray(start, newer.length - end))
  add('ins', older.subarray(start, older.length - end))
  add('eq', newer.subarray(newer.length - end))
  return ops
}

/** A weft value as crush's bytes: bytes as they are, anything else as its JSON text. */
export function crushBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (value === undefined) return new Uint8Array(0)
  return new TextEncoder().encode(JSON.stringify(toJson(value)))
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/** PUT /:key[/:fork]: the raw body is the value (bytes), or JSON with a JSON Content-Type. */
async function setKey(ctx: HttpContext, exchange: HttpExchange, key: string, fork: string): Promise<void> {
  const principal = ctx.authorize(exchange, Access.write, key)
  const body = await exchange.readBody()
  let value: unknown
  if (isJsonType(exchange.header('content-type'))) {
    try {
      value = fromJson(JSON.parse(body.toString('utf8')))
    } catch (err) {
      if (err instanceof WeftError) throw err
      throw new WeftError(ErrorCode.INVALID_ARGUMENT, `request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`)
    }
  } else {
    value = new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  }
  const result = await ctx.call(exchange, principal, 'set', { key, fork, value, ...requestIdOf(exchange) })
  exchange.sendText(200, OK, { 'Content-Type': JSON_TYPE, ...revisionHeaders(result) })
}

/** DELETE /:key[/:fork]: `{"status":"ok"}`, also when there was nothing to delete (as crush). */
async function deleteKey(ctx: HttpContext, exchange: HttpExchange, key: string, fork: string): Promise<void> {
  const principal = ctx.authorize(exchange, Access.write, key)
  let result: unknown
  try {
    result = await ctx.call(exchange, principal, 'delete', { key, fork, ...requestIdOf(exchange) })
  } catch (err) {
    if (!isAbsent(err)) throw err
  }
  exchange.sendText(200, OK, { 'Content-Type': JSON_TYPE, ...revisionHeaders(result) })
}

/** GET /:key[/:fork]/info → `{key, revision_count}`: the revisions `?revisions=all` would list. */
async function keyInfo(ctx: HttpContext, exchange: HttpExchange, key: string, fork: string): Promise<void> {
  const principal = ctx.authorize(exchange, Access.read, key)
  let count = 0
  try {
    const info = (await ctx.call(exchange, principal, 'info', { key, fork })) as { revisionCount?: number; deleted?: boolean }
    if (info.deleted !== true && typeof info.revisionCount === 'number') count = Math.max(0, info.revisionCount - 1)
  } catch (err) {
    if (!isAbsent(err)) throw err
  }
  exchange.sendText(200, JSON.stringify({ key, revision_count: count }), { 'Content-Type': JSON_TYPE })
}

/** POST /:key/:fork/fork/:target */
async function forkKey(ctx: HttpContext, exchange: HttpExchange, key: string, from: string, to: string): Promise<void> {
  const principal = ctx.authorize(exchange, Access.write, key)
  let result: unknown
  try {
    result = await ctx.call(exchange, principal, 'fork', { key, from, to, ...requestIdOf(exchange) })
  } catch (err) {
    if (isAbsent(err)) return sendCrushError(exchange, err, 'not_found')
    throw err
  }
  exchange.sendText(200, OK, { 'Content-Type': JSON_TYPE, ...revisionHeaders(result) })
}

/** POST /:key/:fork/merge/:target: weft's three-way merge of :fork into :target. */
async function mergeKey(ctx: HttpContext, exchange: HttpExchange, key: string, from: string, into: string): Promise<void> {
  const principal = ctx.authorize(exchange, Access.write, key)
  let result: { conflicts?: readonly unknown[] }
  try {
    result = (await ctx.call(exchange, principal, 'merge', { key, from, into, ...requestIdOf(exchange) })) as typeof result
  } catch (err) {
    if (isAbsent(err)) {
      const missing = isWeftError(err) ? err.details?.fork : undefined
      return sendCrushError(exchange, err, missing === into && missing !== from ? 'target_not_found' : 'source_not_found')
    }
    throw err
  }
  exchange.sendText(200, OK, {
    'Content-Type': JSON_TYPE,
    ...revisionHeaders(result),
    'X-Weft-Conflicts': String(Array.isArray(result.conflicts) ? result.conflicts.length : 0),
  })
}

/** GET /keys?prefix=&fork= → `["default:<key>", …]`, crush's `<fork>:<key>` names, streamed page by page. */
async function listKeys(ctx: HttpContext, exchange: HttpExchange): Promise<void> {
  try {
    const prefix = exchange.query.get('prefix') ?? ''
    const crushFork = exchange.query.get('fork') ?? CRUSH_DEFAULT_FORK
    const principal = ctx.authorize(exchange, Access.read, prefix)
    await streamJson(ctx, exchange, keyChunks(ctx, exchange, principal, prefix, weftFork(crushFork)))
  } catch (err) {
    sendCrushError(exchange, err)
  }
}

async function* keyChunks(ctx: HttpContext, exchange: HttpExchange, principal: Principal, prefix: string, fork: string): AsyncGenerator<string> {
  let after: string | undefined
  let first = true
  let deadline = exchange.deadline
  const label = `${crushForkName(fork)}:`
  while (true) {
    const params = { prefix, fork, limit: KEYS_PAGE, ...(after !== undefined && { after }) }
    const page = (await ctx.call(exchange, principal, 'keys', params, deadline)) as { keys: readonly { key: string }[]; next?: string }
    deadline = Date.now() + ctx.limits.requestTimeoutMs
    let chunk = first ? '[' : ''
    for (const { key } of page.keys) {
      chunk += (first ? '' : ',') + JSON.stringify(label + key)
      first = false
    }
    if (page.next === undefined) {
      yield `${chunk}]`
      return
    }
    yield chunk
    after = page.next
  }
}

/**
 * Sends a JSON document made of chunks. The first chunk is awaited before the
 * status goes out, so a failing first backend call is an ordinary error; a
 * later failure can only cut the stream (the client sees invalid JSON).
 */
async function streamJson(ctx: HttpContext, exchange: HttpExchange, chunks: AsyncGenerator<string>): Promise<void> {
  const { res } = exchange
  const first = await chunks.next()
  res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Cache-Control': 'no-store' })
  try {
    if (!first.done) res.write(first.value)
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      if (res.destroyed) break
      // Waiting for drain bounds what is queued to about one page.
      if (!res.write(next.value)) await Promise.race([once(res, 'drain'), once(res, 'close')])
    }
    res.end()
  } catch (err) {
    ctx.logger.warn({ path: exchange.path.slice(0, 256), code: errorBody(err).code }, 'crush listing cut short')
    res.destroy()
  } finally {
    await chunks.return(undefined)
  }
}

/** crush's error shape, `{status: "error", error}`, plus weft's code and message. */
export function sendCrushError(exchange: HttpExchange, err: unknown, crushError?: string): void {
  if (err instanceof MethodNotAllowed) {
    exchange.sendError(err, 405, { Allow: err.allow.join(', ') })
    return
  }
  const body = errorBody(err)
  if (body.code === ErrorCode.INTERNAL) exchange.logInternal(err)
  const status = crushError === undefined ? httpStatusOf(body.code) : 404
  const text = JSON.stringify({ status: 'error', error: crushError ?? body.code.toLowerCase(), code: body.code, message: body.message })
  exchange.sendText(status, text, { 'Content-Type': JSON_TYPE, ...errorHeaders(body.code) })
}

function isAbsent(err: unknown): boolean {
  return isWeftError(err, ErrorCode.KEY_NOT_FOUND) || isWeftError(err, ErrorCode.FORK_NOT_FOUND)
}

function isJsonType(contentType: string | undefined): boolean {
  const type = contentType?.split(';')[0]?.trim().toLowerCase() ?? ''
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))
}

function requestIdOf(exchange: HttpExchange): { requestId?: string } {
  const key = exchange.header('idempotency-key')
  return key === undefined ? {} : { requestId: key }
}

/** crush's bodies stay as crush had them; the new revision's id rides in headers. */
function revisionHeaders(result: unknown): Record<string, string> {
  const id = (result as { revision?: { id?: unknown } } | undefined)?.revision?.id
  if (typeof id !== 'string' || !/^[\x21\x23-\x7e]+$/.test(id)) return {}
  return { ETag: `"${id}"`, 'X-Weft-Revision': id }
}

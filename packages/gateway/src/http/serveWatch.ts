// GET /v1/watch as Server-Sent Events: each event one `data:` line of JSON with
// `id:` its cursor, so an EventSource that reconnects sends Last-Event-ID and
// resumes without gaps or duplicates. Errors before the stream starts are
// ordinary JSON errors (e.g. 410 CURSOR_EXPIRED); after, an `event: ended`
// (not `error`: EventSource keeps that name for its own connection errors).
// The backend's watch is closed whenever the stream ends, client gone included.
import { ErrorCode, WeftError } from '@weft/core'
import { errorBody, parseRequest } from '@weft/protocol'
import { Access } from '../auth/Authorizer.ts'
import type { WatchHandle } from '../GatewayBackend.ts'
import { type HttpContext, withDeadline } from './HttpContext.ts'
import type { HttpExchange } from './HttpExchange.ts'
import { toJson } from './jsonValue.ts'
import { QueryKind, invalid, parseTime, readQuery } from './restParams.ts'

const WATCH_QUERY = { key: QueryKind.string, prefix: QueryKind.string, fork: QueryKind.string, since: QueryKind.string } as const

/** Query parameters for a token where headers cannot be set (browsers' EventSource): RFC 6750's, and the gateway WebSocket's. */
const TOKEN_PARAMS = ['access_token', 'token']

export async function serveWatch(ctx: HttpContext, exchange: HttpExchange): Promise<void> {
  const query = readQuery(exchange, WATCH_QUERY, TOKEN_PARAMS)
  const key = query.key as string | undefined
  const prefix = query.prefix as string | undefined
  if ((key === undefined) === (prefix === undefined)) throw invalid('key', 'give exactly one of key, prefix')
  const token = exchange.bearerToken() ?? exchange.query.get(TOKEN_PARAMS[0]!) ?? exchange.query.get(TOKEN_PARAMS[1]!) ?? undefined
  const principal = ctx.authorize(exchange, Access.read, key ?? prefix ?? '', token)
  const params: Record<string, unknown> = {
    ...(key !== undefined ? { key } : { prefix }),
    ...(query.fork !== undefined && { fork: query.fork }),
    ...resumePoint(exchange.header('last-event-id'), query.since as string | undefined),
  }
  parseRequest({ ...params, id: 0, op: 'watch' })
  if (ctx.openWatches >= ctx.limits.maxWatches) {
    throw new WeftError(ErrorCode.TOO_MANY_REQUESTS, `too many watches open (${ctx.limits.maxWatches})`)
  }
  await new SseWatch(ctx, exchange).run(params, principal.name)
}

/**
 * Where to resume: Last-Event-ID (what an EventSource sends when it reconnects,
 * newer than the URL's), else `since`: a time (ms or ISO 8601) or a cursor.
 */
export function resumePoint(lastEventId: string | undefined, since: string | undefined): { after?: string; since?: number } {
  const last = lastEventId?.trim()
  if (last !== undefined && last !== '') return { after: last }
  if (since === undefined) return {}
  if (/^[0-9]{1,15}$/.test(since) || /^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(since)) return { since: parseTime('since', since) }
  return { after: since }
}

class SseWatch {
  readonly #ctx: HttpContext
  readonly #exchange: HttpExchange
  /** Chunks produced before the headers went out. */
  #pending: string[] = []
  #pendingBytes = 0
  #started = false
  #endAfterStart = false
  #closed = false
  #handle: WatchHandle | undefined
  #keepAlive: NodeJS.Timeout | undefined

  constructor(ctx: HttpContext, exchange: HttpExchange) {
    this.#ctx = ctx
    this.#exchange = exchange
  }

  async run(params: Record<string, unknown>, principal: string): Promise<void> {
    const { res } = this.#exchange
    this.#ctx.openWatches++
    res.on('close', () => this.#close())
    let handle: WatchHandle
    const callbacks = { onEvent: (event: Record<string, unknown>) => this.#event(event), onEnd: (error: WeftError) => this.#ended(error) }
    // A backend that throws instead of rejecting still lands in the catch below.
    const starting = (async () => this.#ctx.backend.watch(params, callbacks, { deadline: this.#exchange.deadline, principal }))()
    try {
      handle = await withDeadline(starting, this.#exchange.deadline)
    } catch (err) {
      // A watch that starts after we gave up must not stay open.
      starting.then((late) => late.close(), () => {})
      this.#close()
      throw err
    }
    this.#handle = handle
    if (this.#closed) {
      closeQuietly(handle)
      return
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    })
    this.#started = true
    // The gateway's handle knows where the stream starts: a client can resume from there with no event seen.
    const start = (handle as { cursor?: unknown }).cursor
    if (typeof start === 'string' && start !== '') {
      const cursor = start.replace(/[\r\n]/g, '')
      this.#write(`id: ${cursor}\nevent: ready\ndata: ${JSON.stringify({ cursor })}\n\n`)
    } else {
      this.#write(`event: ready\ndata: {}\n\n`)
    }
    for (const chunk of this.#pending.splice(0)) this.#write(chunk)
    this.#pendingBytes = 0
    if (this.#endAfterStart) return this.#finish()
    this.#keepAlive = setInterval(() => this.#write(': keepalive\n\n'), this.#ctx.limits.keepAliveMs)
    this.#keepAlive.unref()
  }

  #event(event: Record<string, unknown>): void {
    let chunk: string
    try {
      const cursor = typeof event.cursor === 'string' ? event.cursor.replace(/[\r\n]/g, '') : undefined
      chunk = `${cursor !== undefined ? `id: ${cursor}\n` : ''}data: ${JSON.stringify(toJson(event))}\n\n`
    } catch (err) {
      // An event we cannot send must not be skipped silently: end the stream, the client resumes.
      this.#exchange.logInternal(err)
      this.#ended(new WeftError(ErrorCode.INTERNAL, 'internal error'))
      return
    }
    this.#send(chunk)
  }

  #ended(error: WeftError): void {
    this.#send(`event: ended\ndata: ${JSON.stringify({ error: toJson(errorBody(error)) })}\n\n`)
    if (this.#started) this.#finish()
    else this.#endAfterStart = true
  }

  #send(chunk: string): void {
    if (this.#closed) return
    if (this.#started) {
      this.#write(chunk)
      return
    }
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.length
    if (this.#pendingBytes > this.#ctx.limits.maxBufferedBytes) this.#slowConsumer()
  }

  #write(chunk: string): void {
    const { res } = this.#exchange
    if (this.#closed || res.destroyed) return
    res.write(chunk)
    if (res.writableLength > this.#ctx.limits.maxBufferedBytes) this.#slowConsumer()
  }

  #slowConsumer(): void {
    this.#ctx.logger.warn({ path: this.#exchange.path.slice(0, 256) }, 'watch stream cut: the client reads too slowly (it may resume with Last-Event-ID)')
    this.#exchange.res.destroy()
    this.#close()
  }

  #finish(): void {
    this.#exchange.res.end()
    this.#close()
  }

  #close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#pending = []
    clearInterval(this.#keepAlive)
    this.#ctx.openWatches--
    if (this.#handle) closeQuietly(this.#handle)
  }
}

function closeQuietly(handle: WatchHandle): void {
  try {
    handle.close()
  } catch {
    // Closing is best effort; the watch is gone from our side either way.
  }
}

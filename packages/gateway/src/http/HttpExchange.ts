// One HTTP request and its response: the raw path and query, a body read
// within limits, and JSON answers. Every error leaves as
// `{error: {code, message, details?}}` with the status the protocol maps its
// code to (packages/protocol/src/httpStatus.ts).
import { ErrorCode, WeftError } from '@weft/core'
import { errorBody, httpStatusOf } from '@weft/protocol'
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { HttpLogger } from './HttpContext.ts'
import { setOwn, toJson } from './jsonValue.ts'

export interface HttpLimits {
  /** Largest request body read; past it the request gets 413 FRAME_TOO_LARGE and the connection closes. */
  readonly maxBodyBytes: number
  /** Time from a request's arrival to its answer; becomes the backend's deadline. */
  readonly requestTimeoutMs: number
  /** Requests (not watches) handled at once by this handler; more get 429. */
  readonly maxInflightRequests: number
  /** Server-sent-event watches open at once; more get 429. */
  readonly maxWatches: number
  /** Bytes a streamed response (watch, crush listings) may have queued unread before it is cut off. */
  readonly maxBufferedBytes: number
  /** Interval of the SSE comment lines that keep idle watches (and proxies) alive. */
  readonly keepAliveMs: number
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxBodyBytes: 2 * 1024 * 1024,
  requestTimeoutMs: 10_000,
  maxInflightRequests: 4096,
  maxWatches: 1024,
  maxBufferedBytes: 16 * 1024 * 1024,
  keepAliveMs: 15_000,
}

export const JSON_TYPE = 'application/json; charset=utf-8'

/** Codes worth retrying get a Retry-After hint. */
const RETRY_LATER: ReadonlySet<string> = new Set([ErrorCode.TOO_MANY_REQUESTS, ErrorCode.UNAVAILABLE, ErrorCode.CLOSED, ErrorCode.STORAGE_FAILED])

export class HttpExchange {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly method: string
  /** The path as sent, not decoded and not normalized. */
  readonly path: string
  readonly query: URLSearchParams
  /** Absolute time (ms) by which the request must be answered. */
  readonly deadline: number
  readonly #limits: HttpLimits
  readonly #logger: HttpLogger

  constructor(req: IncomingMessage, res: ServerResponse, limits: HttpLimits, logger: HttpLogger, now = Date.now()) {
    this.req = req
    this.res = res
    this.#limits = limits
    this.#logger = logger
    this.method = req.method ?? 'GET'
    const target = splitTarget(req.url ?? '/')
    this.path = target.path
    this.query = new URLSearchParams(target.search)
    this.deadline = now + limits.requestTimeoutMs
  }

  /** One request header's value (the first if repeated). */
  header(name: string): string | undefined {
    const value = this.req.headers[name.toLowerCase()]
    return Array.isArray(value) ? value[0] : value
  }

  /** Whether the request carries a body (that may still be arriving). */
  hasBody(): boolean {
    const length = this.header('content-length')
    return this.header('transfer-encoding') !== undefined || (length !== undefined && length !== '0')
  }

  /** The token of `Authorization: Bearer <token>`, if that is what was sent. */
  bearerToken(): string | undefined {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(this.header('authorization') ?? '')
    return match?.[1]
  }

  /**
   * The whole body, refused (413 FRAME_TOO_LARGE) as soon as it passes the limit:
   * from Content-Length before reading anything, else while reading; what was
   * read is dropped and the connection closed after the answer.
   */
  async readBody(): Promise<Buffer> {
    const max = this.#limits.maxBodyBytes
    const tooLarge = () => {
      this.res.setHeader('Connection', 'close')
      return new WeftError(ErrorCode.FRAME_TOO_LARGE, `request body over ${max} bytes`, { limit: max })
    }
    const declared = this.header('content-length')
    if (declared !== undefined && Number(declared) > max) throw tooLarge()
    const req = this.req
    if (req.readableEnded) return Buffer.alloc(0)
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = []
      let size = 0
      const timer = setTimeout(() => fail(new WeftError(ErrorCode.TIMEOUT, 'request body not received in time')), Math.max(0, this.deadline - Date.now()))
      const cleanup = () => {
        clearTimeout(timer)
        req.off('data', onData)
        req.off('end', onEnd)
        req.off('error', onError)
        req.off('close', onClose)
      }
      const fail = (err: WeftError) => {
        cleanup()
        chunks.length = 0
        req.pause()
        this.res.setHeader('Connection', 'close')
        reject(err)
      }
      const onData = (chunk: Buffer) => {
        size += chunk.length
        if (size > max) fail(tooLarge())
        else chunks.push(chunk)
      }
      const onEnd = () => {
        cleanup()
        resolve(Buffer.concat(chunks, size))
      }
      const onError = () => fail(new WeftError(ErrorCode.INVALID_ARGUMENT, 'request body could not be read'))
      const onClose = () => {
        if (!req.complete) fail(new WeftError(ErrorCode.INVALID_ARGUMENT, 'request body cut short'))
      }
      req.on('data', onData)
      req.on('end', onEnd)
      req.on('error', onError)
      req.on('close', onClose)
    })
  }

  /** The body as a JSON object; an empty body is `{}`. Anything else is INVALID_ARGUMENT. */
  async readJsonObject(): Promise<Record<string, unknown>> {
    const body = await this.readBody()
    if (body.length === 0) return {}
    let parsed: unknown
    try {
      parsed = JSON.parse(body.toString('utf8'))
    } catch (err) {
      throw new WeftError(ErrorCode.INVALID_ARGUMENT, `request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`)
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new WeftError(ErrorCode.INVALID_ARGUMENT, 'request body must be a JSON object')
    }
    return parsed as Record<string, unknown>
  }

  /** A JSON answer; bytes anywhere in `body` become `{$bytes}`. */
  sendJson(status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
    this.sendText(status, JSON.stringify(toJson(body)), { 'Content-Type': JSON_TYPE, ...headers })
  }

  sendText(status: number, text: string, headers: OutgoingHttpHeaders): void {
    const res = this.res
    if (res.headersSent) {
      // A stream already under way cannot change its status: cut it, so the client sees it incomplete.
      res.destroy()
      return
    }
    // A body we did not read (or not all of) must not be parsed as the next request: close after answering.
    if (!this.req.complete && this.hasBody()) res.setHeader('Connection', 'close')
    res.writeHead(status, { 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text), ...headers })
    res.end(text)
  }

  /** The weft error body and status for any failure (anything not a WeftError is INTERNAL). */
  sendError(err: unknown, status?: number, headers: OutgoingHttpHeaders = {}): void {
    const body = errorBody(err)
    if (body.code === ErrorCode.INTERNAL) this.logInternal(err)
    this.sendJson(status ?? httpStatusOf(body.code), { error: body }, { ...errorHeaders(body.code), ...headers })
  }

  /** An INTERNAL error's cause goes to the log only; the client hears "internal error". */
  logInternal(err: unknown): void {
    const cause = err instanceof Error ? (err.stack ?? err.message) : String(err)
    this.#logger.error({ method: this.method, path: this.path.slice(0, 256), err: cause }, 'http request failed')
  }
}

/** Headers that go with an error code's answer. */
export function errorHeaders(code: string): OutgoingHttpHeaders {
  if (code === ErrorCode.UNAUTHORIZED) return { 'WWW-Authenticate': 'Bearer realm="weft"' }
  if (RETRY_LATER.has(code)) return { 'Retry-After': '1' }
  return {}
}

/** Path and query of a request target, origin-form or absolute-form (`http://host/path?q`). */
export function splitTarget(url: string): { path: string; search: string } {
  let target = url
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target)
  if (scheme) target = target.slice(scheme[0].length) || '/'
  const hash = target.indexOf('#')
  if (hash >= 0) target = target.slice(0, hash)
  const question = target.indexOf('?')
  return question < 0 ? { path: target, search: '' } : { path: target.slice(0, question), search: target.slice(question + 1) }
}

/** A copy of `fields` without the undefined ones. */
export function compact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [field, value] of Object.entries(fields)) if (value !== undefined) setOwn(out, field, value)
  return out
}

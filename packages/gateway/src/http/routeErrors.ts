// The two answers about routes rather than operations. The error list has no
// "no such route" code: both use UNKNOWN_OP (no such operation), with 404 and
// 405 instead of its mapped 400, the only statuses not taken from the map.
import { ErrorCode, WeftError } from '@weft/core'
import type { HttpExchange } from './HttpExchange.ts'

export class MethodNotAllowed extends WeftError {
  readonly allow: readonly string[]

  constructor(method: string, allow: readonly string[]) {
    super(ErrorCode.UNKNOWN_OP, `method ${method.slice(0, 16)} not allowed here (allowed: ${allow.join(', ')})`, { allow })
    this.allow = allow
  }
}

export function notFound(exchange: HttpExchange): void {
  exchange.sendError(new WeftError(ErrorCode.UNKNOWN_OP, `no route for ${exchange.method.slice(0, 16)} ${exchange.path.slice(0, 256)}`), 404)
}

// Keys contain '/', so a key's path is "everything up to the first segment that
// is exactly `-`": `/v1/keys/deployments/api/-/history`. Segments are split on
// the raw path, then percent-decoded, so `%2F` and `%2D` are ordinary
// characters of a key and never separators.
import { ErrorCode, WeftError } from '@weft/core'

/** The segment that separates a key (or prefix) from the sub-resource after it. */
export const SUBRESOURCE_MARK = '-'

export interface KeyPath {
  /** Decoded key or prefix (may be empty: the caller decides whether that is allowed). */
  readonly name: string
  /** Raw segments after the `-` mark; undefined when there is no mark. */
  readonly sub: readonly string[] | undefined
}

/** Splits raw `rest` (what follows `/v1/keys/` or `/v1/prefixes/`) into a key and a sub-resource. */
export function splitKeyPath(rest: string, code: ErrorCode): KeyPath {
  if (rest === SUBRESOURCE_MARK || rest.startsWith(`${SUBRESOURCE_MARK}/`)) {
    return { name: '', sub: rest.slice(SUBRESOURCE_MARK.length + 1).split('/') }
  }
  const marker = `/${SUBRESOURCE_MARK}/`
  let at = rest.indexOf(marker)
  if (at < 0 && rest.endsWith(`/${SUBRESOURCE_MARK}`)) at = rest.length - SUBRESOURCE_MARK.length - 1
  if (at < 0) return { name: decodeSegment(rest, code), sub: undefined }
  return { name: decodeSegment(rest.slice(0, at), code), sub: rest.slice(at + marker.length).split('/') }
}

/** Percent-decodes a path part; malformed escapes are `code` (INVALID_KEY, INVALID_FORK, …). */
export function decodeSegment(raw: string, code: ErrorCode = ErrorCode.INVALID_ARGUMENT): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new WeftError(code, `bad percent-encoding in path: ${JSON.stringify(raw.slice(0, 64))}`)
  }
}

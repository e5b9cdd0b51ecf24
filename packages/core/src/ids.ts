// Branded names for the strings weft passes around, and the checks that make them.
import { type Hlc, decodeHlc, encodeHlc } from './HybridLogicalClock.ts'
import { ErrorCode, WeftError } from './errors.ts'

export type Key = string & { readonly __key: true }
export type ForkName = string & { readonly __fork: true }
export type NodeId = string & { readonly __nodeId: true }
/** `<16 hex HLC>.<node id>`: sorts as text in history order (HLC, then node id). */
export type RevisionId = string & { readonly __revisionId: true }

export const MAIN_FORK = 'main' as ForkName

export const Limits = {
  keyBytes: 1024,
  forkChars: 128,
  nodeIdChars: 64,
  authorChars: 256,
  messageChars: 4096,
} as const

const FORK_PATTERN = /^[A-Za-z0-9._/-]+$/
const NODE_ID_PATTERN = /^[A-Za-z0-9_-]+$/
// NUL separates parts of storage keys; lone surrogates are not UTF-8.
const BAD_KEY_CHARS = /[\u0000]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** UTF-8 length without encoding (a hot path: every request checks its key). */
export function utf8Length(text: string): number {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

export function parseKey(input: unknown): Key {
  if (typeof input !== 'string') throw new WeftError(ErrorCode.INVALID_KEY, 'key must be a string')
  const bytes = utf8Length(input)
  if (bytes < 1 || bytes > Limits.keyBytes) {
    throw new WeftError(ErrorCode.INVALID_KEY, `key must be 1..${Limits.keyBytes} UTF-8 bytes, got ${bytes}`)
  }
  if (BAD_KEY_CHARS.test(input)) throw new WeftError(ErrorCode.INVALID_KEY, 'key must be valid UTF-8 without NUL')
  return input as Key
}

/** A key prefix for listings: may be empty, otherwise the same rules as a key. */
export function parseKeyPrefix(input: unknown): string {
  if (input === undefined || input === '') return ''
  return parseKey(input)
}

export function parseFork(input: unknown): ForkName {
  if (typeof input !== 'string') throw new WeftError(ErrorCode.INVALID_FORK, 'fork name must be a string')
  if (input.length < 1 || input.length > Limits.forkChars || !FORK_PATTERN.test(input)) {
    throw new WeftError(ErrorCode.INVALID_FORK, `fork name must be 1..${Limits.forkChars} of A-Z a-z 0-9 . _ - /`)
  }
  return input as ForkName
}

export function parseNodeId(input: unknown): NodeId {
  if (typeof input !== 'string' || input.length < 1 || input.length > Limits.nodeIdChars || !NODE_ID_PATTERN.test(input)) {
    throw new WeftError(ErrorCode.INVALID_ARGUMENT, `node id must be 1..${Limits.nodeIdChars} of A-Z a-z 0-9 _ -`)
  }
  return input as NodeId
}

export function revisionId(hlc: Hlc, node: NodeId): RevisionId {
  return `${encodeHlc(hlc)}.${node}` as RevisionId
}

export interface ParsedRevisionId {
  readonly hlc: Hlc
  readonly node: NodeId
}

export function parseRevisionId(input: unknown): ParsedRevisionId {
  const bad = () => new WeftError(ErrorCode.INVALID_ARGUMENT, `not a revision id: ${String(input).slice(0, 80)}`)
  if (typeof input !== 'string' || input.length > 17 + Limits.nodeIdChars) throw bad()
  const hlc = decodeHlc(input.slice(0, 16))
  if (!hlc || input[16] !== '.') throw bad()
  const node = input.slice(17)
  if (!NODE_ID_PATTERN.test(node)) throw bad()
  return { hlc, node: node as NodeId }
}

export function isRevisionId(input: unknown): input is RevisionId {
  try {
    parseRevisionId(input)
    return true
  } catch {
    return false
  }
}

export function parseMeta(author: unknown, message: unknown): { author?: string; message?: string } {
  const meta: { author?: string; message?: string } = {}
  if (author !== undefined) {
    if (typeof author !== 'string' || author.length > Limits.authorChars) {
      throw new WeftError(ErrorCode.INVALID_ARGUMENT, `author must be a string of at most ${Limits.authorChars} chars`)
    }
    meta.author = author
  }
  if (message !== undefined) {
    if (typeof message !== 'string' || message.length > Limits.messageChars) {
      throw new WeftError(ErrorCode.INVALID_ARGUMENT, `message must be a string of at most ${Limits.messageChars} chars`)
    }
    meta.message = message
  }
  return meta
}

// Bearer tokens from a JSON file, each granting read / write / admin on key
// prefixes. File format (docs/HTTP.md#auth):
//
//   { "tokens": {
//       "<token>":            { "name": "ci",  "grants": [{ "prefix": "deployments/", "access": "write" }] },
//       "sha256:<64 hex>":    { "name": "ops", "grants": [{ "prefix": "", "access": "admin" }] } } }
//
// A presented token is hashed and compared, in constant time, with every
// entry's SHA-256 digest, so neither its length nor where it first differs
// shows in the timing; `sha256:` entries keep the token itself out of the file.
import { ErrorCode, WeftError } from '@weft/core'
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Access, type Authorizer, type Principal } from './Authorizer.ts'

export interface Grant {
  /** Every key starting with this (the empty prefix: every key). */
  readonly prefix: string
  readonly access: Access
}

export interface TokenEntry {
  readonly name: string
  readonly grants: readonly Grant[]
}

/** What a token file holds once parsed: a token (or `sha256:<hex>` of one) per entry. */
export type TokenTable = Readonly<Record<string, TokenEntry>>

const RANK: { readonly [A in Access]: number } = { read: 1, write: 2, admin: 3 }
const HASHED = /^sha256:([0-9a-f]{64})$/i
const TOKEN = /^[\x21-\x7e]{1,4096}$/

export class TokenFileAuthorizer implements Authorizer {
  readonly open = false
  readonly #entries: readonly { readonly digest: Buffer; readonly principal: Principal }[]
  readonly #grants = new Map<Principal, readonly Grant[]>()

  constructor(table: TokenTable) {
    const entries: { digest: Buffer; principal: Principal }[] = []
    for (const [token, entry] of checkTable(table, 'tokens')) {
      const principal: Principal = Object.freeze({ name: entry.name })
      this.#grants.set(principal, entry.grants)
      entries.push({ digest: storedDigest(token), principal })
    }
    this.#entries = entries
  }

  /** Reads and checks a token file; every problem is an Error naming the file and the entry. */
  static async load(path: string): Promise<TokenFileAuthorizer> {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      throw new Error(`token file ${path}: cannot read it: ${(err as Error).message}`)
    }
    return TokenFileAuthorizer.parse(text, `token file ${path}`)
  }

  /** The authorizer for a token file's text; `source` names it in errors. */
  static parse(text: string, source = 'token file'): TokenFileAuthorizer {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new Error(`${source}: not valid JSON: ${(err as Error).message}`)
    }
    if (!isObject(parsed)) throw new Error(`${source}: must be a JSON object {"tokens": {...}}`)
    for (const field of Object.keys(parsed)) if (field !== 'tokens') throw new Error(`${source}: unknown field ${JSON.stringify(field)} (expected only "tokens")`)
    try {
      return new TokenFileAuthorizer(parsed.tokens as TokenTable)
    } catch (err) {
      throw new Error(`${source}: ${(err as Error).message}`)
    }
  }

  authenticate(token: string | undefined): Principal {
    if (token === undefined || token === '') throw new WeftError(ErrorCode.UNAUTHORIZED, 'a bearer token is required (Authorization: Bearer <token>)')
    const digest = sha256(token)
    let found: Principal | undefined
    // No early exit: every entry is compared, whichever matches.
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.principal
    }
    if (found === undefined) throw new WeftError(ErrorCode.UNAUTHORIZED, 'unknown bearer token')
    return found
  }

  authorize(principal: Principal, access: Access, keyOrPrefix: string | undefined): void {
    const grants = this.#grants.get(principal) ?? []
    const target = keyOrPrefix ?? ''
    if (grants.some((grant) => grantAllows(grant, access, target))) return
    const what = target === '' ? 'every key' : JSON.stringify(target.length > 200 ? `${target.slice(0, 200)}…` : target)
    throw new WeftError(ErrorCode.FORBIDDEN, `${principal.name} may not ${access} ${what}`, { access })
  }
}

/** True when `grant` covers `access` on every key the request touches (a key, or all keys under a prefix). */
export function grantAllows(grant: Grant, access: Access, keyOrPrefix: string): boolean {
  return keyOrPrefix.startsWith(grant.prefix) && RANK[grant.access] >= RANK[access]
}

/** A file entry's digest: `sha256:<hex>` is one already, anything else is the token itself. */
function storedDigest(token: string): Buffer {
  const hashed = HASHED.exec(token)
  return hashed ? Buffer.from(hashed[1]!, 'hex') : sha256(token)
}

/** Presented tokens are always hashed as sent (so a digest from the file is no token). */
function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

function checkTable(table: unknown, where: string): [string, TokenEntry][] {
  if (!isObject(table)) throw new Error(`${where} must be an object mapping each token to {name, grants}`)
  const out: [string, TokenEntry][] = []
  for (const [token, entry] of Object.entries(table)) {
    const at = `${where}[${mask(token)}]`
    if (!TOKEN.test(token)) throw new Error(`${at}: a token must be 1..4096 visible ASCII characters, no spaces`)
    if (!isObject(entry)) throw new Error(`${at} must be an object {name, grants}`)
    for (const field of Object.keys(entry)) if (field !== 'name' && field !== 'grants') throw new Error(`${at}: unknown field ${JSON.stringify(field)}`)
    if (typeof entry.name !== 'string' || entry.name.length === 0 || entry.name.length > 256) throw new Error(`${at}.name must be a string of 1..256 characters`)
    if (!Array.isArray(entry.grants)) throw new Error(`${at}.grants must be an array of {prefix, access}`)
    const grants = entry.grants.map((grant: unknown, i): Grant => {
      const gat = `${at}.grants[${i}]`
      if (!isObject(grant)) throw new Error(`${gat} must be an object {prefix, access}`)
      for (const field of Object.keys(grant)) if (field !== 'prefix' && field !== 'access') throw new Error(`${gat}: unknown field ${JSON.stringify(field)}`)
      if (typeof grant.prefix !== 'string') throw new Error(`${gat}.prefix must be a string ("" for every key)`)
      if (typeof grant.access !== 'string' || !Object.hasOwn(Access, grant.access)) throw new Error(`${gat}.access must be one of read, write, admin`)
      return Object.freeze({ prefix: grant.prefix, access: grant.access as Access })
    })
    out.push([token, { name: entry.name, grants: Object.freeze(grants) }])
  }
  return out
}

/** A token's first characters only, so errors and logs never show a whole one. */
function mask(token: string): string {
  return JSON.stringify(HASHED.test(token) ? `${token.slice(0, 15)}…` : `${token.slice(0, 4)}…`)
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

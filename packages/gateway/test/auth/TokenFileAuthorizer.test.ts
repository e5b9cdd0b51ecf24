import { ErrorCode, isWeftError } from '@weft/core'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Access } from '../../src/auth/Authorizer.ts'
import { OpenAuthorizer } from '../../src/auth/OpenAuthorizer.ts'
import { TokenFileAuthorizer } from '../../src/auth/TokenFileAuthorizer.ts'

const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

async function tokenFile(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-tokens-'))
  dirs.push(dir)
  const path = join(dir, 'tokens.json')
  await writeFile(path, content)
  return path
}

const TABLE = {
  tokens: {
    'ci-token-123': { name: 'ci', grants: [{ prefix: 'deployments/', access: 'write' }] },
    'reader-token': { name: 'reader', grants: [{ prefix: '', access: 'read' }] },
    [`sha256:${createHash('sha256').update('ops-secret').digest('hex')}`]: { name: 'ops', grants: [{ prefix: '', access: 'admin' }] },
    'nobody-token': { name: 'nobody', grants: [] },
  },
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isWeftError(err) ? err.code : 'not a WeftError'
  }
  return undefined
}

describe('TokenFileAuthorizer', () => {
  it('loads a token file and authenticates its tokens, hashed entries included', async () => {
    const auth = await TokenFileAuthorizer.load(await tokenFile(JSON.stringify(TABLE)))
    expect(auth.open).toBe(false)
    expect(auth.authenticate('ci-token-123').name).toBe('ci')
    expect(auth.authenticate('ops-secret').name).toBe('ops')
    expect(codeOf(() => auth.authenticate(undefined))).toBe(ErrorCode.UNAUTHORIZED)
    expect(codeOf(() => auth.authenticate(''))).toBe(ErrorCode.UNAUTHORIZED)
    expect(codeOf(() => auth.authenticate('ci-token-12'))).toBe(ErrorCode.UNAUTHORIZED)
    expect(codeOf(() => auth.authenticate('ci-token-1234'))).toBe(ErrorCode.UNAUTHORIZED)
    // The digest in the file is not itself a token.
    expect(codeOf(() => auth.authenticate(Object.keys(TABLE.tokens)[2]))).toBe(ErrorCode.UNAUTHORIZED)
  })

  it('grants cover keys and prefixes under their prefix; write implies read, admin implies both', () => {
    const auth = new TokenFileAuthorizer(TABLE.tokens as never)
    const ci = auth.authenticate('ci-token-123')
    const reader = auth.authenticate('reader-token')
    const ops = auth.authenticate('ops-secret')
    const nobody = auth.authenticate('nobody-token')
    expect(codeOf(() => auth.authorize(ci, Access.write, 'deployments/api'))).toBeUndefined()
    expect(codeOf(() => auth.authorize(ci, Access.read, 'deployments/api'))).toBeUndefined()
    expect(codeOf(() => auth.authorize(ci, Access.write, 'deployments/'))).toBeUndefined()
    expect(codeOf(() => auth.authorize(ci, Access.admin, 'deployments/api'))).toBe(ErrorCode.FORBIDDEN)
    // A prefix that reaches outside the grant ("deployments" also covers "deploymentsX").
    expect(codeOf(() => auth.authorize(ci, Access.write, 'deployments'))).toBe(ErrorCode.FORBIDDEN)
    expect(codeOf(() => auth.authorize(ci, Access.read, 'secrets/x'))).toBe(ErrorCode.FORBIDDEN)
    expect(codeOf(() => auth.authorize(ci, Access.read, undefined))).toBe(ErrorCode.FORBIDDEN)
    expect(codeOf(() => auth.authorize(reader, Access.read, undefined))).toBeUndefined()
    expect(codeOf(() => auth.authorize(reader, Access.read, 'anything'))).toBeUndefined()
    expect(codeOf(() => auth.authorize(reader, Access.write, 'anything'))).toBe(ErrorCode.FORBIDDEN)
    for (const access of [Access.read, Access.write, Access.admin]) expect(codeOf(() => auth.authorize(ops, access, ''))).toBeUndefined()
    expect(codeOf(() => auth.authorize(nobody, Access.read, 'x'))).toBe(ErrorCode.FORBIDDEN)
    // A principal it did not issue has no grants.
    expect(codeOf(() => auth.authorize({ name: 'ops' }, Access.read, 'x'))).toBe(ErrorCode.FORBIDDEN)
  })

  it('explains what is wrong with a token file, naming the file and the entry but never a whole token', async () => {
    const cases: [string, RegExp][] = [
      ['{ not json', /not valid JSON/],
      ['[]', /must be a JSON object/],
      ['{"token": {}}', /unknown field "token"/],
      ['{"tokens": []}', /tokens must be an object/],
      ['{"tokens": {"secret-token-1": {"grants": []}}}', /tokens\["secr…"\]\.name must be a string/],
      ['{"tokens": {"secret-token-1": {"name": "x"}}}', /\.grants must be an array/],
      ['{"tokens": {"secret-token-1": {"name": "x", "grants": [{"prefix": "a", "access": "root"}]}}}', /grants\[0\]\.access must be one of read, write, admin/],
      ['{"tokens": {"secret-token-1": {"name": "x", "grants": [{"access": "read"}]}}}', /grants\[0\]\.prefix must be a string/],
      ['{"tokens": {"secret-token-1": {"name": "x", "grants": [], "admin": true}}}', /unknown field "admin"/],
      ['{"tokens": {"has space": {"name": "x", "grants": []}}}', /visible ASCII/],
    ]
    for (const [content, message] of cases) {
      const path = await tokenFile(content)
      const err = await TokenFileAuthorizer.load(path).then(
        () => undefined,
        (e: Error) => e,
      )
      expect(err, content).toBeInstanceOf(Error)
      expect(err!.message, content).toContain(path)
      expect(err!.message, content).toMatch(message)
      expect(err!.message).not.toContain('secret-token-1')
    }
    const missing = await TokenFileAuthorizer.load('/nonexistent/tokens.json').catch((e: Error) => e)
    expect((missing as Error).message).toMatch(/token file \/nonexistent\/tokens\.json: cannot read it/)
  })

  it('the token file example in docs/HTTP.md loads and means what the docs say', async () => {
    const docs = await readFile(new URL('../../../../docs/HTTP.md', import.meta.url), 'utf8')
    const example = /### Token file\s+```json\n([\s\S]*?)```/.exec(docs)?.[1]
    expect(example).toBeDefined()
    const auth = TokenFileAuthorizer.parse(example!)
    const ci = auth.authenticate('c1-9f2e7a4b3d')
    expect(codeOf(() => auth.authorize(ci, Access.write, 'deployments/api'))).toBeUndefined()
    expect(codeOf(() => auth.authorize(auth.authenticate('r0-77b1e0c2aa'), Access.write, 'x'))).toBe(ErrorCode.FORBIDDEN)
    expect(codeOf(() => auth.authorize(auth.authenticate('example-ops-token'), Access.admin, ''))).toBeUndefined()
  })

  it('an entry named __proto__ is just a token', () => {
    const auth = TokenFileAuthorizer.parse('{"tokens": {"__proto__": {"name": "odd", "grants": [{"prefix": "", "access": "read"}]}}}')
    expect(auth.authenticate('__proto__').name).toBe('odd')
  })
})

describe('OpenAuthorizer', () => {
  it('lets everyone do everything and says it is open', () => {
    const auth = new OpenAuthorizer()
    expect(auth.open).toBe(true)
    const anyone = auth.authenticate(undefined)
    expect(anyone.name).toBe('anonymous')
    expect(codeOf(() => auth.authorize(anyone, Access.admin, undefined))).toBeUndefined()
  })
})

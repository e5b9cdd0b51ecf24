import { ErrorCode } from '@weft/core'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Access } from '../../src/auth/Authorizer.ts'
import { ReloadingAuthorizer } from '../../src/auth/ReloadingAuthorizer.ts'

const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

const table = (tokens: Record<string, { name: string; grants: { prefix: string; access: string }[] }>) => JSON.stringify({ tokens })

async function tokenFile(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-tokens-'))
  dirs.push(dir)
  const path = join(dir, 'tokens.json')
  await writeFile(path, content)
  return path
}

describe('ReloadingAuthorizer', () => {
  it('applies a reloaded file to new and to already authenticated principals', async () => {
    const path = await tokenFile(table({
      'ci-token': { name: 'ci', grants: [{ prefix: 'deployments/', access: 'write' }] },
      'old-token': { name: 'old', grants: [{ prefix: '', access: 'read' }] },
    }))
    const auth = await ReloadingAuthorizer.load(path)
    const ci = auth.authenticate('ci-token')
    const old = auth.authenticate('old-token')
    expect(() => auth.authorize(ci, Access.write, 'flags/x')).toThrow(expect.objectContaining({ code: ErrorCode.FORBIDDEN }))

    await writeFile(path, table({
      'ci-token': { name: 'ci', grants: [{ prefix: '', access: 'write' }] },
      'new-token': { name: 'new', grants: [{ prefix: 'flags/', access: 'read' }] },
    }))
    await auth.reload()
    // ci's connection goes on, under its new grants; old's token was taken out.
    expect(() => auth.authorize(ci, Access.write, 'flags/x')).not.toThrow()
    expect(() => auth.authorize(old, Access.read, 'a')).toThrow(expect.objectContaining({ code: ErrorCode.UNAUTHORIZED }))
    expect(() => auth.authenticate('old-token')).toThrow(expect.objectContaining({ code: ErrorCode.UNAUTHORIZED }))
    const fresh = auth.authenticate('new-token')
    expect(() => auth.authorize(fresh, Access.read, 'flags/a')).not.toThrow()
    expect(() => auth.authorize(fresh, Access.write, 'flags/a')).toThrow(expect.objectContaining({ code: ErrorCode.FORBIDDEN }))
  })

  it('keeps the tokens in force when the new file is broken, and says why', async () => {
    const path = await tokenFile(table({ 'ci-token': { name: 'ci', grants: [{ prefix: '', access: 'read' }] } }))
    const auth = await ReloadingAuthorizer.load(path)
    await writeFile(path, '{"tokens": {"ci-token": {"name": "ci", "grants": [{"prefix": "", "access": "root"}]}}}')
    await expect(auth.reload()).rejects.toThrow(/access must be one of read, write, admin/)
    await writeFile(path, '{ not json')
    await expect(auth.reload()).rejects.toThrow(/not valid JSON/)
    const ci = auth.authenticate('ci-token')
    expect(() => auth.authorize(ci, Access.read, 'k')).not.toThrow()
  })
})

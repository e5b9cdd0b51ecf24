import { describe, expect, it } from 'vitest'
import { Access } from '../../src/auth/Authorizer.ts'
import { requiredAccess } from '../../src/auth/requiredAccess.ts'

describe('requiredAccess', () => {
  it('reads need read and writes need write, on the key or the whole prefix', () => {
    expect(requiredAccess('get', { key: 'a/b' })).toEqual({ access: Access.read, scope: 'a/b' })
    expect(requiredAccess('keys', { prefix: 'a/' })).toEqual({ access: Access.read, scope: 'a/' })
    expect(requiredAccess('keys', {})).toEqual({ access: Access.read, scope: '' })
    expect(requiredAccess('watch', { prefix: '' })).toEqual({ access: Access.read, scope: '' })
    for (const op of ['history', 'info', 'diff']) expect(requiredAccess(op, { key: 'k' })).toEqual({ access: Access.read, scope: 'k' })
    for (const op of ['set', 'delete', 'revert']) expect(requiredAccess(op, { key: 'k' })).toEqual({ access: Access.write, scope: 'k' })
    expect(requiredAccess('fork', { prefix: 'p/', to: 'x' })).toEqual({ access: Access.write, scope: 'p/' })
    expect(requiredAccess('merge', { key: 'k', from: 'x' })).toEqual({ access: Access.write, scope: 'k' })
    expect(requiredAccess('members', {})).toEqual({ access: Access.read, scope: '' })
    expect(requiredAccess('ping', {})).toBeUndefined()
  })

  it('unwatch needs only a valid token', () => {
    expect(requiredAccess('unwatch', { watch: 1 })).toBeUndefined()
  })
})

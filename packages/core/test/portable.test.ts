import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

// The client (for Node and browsers) imports core: core must not need Node's built-ins.
describe('core sources', () => {
  it('import no Node built-in module', () => {
    const dir = new URL('../src/', import.meta.url)
    const offenders = readdirSync(dir)
      .filter((name) => name.endsWith('.ts'))
      .filter((name) => /from ['"](node:|(fs|path|crypto|os)['"/])/.test(readFileSync(new URL(name, dir), 'utf8')))
    expect(offenders).toEqual([])
  })
})

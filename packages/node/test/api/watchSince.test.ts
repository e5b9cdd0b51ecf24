// `watch` with `since`: a watch resumed on a node other than the one it started
// on replays what this node stored from that time (less the margin), then goes live.
import { afterEach, describe, expect, it } from 'vitest'
import type { NodeId } from '@weft/core'
import { parseRequest } from '@weft/protocol'
import { ApiServer } from '../../src/api/ApiServer.ts'
import { WATCH_SINCE_MARGIN_MS } from '../../src/api/WatchRegistry.ts'
import { MemoryStorage } from '../../src/storage/MemoryStorage.ts'
import { VersionedStore } from '../../src/store/VersionedStore.ts'
import { TestClient } from './TestClient.ts'

const cleanups: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function setup(now: () => number) {
  const store = new VersionedStore({ storage: new MemoryStorage(), nodeId: 'n1' as NodeId, now })
  const server = new ApiServer({ store, host: '127.0.0.1', port: 0, members: () => [] })
  const { port } = await server.start()
  cleanups.push(() => store.close(), () => server.stop())
  const client = await TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`)
  cleanups.push(() => client.close())
  return { store, client }
}

describe('watch since', () => {
  it('parses since as a number, and refuses it together with after', () => {
    expect(parseRequest({ id: 1, op: 'watch', prefix: 'a/', since: 1234.5 })).toEqual({ id: 1, op: 'watch', prefix: 'a/', since: 1234.5 })
    expect(() => parseRequest({ id: 1, op: 'watch', key: 'k', since: 'yesterday' })).toThrow(/since/)
    expect(() => parseRequest({ id: 1, op: 'watch', key: 'k', since: 5, after: 'e:1' })).toThrow(/at most one of after, since/)
  })

  it('replays every entry stored from since minus the margin, then goes live', async () => {
    let clock = 1_000_000
    const { store, client } = await setup(() => clock)
    // One write a second: k0 at +0 s … k9 at +9 s.
    for (let i = 0; i < 10; i++) {
      await store.set(`app/k${i}`, i)
      clock += 1000
    }
    await store.set('other', 'not watched')
    const since = 1_000_000 + 6000 + WATCH_SINCE_MARGIN_MS / 2
    const ack = await client.ok<{ watch: number; cursor: string }>('watch', { prefix: 'app/', since })
    // Entries at since - margin = +5 s and later: k5..k9.
    expect(ack.cursor).toBe(`${store.epoch}:5`)
    const replayed = await client.waitEvents(ack.watch, 5)
    expect(replayed.map((e) => e.key)).toEqual(['app/k5', 'app/k6', 'app/k7', 'app/k8', 'app/k9'])
    await store.set('app/live', 'after')
    const events = await client.waitEvents(ack.watch, 6)
    expect(events.at(-1)).toMatchObject({ key: 'app/live', value: 'after' })
    await new Promise((r) => setTimeout(r, 30))
    expect(client.events(ack.watch)).toHaveLength(6)
  })

  it('replays nothing for a time past the feed, and everything for a time before it', async () => {
    let clock = 5_000_000
    const { store, client } = await setup(() => clock)
    await store.set('k', 1)
    clock += 60_000
    await store.set('k', 2)
    const future = await client.ok<{ watch: number; cursor: string }>('watch', { key: 'k', since: clock + 60_000 })
    expect(future.cursor).toBe(`${store.epoch}:2`)
    const all = await client.ok<{ watch: number; cursor: string }>('watch', { key: 'k', since: 0 })
    expect(all.cursor).toBe(`${store.epoch}:0`)
    expect((await client.waitEvents(all.watch, 2)).map((e) => e.value)).toEqual([1, 2])
    await store.set('k', 3)
    expect((await client.waitEvents(future.watch, 1)).map((e) => e.value)).toEqual([3])
    expect((await client.waitEvents(all.watch, 3)).map((e) => e.value)).toEqual([1, 2, 3])
  })
})

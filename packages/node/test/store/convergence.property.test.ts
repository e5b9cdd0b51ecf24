// Replicas on a seeded fake network (random delivery order, duplicates,
// partitions, lost messages repaired by a final full sync, as anti-entropy
// would) must end with identical values and identical histories.
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import type { ForkName, Key, NodeId, Revision } from '@weft/core'
import { MemoryStorage } from '../../src/storage/MemoryStorage.ts'
import { VersionedStore } from '../../src/store/VersionedStore.ts'

const KEYS = ['cfg/a', 'cfg/b'] as const
const FORKS = ['main', 'f'] as const

const leaf = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom('x', 'y', null, true))
const value = fc.oneof(
  leaf,
  fc.record({ a: leaf, b: fc.oneof(leaf, fc.record({ c: leaf, d: leaf })), e: fc.array(leaf, { maxLength: 3 }) }, { requiredKeys: [] }),
)

type Action =
  | { type: 'set'; node: number; key: number; fork: number; value: unknown }
  | { type: 'delete'; node: number; key: number; fork: number }
  | { type: 'fork'; node: number; key: number }
  | { type: 'merge'; node: number; key: number; strategy: 'crdt' | 'ours' | 'theirs' }
  | { type: 'deliver'; node: number; count: number; duplicate: boolean }
  | { type: 'partition'; a: number; b: number }
  | { type: 'heal' }
  | { type: 'tick'; ms: number }

function actions(nodes: number): fc.Arbitrary<Action[]> {
  const node = fc.integer({ min: 0, max: nodes - 1 })
  const key = fc.integer({ min: 0, max: KEYS.length - 1 })
  const fork = fc.integer({ min: 0, max: FORKS.length - 1 })
  return fc.array(
    fc.oneof(
      { weight: 5, arbitrary: fc.record({ type: fc.constant('set' as const), node, key, fork, value }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('delete' as const), node, key, fork }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('fork' as const), node, key }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('merge' as const), node, key, strategy: fc.constantFrom('crdt' as const, 'ours' as const, 'theirs' as const) }) },
      { weight: 4, arbitrary: fc.record({ type: fc.constant('deliver' as const), node, count: fc.integer({ min: 1, max: 5 }), duplicate: fc.boolean() }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('partition' as const), a: node, b: node }) },
      { weight: 1, arbitrary: fc.constant({ type: 'heal' as const }) },
      { weight: 2, arbitrary: fc.record({ type: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 50 }) }) },
    ),
    { minLength: 5, maxLength: 60 },
  )
}

interface Replica {
  store: VersionedStore
  inbox: Revision[]
}

const opened: VersionedStore[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()))
})

async function run(nodeCount: number, script: Action[], rng: () => number): Promise<Replica[]> {
  let time = 1_700_000_000_000
  // Clocks disagree by a few ms: the HLC must still order causally.
  const skews = Array.from({ length: nodeCount }, (_, i) => (i * 7) % 5)
  const replicas: Replica[] = []
  const cut = new Set<string>()
  for (let i = 0; i < nodeCount; i++) {
    const store = new VersionedStore({ storage: new MemoryStorage(), nodeId: `n${i}` as NodeId, now: () => time + skews[i]!, checkpointEvery: 3, cacheSize: 2 })
    opened.push(store)
    replicas.push({ store, inbox: [] })
  }
  replicas.forEach((replica, i) => {
    replica.store.subscribe((event) => {
      if (!event.local) return
      replicas.forEach((peer, j) => {
        // A message over a cut link is lost; the final sync repairs it.
        if (j !== i && !cut.has(`${Math.min(i, j)}-${Math.max(i, j)}`)) peer.inbox.push(event.revision)
      })
    })
  })
  const quietly = async (op: () => Promise<unknown>) => {
    try {
      await op()
    } catch (err) {
      // Operations that do not apply (missing fork, nothing to delete) are refused with a code.
      if (!(err instanceof Error && 'code' in err)) throw err
    }
  }
  for (const action of script) {
    switch (action.type) {
      case 'set':
        await quietly(() => replicas[action.node]!.store.set(KEYS[action.key]!, action.value, { fork: FORKS[action.fork]! }))
        break
      case 'delete':
        await quietly(() => replicas[action.node]!.store.delete(KEYS[action.key]!, { fork: FORKS[action.fork]! }))
        break
      case 'fork':
        await quietly(() => replicas[action.node]!.store.fork(KEYS[action.key]!, { to: 'f' }))
        break
      case 'merge':
        await quietly(() => replicas[action.node]!.store.merge(KEYS[action.key]!, { from: 'f', strategy: action.strategy }))
        break
      case 'deliver': {
        const replica = replicas[action.node]!
        for (let n = 0; n < action.count && replica.inbox.length > 0; n++) {
          const at = Math.floor(rng() * replica.inbox.length)
          const revision = replica.inbox[at]!
          if (!action.duplicate) replica.inbox.splice(at, 1)
          await replica.store.applyRemote([revision])
        }
        break
      }
      case 'partition':
        if (action.a !== action.b) cut.add(`${Math.min(action.a, action.b)}-${Math.max(action.a, action.b)}`)
        break
      case 'heal':
        cut.clear()
        break
      case 'tick':
        time += action.ms
        break
    }
  }
  // Heal: deliver what is queued in random order, then a full sync.
  for (const replica of replicas) {
    const queued = replica.inbox.splice(0).sort(() => rng() - 0.5)
    await replica.store.applyRemote(queued)
  }
  for (const target of replicas) {
    for (const source of replicas) {
      if (source === target) continue
      for (const key of KEYS) for (const fork of FORKS) {
        const revisions = [...source.store.revisionIds(key as Key, fork as ForkName)].map((id) => source.store.revision(key as Key, fork as ForkName, id)!)
        await target.store.applyRemote(revisions.sort(() => rng() - 0.5))
      }
    }
  }
  return replicas
}

function snapshot(store: VersionedStore) {
  const out: Record<string, unknown> = {}
  for (const key of KEYS) for (const fork of FORKS) {
    let current: unknown
    try {
      current = store.get(key, fork).value
    } catch {
      current = 'absent'
    }
    let history: unknown = []
    try {
      history = store.history(key, fork, { limit: 1000, values: true }).revisions.map((r) => [r.id, r.index, r.kind, r.value])
    } catch {
      history = 'none'
    }
    out[`${key}@${fork}`] = { current, history }
  }
  return out
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = seed
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('replicas on a fake network', () => {
  it('converge to identical values and histories (3-5 replicas)', async () => {
    const seed = Number(process.env.WEFT_PROPERTY_SEED ?? 20261122)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 3, max: 5 }).chain((n) => fc.tuple(fc.constant(n), actions(n), fc.integer())), async ([n, script, rngSeed]) => {
        const replicas = await run(n, script, mulberry32(rngSeed))
        const expected = snapshot(replicas[0]!.store)
        for (const replica of replicas.slice(1)) expect(snapshot(replica.store)).toEqual(expected)
        await Promise.all(opened.splice(0).map((s) => s.close()))
      }),
      { numRuns: 150, seed },
    )
  }, 120_000)

  it('concurrent writes of one leaf converge to the later HLC; different fields both survive', async () => {
    const replicas = await run(
      3,
      [
        { type: 'set', node: 0, key: 0, fork: 0, value: { a: 1, b: 1 } },
        { type: 'deliver', node: 1, count: 5, duplicate: false },
        { type: 'deliver', node: 2, count: 5, duplicate: false },
        { type: 'set', node: 2, key: 0, fork: 0, value: { a: 'late-but-n2', b: 1 } },
        { type: 'tick', ms: 20 },
        { type: 'set', node: 1, key: 0, fork: 0, value: { a: 'later', b: 2 } },
      ],
      mulberry32(1),
    )
    // n1 wrote a (later) and b; n2 wrote only a (earlier): a = n1's, b = n1's.
    for (const replica of replicas) expect(replica.store.get('cfg/a').value).toEqual({ a: 'later', b: 2 })
  })
})

// How far the cluster is from converged, from what the members report in
// their heartbeats. Every node stores every revision once, so a node's feed
// seq counts the revisions it holds: once the cluster has converged, the alive
// nodes' seqs agree, and a node's lag is how many fewer it holds than the most.
import type { MemberInfo } from '@weft/client'

export interface MemberLag {
  readonly name: string
  readonly peerId: string
  /** Revisions it holds fewer than the alive node that holds the most. */
  readonly revisions: number
}

export interface Convergence {
  /** Feed seqs of the alive members: the fewest and most revisions held, and their difference. */
  readonly min: number
  readonly max: number
  readonly spread: number
  /** Alive members that hold fewer revisions than the most, furthest behind first. */
  readonly behind: readonly MemberLag[]
  /** Age of the oldest heartbeat the figures come from (ms): they say how things stood then. */
  readonly asOfMs: number
}

/** Undefined when no member is alive (nothing to compare). */
export function convergenceOf(members: readonly MemberInfo[], now: number): Convergence | undefined {
  const alive = members.filter((m) => m.state === 'alive' && Number.isFinite(m.feedSeq))
  if (alive.length === 0) return undefined
  const seqs = alive.map((m) => m.feedSeq)
  const min = Math.min(...seqs)
  const max = Math.max(...seqs)
  const behind = alive
    .filter((m) => m.feedSeq < max)
    .map((m) => ({ name: m.name, peerId: m.peerId, revisions: max - m.feedSeq }))
    .sort((a, b) => b.revisions - a.revisions || a.name.localeCompare(b.name))
  // The answering node reports itself as of now; the others as of their last heartbeat.
  const asOfMs = Math.max(0, ...alive.map((m) => (m.self ? 0 : now - m.lastSeen)))
  return { min, max, spread: max - min, behind, asOfMs }
}

/** A member's lag in revisions, or undefined when it is not alive (its figures are stale). */
export function lagOf(member: MemberInfo, convergence: Convergence | undefined): number | undefined {
  if (!convergence || member.state !== 'alive') return undefined
  return convergence.max - member.feedSeq
}

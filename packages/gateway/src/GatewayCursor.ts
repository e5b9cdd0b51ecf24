// The cursors a gateway hands its clients. A node's cursor (`<epoch>:<seq>`)
// only means something to that node; a gateway cursor also carries the time to
// resume from, so a watch can resume on any node, through any gateway:
//
//   g.<since, base 36>.<node epoch>:<seq>
//
// It is still `<epoch>:<seq>` to a client (the epoch part is opaque).
import { type Cursor, MessageLimits, parseCursor } from '@weft/protocol'

export interface GatewayCursor {
  /** The node cursor: exact resume on the node whose feed it names. */
  readonly node: Cursor
  /** Ms: resume on any other node from here (the node subtracts its margin). */
  readonly since: number
}

const PREFIX = 'g.'

export function formatGatewayCursor(cursor: GatewayCursor): string {
  const text = `${PREFIX}${Math.max(0, Math.floor(cursor.since)).toString(36)}.${cursor.node.epoch}:${cursor.node.seq}`
  // A node epoch too long to wrap: hand out the node's own cursor.
  return text.length <= MessageLimits.cursorChars ? text : `${cursor.node.epoch}:${cursor.node.seq}`
}

/** A gateway cursor, or undefined for anything else (e.g. a node's own cursor). */
export function parseGatewayCursor(text: string): GatewayCursor | undefined {
  if (!text.startsWith(PREFIX)) return undefined
  let cursor: Cursor
  try {
    cursor = parseCursor(text)
  } catch {
    return undefined
  }
  const dot = cursor.epoch.indexOf('.', PREFIX.length)
  if (dot < 0) return undefined
  const sinceText = cursor.epoch.slice(PREFIX.length, dot)
  const epoch = cursor.epoch.slice(dot + 1)
  if (!/^[0-9a-z]{1,12}$/.test(sinceText) || epoch.length === 0) return undefined
  return { node: { epoch, seq: cursor.seq }, since: parseInt(sinceText, 36) }
}

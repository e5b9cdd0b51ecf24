// A hybrid logical clock: wall-clock milliseconds plus a counter, so that
// timestamps stay close to real time yet respect causality across nodes.

export interface Hlc {
  readonly wall: number
  readonly counter: number
}

const MAX_COUNTER = 0xffff
const WALL_HEX = 12
const COUNTER_HEX = 4

export type PhysicalClock = () => number

export class HybridLogicalClock {
  private last: Hlc = { wall: 0, counter: 0 }
  private readonly physical: PhysicalClock

  constructor(physical: PhysicalClock = Date.now, start?: Hlc) {
    this.physical = physical
    if (start) this.last = start
  }

  /** A new timestamp, later than every timestamp issued or received before. */
  now(): Hlc {
    const wall = this.physical()
    this.last = wall > this.last.wall ? { wall, counter: 0 } : bump(this.last)
    return this.last
  }

  /** Folds in a timestamp seen on a remote change, so later local ones sort after it. */
  receive(remote: Hlc): void {
    if (compareHlc(remote, this.last) > 0) this.last = remote
  }

  peek(): Hlc {
    return this.last
  }
}

function bump(hlc: Hlc): Hlc {
  // On counter overflow borrow the next millisecond rather than lose ordering.
  return hlc.counter < MAX_COUNTER ? { wall: hlc.wall, counter: hlc.counter + 1 } : { wall: hlc.wall + 1, counter: 0 }
}

export function compareHlc(a: Hlc, b: Hlc): number {
  return a.wall - b.wall || a.counter - b.counter
}

/** Fixed-width hex, so encoded timestamps sort as strings in clock order. */
export function encodeHlc(hlc: Hlc): string {
  return hlc.wall.toString(16).padStart(WALL_HEX, '0') + hlc.counter.toString(16).padStart(COUNTER_HEX, '0')
}

const HLC_PATTERN = /^[0-9a-f]{16}$/

export function decodeHlc(text: string): Hlc | undefined {
  if (!HLC_PATTERN.test(text)) return undefined
  return { wall: parseInt(text.slice(0, WALL_HEX), 16), counter: parseInt(text.slice(WALL_HEX), 16) }
}

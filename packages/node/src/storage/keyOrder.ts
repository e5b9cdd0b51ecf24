// Storage keys sort by code point (the order of their UTF-8 bytes, as LMDB
// compares them). JS's `<` compares UTF-16 units instead, which puts U+10000 and
// above (surrogates, 0xD800-0xDFFF) before U+E000-U+FFFF.
import type { StorageKey } from './StorageAdapter.ts'

export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

// Moves surrogates above U+E000-U+FFFF; the first differing unit decides for valid strings.
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800
}

/** The index of the first key in sorted `keys` that is >= `key`. */
export function lowerBound(keys: readonly StorageKey[], key: StorageKey): number {
  let low = 0
  let high = keys.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (compareCodePoints(keys[middle] as StorageKey, key) < 0) low = middle + 1
    else high = middle
  }
  return low
}

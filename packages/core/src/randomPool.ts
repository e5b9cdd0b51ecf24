// Yjs gives every new Y.Doc a random clientID through lib0, which asks
// crypto.getRandomValues for 4 bytes each time: a system call and several
// microseconds, paid for every new key the store writes or receives. lib0 binds
// that function when it is first imported, so this module, imported before
// yjs by every core module that uses it, makes small requests come from a pool
// of bytes filled by the same CSPRNG in 4 KiB refills (as crypto.randomUUID
// buffers its entropy); each byte is handed out once. Other requests go to the
// original function unchanged. It uses the Web Crypto global (in Node it is
// `node:crypto`'s webcrypto), so core still loads in browsers.
const POOL_BYTES = 4096
const SMALL_REQUEST = 256

type RandomTarget = Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array

const pooled = Symbol.for('weft.randomPool')
const target = globalThis.crypto as unknown as { getRandomValues: <T extends RandomTarget>(array: T) => T; [pooled]?: true }

if (!target[pooled]) {
  const original = target.getRandomValues.bind(target)
  const pool = new Uint8Array(POOL_BYTES)
  let used = POOL_BYTES
  target.getRandomValues = function getRandomValues<T extends RandomTarget>(array: T): T {
    const integer = array instanceof Uint32Array || array instanceof Uint8Array || array instanceof Int32Array || array instanceof Uint16Array || array instanceof Int16Array || array instanceof Int8Array
    if (!integer || array.byteLength > SMALL_REQUEST) return original(array)
    if (used + array.byteLength > POOL_BYTES) {
      original(pool)
      used = 0
    }
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(pool.subarray(used, used + array.byteLength))
    used += array.byteLength
    return array
  }
  target[pooled] = true
}

/** True when small random requests are served from the pool (for tests). */
export function randomPoolInstalled(): boolean {
  return target[pooled] === true
}

import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { StorageWrite } from '../../src/storage/StorageAdapter.ts'
import { WalCorruptError, WriteAheadLog, encodeRecord, readRecords } from '../../src/storage/WriteAheadLog.ts'

const put = (key: string, value: string): StorageWrite => ({ type: 'put', key, value: new TextEncoder().encode(value) })
const del = (key: string): StorageWrite => ({ type: 'del', key })
const plain = (writes: StorageWrite[]) => writes.map((w) => (w.type === 'put' ? { ...w, value: new TextDecoder().decode(w.value) } : w))

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-wal-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('WriteAheadLog', () => {
  it('round-trips records: keys with NUL and emoji, empty and binary values, deletions', () => {
    const writes: StorageWrite[] = [put('r\u0000k\u0000main\u0000x', 'v'), put('\u{1F600}', ''), del('gone'), { type: 'put', key: 'bin', value: new Uint8Array([0, 255, 7]) }]
    const { records, end } = readRecords(Buffer.concat([encodeRecord(7, writes), encodeRecord(8, [del('x')])]))
    expect(records.map((r) => r.seq)).toEqual([7, 8])
    expect(plain(records[0]!.writes)).toEqual(plain(writes))
    expect(end).toBe(encodeRecord(7, writes).length + encodeRecord(8, [del('x')]).length)
  })

  it('stops at a torn or damaged record', () => {
    const one = encodeRecord(1, [put('a', 'one')])
    const two = encodeRecord(2, [put('b', 'two')])
    expect(readRecords(Buffer.concat([one, two.subarray(0, two.length - 1)])).records).toHaveLength(1)
    const flipped = Buffer.from(two)
    flipped[flipped.length - 1]! ^= 1
    expect(readRecords(Buffer.concat([one, flipped])).records).toHaveLength(1)
    expect(readRecords(Buffer.concat([one, Buffer.alloc(64)])).records).toHaveLength(1)
  })

  it('recovers what was appended, in order, and ignores a torn tail', async () => {
    const wal = await WriteAheadLog.create(dir, 1)
    const appends = [wal.append([put('a', '1')]), wal.append([put('b', '2'), del('a')]), wal.append([put('c', '3')])]
    expect(appends.map((a) => a.seq)).toEqual([1, 2, 3])
    await Promise.all(appends.map((a) => a.durable))
    // A crash, mid-way through writing a fourth record.
    const [segment] = await readdir(dir)
    await appendFile(join(dir, segment!), encodeRecord(4, [put('d', '4')]).subarray(0, 9))
    const recovered = await WriteAheadLog.recover(dir)
    expect(recovered.map((r) => [r.seq, plain(r.writes)])).toEqual([
      [1, [{ type: 'put', key: 'a', value: '1' }]],
      [2, [{ type: 'put', key: 'b', value: '2' }, { type: 'del', key: 'a' }]],
      [3, [{ type: 'put', key: 'c', value: '3' }]],
    ])
    await wal.close()
  })

  it('starts new segments as it grows and deletes the ones wholly released', async () => {
    const wal = await WriteAheadLog.create(dir, 1, { segmentBytes: 200 })
    for (let i = 0; i < 10; i++) await wal.append([put(`key${i}`, 'x'.repeat(100))]).durable
    const segments = (await readdir(dir)).sort()
    expect(segments.length).toBeGreaterThanOrEqual(5)
    wal.release(6)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const left = await WriteAheadLog.recover(dir)
    // Nothing unreleased is gone; some released records may stay until their segment goes.
    expect(left.map((r) => r.seq)).toEqual(expect.arrayContaining([7, 8, 9, 10]))
    expect(left.length).toBeLessThan(10)
    await wal.close()
    // Not everything was released: close keeps the log.
    expect((await WriteAheadLog.recover(dir)).map((r) => r.seq).at(-1)).toBe(10)
  })

  it('deletes itself on close once every commit is released', async () => {
    const wal = await WriteAheadLog.create(dir, 1)
    await wal.append([put('a', '1')]).durable
    wal.release(1)
    await wal.close()
    expect(await readdir(dir)).toEqual([])
  })

  it('refuses to open over damage before the last segment', async () => {
    await writeFile(join(dir, 'wal-0000000000000001.log'), Buffer.concat([encodeRecord(1, [put('a', '1')]), Buffer.from('garbage')]))
    await writeFile(join(dir, 'wal-0000000000000002.log'), encodeRecord(2, [put('b', '2')]))
    await expect(WriteAheadLog.recover(dir)).rejects.toThrow(WalCorruptError)
  })

  it('starts empty over an old log once recovery is done', async () => {
    await writeFile(join(dir, 'wal-0000000000000001.log'), encodeRecord(1, [put('a', '1')]))
    const wal = await WriteAheadLog.create(dir, 2)
    await wal.append([put('b', '2')]).durable
    const names = await readdir(dir)
    expect(names).toEqual(['wal-0000000000000002.log'])
    expect(readRecords(await readFile(join(dir, names[0]!))).records.map((r) => r.seq)).toEqual([2])
    await wal.close()
  })
})

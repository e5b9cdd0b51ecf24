// Everything the CLI prints: colours (only on a terminal, never with NO_COLOR),
// tables, values, revisions, times; and JSON for scripts (bytes as
// {"$bytes": "<base64>"}, so every value survives the trip).
import type { RevisionInfo, Value } from '@weft/core'

export interface Stream {
  write(data: string | Uint8Array): unknown
  readonly isTTY?: boolean
}

const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
} as const
export type Style = keyof typeof CODES

export class Painter {
  readonly enabled: boolean

  constructor(enabled: boolean) {
    this.enabled = enabled
  }

  paint(style: Style, text: string): string {
    if (!this.enabled || text === '') return text
    const [on, off] = CODES[style]
    return `\u001b[${on}m${text}\u001b[${off}m`
  }
}

/** Colour for a stream: NO_COLOR wins, then --color/--no-color, then FORCE_COLOR, then "is it a terminal". */
export function colorFor(stream: Stream, env: Readonly<Record<string, string | undefined>>, flag: boolean | undefined): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (flag !== undefined) return flag
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true
  return stream.isTTY === true && env.TERM !== 'dumb'
}

export class Output {
  readonly stdout: Stream
  readonly stderr: Stream
  readonly out: Painter
  readonly err: Painter
  readonly json: boolean
  readonly quiet: boolean

  constructor(options: { stdout: Stream; stderr: Stream; json: boolean; quiet?: boolean; color: { out: boolean; err: boolean } }) {
    this.stdout = options.stdout
    this.stderr = options.stderr
    this.json = options.json
    this.quiet = options.quiet ?? false
    this.out = new Painter(options.color.out && !options.json)
    this.err = new Painter(options.color.err)
  }

  line(text = ''): void {
    this.stdout.write(`${text}\n`)
  }

  /** Secondary information (revision lines, progress) on stderr, so stdout stays clean for pipes. */
  note(text: string): void {
    if (!this.quiet) this.stderr.write(`${this.err.paint('dim', text)}\n`)
  }

  warn(text: string): void {
    this.stderr.write(`${this.err.paint('yellow', text)}\n`)
  }

  error(text: string): void {
    this.stderr.write(`${text}\n`)
  }

  /** One JSON document on stdout (indented), or one line of it (`compact`, for streams). */
  printJson(value: unknown, compact = false): void {
    this.stdout.write(`${JSON.stringify(value, jsonReplacer, compact ? undefined : 2)}\n`)
  }

  /** A table: headers, then rows; columns padded to their widest cell (ANSI colours ignored). */
  table(headers: readonly string[], rows: readonly (readonly string[])[]): void {
    const widths = headers.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))))
    const format = (cells: readonly string[]) =>
      cells
        .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell))))
        .join('  ')
        .trimEnd()
    this.line(this.out.paint('bold', format(headers)))
    for (const row of rows) this.line(format(row))
  }

  /** A value for people: indented JSON with colours; bytes as <N bytes: hex…>. */
  value(value: Value | undefined, indent = 2): string {
    return renderValue(value, this.out, indent, 0)
  }

  /** A value on one line (watch events, table cells). */
  compactValue(value: Value | undefined, max = 120): string {
    const text = renderValue(value, new Painter(false), 0, 0)
    return this.out.paint('green', text.length > max ? `${text.slice(0, max - 1)}…` : text)
  }

  /** `#3 0193f1c2a4b50000.n1 set 2024-11-22 10:00:00Z by ana: message` */
  revision(revision: RevisionInfo, now = Date.now(), painter: Painter = this.out): string {
    const parts = [
      painter.paint('yellow', `#${revision.index}`),
      painter.paint('dim', revision.id),
      paintKind(painter, revision.kind),
      `${formatTime(revision.ts)} ${painter.paint('dim', `(${formatAgo(now - revision.ts)})`)}`,
    ]
    if (revision.from) parts.push(`from ${revision.from.fork}@${revision.from.revision}`)
    if (revision.author !== undefined) parts.push(`by ${painter.paint('cyan', revision.author)}`)
    let text = parts.join(' ')
    if (revision.message !== undefined) text += `: ${revision.message}`
    return text
  }
}

export function paintKind(painter: Painter, kind: string): string {
  const style: Style = kind === 'delete' ? 'red' : kind === 'merge' ? 'magenta' : kind === 'fork' ? 'blue' : kind === 'revert' ? 'yellow' : 'green'
  return painter.paint(style, kind)
}

export function formatTime(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

export function formatAgo(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  if (ms < 0) return 'in the future'
  if (ms < 1000) return 'just now'
  return `${formatDuration(ms)} ago`
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ''}`
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600) ? `${Math.floor((s % 86_400) / 3600)}h` : ''}`
}

/** JSON.stringify replacer: bytes become {"$bytes": base64}. */
export function jsonReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') }
  // Buffer.toJSON runs before the replacer sees it: undo that.
  if (isBufferJson(value)) return { $bytes: Buffer.from(value.data).toString('base64') }
  return value
}

function isBufferJson(value: unknown): value is { type: 'Buffer'; data: number[] } {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)
}

const ANSI = /\u001b\[[0-9;]*m/g

export function visibleLength(text: string): number {
  return text.replace(ANSI, '').length
}

function renderValue(value: Value | undefined, painter: Painter, indent: number, depth: number): string {
  if (value === undefined) return painter.paint('dim', '(none)')
  if (value === null) return painter.paint('magenta', 'null')
  if (typeof value === 'boolean') return painter.paint('magenta', String(value))
  if (typeof value === 'number') return painter.paint('yellow', String(value))
  if (typeof value === 'string') return painter.paint('green', JSON.stringify(value))
  if (value instanceof Uint8Array) {
    const hex = Buffer.from(value.buffer, value.byteOffset, Math.min(value.byteLength, 16)).toString('hex')
    return painter.paint('cyan', `<${value.byteLength} bytes${value.byteLength ? `: ${hex}${value.byteLength > 16 ? '…' : ''}` : ''}>`)
  }
  const pad = indent > 0 ? '\n' + ' '.repeat(indent * (depth + 1)) : ''
  const end = indent > 0 ? '\n' + ' '.repeat(indent * depth) : ''
  const sep = indent > 0 ? ',' : ', '
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]'
    return `[${value.map((v: Value) => pad + renderValue(v, painter, indent, depth + 1)).join(sep)}${end}]`
  }
  const entries = Object.entries(value as Record<string, Value>)
  if (entries.length === 0) return '{}'
  return `{${entries.map(([k, v]) => `${pad}${painter.paint('cyan', JSON.stringify(k))}: ${renderValue(v, painter, indent, depth + 1)}`).join(sep)}${end}}`
}

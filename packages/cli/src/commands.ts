// Every `weft` command: its options, its help, and what it does. Each prints
// for people by default and one JSON document with --json (watch: one per line).
import { type Change, type Conflict, ErrorCode, MergeStrategy, type RevisionInfo, type Value } from '@weft/core'
import { type MemberInfo, type PrefixResult, WeftClientError } from '@weft/client'
import type { Context } from './Context.ts'
import { ExitCode, exitCodeOf } from './ExitCode.ts'
import { type Convergence, convergenceOf, lagOf } from './convergenceOf.ts'
import { type Output, type Painter, formatAgo, formatDuration, formatTime, paintKind } from './Output.ts'
import { type ValueEncoding, parseDiffSide, parseIfHead, parsePositiveInt, parseSelector, parseTime, parseValue } from './parse.ts'
import { UsageError } from './UsageError.ts'

export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  /** Placeholder in help: `--fork NAME`. */
  readonly value?: string
  readonly help: string
}

export interface Command {
  readonly name: string
  readonly aliases?: readonly string[]
  readonly summary: string
  readonly usage: readonly string[]
  readonly description?: string
  readonly options: Readonly<Record<string, OptionSpec>>
  readonly examples: readonly string[]
  run(ctx: Context): Promise<number | void>
}

const FORK: Record<string, OptionSpec> = { fork: { type: 'string', short: 'f', value: 'NAME', help: 'the fork (default main)' } }
const SELECTOR: Record<string, OptionSpec> = {
  revision: { type: 'string', short: 'r', value: 'ID', help: 'a revision id' },
  index: { type: 'string', short: 'i', value: 'N', help: "a revision's 1-based position in the fork's history" },
  at: { type: 'string', value: 'TIME', help: 'as of a time: ms since the epoch, an ISO date, or a time ago (5m, 2h, 1d)' },
}
const META: Record<string, OptionSpec> = {
  author: { type: 'string', short: 'a', value: 'NAME', help: 'recorded in the revision' },
  message: { type: 'string', short: 'm', value: 'TEXT', help: 'recorded in the revision' },
  'request-id': { type: 'string', value: 'ID', help: 'idempotency key: the same write sent again with it is applied once' },
}

// ---- reading ----------------------------------------------------------------------

const get: Command = {
  name: 'get',
  summary: "read a key's value: now, at a revision, or as of a time",
  usage: ['weft get KEY [--fork NAME] [--revision ID | --index N | --at TIME]'],
  description:
    'Prints the value as JSON on stdout and the revision it came from on stderr, so the output pipes cleanly (e.g. into jq). --raw prints strings without quotes and bytes as they are.',
  options: {
    ...FORK,
    ...SELECTOR,
    raw: { type: 'boolean', help: 'strings without quotes, bytes unencoded' },
  },
  examples: [
    'weft get deployments/api',
    'weft get deployments/api --index 3',
    'weft get deployments/api --at 2h            # as it was two hours ago',
    'weft get deployments/api --fork staging --json | jq .value.image',
  ],
  async run(ctx) {
    const [key] = ctx.positionals(1, 1, 'KEY') as [string]
    const selector = parseSelector(selectorOptions(ctx), ctx.now)
    const client = await ctx.client()
    const result = await client.get(key, { ...forkOption(ctx), ...selector })
    const { out } = ctx
    if (out.json) return out.printJson(result)
    if (ctx.flag('raw') && !result.deleted) writeRaw(ctx, result.value)
    else out.line(result.deleted ? out.out.paint('red', '(deleted)') : out.value(result.value))
    out.note(`${result.key}@${result.fork} ${out.revision(result.revision, Date.now(), out.err)}`)
  },
}

const keys: Command = {
  name: 'keys',
  aliases: ['ls'],
  summary: 'list live keys, optionally under a prefix',
  usage: ['weft keys [PREFIX] [--fork NAME] [--limit N] [--after KEY]'],
  description: 'Lists every live key in key order (page by page under the hood); --limit stops after N keys.',
  options: {
    ...FORK,
    prefix: { type: 'string', short: 'p', value: 'PREFIX', help: 'only keys starting with PREFIX (or give it as the argument)' },
    limit: { type: 'string', short: 'n', value: 'N', help: 'at most N keys' },
    after: { type: 'string', value: 'KEY', help: 'start after this key' },
  },
  examples: ['weft keys', 'weft keys deployments/', 'weft keys --fork staging --limit 10 --json'],
  async run(ctx) {
    const [positional] = ctx.positionals(0, 1, 'PREFIX')
    const prefix = positional ?? ctx.string('prefix')
    if (positional !== undefined && ctx.string('prefix') !== undefined) throw new UsageError('give the prefix once: as the argument or with --prefix', 'keys')
    const limit = ctx.string('limit') === undefined ? Infinity : parsePositiveInt(ctx.string('limit')!, '--limit')
    const client = await ctx.client()
    const found: { key: string; head: string; revisionCount: number }[] = []
    let after = ctx.string('after')
    let next: string | undefined
    for (;;) {
      const page = await client.keys({
        ...(prefix !== undefined && { prefix }),
        ...forkOption(ctx),
        limit: Math.min(1000, limit - found.length),
        ...(after !== undefined && { after }),
      })
      found.push(...page.keys)
      next = page.next
      if (next === undefined || found.length >= limit) break
      after = next
    }
    const { out } = ctx
    if (out.json) return out.printJson({ keys: found, ...(next !== undefined && { next }) })
    if (found.length === 0) return out.note(prefix ? `no keys under ${JSON.stringify(prefix)}` : 'no keys')
    out.table(
      ['KEY', 'REVISIONS', 'HEAD'],
      found.map((k) => [out.out.paint('cyan', k.key), String(k.revisionCount), out.out.paint('dim', k.head)]),
    )
    out.note(`${found.length} key${found.length === 1 ? '' : 's'}${next !== undefined ? ` (more after ${next}: --after ${shellQuote(next)})` : ''}`)
  },
}

const history: Command = {
  name: 'history',
  aliases: ['log'],
  summary: "a key's revisions, newest first",
  usage: ['weft history KEY [--fork NAME] [--limit N | --all] [--before ID] [--values] [--patches]'],
  options: {
    ...FORK,
    limit: { type: 'string', short: 'n', value: 'N', help: 'at most N revisions (default 20)' },
    all: { type: 'boolean', help: 'every revision' },
    before: { type: 'string', value: 'ID', help: 'start before this revision id' },
    values: { type: 'boolean', short: 'v', help: "each revision's value" },
    patches: { type: 'boolean', short: 'p', help: 'what each revision changed' },
  },
  examples: ['weft history deployments/api', 'weft history deployments/api --patches --limit 5', 'weft history deployments/api --all --json'],
  async run(ctx) {
    const [key] = ctx.positionals(1, 1, 'KEY') as [string]
    if (ctx.flag('all') && ctx.string('limit') !== undefined) throw new UsageError('give --limit or --all, not both', 'history')
    const limit = ctx.flag('all') ? Infinity : ctx.string('limit') === undefined ? 20 : parsePositiveInt(ctx.string('limit')!, '--limit')
    const client = await ctx.client()
    const revisions = []
    let before = ctx.string('before')
    let next: string | undefined
    for (;;) {
      const page = await client.history(key, {
        ...forkOption(ctx),
        limit: Math.min(1000, limit - revisions.length),
        ...(before !== undefined && { before }),
        ...(ctx.flag('values') && { values: true }),
        ...(ctx.flag('patches') && { patches: true }),
      })
      revisions.push(...page.revisions)
      next = page.next
      if (next === undefined || revisions.length >= limit) break
      before = next
    }
    const { out } = ctx
    if (out.json) return out.printJson({ revisions, ...(next !== undefined && { next }) })
    for (const revision of revisions) {
      out.line(out.revision(revision))
      if (ctx.flag('values')) out.line(`    ${revision.deleted ? out.out.paint('red', '(deleted)') : out.compactValue(revision.value, 200)}`)
      if (ctx.flag('patches')) for (const change of revision.patch ?? []) out.line(`    ${formatChange(out, change)}`)
    }
    if (next !== undefined) out.note(`older revisions: --before ${next}`)
  },
}

const info: Command = {
  name: 'info',
  summary: "a key's revision count, head, forks, ancestors and size",
  usage: ['weft info KEY [--fork NAME]'],
  options: { ...FORK },
  examples: ['weft info deployments/api', 'weft info deployments/api --fork staging --json'],
  async run(ctx) {
    const [key] = ctx.positionals(1, 1, 'KEY') as [string]
    const client = await ctx.client()
    const result = await client.info(key, forkOption(ctx))
    const { out } = ctx
    if (out.json) return out.printJson(result)
    const label = (text: string) => out.out.paint('bold', text.padEnd(10))
    out.line(`${label('key')}${out.out.paint('cyan', result.key)}`)
    out.line(`${label('fork')}${result.fork}`)
    out.line(`${label('revisions')}${result.revisionCount}`)
    out.line(`${label('head')}${out.revision(result.head)}`)
    out.line(`${label('deleted')}${result.deleted ? out.out.paint('red', 'yes') : 'no'}`)
    out.line(`${label('size')}${formatBytes(result.sizeBytes)}`)
    out.line(`${label('forks')}${result.forks.map((f) => (f.from ? `${f.fork} (from ${f.from.fork}@${f.from.revision})` : f.fork)).join(', ')}`)
    if (result.ancestors.length > 0) out.line(`${label('ancestors')}${result.ancestors.map((a) => `${a.fork}@${a.revision}`).join(' ← ')}`)
  },
}

const diff: Command = {
  name: 'diff',
  summary: 'what changed between two revisions, of one fork or two',
  usage: ['weft diff KEY [FROM [TO]] [--fork NAME]'],
  description: [
    'FROM and TO are FORK, FORK@N (index), FORK@REVISION-ID or FORK@TIME (ISO date, or a time ago like 1h);',
    'an empty FORK (just @N) means --fork (default main), and a bare FORK means its head.',
    "Without FROM: the head's parent against the head. Without TO: FROM against the head of --fork.",
  ].join('\n'),
  options: { ...FORK },
  examples: [
    'weft diff deployments/api                    # what the last revision changed',
    'weft diff deployments/api @1 @3',
    'weft diff deployments/api main staging       # two forks, head to head',
    'weft diff deployments/api main@1d main       # since yesterday',
  ],
  async run(ctx) {
    const [key, fromText, toText] = ctx.positionals(1, 3, 'KEY') as [string, string | undefined, string | undefined]
    const fork = ctx.string('fork')
    const client = await ctx.client()
    let from = fromText === undefined ? undefined : parseDiffSide(fromText, fork, ctx.now)
    const to = toText === undefined ? { ...(fork !== undefined && { fork }) } : parseDiffSide(toText, fork, ctx.now)
    if (from === undefined) {
      const head = await client.info(key, forkOption(ctx))
      if (head.revisionCount < 2) throw new UsageError(`${key} has one revision: nothing to compare it with`, 'diff')
      from = { ...(fork !== undefined && { fork }), index: head.revisionCount - 1 }
    }
    const result = await client.diff(key, from, to)
    const { out } = ctx
    if (out.json) return out.printJson(result)
    out.note(`from ${out.revision(result.from, Date.now(), out.err)}`)
    out.note(`to   ${out.revision(result.to, Date.now(), out.err)}`)
    if (result.changes.length === 0) return out.line(out.out.paint('dim', 'no changes'))
    for (const change of result.changes) out.line(formatChange(out, change))
  },
}

// ---- writing ------------------------------------------------------------------------

const set: Command = {
  name: 'set',
  aliases: ['put'],
  summary: 'write a value (JSON, a string, or bytes) from an argument, a file or stdin',
  usage: ['weft set KEY VALUE [options]', 'weft set KEY - [options]            # the value from stdin', 'weft set KEY --file PATH [options]'],
  description: 'VALUE is JSON unless --string (a plain string) or --bytes (base64 as an argument; raw from a file or stdin).',
  options: {
    ...FORK,
    file: { type: 'string', value: 'PATH', help: 'read the value from a file' },
    string: { type: 'boolean', short: 's', help: 'the value is a plain string, not JSON' },
    bytes: { type: 'boolean', help: 'the value is raw bytes (an argument: base64)' },
    'if-head': { type: 'string', value: 'ID', help: "write only if the fork's head is still this revision (none: only if the fork does not exist)" },
    ...META,
  },
  examples: [
    'weft set deployments/api \'{"image":"api:2","replicas":3}\' -m "roll out api:2"',
    'weft set motd --string "hello, world"',
    'cat config.json | weft set deployments/api -',
    'weft set certs/ca --file ca.der --bytes',
    'weft set deployments/api \'{"image":"api:3"}\' --if-head 0193f1c2a4b50000.n1',
  ],
  async run(ctx) {
    const [key, argument] = ctx.positionals(1, 2, 'KEY and a value (an argument, - for stdin, or --file PATH)') as [string, string | undefined]
    const file = ctx.string('file')
    if (ctx.flag('string') && ctx.flag('bytes')) throw new UsageError('give --string or --bytes, not both', 'set')
    const encoding: ValueEncoding = ctx.flag('string') ? 'string' : ctx.flag('bytes') ? 'bytes' : 'json'
    let value: Value
    if (file !== undefined) {
      if (argument !== undefined) throw new UsageError('give the value once: as an argument, - for stdin, or --file', 'set')
      value = parseValue(await readInput(() => ctx.io.readFile(file), `cannot read ${file}`), encoding, file)
    } else if (argument === '-') {
      value = parseValue(await readInput(() => ctx.io.readStdin(), 'cannot read stdin'), encoding, 'stdin')
    } else if (argument !== undefined) {
      value = parseValue(argument, encoding, 'VALUE')
    } else {
      throw new UsageError('missing the value: give it as an argument, - for stdin, or --file PATH', 'set')
    }
    const ifHead = parseIfHead(ctx.string('if-head'))
    const client = await ctx.client()
    const result = await client.set(key, value, { ...forkOption(ctx), ...(ifHead !== undefined && { ifHead }), ...ctx.meta() })
    printWrite(ctx, 'set', result)
  },
}

const del: Command = {
  name: 'del',
  aliases: ['delete', 'rm'],
  summary: 'delete a key (a tombstone revision: its history stays)',
  usage: ['weft del KEY [--fork NAME] [--if-head ID] [--author NAME] [--message TEXT]'],
  options: { ...FORK, 'if-head': set.options['if-head']!, ...META },
  examples: ['weft del deployments/old -m "retired"', 'weft del deployments/api --fork staging'],
  async run(ctx) {
    const [key] = ctx.positionals(1, 1, 'KEY') as [string]
    const ifHead = parseIfHead(ctx.string('if-head'))
    const client = await ctx.client()
    const result = await client.delete(key, { ...forkOption(ctx), ...(ifHead !== undefined && { ifHead }), ...ctx.meta() })
    printWrite(ctx, 'deleted', result)
  },
}

const revert: Command = {
  name: 'revert',
  aliases: ['rollback'],
  summary: "make a new revision with an earlier revision's value (history stays)",
  usage: ['weft revert KEY (--revision ID | --index N | --at TIME) [--fork NAME] [--author NAME] [--message TEXT]'],
  options: { ...FORK, ...SELECTOR, ...META },
  examples: ['weft revert deployments/api --index 3 -m "back to api:1"', 'weft revert deployments/api --at 30m   # as it was 30 minutes ago'],
  async run(ctx) {
    const [key] = ctx.positionals(1, 1, 'KEY') as [string]
    const selector = parseSelector(selectorOptions(ctx), ctx.now)
    if (Object.keys(selector).length === 0) throw new UsageError('say which revision to go back to: --revision ID, --index N or --at TIME', 'revert')
    const client = await ctx.client()
    const result = await client.revert(key, { ...forkOption(ctx), ...selector, ...ctx.meta() })
    printWrite(ctx, 'reverted', result)
  },
}

const fork: Command = {
  name: 'fork',
  summary: 'create a fork of a key (or of every key under a prefix)',
  usage: ['weft fork KEY TO [--from FORK] [--revision ID | --index N | --at TIME] [meta]', 'weft fork --prefix PREFIX TO [--from FORK] [--at TIME] [meta]'],
  description: 'Creates fork TO from fork --from (default main) at its head or at the selected revision. With --prefix, every live key under it ("" for all); only --at selects the revision then.',
  options: {
    prefix: { type: 'string', short: 'p', value: 'PREFIX', help: 'fork every live key under PREFIX' },
    from: { type: 'string', value: 'FORK', help: 'the fork to fork from (default main)' },
    ...SELECTOR,
    ...META,
  },
  examples: ['weft fork deployments/api staging', 'weft fork deployments/api hotfix --index 4', 'weft fork --prefix deployments/ staging -m "stage the release"'],
  async run(ctx) {
    const prefix = ctx.string('prefix')
    const from = ctx.string('from')
    const selector = parseSelector(selectorOptions(ctx), ctx.now)
    const client = await ctx.client()
    if (prefix !== undefined) {
      const [to] = ctx.positionals(1, 1, 'TO (the new fork)') as [string]
      if (selector.revision !== undefined || selector.index !== undefined) throw new UsageError('a prefix fork selects its revision with --at only', 'fork')
      const result = await client.forkPrefix(prefix, to, { ...(from !== undefined && { from }), ...(selector.at !== undefined && { at: selector.at }), ...ctx.meta() })
      return printPrefix(ctx, `forked into ${to}`, result)
    }
    const [key, to] = ctx.positionals(2, 2, 'KEY and TO (the new fork)') as [string, string]
    const result = await client.fork(key, to, { ...(from !== undefined && { from }), ...selector, ...ctx.meta() })
    printWrite(ctx, 'forked', result)
  },
}

const merge: Command = {
  name: 'merge',
  summary: 'three-way merge of one fork into another, for a key or a prefix',
  usage: ['weft merge KEY FROM [--into FORK] [--strategy S] [meta]', 'weft merge --prefix PREFIX FROM [--into FORK] [--strategy S] [meta]'],
  description: [
    'Merges fork FROM into --into (default main). Fields changed on one side take that side; lists merge;',
    'a leaf both sides changed is a conflict, settled by --strategy:',
    '  crdt    last writer wins (default)      ours    keep --into\'s value',
    "  theirs  take FROM's value               fail    change nothing, exit 4 and list the conflicts",
  ].join('\n'),
  options: {
    prefix: { type: 'string', short: 'p', value: 'PREFIX', help: 'merge every key under PREFIX' },
    into: { type: 'string', value: 'FORK', help: 'the fork to merge into (default main)' },
    strategy: { type: 'string', value: 'S', help: `conflict strategy: ${Object.keys(MergeStrategy).join(', ')} (default crdt)` },
    ...META,
  },
  examples: ['weft merge deployments/api staging', 'weft merge deployments/api staging --strategy fail || echo "conflicts"', 'weft merge --prefix deployments/ staging -m "release 42"'],
  async run(ctx) {
    const strategy = ctx.string('strategy')
    if (strategy !== undefined && !Object.hasOwn(MergeStrategy, strategy)) {
      throw new UsageError(`--strategy must be one of ${Object.keys(MergeStrategy).join(', ')}`, 'merge')
    }
    const into = ctx.string('into')
    const options = { ...(into !== undefined && { into }), ...(strategy !== undefined && { strategy: strategy as MergeStrategy }), ...ctx.meta() }
    const prefix = ctx.string('prefix')
    if (prefix !== undefined) {
      const [from] = ctx.positionals(1, 1, 'FROM (the fork to merge)') as [string]
      const client = await ctx.client()
      return printPrefix(ctx, `merged ${from}`, await client.mergePrefix(prefix, from, options))
    }
    const [key, from] = ctx.positionals(2, 2, 'KEY and FROM (the fork to merge)') as [string, string]
    const client = await ctx.client()
    const result = await client.merge(key, from, options)
    const { out } = ctx
    if (out.json) return out.printJson(result)
    printWrite(ctx, `merged ${from} →`, result)
    if (result.conflicts.length > 0) printConflicts(out, result.conflicts)
  },
}

// ---- live and cluster -----------------------------------------------------------------

const watch: Command = {
  name: 'watch',
  summary: 'stream the changes to a key or a prefix as they happen',
  usage: ['weft watch KEY [--fork NAME] [--after CURSOR | --since TIME] [--count N]', 'weft watch --prefix PREFIX [...]'],
  description:
    'Runs until Ctrl-C (or --count events), reconnecting by itself without losing or repeating events. On exit it prints the cursor to resume from (--after). --json prints one event per line.',
  options: {
    ...FORK,
    prefix: { type: 'string', short: 'p', value: 'PREFIX', help: 'every key under PREFIX ("" for all keys)' },
    after: { type: 'string', value: 'CURSOR', help: 'resume right after this cursor' },
    since: { type: 'string', value: 'TIME', help: 'replay from a time (ISO date, or a time ago like 10m)' },
    count: { type: 'string', short: 'n', value: 'N', help: 'stop after N events' },
  },
  examples: ['weft watch deployments/api', 'weft watch --prefix deployments/ --json | jq -c .value', 'weft watch --prefix "" --since 10m --count 100'],
  async run(ctx) {
    const [key] = ctx.positionals(0, 1, 'KEY')
    const prefix = ctx.string('prefix')
    if ((key === undefined) === (prefix === undefined)) throw new UsageError('give a KEY or --prefix PREFIX (one of them)', 'watch')
    const after = ctx.string('after')
    const sinceText = ctx.string('since')
    if (after !== undefined && sinceText !== undefined) throw new UsageError('give --after or --since, not both', 'watch')
    const count = ctx.string('count') === undefined ? Infinity : parsePositiveInt(ctx.string('count')!, '--count')
    const client = await ctx.client()
    const fork = ctx.string('fork')
    const from = { ...(fork !== undefined && { fork }), ...(after !== undefined && { after }), ...(sinceText !== undefined && { since: parseTime(sinceText, ctx.now) }) }
    const subscription = await client.watch(key !== undefined ? { key, ...from } : { prefix: prefix!, ...from })
    const { out } = ctx
    const stop = () => subscription.close()
    ctx.io.signal?.addEventListener('abort', stop, { once: true })
    if (ctx.io.signal?.aborted) stop()
    out.note(`watching ${key !== undefined ? key : `prefix ${JSON.stringify(prefix)}`}@${fork ?? 'main'} from ${subscription.cursor ?? 'now'} (Ctrl-C to stop)`)
    let seen = 0
    try {
      for await (const event of subscription) {
        seen++
        if (out.json) out.printJson(event, true)
        else {
          const value = event.deleted ? out.out.paint('red', '(deleted)') : out.compactValue(event.value)
          out.line(`${out.out.paint('dim', formatTime(event.revision.ts))}  ${out.out.paint('cyan', event.key)}@${event.fork}  ${out.out.paint('yellow', `#${event.revision.index}`)} ${paintKind(out.out, event.revision.kind)}  ${value}`)
        }
        if (seen >= count) break
      }
    } finally {
      ctx.io.signal?.removeEventListener('abort', stop)
      out.note(`resume with: --after ${subscription.cursor ?? ''}`)
    }
  },
}

const members: Command = {
  name: 'members',
  summary: "the cluster's nodes as the answering node sees them",
  usage: ['weft members'],
  description: [
    "Asks the node it reaches (through a gateway: the node the gateway picks) for the cluster's members:",
    'their state (alive, suspect after 3 missed heartbeats, dead after 10), when each was last heard from,',
    'uptime, version, live keys in main, revisions stored (FEED) and how many fewer than the most (LAG),',
    "1-minute load average; then each node's peer id, client API and libp2p addresses. * marks the answering node.",
  ].join('\n'),
  options: {},
  examples: ['weft members', 'weft members --url ws://127.0.0.1:7412/v1/ws    # node2\'s view', 'weft members --json | jq -r \'.members[] | select(.state != "alive") | .name\''],
  async run(ctx) {
    ctx.positionals(0, 0, '')
    const client = await ctx.client()
    const result = await client.members()
    const { out } = ctx
    if (out.json) return out.printJson(result)
    printMembers(ctx, result.members, Date.now())
  },
}

const status: Command = {
  name: 'status',
  summary: 'a summary of the cluster: nodes alive/suspect/dead, keys, convergence lag',
  usage: ['weft status'],
  description: [
    "Asks the node (or gateway) it reaches for the cluster's members and sums them up. Convergence lag:",
    'every node stores every revision once, so once the cluster has converged the alive nodes have stored',
    'the same number of revisions (their feed seqs agree); a node that is behind shows how many it lacks.',
    'The figures come from heartbeats (one a second), so they are as of the oldest heartbeat shown; a lag',
    'of a revision or two while writes flow is gossip in flight, a lag that stays is a node catching up.',
  ].join('\n'),
  options: {},
  examples: ['weft status', 'weft status --json | jq .convergence.spread'],
  async run(ctx) {
    ctx.positionals(0, 0, '')
    const client = await ctx.client()
    const started = performance.now()
    const pong = await client.ping()
    const rttMs = Math.round((performance.now() - started) * 10) / 10
    const { node, members: list } = await client.members()
    const now = Date.now()
    const by = (state: string) => list.filter((m) => m.state === state)
    const alive = by('alive')
    const keyCounts = alive.map((m) => m.keys).filter((n) => typeof n === 'number')
    const convergence = convergenceOf(list, now)
    const summary = {
      url: client.url,
      node,
      rttMs,
      clockSkewMs: Math.round(pong.time - now + rttMs / 2),
      nodes: { total: list.length, alive: alive.length, suspect: by('suspect').length, dead: by('dead').length },
      keys: keyCounts.length === 0 ? undefined : { min: Math.min(...keyCounts), max: Math.max(...keyCounts) },
      convergence,
      members: list,
    }
    const { out } = ctx
    if (out.json) return out.printJson(summary)
    const p = out.out
    const state = (n: number, word: string, style: 'green' | 'yellow' | 'red') => (n > 0 ? p.paint(style, `${n} ${word}`) : `${n} ${word}`)
    const label = (text: string) => p.paint('bold', text.padEnd(12))
    out.line(`${label('cluster')}${list.length} node${list.length === 1 ? '' : 's'}: ${state(alive.length, 'alive', 'green')}, ${state(summary.nodes.suspect, 'suspect', 'yellow')}, ${state(summary.nodes.dead, 'dead', 'red')}`)
    const answering = list.find((m) => m.self)?.name ?? node
    out.line(`${label('answering')}${answering} at ${client.url} (${rttMs} ms round trip)`)
    if (summary.keys) out.line(`${label('keys')}${summary.keys.min === summary.keys.max ? summary.keys.max : `${summary.keys.min}..${summary.keys.max} (not converged)`}`)
    if (convergence) out.line(`${label('convergence')}${describeConvergence(p, convergence)}`)
    out.line()
    printMembers(ctx, list, now, convergence)
  },
}

const ping: Command = {
  name: 'ping',
  summary: 'check the connection: the answering node and the round trip',
  usage: ['weft ping'],
  options: {},
  examples: ['weft ping', 'weft ping --url ws://10.0.0.5:7411/v1/ws'],
  async run(ctx) {
    ctx.positionals(0, 0, '')
    const client = await ctx.client()
    const started = performance.now()
    const result = await client.ping()
    const rttMs = Math.round((performance.now() - started) * 10) / 10
    if (ctx.out.json) return ctx.out.printJson({ ...result, rttMs })
    ctx.out.line(`${result.node}: ${rttMs} ms`)
  },
}

export const COMMANDS: readonly Command[] = [get, set, del, keys, history, info, diff, revert, fork, merge, watch, members, status, ping]

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name))
}

// ---- shared printing ------------------------------------------------------------------

function selectorOptions(ctx: Context): { revision?: string; index?: string; at?: string } {
  return {
    ...(ctx.string('revision') !== undefined && { revision: ctx.string('revision')! }),
    ...(ctx.string('index') !== undefined && { index: ctx.string('index')! }),
    ...(ctx.string('at') !== undefined && { at: ctx.string('at')! }),
  }
}

function forkOption(ctx: Context): { fork?: string } {
  const fork = ctx.string('fork')
  return fork === undefined ? {} : { fork }
}

async function readInput(read: () => Promise<Uint8Array>, what: string): Promise<Uint8Array> {
  try {
    return await read()
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message}`)
  }
}

function writeRaw(ctx: Context, value: Value | undefined): void {
  if (value instanceof Uint8Array) ctx.io.stdout.write(value)
  else if (typeof value === 'string') ctx.out.line(value)
  else ctx.out.line(JSON.stringify(value))
}

function printWrite(ctx: Context, verb: string, result: { key: string; fork: string; revision: RevisionInfo }): void {
  const { out } = ctx
  if (out.json) return out.printJson(result)
  out.line(`${out.out.paint('green', '✓')} ${verb} ${out.out.paint('cyan', result.key)}@${result.fork} ${out.revision(result.revision)}`)
}

/** Per-key results of a prefix fork or merge; a failed key makes the exit code (the first failure's). */
function printPrefix(ctx: Context, verb: string, result: PrefixResult): number {
  const { out } = ctx
  const failed = result.results.filter((r) => !r.ok)
  if (out.json) out.printJson(result)
  else if (result.results.length === 0) out.note('no keys under that prefix')
  else {
    out.table(
      ['KEY', 'RESULT', 'REVISION'],
      result.results.map((r) =>
        r.ok
          ? [out.out.paint('cyan', r.key), out.out.paint('green', `${verb}${r.conflicts?.length ? ` (${r.conflicts.length} conflict${r.conflicts.length === 1 ? '' : 's'})` : ''}`), out.revision(r.revision)]
          : [out.out.paint('cyan', r.key), out.out.paint('red', `${r.error.code}`), r.error.message],
      ),
    )
    out.note(`${result.results.length - failed.length} ok, ${failed.length} failed`)
  }
  const first = failed[0]
  return first && !first.ok ? exitCodeOf(first.error.code) : ExitCode.ok
}

export function printConflicts(out: Output, conflicts: readonly Conflict[]): void {
  out.line(out.out.paint('yellow', `${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}:`))
  out.table(
    ['PATH', 'OURS', 'THEIRS', 'WINNER'],
    conflicts.map((c) => [formatPath(c.path), c.ours === undefined ? '(removed)' : out.compactValue(c.ours, 40), c.theirs === undefined ? '(removed)' : out.compactValue(c.theirs, 40), c.winner]),
  )
}

function printMembers(ctx: Context, list: readonly MemberInfo[], now: number, convergence = convergenceOf(list, now)): void {
  const { out } = ctx
  const p = out.out
  const stateStyle = (state: string) => (state === 'alive' ? 'green' : state === 'suspect' ? 'yellow' : 'red') as 'green' | 'yellow' | 'red'
  const name = (m: MemberInfo) => `${m.name}${m.self ? p.paint('dim', ' *') : ''}`
  out.table(
    ['NAME', 'STATE', 'LAST SEEN', 'UPTIME', 'VERSION', 'KEYS', 'FEED', 'LAG', 'LOAD'],
    list.map((m) => {
      const lag = lagOf(m, convergence)
      return [
        name(m),
        p.paint(stateStyle(m.state), m.state),
        m.self ? 'self' : formatAgo(Math.max(0, now - m.lastSeen)),
        typeof m.uptimeMs === 'number' ? formatDuration(m.uptimeMs) : '-',
        m.version,
        String(m.keys),
        String(m.feedSeq),
        lag === undefined ? '-' : lag === 0 ? '0' : p.paint('yellow', String(lag)),
        typeof m.load === 'number' ? String(Math.round(m.load * 100) / 100) : '-',
      ]
    }),
  )
  out.line()
  // Peer ids and addresses are long: a table of their own, one address per line.
  const rows: string[][] = []
  for (const m of list) {
    const addresses = m.addresses.map((a) => shortAddress(a, m.peerId))
    rows.push([name(m), m.peerId, m.api, addresses[0] ?? '-'])
    for (const address of addresses.slice(1)) rows.push(['', '', '', address])
  }
  out.table(['NAME', 'PEER ID', 'API', 'ADDRESSES'], rows)
}

/** `/ip4/…/tcp/7400/p2p/<id>` without the `/p2p/<id>` that the PEER ID column already shows. */
function shortAddress(address: string, peerId: string): string {
  const suffix = `/p2p/${peerId}`
  return address.endsWith(suffix) ? address.slice(0, -suffix.length) : address
}

function describeConvergence(p: Painter, c: Convergence): string {
  const asOf = `as of ${c.asOfMs < 1000 ? 'now' : formatAgo(c.asOfMs)}`
  const revisions = (n: number) => `${n} revision${n === 1 ? '' : 's'}`
  if (c.spread === 0) return `${p.paint('green', 'converged')}: every alive node holds ${revisions(c.max)} (${asOf})`
  const behind = c.behind.map((b) => `${b.name} by ${b.revisions}`).join(', ')
  return `${p.paint('yellow', `lag ${revisions(c.spread)}`)}: behind ${behind} (most: ${revisions(c.max)}, ${asOf})`
}

function formatChange(out: Output, change: Change): string {
  const path = formatPath(change.path)
  if (change.op === 'add') return `${out.out.paint('green', `+ ${path}:`)} ${out.compactValue(change.after)}`
  if (change.op === 'remove') return `${out.out.paint('red', `- ${path}:`)} ${out.compactValue(change.before)}`
  return `${out.out.paint('yellow', `~ ${path}:`)} ${out.compactValue(change.before)} → ${out.compactValue(change.after)}`
}

function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(value)'
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$-]*$/.test(p) ? `${i === 0 ? '' : '.'}${p}` : `[${JSON.stringify(p)}]`)).join('')
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

function shellQuote(text: string): string {
  return /^[\w./:@-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`
}

/** The exit code for a failed command, and what to print about it. */
export function describeFailure(err: unknown): { exit: number; code?: string; message: string; details?: unknown } {
  if (err instanceof UsageError) return { exit: ExitCode.usage, message: err.message }
  if (err instanceof WeftClientError) {
    return { exit: exitCodeOf(err.code), code: err.code, message: err.message, ...(err.details !== undefined && { details: err.details }) }
  }
  return { exit: ExitCode.error, code: ErrorCode.INTERNAL, message: err instanceof Error ? err.message : String(err) }
}

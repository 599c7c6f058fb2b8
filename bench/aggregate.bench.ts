/**
 * Command-handling benchmark: `Aggregate.handle` (load, decide, append) on the DynamoDB
 * event store against a hand-written command handler doing the same DynamoDB work, on one
 * DynamoDB Local, in one process, in two comparisons measured in the same rounds:
 *
 * - shared client (the primary figure, what the library adds): both sides on one and the
 *   same SDK client;
 * - each side with its own client (what a user comparing their own code sees): the raw side
 *   on `new DynamoDBClient({ endpoint, region, credentials })` with the SDK's defaults, ours
 *   on the client `DynamoClient.layer({ endpoint, region, credentials })` builds.
 *
 * See bench/README.md.
 *
 *   npx tsx bench/aggregate.bench.ts      (also part of `npm run bench`)
 *
 * Prints a table and writes bench/results/aggregate.json.
 */
import { type AttributeValue, BatchWriteItemCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { EventStore } from "@dynamo-es/core"
import { DynamoClient, DynamoEventStore, Tables } from "@dynamo-es/dynamodb"
import { Fixtures } from "@dynamo-es/dynamodb-local"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Layer } from "effect"
import { performance } from "node:perf_hooks"
import { Account, amountOf, decide, initialState, metadataFor, rawHandle, rawItem } from "./account.js"
import {
  commandOf,
  countInto,
  emptyStats,
  fmt,
  lpad,
  makeEntries,
  median,
  pad,
  type Stats,
  startBench,
  totalRequests,
  writeResults
} from "./harness.js"

// -----------------------------------------------------------------------------
// settings: about two minutes on a 2-core machine, both comparisons (budget: 3 minutes)
// -----------------------------------------------------------------------------

/**
 * Per aggregate size: interleaved rounds (A,B,B,A,A,B,B,A, ...; A = ours, B = raw), each
 * side running `perRound` commands on a fresh stream pre-filled with `events` events (so
 * the aggregate grows from `events` to `events + perRound` in a segment, the same on both
 * sides). Short segments and many rounds: on a shared 2-core machine the speed of DynamoDB
 * Local drifts by +-30% within seconds, and only fine interleaving cancels that out.
 * `warmup`: commands per side first (on streams that keep growing), unmeasured: the JIT
 * needs many calls of every path (with a fifth of this, ours measured up to 0.4 ms of CPU
 * per command more).
 */
const SIZES = [
  { events: 20, rounds: 64, perRound: 5, warmup: 400 },
  { events: 100, rounds: 48, perRound: 10, warmup: 200 },
  { events: 200, rounds: 32, perRound: 20, warmup: 160 }
] as const
/** Warm-up segments per side and size (interleaved), on this many streams per side. */
const WARMUP_CHUNKS = 4
const WARMUP_STREAMS = 2
type Size = (typeof SIZES)[number]
const PREFILL_CONCURRENCY = 4

// -----------------------------------------------------------------------------
// recording: requests and capacity (SDK middleware), wall time and Node CPU
// -----------------------------------------------------------------------------

interface SideResult {
  ms: number
  commands: number
  /** CPU time of this Node process (user + system, all threads) during the measured segments. */
  cpuMicros: number
  /**
   * CPU time of the main thread alone: the JavaScript of the handler, the SDK and the
   * library, without the GC and JIT threads, which may be busy with the other side's work.
   */
  threadMicros: number
  stats: Stats
  /** Items written with PutItem and their size as DynamoDB bills it. */
  items: number
  itemBytes: number
}
const emptySide = (): SideResult => ({ ms: 0, commands: 0, cpuMicros: 0, threadMicros: 0, stats: emptyStats(), items: 0, itemBytes: 0 })

/** The side the middleware records into; `undefined` while pre-filling and warming up. */
let recording: SideResult | undefined

/** DynamoDB's size of a number: 1 byte per 2 significant digits, plus 1. */
const numberSize = (n: string) => Math.ceil(n.replace(/^-/, "").replace(/^0+|\.|e.*$/gi, "").replace(/0+$/, "").length / 2) + 1
/** Item size as DynamoDB bills it (attribute names + values). */
const itemSize = (item: Record<string, AttributeValue>): number => {
  let size = 0
  for (const [name, value] of Object.entries(item)) {
    size += Buffer.byteLength(name, "utf8")
    if (value.S !== undefined) size += Buffer.byteLength(value.S, "utf8")
    else if (value.N !== undefined) size += numberSize(value.N)
    else size += 1
  }
  return size
}

/** Requests and capacity (shared counter), and the size of every item written with PutItem. */
const instrument = (sdk: DynamoDBClient) => {
  countInto(() => recording?.stats)(sdk)
  sdk.middlewareStack.add(
    (next, context) => (args) => {
      const into = recording
      const item = (args.input as { Item?: Record<string, AttributeValue> }).Item
      if (into !== undefined && item !== undefined && commandOf(context) === "PutItem") {
        into.items++
        into.itemBytes += itemSize(item)
      }
      return next(args)
    },
    { step: "initialize", name: "dynamo-es-bench-item-size" }
  )
}

type Side = "ours" | "raw"
/**
 * Which SDK clients the two sides run on: `shared`, one and the same client (built by the
 * harness, passed to `DynamoClient.layer({ client })`, which leaves it as it is); `own`, each
 * side its own: the SDK's defaults for raw, the client `DynamoClient` builds for ours.
 */
type Clients = "shared" | "own"
const COMPARISONS: ReadonlyArray<Clients> = ["shared", "own"]

// -----------------------------------------------------------------------------
// pre-filled streams, identical on both sides
// -----------------------------------------------------------------------------

let streamSeq = 0
/** Same length for both sides (and both comparisons), so that items have the same size. */
const streamName = (size: Size, side: Side, clients: Clients) =>
  `${clients === "shared" ? "agg" : "own"}${String(size.events).padStart(3, "0")}-${side === "ours" ? "lib" : "raw"}-${
    (streamSeq++).toString(36).padStart(5, "0")
  }`

const prefill = async (sdk: DynamoDBClient, table: string, streams: ReadonlyArray<string>, events: number) => {
  const now = Date.now()
  const requests: Array<Array<{ PutRequest: { Item: Record<string, AttributeValue> } }>> = []
  for (const streamId of streams) {
    for (let start = 0; start < events; start += 25) {
      requests.push(Array.from({ length: Math.min(25, events - start) }, (_, i) => {
        const n = start + i
        const [event] = decide({ amount: amountOf(n) }, initialState)
        // One event a minute, as one command each would have written them.
        return { PutRequest: { Item: rawItem(streamId, n + 1, event!, metadataFor(n), now - (events - n) * 60_000) } }
      }))
    }
  }
  let next = 0
  const worker = async () => {
    while (next < requests.length) {
      let pending: Record<string, Array<{ PutRequest: { Item: Record<string, AttributeValue> } }>> = { [table]: requests[next++]! }
      while (Object.keys(pending).length > 0) {
        const r = await sdk.send(new BatchWriteItemCommand({ RequestItems: pending }))
        pending = (r.UnprocessedItems ?? {}) as typeof pending
      }
    }
  }
  await Promise.all(Array.from({ length: PREFILL_CONCURRENCY }, worker))
}

/**
 * The commands of one segment, round-robin over its streams, which are all at version
 * `base` when it starts. A measured segment has one fresh stream of `size.events` events.
 */
interface Segment {
  readonly side: Side
  readonly clients: Clients
  readonly streams: ReadonlyArray<string>
  readonly commands: number
  readonly base: number
}

// -----------------------------------------------------------------------------
// running
// -----------------------------------------------------------------------------

interface Env {
  readonly sdk: DynamoDBClient
  readonly table: string
  readonly store: EventStore.EventStoreShape
}

let commandSeq = 0

/** Runs one segment; records into `into` (nothing while warming up). Returns its milliseconds. */
const run = (envs: Record<Clients, Env>, size: Size, segment: Segment, into: SideResult | undefined) =>
  Effect.gen(function*() {
    const env = envs[segment.clients]
    const jobs = Array.from({ length: segment.commands }, (_, k) => {
      const n = commandSeq++
      return { streamId: segment.streams[k % segment.streams.length]!, command: { amount: amountOf(n) }, metadata: metadataFor(n) }
    })
    const expected = (k: number) => segment.base + 1 + Math.floor(k / segment.streams.length)
    recording = into
    const cpu0 = process.cpuUsage()
    const thread0 = process.threadCpuUsage()
    const t0 = performance.now()
    if (segment.side === "ours") {
      yield* Effect.gen(function*() {
        for (let k = 0; k < jobs.length; k++) {
          const job = jobs[k]!
          const handled = yield* Account.handle(job.streamId, job.command, { metadata: job.metadata })
          if (handled.version !== expected(k)) return yield* Effect.die(new Error(`ours: version ${handled.version}, expected ${expected(k)}`))
        }
      }).pipe(Effect.provideService(EventStore.EventStore, env.store))
    } else {
      yield* Effect.promise(async () => {
        for (let k = 0; k < jobs.length; k++) {
          const job = jobs[k]!
          const handled = await rawHandle(env.sdk, env.table, job.streamId, job.command, job.metadata)
          if (handled.version !== expected(k)) throw new Error(`raw: version ${handled.version}, expected ${expected(k)}`)
        }
      })
    }
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const thread = process.threadCpuUsage(thread0)
    recording = undefined
    if (into !== undefined) {
      into.ms += ms
      into.commands += segment.commands
      into.cpuMicros += cpu.user + cpu.system
      into.threadMicros += thread.user + thread.system
    }
    return ms
  })

interface Result {
  readonly size: Size
  readonly clients: Clients
  readonly ours: SideResult
  readonly raw: SideResult
  /** throughput ratio ours/raw of each round */
  readonly roundRatios: Array<number>
}


const program = Effect.gen(function*() {
  const { clientContext, elapsed, local, sdk } = yield* startBench(
    "dynamo-es command-handling benchmark: Aggregate.handle vs a hand-written handler (interleaved rounds per size)",
    instrument
  )
  const table = Fixtures.uniqueTableName("bench_agg")
  yield* Fixtures.scopedTable(Tables.eventsTable(table)).pipe(Effect.provide(clientContext))
  const store = yield* DynamoEventStore.make({ tableName: table }).pipe(Effect.provide(clientContext))
  // Each side with its own client, as users write them: the SDK's defaults (its retries and
  // logging middleware included) for the hand-written handler, DynamoClient's own for ours.
  const connection = { endpoint: local.endpoint, region: local.region, credentials: local.credentials }
  const rawSdk = yield* Effect.acquireRelease(
    Effect.sync(() => new DynamoDBClient(connection)),
    (client) => Effect.sync(() => client.destroy())
  )
  instrument(rawSdk)
  const ownContext = yield* Layer.build(DynamoClient.layer(connection))
  instrument(Context.get(ownContext, DynamoClient.DynamoClient).sdk)
  const ownStore = yield* DynamoEventStore.make({ tableName: table }).pipe(Effect.provide(ownContext))
  const envs: Record<Clients, Env> = { shared: { sdk, table, store }, own: { sdk: rawSdk, table, store: ownStore } }

  // Every segment's streams, pre-filled before anything is measured.
  const plan = SIZES.map((size) => {
    const warmup: Array<Segment> = []
    const perChunk = size.warmup / WARMUP_CHUNKS
    for (const clients of COMPARISONS) {
      const warmupStreams = {
        ours: Array.from({ length: WARMUP_STREAMS }, () => streamName(size, "ours", clients)),
        raw: Array.from({ length: WARMUP_STREAMS }, () => streamName(size, "raw", clients))
      }
      for (let c = 0; c < WARMUP_CHUNKS; c++) {
        for (const side of c % 2 === 0 ? (["ours", "raw"] as const) : (["raw", "ours"] as const)) {
          warmup.push({
            side,
            clients,
            commands: perChunk,
            streams: warmupStreams[side],
            base: size.events + (c * perChunk) / WARMUP_STREAMS
          })
        }
      }
    }
    // Each round: the shared-client pair, then the own-client pair, each in the order
    // A,B,B,A,A,B,B,A, ... over the rounds.
    const rounds: Array<ReadonlyArray<Segment>> = []
    for (let r = 0; r < size.rounds; r++) {
      const order: ReadonlyArray<Side> = r % 4 === 0 || r % 4 === 3 ? ["ours", "raw"] : ["raw", "ours"]
      rounds.push(COMPARISONS.flatMap((clients) =>
        order.map((side) => ({ side, clients, commands: size.perRound, base: size.events, streams: [streamName(size, side, clients)] }))
      ))
    }
    return { size, warmup, rounds }
  })
  for (const p of plan) {
    const streams = [...new Set([...p.warmup, ...p.rounds.flat()].flatMap((s) => s.streams))]
    yield* Effect.promise(() => prefill(sdk, table, streams, p.size.events))
    yield* Console.log(`pre-filled ${streams.length} streams of ${p.size.events} events (BatchWriteItem) (${elapsed()})`)
  }

  for (const p of plan) {
    for (const segment of p.warmup) yield* run(envs, p.size, segment, undefined)
    yield* Console.log(`warm-up: ${p.size.events}-event aggregates, ${p.size.warmup} commands per side (${elapsed()})`)
  }

  const results: Array<Result> = []
  for (const p of plan) {
    yield* Console.log(
      `measuring: ${p.size.events}-event aggregates: ${p.size.rounds} rounds x ${p.size.perRound} commands per side ... (${elapsed()})`
    )
    const result: Record<Clients, Result> = {
      shared: { size: p.size, clients: "shared", ours: emptySide(), raw: emptySide(), roundRatios: [] },
      own: { size: p.size, clients: "own", ours: emptySide(), raw: emptySide(), roundRatios: [] }
    }
    // A progress line per 8 rounds (A,B,B,A,A,B,B,A): the ratio of those rounds.
    const block = { shared: { ours: 0, raw: 0 }, own: { ours: 0, raw: 0 } }
    for (let r = 0; r < p.rounds.length; r++) {
      const ms: Record<Clients, Record<Side, number>> = { shared: { ours: 0, raw: 0 }, own: { ours: 0, raw: 0 } }
      for (const segment of p.rounds[r]!) {
        const into = result[segment.clients]
        ms[segment.clients][segment.side] = yield* run(envs, p.size, segment, segment.side === "ours" ? into.ours : into.raw)
      }
      for (const clients of COMPARISONS) {
        result[clients].roundRatios.push(ms[clients].raw / ms[clients].ours)
        block[clients].ours += ms[clients].ours
        block[clients].raw += ms[clients].raw
      }
      if ((r + 1) % 8 === 0 || r === p.rounds.length - 1) {
        const commands = p.size.perRound * (r % 8 + 1)
        const rate = (t: number) => fmt((commands * 1000) / t)
        const { own, shared } = block
        yield* Console.log(
          `  rounds ${r - (r % 8) + 1}-${r + 1}/${p.size.rounds}: shared client: ours ${rate(shared.ours)}, raw ${rate(shared.raw)} commands/s, ratio ${
            fmt(shared.raw / shared.ours, 2)
          }; own clients: ours ${rate(own.ours)}, raw ${rate(own.raw)}, ratio ${fmt(own.raw / own.ours, 2)}`
        )
        block.shared = { ours: 0, raw: 0 }
        block.own = { ours: 0, raw: 0 }
      }
    }
    results.push(result.shared, result.own)
  }

  // report
  const { entries, entry } = makeEntries()
  const lines: Array<string> = []
  lines.push("Aggregate.handle (load, decide, append 1 event) vs hand-written SDK handler; throughput ratio ours/raw: 1.00 = as fast")
  lines.push("Node CPU ms/cmd: CPU time of this Node process per command (DynamoDB Local not included); main: of its main thread alone")
  const head = [
    pad("aggregate", 18),
    lpad("ours", 10),
    lpad("raw SDK", 10),
    lpad("ours/raw", 9),
    lpad("per round: median (min-max)", 28),
    lpad("Node CPU ms/cmd: ours", 22),
    lpad("raw", 6),
    lpad("main: ours", 11),
    lpad("raw", 6),
    lpad("req ours", 9),
    lpad("req raw", 8),
    lpad("RCU ours", 9),
    lpad("RCU raw", 8),
    lpad("WCU ours", 9),
    lpad("WCU raw", 8),
    lpad("item B", 7)
  ]
  // One table per comparison, the shared client first.
  for (const r of COMPARISONS.flatMap((clients) => results.filter((x) => x.clients === clients))) {
    if (r.size === SIZES[0]) {
      lines.push("")
      lines.push(
        r.clients === "shared"
          ? "Shared client (the library's overhead alone): both sides on one and the same SDK client"
          : "Each side with its own client: raw on new DynamoDBClient({ endpoint, region, credentials }) (SDK defaults), " +
            "ours on the client DynamoClient.layer({ endpoint, region, credentials }) builds"
      )
      lines.push(head.join(" "))
      lines.push("-".repeat(head.join(" ").length))
    }
    const rate = (s: SideResult) => (s.commands * 1000) / s.ms
    const cpu = (s: SideResult) => s.cpuMicros / 1000 / s.commands
    const main = (s: SideResult) => s.threadMicros / 1000 / s.commands
    const req = (s: SideResult) => totalRequests(s.stats) / s.commands
    const rcu = (s: SideResult) => s.stats.read / s.commands
    const wcu = (s: SideResult) => s.stats.write / s.commands
    const itemBytes = (s: SideResult) => s.itemBytes / Math.max(1, s.items)
    const ratio = rate(r.ours) / rate(r.raw)
    const sorted = [...r.roundRatios].sort((a, b) => a - b)
    const label = `${r.size.events} events (+${r.size.perRound})`
    lines.push([
      pad(label, 18),
      lpad(`${fmt(rate(r.ours))}/s`, 10),
      lpad(`${fmt(rate(r.raw))}/s`, 10),
      lpad(fmt(ratio, 2), 9),
      lpad(`${fmt(median(r.roundRatios), 2)} (${fmt(sorted[0]!, 2)}-${fmt(sorted[sorted.length - 1]!, 2)})`, 28),
      lpad(fmt(cpu(r.ours), 3), 22),
      lpad(fmt(cpu(r.raw), 3), 6),
      lpad(fmt(main(r.ours), 3), 11),
      lpad(fmt(main(r.raw), 3), 6),
      lpad(fmt(req(r.ours), 2), 9),
      lpad(fmt(req(r.raw), 2), 8),
      lpad(fmt(rcu(r.ours), 2), 9),
      lpad(fmt(rcu(r.raw), 2), 8),
      lpad(fmt(wcu(r.ours), 2), 9),
      lpad(fmt(wcu(r.raw), 2), 8),
      lpad(fmt(itemBytes(r.ours)), 7)
    ].join(" "))
    // The shared-client figures keep the names of earlier results.
    const name = `handle a command on a ${r.size.events}-event aggregate${r.clients === "own" ? ", each side with its own client" : ""}`
    entry(`${name}: throughput`, rate(r.ours), "commands/s", rate(r.raw))
    entry(`${name}: throughput ratio ours/raw`, ratio, "ratio")
    entry(`${name}: throughput ratio ours/raw, median round`, median(r.roundRatios), "ratio")
    entry(`${name}: Node CPU per command`, cpu(r.ours), "ms/command", cpu(r.raw))
    entry(`${name}: Node main-thread CPU per command`, main(r.ours), "ms/command", main(r.raw))
    entry(`${name}: requests per command`, req(r.ours), "requests/command", req(r.raw))
    entry(`${name}: RCU per command`, rcu(r.ours), "RCU/command", rcu(r.raw))
    entry(`${name}: WCU per command`, wcu(r.ours), "WCU/command", wcu(r.raw))
    const byCommand = (s: SideResult) =>
      [...s.stats.requests.entries()].map(([c, n]) => `${c} ${fmt(n / s.commands, 2)}`).join(" + ")
    if (byCommand(r.ours) !== byCommand(r.raw)) lines.push(`  ! requests differ: ours ${byCommand(r.ours)}, raw ${byCommand(r.raw)}`)
    if (Math.abs(itemBytes(r.ours) - itemBytes(r.raw)) > 0.5) {
      lines.push(`  ! item sizes differ: ours ${fmt(itemBytes(r.ours), 1)} B, raw ${fmt(itemBytes(r.raw), 1)} B`)
    }
  }
  yield* writeResults("aggregate.json", lines, entries, elapsed)
  yield* Console.log("stopping DynamoDB Local ...")
})

program.pipe(Effect.scoped, NodeRuntime.runMain)

/**
 * Global log benchmark, on one DynamoDB Local, in one process, with one instrumented SDK
 * client for every side:
 *
 * - `readAll` of a 100,000-event log against a raw paginated `Query` of the same entry items
 *   doing the same JSON parsing (interleaved rounds; throughput, requests, RCU, heap);
 * - the sequencer's throughput: events indexed per second from a backlog in the stream;
 * - the lag from append to visible in `subscribeAll` while a writer appends at a steady rate
 *   (p50, p99), with the default poll intervals and with 100 ms ones;
 * - the write cost the log adds per event (WCU on the log table) in that steady state.
 *
 * - the write cost per event by workload at a steady rate: 10 streams, 1 hot stream, every
 *   event a new stream (entries, epoch markers and stream items apart);
 * - idle subscriptions at the head: RCU per idle poll per reader, each reader looking by itself
 *   (`headCacheTtl: 0`) and sharing looks (the default).
 *
 * Run with `npx tsx bench/log.bench.ts` (all sections) or `-- --only=cost,idle` (any of
 * read, sequencer, cost, idle). Prints a table and writes bench/results/log.json (only with
 * all sections).
 */
import { type AttributeValue, BatchWriteItemCommand, DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb"
import { EventLog } from "@dynamo-es/core"
import { DynamoEventLog, DynamoEventStore, DynamoSequencer, Tables } from "@dynamo-es/dynamodb"
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from "@aws-sdk/client-dynamodb-streams"
import { type DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Duration, Effect, Fiber, Schedule, Stream } from "effect"
import * as Fs from "node:fs"
import { performance } from "node:perf_hooks"
import { commandOf, consumedUnits, forEachLogEvent, startBench, WRITE_COMMANDS } from "./harness.js"

// -----------------------------------------------------------------------------
// settings: about 3 minutes on a 2-core machine
// -----------------------------------------------------------------------------

const LOG_EVENTS = 100_000
/** Events per seeded entry: what a sequencer writes from one busy GetRecords page. */
const ENTRY_EVENTS = 250
const ROUNDS = 4 // interleaved A,B,B,A,...
const SEQUENCER_EVENTS = 10_000
const LAG_RATE = 40 // events per second
const LAG_SECONDS = 15
const COST_EVENTS = 200 // per workload, at LAG_RATE
const IDLE_READERS = 10
const IDLE_SECONDS = 10

const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",")
const want = (section: "read" | "sequencer" | "cost" | "idle") => only === undefined || only.includes(section)

// -----------------------------------------------------------------------------
// request and capacity recorder, by table
// -----------------------------------------------------------------------------

interface Stats {
  requests: Map<string, number>
  read: number
  write: number
  byTable: Map<string, { read: number; write: number; requests: number }>
  /** Write units by `${table} ${command}`. */
  writesBy: Map<string, number>
}
const emptyStats = (): Stats => ({ requests: new Map(), read: 0, write: 0, byTable: new Map(), writesBy: new Map() })
const totalRequests = (s: Stats) => [...s.requests.values()].reduce((a, b) => a + b, 0)
let bucket: Stats | undefined
const instrument = (sdk: DynamoDBClient) =>
  sdk.middlewareStack.add(
    (next, context) => async (args) => {
      const stats = bucket
      if (stats === undefined) return next(args)
      const command = commandOf(context)
      const table = String((args.input as { TableName?: string }).TableName ?? "?")
      stats.requests.set(command, (stats.requests.get(command) ?? 0) + 1)
      const result = await next(args)
      const units = consumedUnits(result.output)
      const t = stats.byTable.get(table) ?? { read: 0, write: 0, requests: 0 }
      t.requests++
      if (WRITE_COMMANDS.has(command)) {
        stats.write += units
        t.write += units
        stats.writesBy.set(`${table} ${command}`, (stats.writesBy.get(`${table} ${command}`) ?? 0) + units)
      } else {
        stats.read += units
        t.read += units
      }
      stats.byTable.set(table, t)
      return result
    },
    { step: "initialize", name: "dynamo-es-bench-log-counter" }
  )

// -----------------------------------------------------------------------------
// data: events of about 300 bytes, as the event store writes them
// -----------------------------------------------------------------------------

const payloadFor = (n: number) => ({ amount: n % 1000, currency: "EUR", note: "x".repeat(150), at: 1_700_000_000_000 + n })
const metadata = JSON.stringify({ correlationId: "c0ffee00-0000-4000-8000-000000000000" })
const pad16 = (n: number) => String(n).padStart(16, "0")

/** The entry items of a log of `total` events in 1,000 streams (the layout of `DynamoEventLog`). */
const seedLog = (sdk: DynamoDBClient, logTable: string, total: number) =>
  Effect.promise(async () => {
    const versions = new Map<string, number>()
    const items: Array<Record<string, AttributeValue>> = [{ p: { S: "epochs" }, k: { S: pad16(0) } }]
    for (let first = 1; first <= total; first += ENTRY_EVENTS) {
      const events = []
      for (let n = first; n < Math.min(first + ENTRY_EVENTS, total + 1); n++) {
        const s = `account-${n % 1000}`
        const v = (versions.get(s) ?? 0) + 1
        versions.set(s, v)
        events.push({ s, v, i: `01J${pad16(n)}0000000`, y: "Deposited", d: JSON.stringify(payloadFor(n)), m: metadata, t: 1_700_000_000_000 + n })
      }
      items.push({
        p: { S: "e#0" },
        k: { S: pad16(first) },
        c: { N: String(events.length) },
        b: { S: JSON.stringify(events) },
        q: { S: "{}" },
        f: { N: "0" },
        w: { N: String(Date.now()) },
        r: { N: String(first - 1) }
      })
    }
    for (let i = 0; i < items.length; i += 25) {
      let request: Record<string, Array<{ PutRequest: { Item: Record<string, AttributeValue> } }>> | undefined = {
        [logTable]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }))
      }
      while (request !== undefined && Object.keys(request).length > 0) {
        const r = await sdk.send(new BatchWriteItemCommand({ RequestItems: request }))
        request = r.UnprocessedItems as typeof request
      }
    }
    return items.length - 1
  })

/** Event items straight into the events table (the stream sees them as appends). */
const seedEvents = (sdk: DynamoDBClient, eventsTable: string, total: number, prefix: string) =>
  Effect.promise(async () => {
    const versions = new Map<string, number>()
    for (let i = 0; i < total; i += 25) {
      const batch = []
      for (let n = i; n < Math.min(i + 25, total); n++) {
        const s = `${prefix}-${n % 100}`
        const v = (versions.get(s) ?? 0) + 1
        versions.set(s, v)
        batch.push({
          PutRequest: {
            Item: {
              s: { S: s },
              v: { N: String(v) },
              i: { S: `01J${pad16(n)}0000000` },
              y: { S: "Deposited" },
              d: { S: JSON.stringify(payloadFor(n)) },
              m: { S: metadata },
              t: { N: String(Date.now()) }
            }
          }
        })
      }
      let request: Record<string, Array<any>> | undefined = { [eventsTable]: batch }
      while (request !== undefined && Object.keys(request).length > 0) {
        const r = await sdk.send(new BatchWriteItemCommand({ RequestItems: request }))
        request = r.UnprocessedItems as typeof request
      }
    }
  })

/** The baseline of the sequencer: reading the whole stream with GetRecords, nothing written. */
const rawStreamRead = (local: DynamoDBLocal.DynamoDBLocal["Service"], sdk: DynamoDBClient, eventsTable: string) =>
  Effect.promise(async () => {
    const streams = new DynamoDBStreamsClient(Fixtures.sdkConfig(local))
    try {
      const { DescribeTableCommand } = await import("@aws-sdk/client-dynamodb")
      const arn = (await sdk.send(new DescribeTableCommand({ TableName: eventsTable }))).Table!.LatestStreamArn!
      const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription?.Shards ?? []
      let records = 0
      let requests = 0
      for (const shard of shards) {
        let iterator = (await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: shard.ShardId!, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator
        while (iterator !== undefined) {
          const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }))
          requests++
          records += page.Records?.length ?? 0
          if ((page.Records ?? []).length === 0) break
          iterator = page.NextShardIterator
        }
      }
      return { records, requests }
    } finally {
      streams.destroy()
    }
  })

// -----------------------------------------------------------------------------
// readAll vs raw Query
// -----------------------------------------------------------------------------

/** The raw side: a paginated Query of the entries, building the same envelope per event. */
const rawReadAll = (sdk: DynamoDBClient, logTable: string) =>
  Effect.promise(async () => {
    let count = 0
    let lastPosition = 0
    await forEachLogEvent<{ s: string; v: number; i: string; y: string; d: string; m?: string; t: number }>(sdk, logTable, (position, e) => {
      const event = {
        position,
        streamId: e.s,
        version: e.v,
        eventId: e.i,
        type: e.y,
        payload: JSON.parse(e.d),
        metadata: e.m !== undefined ? JSON.parse(e.m) : {},
        recordedAt: e.t
      }
      lastPosition = event.position
      count++
    })
    if (lastPosition !== count) throw new Error(`raw read: ${count} events, last position ${lastPosition}`)
    return count
  })

const oursReadAll = (log: EventLog.EventLogShape) =>
  Effect.gen(function*() {
    let count = 0
    let lastPosition = 0
    yield* Stream.runForEach(log.readAll(), (e) =>
      Effect.sync(() => {
        lastPosition = e.position
        count++
      }))
    if (lastPosition !== count) return yield* Effect.die(new Error(`readAll: ${count} events, last position ${lastPosition}`))
    return count
  })

interface HeapSample {
  before: number
  after: number
  peak: number
}

/** Runs `effect` recording stats, time and heap (sampled every 10 ms). */
const timed = <A, E, R>(stats: Stats, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const heap: HeapSample = { before: process.memoryUsage().heapUsed, after: 0, peak: 0 }
    heap.peak = heap.before
    const sampler = setInterval(() => {
      heap.peak = Math.max(heap.peak, process.memoryUsage().heapUsed)
    }, 10)
    bucket = stats
    const started = performance.now()
    const cpuBefore = process.cpuUsage()
    const value = yield* effect
    const cpu = process.cpuUsage(cpuBefore)
    const ms = performance.now() - started
    const cpuMs = (cpu.user + cpu.system) / 1000
    bucket = undefined
    clearInterval(sampler)
    heap.after = process.memoryUsage().heapUsed
    heap.peak = Math.max(heap.peak, heap.after)
    return { value, ms, heap, cpuMs }
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
const mb = (bytes: number) => `${fmt(bytes / 1_048_576, 1)} MB`

const program = Effect.gen(function*() {
  const { local, sdk, clientContext, elapsed } = yield* startBench(`dynamo-es global log benchmark (${ROUNDS} interleaved rounds of readAll)`, instrument)
  const eventsTable = Fixtures.uniqueTableName("logbench-events")
  const logTable = Fixtures.uniqueTableName("logbench-log")
  const readTable = Fixtures.uniqueTableName("logbench-read")
  yield* Effect.acquireRelease(
    Tables.ensureTables([Tables.eventsTable(eventsTable), Tables.logTable(logTable), Tables.logTable(readTable)]),
    () => Tables.deleteTables([eventsTable, logTable, readTable]).pipe(Effect.ignore)
  ).pipe(Effect.provide(clientContext))
  const entries: Array<{ name: string; value: number; unit: string; baseline?: number }> = []
  const entry = (name: string, value: number, unit: string, baseline?: number) =>
    entries.push(baseline === undefined ? { name, value: Math.round(value * 1000) / 1000, unit } : { name, value: Math.round(value * 1000) / 1000, unit, baseline: Math.round(baseline * 1000) / 1000 })
  const lines: Array<string> = []

  const startSequencer = (pollInterval: Duration.Input, batchWindow: Duration.Input = "500 millis") =>
    DynamoSequencer.run({ eventsTable, logTable, lease: false, pollInterval, batchWindow }).pipe(
      Effect.scoped,
      Effect.provide(clientContext),
      Effect.forkDetach
    )

  if (want("read")) {
    // --- readAll of 100,000 events ----------------------------------------------
    yield* Console.log(`seeding a log of ${fmt(LOG_EVENTS)} events (${fmt(ENTRY_EVENTS)} per entry, BatchWriteItem of the entry items, unmeasured) ... (${elapsed()})`)
    const entryCount = yield* seedLog(sdk, readTable, LOG_EVENTS)
    const log = yield* DynamoEventLog.make({ eventsTable, logTable: readTable }).pipe(Effect.provide(clientContext))
    yield* Console.log(`  ${fmt(entryCount)} entries (${elapsed()}); warm-up: 4 reads per side ...`)
    for (let i = 0; i < 4; i++) {
      yield* oursReadAll(log).pipe(Effect.provide(clientContext))
      yield* rawReadAll(sdk, readTable)
    }
    const sides = {
      ours: { stats: emptyStats(), ms: 0, cpuMs: 0, rounds: [] as Array<number>, heaps: [] as Array<HeapSample> },
      raw: { stats: emptyStats(), ms: 0, cpuMs: 0, rounds: [] as Array<number>, heaps: [] as Array<HeapSample> }
    }
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (["ours", "raw"] as const) : (["raw", "ours"] as const)
      for (const side of order) {
        const r = side === "ours"
          ? yield* timed(sides.ours.stats, oursReadAll(log).pipe(Effect.provide(clientContext)))
          : yield* timed(sides.raw.stats, rawReadAll(sdk, readTable))
        if (r.value !== LOG_EVENTS) return yield* Effect.die(new Error(`${side} read ${r.value} events`))
        sides[side].ms += r.ms
        sides[side].cpuMs += r.cpuMs
        sides[side].rounds.push(r.ms)
        sides[side].heaps.push(r.heap)
      }
      yield* Console.log(`  round ${round + 1}/${ROUNDS}: ours ${fmt(sides.ours.rounds[round]!)} ms, raw ${fmt(sides.raw.rounds[round]!)} ms`)
    }
    const perSecond = (ms: number) => (LOG_EVENTS * ROUNDS * 1000) / ms
    const ratio = perSecond(sides.ours.ms) / perSecond(sides.raw.ms)
    const roundRatios = sides.ours.rounds.map((ms, i) => sides.raw.rounds[i]! / ms).sort((a, b) => a - b)
    lines.push(`readAll of ${fmt(LOG_EVENTS)} events (${fmt(entryCount)} entries of ${ENTRY_EVENTS}), ${ROUNDS} interleaved rounds`)
    lines.push(`  ${"side".padEnd(10)} ${"events/s".padStart(10)} ${"Node CPU ms/1,000".padStart(18)} ${"requests".padStart(9)} ${"RCU".padStart(7)} ${"RCU/event".padStart(10)}  heap before / after / peak (last round)`)
    for (const side of ["ours", "raw"] as const) {
      const s = sides[side]
      const h = s.heaps[s.heaps.length - 1]!
      lines.push(
        `  ${side.padEnd(10)} ${fmt(perSecond(s.ms)).padStart(10)} ${fmt((s.cpuMs * 1000) / (LOG_EVENTS * ROUNDS), 1).padStart(18)} ${fmt(totalRequests(s.stats) / ROUNDS).padStart(9)} ${fmt(s.stats.read / ROUNDS, 1).padStart(7)} ${fmt(s.stats.read / ROUNDS / LOG_EVENTS, 4).padStart(10)}  ${mb(h.before)} / ${mb(h.after)} / ${mb(h.peak)}`
      )
    }
    lines.push(`  ours/raw throughput: ${fmt(ratio, 2)} (per round ${roundRatios.map((r) => fmt(r, 2)).join(", ")}); goal >= 0.8: ${ratio >= 0.8 ? "met" : "NOT met"}`)
    entry("readAll 100,000 events: throughput", perSecond(sides.ours.ms), "events/s", perSecond(sides.raw.ms))
    entry("readAll 100,000 events: throughput ratio ours/raw", ratio, "ratio")
    entry("readAll 100,000 events: Node CPU per 1,000 events", (sides.ours.cpuMs * 1000) / (LOG_EVENTS * ROUNDS), "ms", (sides.raw.cpuMs * 1000) / (LOG_EVENTS * ROUNDS))
    entry("readAll 100,000 events: requests", totalRequests(sides.ours.stats) / ROUNDS, "requests", totalRequests(sides.raw.stats) / ROUNDS)
    entry("readAll 100,000 events: RCU per event", sides.ours.stats.read / ROUNDS / LOG_EVENTS, "RCU/event", sides.raw.stats.read / ROUNDS / LOG_EVENTS)
    const peakOurs = Math.max(...sides.ours.heaps.map((h) => h.peak - h.before))
    entry("readAll 100,000 events: heap growth at peak (max over rounds)", peakOurs / 1_048_576, "MB", Math.max(...sides.raw.heaps.map((h) => h.peak - h.before)) / 1_048_576)

  }
  if (want("sequencer")) {
    // --- the sequencer: throughput from a backlog -------------------------------
    yield* Console.log(`sequencer throughput: ${fmt(SEQUENCER_EVENTS)} events written to the events table (BatchWriteItem), then the sequencer indexes the backlog ... (${elapsed()})`)
    yield* seedEvents(sdk, eventsTable, SEQUENCER_EVENTS, "backlog")
    const rawStarted = performance.now()
    const rawStream = yield* rawStreamRead(local, sdk, eventsTable)
    const rawStreamMs = performance.now() - rawStarted
    const writeLog = yield* DynamoEventLog.make({ eventsTable, logTable, pollInterval: "20 millis" }).pipe(Effect.provide(clientContext))
    const seqStats = emptyStats()
    bucket = seqStats
    const seqStarted = performance.now()
    let sequencer = yield* startSequencer("1 second")
    yield* writeLog.head.pipe(
      Effect.repeat({ until: (h) => h >= SEQUENCER_EVENTS, schedule: Schedule.spaced("10 millis") }),
      Effect.provide(clientContext)
    )
    const seqMs = performance.now() - seqStarted
    bucket = undefined
    const indexedPerSecond = (SEQUENCER_EVENTS * 1000) / seqMs
    const seqLog = seqStats.byTable.get(logTable) ?? { read: 0, write: 0, requests: 0 }
    lines.push("")
    lines.push(`sequencer: ${fmt(SEQUENCER_EVENTS)} events of a backlog indexed in ${fmt(seqMs)} ms: ${fmt(indexedPerSecond)} events/s (start included: DescribeTable, lease-free load, iterators)`)
    lines.push(`  log table: ${fmt(seqLog.requests)} requests, ${fmt(seqLog.write)} WCU (${fmt(seqLog.write / SEQUENCER_EVENTS, 3)} WCU/event, entries of up to 1,000 events); all requests: ${[...seqStats.requests].map(([c, n]) => `${c} ${n}`).join(", ")}`)
    lines.push(`  baseline: reading the same stream with GetRecords alone (nothing written): ${fmt(rawStream.records)} records, ${rawStream.requests} pages in ${fmt(rawStreamMs)} ms = ${fmt((rawStream.records * 1000) / rawStreamMs)} records/s; ratio ${fmt(indexedPerSecond / ((rawStream.records * 1000) / rawStreamMs), 2)}`)
    entry("sequencer: events indexed per second (backlog)", indexedPerSecond, "events/s", (rawStream.records * 1000) / rawStreamMs)
    entry("sequencer: log WCU per event (backlog, entries of up to 1,000)", seqLog.write / SEQUENCER_EVENTS, "WCU/event")

    // --- lag from append to visible, and the steady write cost ------------------
    const store = yield* DynamoEventStore.make({ tableName: eventsTable }).pipe(Effect.provide(clientContext))
    const lagRun = (label: string, sequencerPoll: Duration.Input, batchWindow: Duration.Input, readerPoll: Duration.Input) =>
      Effect.gen(function*() {
        yield* Fiber.interrupt(sequencer)
        sequencer = yield* startSequencer(sequencerPoll, batchWindow)
        const reader = yield* DynamoEventLog.make({ eventsTable, logTable, pollInterval: readerPoll }).pipe(Effect.provide(clientContext))
        const total = LAG_RATE * LAG_SECONDS
        const appendedAt = new Map<string, number>()
        const lags: Array<number> = []
        const subscriber = yield* reader.subscribeAll({ from: "end" }).pipe(
          Stream.filter((i) => i._tag === "Event"),
          Stream.map((i) => (i as { readonly event: EventLog.LoggedEvent }).event),
          Stream.filter((e) => e.streamId.startsWith(`lag${label}-`)),
          Stream.take(total),
          Stream.runForEach((e) =>
            Effect.sync(() => {
              const at = appendedAt.get(`${e.streamId}@${e.version}`)
              if (at !== undefined) lags.push(performance.now() - at)
            })
          ),
          Effect.provide(clientContext),
          Effect.forkDetach
        )
        yield* Effect.sleep("1500 millis") // the subscription reaches the head first
        const stats = emptyStats()
        bucket = stats
        const started = performance.now()
        for (let n = 0; n < total; n++) {
          const due = started + (n * 1000) / LAG_RATE
          const wait = due - performance.now()
          if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
          const streamId = `lag${label}-${n % 20}`
          const version = Math.floor(n / 20) + 1
          appendedAt.set(`${streamId}@${version}`, performance.now())
          yield* store.append(streamId, [{ type: "Deposited", payload: payloadFor(n) }], { expectedVersion: version - 1 }).pipe(
            Effect.provide(clientContext)
          )
        }
        yield* Fiber.join(subscriber)
        // Stream items are raised lazily (5 s by default): wait for the raise to be counted.
        yield* Effect.sleep("6 seconds")
        bucket = undefined
        lags.sort((a, b) => a - b)
        const logCost = stats.byTable.get(logTable) ?? { read: 0, write: 0, requests: 0 }
        const eventsCost = stats.byTable.get(eventsTable) ?? { read: 0, write: 0, requests: 0 }
        return { total, lags, logCost, eventsCost }
      })

    lines.push("")
    lines.push(`lag from append to visible in subscribeAll, a writer appending ${LAG_RATE} events/s to 20 streams for ${LAG_SECONDS} s`)
    for (const [label, seqPoll, window, readerPoll] of [["default", "1 second", "500 millis", "500 millis"], ["fast", "100 millis", "100 millis", "100 millis"]] as const) {
      yield* Console.log(`lag (${label}: sequencer polls every ${seqPoll}, batch window ${window}, reader polls every ${readerPoll}) ... (${elapsed()})`)
      const r = yield* lagRun(label, seqPoll, window, readerPoll)
      const p50 = percentile(r.lags, 50)
      const p99 = percentile(r.lags, 99)
      lines.push(`  ${label.padEnd(8)} sequencer poll ${seqPoll}, window ${window}, reader poll ${readerPoll}: p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms, max ${fmt(r.lags[r.lags.length - 1] ?? NaN)} ms (${r.lags.length} events)`)
      lines.push(`           write cost: log ${fmt(r.logCost.write)} WCU for ${r.total} events = ${fmt(r.logCost.write / r.total, 3)} WCU/event (events table: ${fmt(r.eventsCost.write / r.total, 2)} WCU/event); log reads while live: ${fmt(r.logCost.read, 1)} RCU`)
      entry(`lag append to visible (${label}): p50`, p50, "ms")
      entry(`lag append to visible (${label}): p99`, p99, "ms")
      entry(`steady ${LAG_RATE} events/s (${label} polls): log WCU per event`, r.logCost.write / r.total, "WCU/event")
    }
    yield* Fiber.interrupt(sequencer)
  }

  // --- write cost per event by workload, steady rate ---------------------------
  if (want("cost")) {
    const store = yield* DynamoEventStore.make({ tableName: eventsTable }).pipe(Effect.provide(clientContext))
    lines.push("")
    lines.push(`write cost the log adds per event, ${COST_EVENTS} events of ~300 B at ${LAG_RATE} events/s, default sequencer (poll 1 s, window 500 ms, stream items every 20 entries or 5 s)`)
    lines.push(`  ${"workload".padEnd(26)} ${"entries+markers".padStart(16)} ${"stream items".padStart(13)} ${"total".padStart(7)} ${"WCU/event".padStart(10)}`)
    const workloads = [
      ["10 streams", (n: number) => ({ streamId: `costten-${n % 10}`, version: Math.floor(n / 10) + 1 })],
      ["1 hot stream", (n: number) => ({ streamId: "costhot-0", version: n + 1 })],
      ["every event a new stream", (n: number) => ({ streamId: `costnew-${n}`, version: 1 })]
    ] as const
    for (const [name, streamOf] of workloads) {
      yield* Console.log(`cost: ${name} ... (${elapsed()})`)
      const sequencer = yield* startSequencer("1 second")
      yield* Effect.sleep("1 second") // started, at the head of the stream
      const stats = emptyStats()
      bucket = stats
      const started = performance.now()
      for (let n = 0; n < COST_EVENTS; n++) {
        const wait = started + (n * 1000) / LAG_RATE - performance.now()
        if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
        const { streamId, version } = streamOf(n)
        yield* store.append(streamId, [{ type: "Deposited", payload: payloadFor(n) }], { expectedVersion: version - 1 }).pipe(
          Effect.provide(clientContext)
        )
      }
      // The last entries, then the lazy raise of their stream items (5 s by default): until
      // every stream item holds its stream's last version.
      const category = streamOf(0).streamId.split("-")[0]!
      const last = new Map(Array.from({ length: COST_EVENTS }, (_, n) => [streamOf(n).streamId, streamOf(n).version] as const))
      yield* Effect.promise(() =>
        sdk.send(new QueryCommand({ TableName: logTable, KeyConditionExpression: "p = :p", ExpressionAttributeValues: { ":p": { S: `s#${category}` } }, ConsistentRead: true }))
      ).pipe(
        Effect.filterOrFail((r) => (r.Items ?? []).filter((i) => Number(i.v?.N) === last.get(i.k!.S!)).length === last.size),
        Effect.retry({ times: 600, schedule: Schedule.spaced("100 millis") })
      )
      yield* Effect.sleep("1 second")
      bucket = undefined
      yield* Fiber.interrupt(sequencer)
      const entriesWcu = stats.writesBy.get(`${logTable} PutItem`) ?? 0
      const itemsWcu = stats.writesBy.get(`${logTable} UpdateItem`) ?? 0
      const perEvent = (entriesWcu + itemsWcu) / COST_EVENTS
      lines.push(`  ${name.padEnd(26)} ${fmt(entriesWcu, 1).padStart(16)} ${fmt(itemsWcu, 1).padStart(13)} ${fmt(entriesWcu + itemsWcu, 1).padStart(7)} ${fmt(perEvent, 3).padStart(10)}`)
      entry(`steady ${LAG_RATE} events/s, ${name}: log WCU per event`, perEvent, "WCU/event")
      entry(`steady ${LAG_RATE} events/s, ${name}: stream items WCU per event`, itemsWcu / COST_EVENTS, "WCU/event")
    }
  }

  // --- idle subscriptions at the head ------------------------------------------
  if (want("idle")) {
    lines.push("")
    lines.push(`${IDLE_READERS} idle subscriptions at the head (reader poll 500 ms, ${IDLE_SECONDS} s, about ${IDLE_SECONDS * 2} polls each), nothing appended`)
    const idle = (headCacheTtl: Duration.Input | undefined) =>
      Effect.gen(function*() {
        const storage = yield* DynamoEventLog.makeStorage({ eventsTable, logTable, pollInterval: "500 millis", headCacheTtl }).pipe(
          Effect.provide(clientContext)
        )
        // Every look of a subscription is one readEntries call: count them.
        let polls = 0
        const reader = EventLog.make({
          ...storage,
          readEntries: (after, cursor, aligned) => Effect.suspend(() => (bucket !== undefined && polls++, storage.readEntries(after, cursor, aligned)))
        })
        const fibers = yield* Effect.forEach(Array.from({ length: IDLE_READERS }), () =>
          reader.subscribeAll({ from: "end" }).pipe(Stream.runDrain, Effect.provide(clientContext), Effect.forkDetach))
        yield* Effect.sleep("1 second") // every subscription at the head
        const stats = emptyStats()
        bucket = stats
        yield* Effect.sleep(Duration.seconds(IDLE_SECONDS))
        bucket = undefined
        yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
        const log = stats.byTable.get(logTable) ?? { read: 0, write: 0, requests: 0 }
        return { queries: log.requests, rcu: log.read, polls }
      })
    for (const [label, ttl] of [["each reader looks itself (headCacheTtl 0)", 0], ["shared looks (default, 250 ms)", undefined]] as const) {
      yield* Console.log(`idle: ${label} ... (${elapsed()})`)
      const r = yield* idle(ttl)
      // DynamoDB Local reports 0 RCU for a Query that finds nothing; DynamoDB bills 0.5 (an
      // eventually consistent read of up to 4 KB).
      const billed = r.queries * 0.5
      lines.push(`  ${label.padEnd(42)} ${fmt(r.polls).padStart(5)} polls, ${fmt(r.queries).padStart(5)} Query (${fmt(r.rcu, 1)} RCU reported, ${fmt(billed, 1)} billed by DynamoDB): ${fmt(r.queries / r.polls, 3)} Query = ${fmt(billed / r.polls, 3)} RCU per idle poll per reader`)
      entry(`idle subscriptions (${IDLE_READERS}), ${ttl === 0 ? "unshared" : "shared"}: Query per idle poll per reader`, r.queries / r.polls, "Query")
    }
  }

  yield* Console.log("")
  for (const line of lines) yield* Console.log(line)
  const dir = new URL("./results/", import.meta.url)
  Fs.mkdirSync(dir, { recursive: true })
  if (only === undefined) Fs.writeFileSync(new URL("log.json", dir), JSON.stringify(entries, null, 2) + "\n")
  yield* Console.log("")
  yield* Console.log(`${only === undefined ? "wrote bench/results/log.json; " : ""}total run time ${elapsed()}; stopping DynamoDB Local ...`)
})

program.pipe(Effect.scoped, NodeRuntime.runMain)

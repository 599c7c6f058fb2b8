/**
 * Event store benchmark: dynamo-es against hand-written AWS SDK calls doing the same
 * DynamoDB work, on one DynamoDB Local, in one process. See bench/README.md.
 *
 * Run with `npm run bench`. Prints a table and writes bench/results/latest.json.
 */
import {
  BatchWriteItemCommand,
  type AttributeValue,
  DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand
} from "@aws-sdk/client-dynamodb"
import { EventStore } from "@dynamo-es/core"
import { DynamoClient, DynamoEventStore, Tables } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Layer, Stream } from "effect"
import { commandOf, consumedUnits, fmt, lpad, makeEntries, pad, queryStream, startBench, WRITE_COMMANDS, writeResults } from "./harness.js"
import { performance } from "node:perf_hooks"
import { monotonicFactory } from "ulid"

// -----------------------------------------------------------------------------
// settings: the whole run takes about a minute on a 2-core machine (budget: 3 minutes)
// -----------------------------------------------------------------------------

const ROUNDS = 8 // interleaved A,B,B,A,A,B,B,A: short segments average out JVM drift and outside load
const WARMUP_CHUNKS = 4 // warm-up segments per side, also interleaved
const SETTINGS = {
  single: { warmup: 2_000, perRound: 300 }, // appends per side
  bare: { warmup: 600, perRound: 150 },
  batch: { warmup: 200, perRound: 50 }, // 10-event appends per side
  read: { warmup: 4, perRound: 1 } // full reads of the 10,000-event stream per side
}
const BATCH_SIZE = 10
const READ_STREAM_EVENTS = 10_000
const PAYLOAD_BYTES = 200

// -----------------------------------------------------------------------------
// request and capacity recorder (SDK middleware, shared by both sides)
// -----------------------------------------------------------------------------

interface Stats {
  requests: Map<string, number>
  /** CapacityUnits as reported by DynamoDB (Local), split by command kind. */
  reportedRead: number
  reportedWrite: number
  /** Reported units of TransactWriteItems only (Local gets these wrong). */
  reportedTransactWrite: number
  /** AWS's formula: 1 WCU per started KB per item written, 2 in a transaction. */
  formulaWrite: number
  formulaTransactWrite: number
  itemsWritten: number
  itemBytesWritten: number
  /** CPU time of this Node process (user + system) during the measured parts, in microseconds. */
  cpuMicros: number
}

const emptyStats = (): Stats => ({
  requests: new Map(),
  reportedRead: 0,
  reportedWrite: 0,
  reportedTransactWrite: 0,
  formulaWrite: 0,
  formulaTransactWrite: 0,
  itemsWritten: 0,
  itemBytesWritten: 0,
  cpuMicros: 0
})

const totalRequests = (s: Stats) => [...s.requests.values()].reduce((a, b) => a + b, 0)
/** Write units: what DynamoDB reports, except for transactions, where the formula is used. */
const writeUnits = (s: Stats) => s.reportedWrite - s.reportedTransactWrite + s.formulaTransactWrite

const utf8 = (s: string) => Buffer.byteLength(s, "utf8")
/** DynamoDB's size of a number: 1 byte per 2 significant digits, plus 1. */
const numberSize = (n: string) => Math.ceil(n.replace(/^-/, "").replace(/^0+|\.|e.*$/gi, "").replace(/0+$/, "").length / 2) + 1

/** Item size as DynamoDB bills it (attribute names + values). */
const itemSize = (item: Record<string, AttributeValue>): number => {
  let size = 0
  for (const [name, value] of Object.entries(item)) {
    size += utf8(name)
    if (value.S !== undefined) size += utf8(value.S)
    else if (value.N !== undefined) size += numberSize(value.N)
    else if (value.B !== undefined) size += value.B.length
    else size += 1
  }
  return size
}


/** The stats bucket the middleware records into; `undefined` while seeding and warming up. */
let bucket: Stats | undefined

const instrument = (sdk: DynamoDBClient) =>
  sdk.middlewareStack.add(
    (next, context) => async (args) => {
      const stats = bucket
      if (stats === undefined) return next(args)
      const command = commandOf(context)
      stats.requests.set(command, (stats.requests.get(command) ?? 0) + 1)
      const input = args.input as {
        Item?: Record<string, AttributeValue>
        TransactItems?: Array<{ Put?: { Item?: Record<string, AttributeValue> } }>
      }
      if (command === "PutItem" && input.Item !== undefined) {
        const size = itemSize(input.Item)
        stats.itemsWritten++
        stats.itemBytesWritten += size
        stats.formulaWrite += Math.ceil(size / 1024)
      } else if (command === "TransactWriteItems") {
        for (const t of input.TransactItems ?? []) {
          if (t.Put?.Item === undefined) continue
          const size = itemSize(t.Put.Item)
          stats.itemsWritten++
          stats.itemBytesWritten += size
          stats.formulaTransactWrite += 2 * Math.ceil(size / 1024)
        }
      }
      const result = await next(args)
      const units = consumedUnits(result.output)
      if (WRITE_COMMANDS.has(command)) {
        stats.reportedWrite += units
        if (command === "TransactWriteItems") stats.reportedTransactWrite += units
      } else {
        stats.reportedRead += units
      }
      return result
    },
    { step: "initialize", name: "dynamo-es-bench-recorder" }
  )

// -----------------------------------------------------------------------------
// events: identical items on both sides
// -----------------------------------------------------------------------------

const EVENT_TYPE = "MoneyDeposited"
const NOTE_PREFIX = "deposit reference "

/** A payload whose JSON is PAYLOAD_BYTES long (for amounts below 1,000,000). */
const payloadFor = (n: number) => {
  const base = { accountId: "acc-0042", amount: n % 1_000_000, currency: "EUR", note: "" }
  const fixed = JSON.stringify({ ...base, amount: 100_000 }).length
  return { ...base, note: (NOTE_PREFIX + "x".repeat(PAYLOAD_BYTES)).slice(0, PAYLOAD_BYTES - fixed) }
}
const metadataFor = (n: number) => ({ correlationId: `corr-${String(n % 1_000_000).padStart(6, "0")}` })

const newEvent = (n: number): EventStore.NewEvent => ({ type: EVENT_TYPE, payload: payloadFor(n), metadata: metadataFor(n) })
const newEvents = (count: number, n: number) => Array.from({ length: count }, (_, i) => newEvent(n + i))

const rawUlid = monotonicFactory()

/** The item the library writes for the same event: same attributes, same encoding. */
const rawItem = (streamId: string, version: number, n: number, now: number): Record<string, AttributeValue> => ({
  s: { S: streamId },
  v: { N: String(version) },
  i: { S: rawUlid(now) },
  y: { S: EVENT_TYPE },
  d: { S: JSON.stringify(payloadFor(n)) },
  t: { N: String(now) },
  m: { S: JSON.stringify(metadataFor(n)) }
})

// -----------------------------------------------------------------------------
// the two sides
// -----------------------------------------------------------------------------

type Store = EventStore.EventStoreShape

interface Env {
  readonly sdk: DynamoDBClient
  readonly table: string
  /** the library, as a command handler uses it (remembers the versions it wrote) */
  readonly store: Store
  /** the library without version memory: every numeric expected version is checked */
  readonly bareStore: Store
}

let streamSeq = 0
/** Same length for both sides, so that items have the same size. */
const freshStream = (kind: string, side: Side) =>
  `${kind}-${side === "ours" ? "lib" : "raw"}-${(streamSeq++).toString(36).padStart(5, "0")}`

type Side = "ours" | "raw"

const rawPut = (env: Env, item: Record<string, AttributeValue>) =>
  env.sdk.send(
    new PutItemCommand({
      TableName: env.table,
      Item: item,
      ConditionExpression: "attribute_not_exists(v)",
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      ReturnConsumedCapacity: "TOTAL"
    })
  )

const rawCurrentVersion = async (env: Env, streamId: string) => {
  const r = await env.sdk.send(
    new QueryCommand({
      TableName: env.table,
      KeyConditionExpression: "s = :s",
      ExpressionAttributeValues: { ":s": { S: streamId } },
      ProjectionExpression: "v",
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
      ReturnConsumedCapacity: "TOTAL"
    })
  )
  const v = r.Items?.[0]?.v?.N
  return v === undefined ? 0 : Number(v)
}

const rawTransact = (env: Env, streamId: string, base: number, n: number) => {
  const now = Date.now()
  return env.sdk.send(
    new TransactWriteItemsCommand({
      TransactItems: Array.from({ length: BATCH_SIZE }, (_, i) => ({
        Put: {
          TableName: env.table,
          Item: rawItem(streamId, base + 1 + i, n + i, now),
          ConditionExpression: "attribute_not_exists(v)",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const
        }
      })),
      ClientRequestToken: rawUlid(now),
      ReturnConsumedCapacity: "TOTAL"
    })
  )
}

/** Measured part of one segment: returns milliseconds. `record` is set around it only. */
const timed = <E, R>(record: Stats | undefined, work: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    bucket = record
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    yield* work
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    bucket = undefined
    if (record !== undefined) record.cpuMicros += cpu.user + cpu.system
    return ms
  })

const rawTimed = (record: Stats | undefined, work: () => Promise<unknown>) => timed(record, Effect.promise(work))

interface Measurement {
  readonly key: string
  readonly title: string
  /** Operations per segment while warming up / per measured round. */
  readonly warmup: number
  readonly perRound: number
  readonly eventsPerOp: number
  /** Runs `ops` operations on one side; only the measured part is recorded and timed. */
  readonly segment: (env: Env, side: Side, ops: number, record: Stats | undefined) => Effect.Effect<number, unknown>
}

const singleAppend: Measurement = {
  key: "append1",
  title: "append 1 event, proven version",
  ...SETTINGS.single,
  eventsPerOp: 1,
  segment: (env, side, ops, record) =>
    Effect.gen(function*() {
      const id = freshStream("single", side)
      if (side === "ours") {
        let version = (yield* env.store.append(id, [newEvent(0)], { expectedVersion: "noStream" })).version
        return yield* timed(record, Effect.gen(function*() {
          for (let k = 1; k <= ops; k++) {
            version = (yield* env.store.append(id, [newEvent(k)], { expectedVersion: version })).version
          }
        }))
      }
      yield* Effect.promise(() => rawPut(env, rawItem(id, 1, 0, Date.now())))
      return yield* rawTimed(record, async () => {
        for (let k = 1; k <= ops; k++) await rawPut(env, rawItem(id, k + 1, k, Date.now()))
      })
    })
}

const bareAppend: Measurement = {
  key: "append1bare",
  title: "append 1 event, bare expected version",
  ...SETTINGS.bare,
  eventsPerOp: 1,
  segment: (env, side, ops, record) =>
    Effect.gen(function*() {
      const id = freshStream("bare", side)
      if (side === "ours") {
        let version = (yield* env.bareStore.append(id, [newEvent(0)], { expectedVersion: "noStream" })).version
        return yield* timed(record, Effect.gen(function*() {
          for (let k = 1; k <= ops; k++) {
            version = (yield* env.bareStore.append(id, [newEvent(k)], { expectedVersion: version })).version
          }
        }))
      }
      yield* Effect.promise(() => rawPut(env, rawItem(id, 1, 0, Date.now())))
      return yield* rawTimed(record, async () => {
        let version = 1
        for (let k = 1; k <= ops; k++) {
          const actual = await rawCurrentVersion(env, id)
          if (actual !== version) throw new Error(`raw: conflict on ${id}: expected ${version}, found ${actual}`)
          await rawPut(env, rawItem(id, version + 1, k, Date.now()))
          version++
        }
      })
    })
}

const batchAppend: Measurement = {
  key: "append10",
  title: `append ${BATCH_SIZE} events, proven version`,
  ...SETTINGS.batch,
  eventsPerOp: BATCH_SIZE,
  segment: (env, side, ops, record) =>
    Effect.gen(function*() {
      const id = freshStream("batch", side)
      if (side === "ours") {
        let version = (yield* env.store.append(id, newEvents(BATCH_SIZE, 0), { expectedVersion: "noStream" })).version
        return yield* timed(record, Effect.gen(function*() {
          for (let k = 1; k <= ops; k++) {
            version = (yield* env.store.append(id, newEvents(BATCH_SIZE, k * BATCH_SIZE), { expectedVersion: version }))
              .version
          }
        }))
      }
      yield* Effect.promise(() => rawTransact(env, id, 0, 0))
      return yield* rawTimed(record, async () => {
        for (let k = 1; k <= ops; k++) await rawTransact(env, id, k * BATCH_SIZE, k * BATCH_SIZE)
      })
    })
}

const READ_STREAM = "read-10k"

interface RawEvent {
  readonly streamId: string
  readonly version: number
  readonly eventId: string
  readonly type: string
  readonly payload: unknown
  readonly metadata: unknown
  readonly recordedAt: number
}

/** The same work as `read`: every page, every item turned into an object with parsed JSON. */
const rawReadAll = async (env: Env, streamId: string) => {
  const events: Array<RawEvent> = []
  await queryStream(env.sdk, env.table, streamId, (item) => {
    events.push({
      streamId: item.s?.S ?? streamId,
      version: Number(item.v?.N),
      eventId: item.i?.S ?? "",
      type: item.y?.S ?? "",
      payload: JSON.parse(item.d?.S ?? "null"),
      metadata: item.m?.S !== undefined ? JSON.parse(item.m.S) : {},
      recordedAt: Number(item.t?.N)
    })
  })
  return events
}

const fullRead: Measurement = {
  key: "read10k",
  title: `read a ${READ_STREAM_EVENTS.toLocaleString("en-US")}-event stream`,
  ...SETTINGS.read,
  eventsPerOp: READ_STREAM_EVENTS,
  segment: (env, side, ops, record) =>
    side === "ours"
      ? timed(record, Effect.gen(function*() {
        for (let k = 0; k < ops; k++) {
          const events = yield* Stream.runCollect(env.store.read(READ_STREAM))
          if (events.length !== READ_STREAM_EVENTS) return yield* Effect.die(new Error(`ours read ${events.length} events`))
        }
      }))
      : rawTimed(record, async () => {
        for (let k = 0; k < ops; k++) {
          const events = await rawReadAll(env, READ_STREAM)
          if (events.length !== READ_STREAM_EVENTS) throw new Error(`raw read ${events.length} events`)
        }
      })
}

/** 10,000 events written with BatchWriteItem (25 per request), not measured. */
const seedReadStream = async (env: Env) => {
  const now = Date.now()
  for (let start = 0; start < READ_STREAM_EVENTS; start += 25) {
    let pending: Record<string, Array<{ PutRequest: { Item: Record<string, AttributeValue> } }>> = {
      [env.table]: Array.from({ length: Math.min(25, READ_STREAM_EVENTS - start) }, (_, i) => ({
        PutRequest: { Item: rawItem(READ_STREAM, start + i + 1, start + i, now) }
      }))
    }
    while (Object.keys(pending).length > 0) {
      const r = await env.sdk.send(new BatchWriteItemCommand({ RequestItems: pending }))
      pending = (r.UnprocessedItems ?? {}) as typeof pending
    }
  }
}

// -----------------------------------------------------------------------------
// running and reporting
// -----------------------------------------------------------------------------

interface SideResult {
  ms: number
  ops: number
  stats: Stats
}

interface Result {
  readonly m: Measurement
  readonly ours: SideResult
  readonly raw: SideResult
  /** throughput ratio ours/raw of each round */
  readonly roundRatios: Array<number>
}


const measure = (env: Env, m: Measurement) =>
  Effect.gen(function*() {
    const ours: SideResult = { ms: 0, ops: 0, stats: emptyStats() }
    const raw: SideResult = { ms: 0, ops: 0, stats: emptyStats() }
    const roundRatios: Array<number> = []
    for (let round = 0; round < ROUNDS; round++) {
      const order: ReadonlyArray<Side> = round % 2 === 0 ? ["ours", "raw"] : ["raw", "ours"]
      const ms: Record<Side, number> = { ours: 0, raw: 0 }
      for (const side of order) {
        const into = side === "ours" ? ours : raw
        ms[side] = yield* m.segment(env, side, m.perRound, into.stats)
        into.ms += ms[side]
        into.ops += m.perRound
      }
      roundRatios.push(ms.raw / ms.ours)
      const isRead = m.key === "read10k"
      const rate = (t: number) => fmt((m.perRound * (isRead ? m.eventsPerOp : 1) * 1000) / t)
      yield* Console.log(
        `  round ${round + 1}/${ROUNDS} (${order.join(", ")}): ours ${rate(ms.ours)}, raw ${rate(ms.raw)} ${
          isRead ? "events" : "appends"
        }/s, ratio ${fmt(ms.raw / ms.ours, 2)}`
      )
    }
    return { m, ours, raw, roundRatios } satisfies Result
  })

const perSecond = (s: SideResult) => (s.ops * 1000) / s.ms
const eventsOf = (r: Result, s: SideResult) => s.ops * r.m.eventsPerOp

const figures = (r: Result, s: SideResult) => {
  const events = eventsOf(r, s)
  const per = r.m.key === "read10k" ? 1000 : 1
  return {
    opsPerSecond: perSecond(s),
    eventsPerSecond: (events * 1000) / s.ms,
    /** Node CPU per operation (append, or full read), ms */
    cpuPerOp: s.stats.cpuMicros / 1000 / s.ops,
    requestsPerEvent: totalRequests(s.stats) / events,
    wcuPerEvent: writeUnits(s.stats) / events,
    rcuPerEvent: s.stats.reportedRead / events,
    bytesPerItem: s.stats.itemsWritten === 0 ? 0 : s.stats.itemBytesWritten / s.stats.itemsWritten,
    requests: [...s.stats.requests.entries()].map(([c, n]) => `${c} ${fmt((n * per) / events, (n * per) / events < 1 ? 3 : 2)}`)
      .join(" + ")
  }
}


const report = (results: ReadonlyArray<Result>) => {
  const lines: Array<string> = []
  const { entries, entry } = makeEntries()

  const head = [pad("measurement", 40), lpad("ours", 12), lpad("raw SDK", 12), lpad("ours/raw", 9), lpad("per round: median (min-max)", 28), lpad("Node CPU ms/op: ours", 21), lpad("raw", 6)]
  lines.push("Throughput (throughput ratio ours/raw: 1.00 = as fast as raw SDK calls, below 1 = slower;")
  lines.push("Node CPU ms/op: CPU time of this Node process per append or per full read, DynamoDB Local not included)")
  lines.push(head.join(" "))
  lines.push("-".repeat(head.join(" ").length))
  for (const r of results) {
    const o = figures(r, r.ours)
    const w = figures(r, r.raw)
    const isRead = r.m.key === "read10k"
    const unit = isRead ? "events/s" : "appends/s"
    const ours = isRead ? o.eventsPerSecond : o.opsPerSecond
    const raw = isRead ? w.eventsPerSecond : w.opsPerSecond
    const ratio = ours / raw
    const sorted = [...r.roundRatios].sort((a, b) => a - b)
    const median = sorted.length % 2 === 1
      ? sorted[(sorted.length - 1) / 2]!
      : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2
    const spread = `${fmt(median, 2)} (${fmt(sorted[0]!, 2)}-${fmt(sorted[sorted.length - 1]!, 2)})`
    lines.push([pad(r.m.title, 40), lpad(`${fmt(ours)}/s`, 12), lpad(`${fmt(raw)}/s`, 12), lpad(fmt(ratio, 2), 9), lpad(spread, 28), lpad(fmt(o.cpuPerOp, 3), 21), lpad(fmt(w.cpuPerOp, 3), 6)].join(" "))
    if (r.m.eventsPerOp > 1 && !isRead) {
      lines.push([pad("  = events", 40), lpad(`${fmt(o.eventsPerSecond)}/s`, 12), lpad(`${fmt(w.eventsPerSecond)}/s`, 12)].join(" "))
    }
    entry(`${r.m.title}: throughput`, ours, unit, raw)
    if (r.m.eventsPerOp > 1 && !isRead) entry(`${r.m.title}: event throughput`, o.eventsPerSecond, "events/s", w.eventsPerSecond)
    entry(`${r.m.title}: throughput ratio ours/raw`, ratio, "ratio")
    const op = isRead ? "read" : "append"
    entry(`${r.m.title}: Node CPU per ${op}`, o.cpuPerOp, `ms/${op}`, w.cpuPerOp)
  }

  lines.push("")
  lines.push("Cost per event (reads: per 1,000 events); WCU/RCU as DynamoDB bills them")
  const costHead = [pad("measurement", 40), lpad("req ours", 9), lpad("req raw", 8), lpad("WCU ours", 9), lpad("WCU raw", 8), lpad("RCU ours", 9), lpad("RCU raw", 8), lpad("item B", 7), "  requests (ours)"]
  lines.push(costHead.join(" "))
  lines.push("-".repeat(costHead.join(" ").length + 20))
  for (const r of results) {
    const o = figures(r, r.ours)
    const w = figures(r, r.raw)
    const isRead = r.m.key === "read10k"
    const k = isRead ? 1000 : 1
    const d = 2
    lines.push([
      pad(r.m.title, 40),
      lpad(fmt(o.requestsPerEvent * k, d), 9),
      lpad(fmt(w.requestsPerEvent * k, d), 8),
      lpad(fmt(o.wcuPerEvent * k, d), 9),
      lpad(fmt(w.wcuPerEvent * k, d), 8),
      lpad(fmt(o.rcuPerEvent * k, d), 9),
      lpad(fmt(w.rcuPerEvent * k, d), 8),
      lpad(isRead ? "" : fmt(o.bytesPerItem), 7),
      `  ${o.requests}`
    ].join(" "))
    const per = isRead ? "per 1,000 events" : "per event"
    entry(`${r.m.title}: requests ${per}`, o.requestsPerEvent * k, `requests/${isRead ? "1000 events" : "event"}`, w.requestsPerEvent * k)
    if (!isRead) entry(`${r.m.title}: WCU ${per}`, o.wcuPerEvent, "WCU/event", w.wcuPerEvent)
    entry(`${r.m.title}: RCU ${per}`, o.rcuPerEvent * k, `RCU/${isRead ? "1000 events" : "event"}`, w.rcuPerEvent * k)
    if (!isRead && Math.abs(o.bytesPerItem - w.bytesPerItem) > 0.5) {
      lines.push(`  ! item sizes differ: ours ${fmt(o.bytesPerItem, 1)} B, raw ${fmt(w.bytesPerItem, 1)} B`)
    }
  }
  const tx = results.find((r) => r.m.key === "append10")
  if (tx !== undefined) {
    const s = tx.ours.stats
    const txs = s.requests.get("TransactWriteItems") ?? 0
    lines.push("")
    lines.push(
      `WCU of TransactWriteItems are computed with AWS's formula (2 WCU per started KB per item): DynamoDB Local reported ` +
        `${fmt(s.reportedTransactWrite / Math.max(1, txs), 1)} units per ${BATCH_SIZE}-item transaction, ` +
        `the formula gives ${fmt(s.formulaTransactWrite / Math.max(1, txs), 1)}.`
    )
  }
  const single = results.find((r) => r.m.key === "append1")
  if (single !== undefined) {
    const s = single.ours.stats
    if (Math.abs(s.reportedWrite - s.formulaWrite) > 0.01 * Math.max(1, s.formulaWrite)) {
      lines.push(`! PutItem WCU reported by DynamoDB Local (${fmt(s.reportedWrite)}) differ from the formula (${fmt(s.formulaWrite)}).`)
    }
  }
  // One block of entries per measurement, in the order of the table.
  const block = (name: string) => results.findIndex((r) => name.startsWith(`${r.m.title}:`))
  entries.sort((a, b) => block(a.name) - block(b.name))
  return { lines, entries }
}

// -----------------------------------------------------------------------------
// program
// -----------------------------------------------------------------------------

const program = Effect.gen(function*() {
  // One instrumented SDK client for the library and for the raw baseline.
  const { local, sdk, clientContext, elapsed } = yield* startBench(`dynamo-es event store benchmark (${ROUNDS} interleaved rounds per measurement)`, instrument)
  const table = Fixtures.uniqueTableName("bench")
  // Deleted when the scope closes (matters when DYNAMODB_ENDPOINT points at a long-lived DynamoDB).
  yield* Fixtures.scopedTable(Tables.eventsTable(table)).pipe(Effect.provide(clientContext))
  const store = yield* DynamoEventStore.make({ tableName: table }).pipe(Effect.provide(clientContext))
  const bareStore = yield* DynamoEventStore.make({ tableName: table, versionCacheSize: 0 }).pipe(Effect.provide(clientContext))
  const env: Env = { sdk, table, store, bareStore }

  yield* Console.log(`seeding a ${READ_STREAM_EVENTS.toLocaleString("en-US")}-event stream (BatchWriteItem) ...`)
  yield* Effect.promise(() => seedReadStream(env))

  const measurements = [singleAppend, bareAppend, batchAppend, fullRead]
  yield* Console.log(`warm-up (both sides, interleaved; the JVM keeps getting faster for thousands of requests) ... (${elapsed()})`)
  for (const m of measurements) {
    const chunks = WARMUP_CHUNKS
    const perChunk = Math.max(1, Math.round(m.warmup / chunks))
    for (let c = 0; c < chunks; c++) {
      for (const side of c % 2 === 0 ? (["ours", "raw"] as const) : (["raw", "ours"] as const)) {
        yield* m.segment(env, side, perChunk, undefined)
      }
    }
    yield* Console.log(`  warm-up: ${m.title}: ${perChunk * chunks} per side (${elapsed()})`)
  }

  const results: Array<Result> = []
  for (const m of measurements) {
    yield* Console.log(`measuring: ${m.title}: ${ROUNDS} rounds x ${m.perRound} per side ... (${elapsed()})`)
    results.push(yield* measure(env, m))
  }

  const { lines, entries } = report(results)
  yield* writeResults("latest.json", lines, entries, elapsed)
  yield* Console.log("stopping DynamoDB Local ...")
})

program.pipe(Effect.scoped, NodeRuntime.runMain)

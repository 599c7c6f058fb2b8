/**
 * Projection benchmark: a rebuild of 100,000 events from the DynamoDB log into read models,
 * in each write mode, against a raw SDK loop doing the same work.
 *
 * 1. Pre-fill: the events go straight into the events table with `BatchWriteItem` (the item
 *    layout `DynamoEventStore` writes; 16 segments in parallel, each owning its streams, so
 *    that every stream's versions are written in order). DynamoDB Streams sees them as
 *    appends.
 * 2. The sequencer (`DynamoSequencer.run`, no lease) indexes that backlog into the log table;
 *    timed, with progress.
 * 3. The projection (a balance per account, read-modify-write, rows of about 250 bytes,
 *    `prefetch` naming the account row) runs `until: "caughtUp"` from the DynamoDB log
 *    (`DynamoEventLog`) into fresh rows, once per side: raw, guarded (25 conditional writes
 *    per `BatchExecuteStatement`), guardedPerRow (one conditional `PutItem` per row, the
 *    guarded mode of a storage without `writeGuardedBatch`), transactional, atLeastOnce, raw again (the JVM of DynamoDB Local keeps warming up: the two raw runs
 *    bracket the others; the ratio is to their mean). The **raw** side: a paginated `Query`
 *    of the same log entries, the JSON parsed as the reader does, then per batch of 500
 *    events: consistent `BatchGetItem` of the touched rows, the fold in plain JavaScript,
 *    `BatchWriteItem` of the changed rows (8 in flight), one checkpoint `PutItem`.
 *
 * Two unreported runs (raw, atLeastOnce) warm up first (`--warmup=` to change them).
 *
 * Heap (`heapUsed`) is sampled every 100 ms during each side; the report gives the heap
 * before, the peak growth and the growth at the end.
 *
 * Run with `npx tsx bench/projection.bench.ts` (`-- --events=20000` for a shorter run;
 * `--sides=raw,guarded,raw` to pick sides, `guarded32` is guarded with 32 requests in flight;
 * `rawGuarded` is the raw loop writing what guarded mode writes: the same conditional PartiQL
 * statements, 25 per `BatchExecuteStatement`).
 * Prints a table and writes bench/results/projection.json.
 */
import { type AttributeValue, BatchExecuteStatementCommand, BatchGetItemCommand, type BatchExecuteStatementCommandOutput, type BatchGetItemCommandOutput, BatchWriteItemCommand, type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { EventLog, Projection, ReadModel } from "@dynamo-es/core"
import { DynamoEventLog, DynamoReadModelStore, DynamoSequencer, Tables } from "@dynamo-es/dynamodb"
import { Fixtures } from "@dynamo-es/dynamodb-local"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Option, Schedule, Schema } from "effect"
import { performance } from "node:perf_hooks"
import { countInto, emptyStats, fmt, forEachLogEvent, lpad, makeEntries, pad, startBench, type Stats, totalRequests, writeResults } from "./harness.js"

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const EVENTS = Number(flag("events") ?? 100_000)
const ACCOUNTS = 1_000
const BATCH = 500
const SEGMENTS = 16

const SIDES = ["raw", "rawGuarded", "guarded", "guardedPerRow", "guarded32", "transactional", "atLeastOnce"] as const
type Side = typeof SIDES[number]
const order: ReadonlyArray<Side> = (flag("sides")?.split(",") ?? ["raw", "rawGuarded", "guarded", "guardedPerRow", "transactional", "atLeastOnce", "rawGuarded", "raw"]).map((s) => {
  if (!(SIDES as ReadonlyArray<string>).includes(s)) throw new Error(`unknown side ${s} (one of ${SIDES.join(", ")})`)
  return s as Side
})

/** Unreported runs first: DynamoDB Local's JVM is still warming up after the pre-fill. */
const warmup: ReadonlyArray<Side> = (flag("warmup") ?? "raw,atLeastOnce").split(",").filter((s) => s !== "").map((s) => {
  if (!(SIDES as ReadonlyArray<string>).includes(s)) throw new Error(`unknown side ${s} (one of ${SIDES.join(", ")})`)
  return s as Side
})

let bucket: Stats | undefined
/**
 * DynamoDB Local reports no consumed capacity for `BatchExecuteStatement` (the guarded mode's
 * batched writes): each statement that succeeds is counted as AWS bills it, the `PutItem` or
 * `UpdateItem` it is, 1 WCU (the bench's rows are under 1 KB). A failed statement counts 0
 * here (it is settled by a `PutItem`, counted as usual; AWS bills the failure too).
 */
const instrument = (sdk: DynamoDBClient) => {
  countInto(() => bucket)(sdk)
  sdk.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args)
      const stats = bucket
      const output = result.output as BatchExecuteStatementCommandOutput
      if (stats !== undefined && context.commandName === "BatchExecuteStatementCommand" && output.ConsumedCapacity === undefined) {
        stats.write += (output.Responses ?? []).filter((r) => r.Error === undefined).length
      }
      return result
    },
    { step: "initialize", name: "projection-bench-statement-capacity" }
  )
}

const Deposited = Schema.Struct({ amount: Schema.Number })
const Balance = Schema.Struct({ id: Schema.String, balance: Schema.Number, count: Schema.Number, note: Schema.String })
type Balance = typeof Balance.Type
const NOTE = "x".repeat(150)

const projection = (name: string) =>
  Projection.make({
    name,
    events: Deposited,
    readModels: { balances: Projection.readModel(`${name}-balances`, Balance) },
    prefetch: (event) => ({ balances: event.streamId }),
    handle: (event, { balances }) =>
      Effect.gen(function*() {
        const current = Option.getOrElse(yield* balances.find(event.streamId), () => ({ id: event.streamId, balance: 0, count: 0, note: NOTE }))
        yield* balances.save({ ...current, balance: current.balance + event.payload.amount, count: current.count + 1 })
      })
  })

// -----------------------------------------------------------------------------
// pre-fill: events of about 250 bytes, accounts drawn at random (seeded)
// -----------------------------------------------------------------------------

const pad16 = (n: number) => String(n).padStart(16, "0")
const accountOf = (() => {
  const accounts = new Uint16Array(EVENTS)
  let seed = 42
  for (let n = 0; n < EVENTS; n++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
    accounts[n] = seed % ACCOUNTS
  }
  return (n: number) => `acc-${String(accounts[n]).padStart(5, "0")}`
})()

/** `BatchWriteItem` of every event, `SEGMENTS` in parallel (segment k: the accounts with index % SEGMENTS = k). */
const prefill = (sdk: DynamoDBClient, eventsTable: string, progress: (written: number) => void) =>
  Effect.promise(async () => {
    const versions = new Map<string, number>()
    const items: Array<Array<Record<string, AttributeValue>>> = Array.from({ length: SEGMENTS }, () => [])
    for (let n = 0; n < EVENTS; n++) {
      const s = accountOf(n)
      const v = (versions.get(s) ?? 0) + 1
      versions.set(s, v)
      items[Number(s.slice(4)) % SEGMENTS]!.push({
        s: { S: s },
        v: { N: String(v) },
        i: { S: `01J${pad16(n)}0000000` },
        y: { S: "Deposited" },
        d: { S: JSON.stringify({ amount: n % 100, currency: "EUR", reference: `ref-${n}`, note: "y".repeat(120) }) },
        m: { S: "{}" },
        t: { N: String(1_700_000_000_000 + n) }
      })
    }
    let written = 0
    await Promise.all(items.map(async (segment) => {
      for (let i = 0; i < segment.length; i += 25) {
        let request: Record<string, Array<any>> | undefined = { [eventsTable]: segment.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) }
        while (request !== undefined && Object.keys(request).length > 0) {
          const r = await sdk.send(new BatchWriteItemCommand({ RequestItems: request }))
          request = r.UnprocessedItems as typeof request
        }
        written += Math.min(25, segment.length - i)
        progress(written)
      }
    }))
  })

// -----------------------------------------------------------------------------
// the raw side
// -----------------------------------------------------------------------------

/**
 * Query of the log's entries, then per batch: BatchGetItem the touched rows, fold, write,
 * checkpoint PutItem. The write is `BatchWriteItem`, or with `guarded` the writes guarded
 * mode sends: PartiQL `BatchExecuteStatement`s, an `INSERT` per row read absent and an
 * `UPDATE ... WHERE Pos < ?` per row read present, each row carrying its last event's position.
 */
const raw = (sdk: DynamoDBClient, logTable: string, table: string, name: string, onBatch: (position: number) => void, guarded = false) =>
  Effect.promise(async () => {
    const rowsName = `${name}-balances`
    const key = (id: string): Record<string, AttributeValue> => ({ Name: { S: rowsName }, Id: { S: id } })
    let batch: Array<{ position: number; streamId: string; amount: number }> = []
    let applied = 0
    const flush = async () => {
      const ids = [...new Set(batch.map((e) => e.streamId))]
      const rows = new Map<string, Balance>()
      const present = new Set<string>()
      const positions = new Map<string, number>()
      for (let j = 0; j < ids.length; j += 100) {
        let keys: Array<Record<string, AttributeValue>> | undefined = ids.slice(j, j + 100).map(key)
        while (keys !== undefined && keys.length > 0) {
          const r: BatchGetItemCommandOutput = await sdk.send(new BatchGetItemCommand({
            RequestItems: { [table]: { Keys: keys, ConsistentRead: true } },
            ReturnConsumedCapacity: "TOTAL"
          }))
          for (const item of r.Responses?.[table] ?? []) {
            rows.set(item.Id!.S!, JSON.parse(item.Data!.S!))
            present.add(item.Id!.S!)
          }
          keys = r.UnprocessedKeys?.[table]?.Keys
        }
      }
      for (const e of batch) {
        const current = rows.get(e.streamId) ?? { id: e.streamId, balance: 0, count: 0, note: NOTE }
        rows.set(e.streamId, { ...current, balance: current.balance + e.amount, count: current.count + 1 })
        positions.set(e.streamId, e.position)
      }
      const puts = [...rows.values()]
      const chunks: Array<Array<Balance>> = []
      for (let j = 0; j < puts.length; j += 25) chunks.push(puts.slice(j, j + 25))
      await Promise.all(Array.from({ length: 8 }, async (_, w) => {
        for (let c = w; c < chunks.length; c += 8) {
          if (guarded) {
            const r: BatchExecuteStatementCommandOutput = await sdk.send(new BatchExecuteStatementCommand({
              Statements: chunks[c]!.map((b) => {
                const data = { S: JSON.stringify(b) }
                const pos = { N: String(positions.get(b.id)) }
                return present.has(b.id)
                  ? {
                    Statement: `UPDATE "${table}" SET "Data" = ? SET "Pos" = ? WHERE "Name" = ? AND "Id" = ? AND ("Pos" IS MISSING OR "Pos" < ?)`,
                    Parameters: [data, pos, { S: rowsName }, { S: b.id }, pos]
                  }
                  : { Statement: `INSERT INTO "${table}" VALUE {'Name': ?, 'Id': ?, 'Data': ?, 'Pos': ?}`, Parameters: [{ S: rowsName }, { S: b.id }, data, pos] }
              }),
              ReturnConsumedCapacity: "TOTAL"
            }))
            const failed = (r.Responses ?? []).find((x) => x.Error !== undefined)
            if (failed !== undefined) throw new Error(`rawGuarded: a statement failed (${failed.Error!.Code}: ${failed.Error!.Message})`)
            continue
          }
          let request: Record<string, Array<any>> | undefined = {
            [table]: chunks[c]!.map((b) => ({ PutRequest: { Item: { ...key(b.id), Data: { S: JSON.stringify(b) } } } }))
          }
          while (request !== undefined && Object.keys(request).length > 0) {
            const r = await sdk.send(new BatchWriteItemCommand({ RequestItems: request, ReturnConsumedCapacity: "TOTAL" }))
            request = r.UnprocessedItems as typeof request
          }
        }
      }))
      const position = batch[batch.length - 1]!.position
      await sdk.send(new PutItemCommand({
        TableName: table,
        Item: { Name: { S: "$raw" }, Id: { S: name }, Data: { S: JSON.stringify({ position }) } },
        ReturnConsumedCapacity: "TOTAL"
      }))
      applied += batch.length
      batch = []
      onBatch(position)
    }
    await forEachLogEvent<{ s: string; v: number; d?: string; ptr?: 1 }>(sdk, logTable, (position, e) => {
      if (e.ptr !== undefined) throw new Error(`raw: a pointer at ${position} (the bench's events are small)`)
      batch.push({ position, streamId: e.s, amount: (JSON.parse(e.d!) as { amount: number }).amount })
      return batch.length === BATCH ? flush() : undefined
    })
    if (batch.length > 0) await flush()
    return applied
  })

// -----------------------------------------------------------------------------
// the run
// -----------------------------------------------------------------------------

interface Result {
  readonly side: Side
  readonly ms: number
  readonly events: number
  readonly stats: Stats
  readonly heap: { readonly before: number; readonly peak: number; readonly after: number; readonly samples: ReadonlyArray<number> }
}

const mb = (bytes: number) => `${fmt(bytes / 1_048_576, 1)} MB`

const program = Effect.gen(function*() {
  const { clientContext, elapsed, sdk } = yield* startBench(
    `projection benchmark: a rebuild of ${fmt(EVENTS)} events from the DynamoDB log (${order.join(", ")})`,
    instrument
  )
  const eventsTable = Fixtures.uniqueTableName("projbench-events")
  const logTable = Fixtures.uniqueTableName("projbench-log")
  const table = Fixtures.uniqueTableName("projbench-rows")
  yield* Effect.acquireRelease(
    Tables.ensureTables([Tables.eventsTable(eventsTable), Tables.logTable(logTable), DynamoReadModelStore.readModelsTable(table)]),
    () => Tables.deleteTables([eventsTable, logTable, table]).pipe(Effect.ignore)
  ).pipe(Effect.provide(clientContext))

  // 1. pre-fill
  yield* Console.log(`pre-fill: ${fmt(EVENTS)} events over ${fmt(ACCOUNTS)} accounts, BatchWriteItem, ${SEGMENTS} segments in parallel (${elapsed()})`)
  const fillStarted = performance.now()
  let nextReport = EVENTS / 10
  yield* prefill(sdk, eventsTable, (written) => {
    if (written >= nextReport) {
      nextReport += EVENTS / 10
      console.log(`  ${fmt(written)} written (${elapsed()})`)
    }
  })
  const fillMs = performance.now() - fillStarted

  // 2. the sequencer indexes the backlog
  yield* Console.log(`sequencer: indexing the backlog (${elapsed()})`)
  const log = yield* DynamoEventLog.make({ eventsTable, logTable, pollInterval: "100 millis" }).pipe(Effect.provide(clientContext))
  const seqStarted = performance.now()
  const sequencer = yield* DynamoSequencer.run({ eventsTable, logTable, lease: false, pollInterval: "100 millis", batchWindow: "100 millis" }).pipe(
    Effect.scoped,
    Effect.provide(clientContext),
    Effect.forkDetach
  )
  let lastShown = 0
  yield* log.head.pipe(
    Effect.tap((head) =>
      Effect.sync(() => {
        if (performance.now() - lastShown > 2_000) {
          lastShown = performance.now()
          console.log(`  head ${fmt(head)} (${elapsed()})`)
        }
      })
    ),
    Effect.repeat({ until: (h) => h >= EVENTS, schedule: Schedule.spaced("50 millis") }),
    Effect.provide(clientContext)
  )
  const seqMs = performance.now() - seqStarted
  yield* Fiber.interrupt(sequencer)
  yield* Console.log(`  ${fmt(EVENTS)} events indexed in ${fmt(seqMs / 1000, 1)} s (${elapsed()})`)

  // 3. the rebuilds
  const storage = yield* DynamoReadModelStore.makeStorage(table).pipe(Effect.provide(clientContext))
  const readModels = yield* ReadModel.make(storage)
  // The guarded mode of a storage without writeGuardedBatch: one conditional PutItem per row.
  const perRowModels = yield* ReadModel.make({ ...storage, conditional: { ...storage.conditional!, writeGuardedBatch: undefined } })
  const progressLine = (side: string, started: number) => {
    let next = EVENTS / 5
    return (position: number) => {
      if (position < next) return
      next += EVENTS / 5
      const s = (performance.now() - started) / 1000
      console.log(`  ${side}: ${fmt(position)}/${fmt(EVENTS)}, ${fmt(position / s)} events/s, heap ${mb(process.memoryUsage().heapUsed)} (${elapsed()})`)
    }
  }
  const runSide = (side: Side, n: number) =>
    Effect.gen(function*() {
      const name = `${side}-${n}`
      const stats = emptyStats()
      const samples: Array<number> = []
      globalThis.gc?.()
      const before = process.memoryUsage().heapUsed
      const sampler = setInterval(() => samples.push(process.memoryUsage().heapUsed), 100)
      bucket = stats
      const started = performance.now()
      const shown = progressLine(side, started)
      const onProgress = (p: Projection.Progress) => Effect.sync(() => shown(p.position))
      const options = { until: "caughtUp", batchSize: BATCH, batchWindow: "50 millis", onProgress } as const
      const events = side === "raw" || side === "rawGuarded"
        ? yield* raw(sdk, logTable, table, name, shown, side === "rawGuarded")
        : (yield* Projection.run(
          projection(name),
          side === "guarded" || side === "guardedPerRow"
            ? options
            : side === "guarded32"
            ? { ...options, writeConcurrency: 32 }
            : { ...options, mode: side }
        ).pipe(
          Effect.provideService(EventLog.EventLog, log),
          Effect.provideService(ReadModel.ReadModelStore, side === "guardedPerRow" ? perRowModels : readModels),
          Effect.provide(clientContext)
        )).eventsApplied
      const ms = performance.now() - started
      bucket = undefined
      clearInterval(sampler)
      const after = process.memoryUsage().heapUsed
      if (events !== EVENTS) return yield* Effect.die(new Error(`${side} applied ${events} events, not ${EVENTS}`))
      const heap = { before, after, peak: Math.max(before, after, ...samples), samples }
      yield* Console.log(`  ${side}: ${fmt(ms / 1000, 1)} s, ${fmt((EVENTS * 1000) / ms)} events/s, heap growth peak ${mb(heap.peak - before)} (${elapsed()})`)
      return { side, ms, events, stats, heap } satisfies Result
    })
  for (const [n, side] of warmup.entries()) {
    yield* Console.log(`warm-up: ${side} (${elapsed()})`)
    yield* runSide(side, 100 + n)
  }
  const results: Array<Result> = []
  for (const [n, side] of order.entries()) {
    yield* Console.log(`${side} (${n + 1}/${order.length}) (${elapsed()})`)
    results.push(yield* runSide(side, n))
  }

  // report
  const rate = (r: Result) => (r.events * 1000) / r.ms
  const raws = results.filter((r) => r.side === "raw")
  const rawRate = raws.length === 0 ? NaN : raws.reduce((sum, r) => sum + rate(r), 0) / raws.length
  const { entries, entry } = makeEntries()
  const lines = [
    `rebuild of ${fmt(EVENTS)} events (${fmt(ACCOUNTS)} accounts, batches of ${BATCH}) from the DynamoDB log; pre-fill ${fmt(fillMs / 1000, 1)} s, sequencer ${
      fmt(seqMs / 1000, 1)
    } s (${fmt((EVENTS * 1000) / seqMs)} events/s)`,
    `ratio: to the mean of the raw runs (${raws.map((r) => fmt(rate(r))).join(", ")} events/s)`,
    "",
    `${pad("side", 14)} ${lpad("events/s", 9)} ${lpad("ratio", 6)} ${lpad("req/event", 10)} ${lpad("WCU/event", 10)} ${lpad("RCU/event", 10)}  ${
      pad("heap before / peak growth / end growth", 40)
    } requests by command (per event)`
  ]
  for (const r of results) {
    const perEvent = (n: number) => n / r.events
    lines.push(
      `${pad(r.side, 14)} ${lpad(fmt(rate(r)), 9)} ${lpad(fmt(rate(r) / rawRate, 2), 6)} ${lpad(fmt(perEvent(totalRequests(r.stats)), 3), 10)} ${
        lpad(fmt(perEvent(r.stats.write), 3), 10)
      } ${lpad(fmt(perEvent(r.stats.read), 3), 10)}  ${pad(`${mb(r.heap.before)} / +${mb(r.heap.peak - r.heap.before)} / ${mb(r.heap.after - r.heap.before)}`, 40)} ${
        [...r.stats.requests].map(([c, n]) => `${c} ${fmt(perEvent(n), 3)}`).join(", ")
      }`
    )
  }
  const rawGuardeds = results.filter((r) => r.side === "rawGuarded")
  const guardeds = results.filter((r) => r.side === "guarded")
  const rawGuardedRate = rawGuardeds.length === 0 ? NaN : rawGuardeds.reduce((sum, r) => sum + rate(r), 0) / rawGuardeds.length
  if (rawGuardeds.length > 0 && guardeds.length > 0) {
    const ratio = guardeds.reduce((sum, r) => sum + rate(r), 0) / guardeds.length / rawGuardedRate
    lines.push("")
    lines.push(`guarded vs rawGuarded (the same conditional PartiQL writes by hand, mean ${fmt(rawGuardedRate)} events/s): ${fmt(ratio, 2)}`)
    entry(`rebuild ${fmt(EVENTS)} events, guarded: ratio to rawGuarded`, ratio, "ratio")
  }
  lines.push("")
  lines.push("transactional WCU: as DynamoDB Local reports it (about 2 per transaction); by AWS's formula 2 per started KB per item")
  lines.push("guarded WCU: DynamoDB Local reports none for BatchExecuteStatement; counted as AWS bills it, 1 WCU per statement (rows under 1 KB)")
  for (const r of results) {
    entry(`rebuild ${fmt(EVENTS)} events, ${r.side}: events per second`, rate(r), "events/s", rawRate)
    if (r.side === "raw") continue
    entry(`rebuild ${fmt(EVENTS)} events, ${r.side}: ratio to raw`, rate(r) / rawRate, "ratio")
    entry(`rebuild ${fmt(EVENTS)} events, ${r.side}: requests per event`, totalRequests(r.stats) / r.events, "req/event")
    entry(`rebuild ${fmt(EVENTS)} events, ${r.side}: WCU per event`, r.stats.write / r.events, "WCU/event")
    entry(`rebuild ${fmt(EVENTS)} events, ${r.side}: heap growth at peak`, (r.heap.peak - r.heap.before) / 1_048_576, "MB")
  }
  yield* writeResults("projection.json", lines, entries, elapsed)
})

NodeRuntime.runMain(Effect.scoped(program))

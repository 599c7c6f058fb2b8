/**
 * Projection benchmark: the same projection (a balance per account, read-modify-write) run
 * over the same events in each write mode (guarded with 8 and 32 writes in flight), against a raw SDK loop doing the same work
 * per batch (one consistent `BatchGetItem` of the rows the batch touches, the fold in plain
 * JavaScript, `BatchWriteItem` of the changed rows, one `PutItem` of a checkpoint). The
 * events come from the in-memory log (the log's own reading cost is `readAll`'s, measured
 * with the log); the rows go to one DynamoDB Local table.
 *
 * Run with `npx tsx bench/projection.bench.ts`. Prints a table and writes
 * bench/results/projection.json.
 */
import { type AttributeValue, BatchGetItemCommand, BatchWriteItemCommand, type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { EventLog, Projection, ReadModel } from "@dynamo-es/core"
import { DynamoReadModelStore, Tables } from "@dynamo-es/dynamodb"
import { Fixtures } from "@dynamo-es/dynamodb-local"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Option, Schema, Stream } from "effect"
import * as Fs from "node:fs"
import { performance } from "node:perf_hooks"
import { countInto, emptyStats, startBench, type Stats, totalRequests } from "./harness.js"

const EVENTS = 4_000
const ACCOUNTS = 400
const BATCH = 500
const ROUNDS = 4 // interleaved: A,B,C,... then ...,C,B,A

let bucket: Stats | undefined
const instrument = countInto(() => bucket)

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

/** The raw loop: per batch, BatchGetItem the touched rows, fold, BatchWriteItem, checkpoint PutItem. */
const raw = (sdk: DynamoDBClient, table: string, name: string, events: ReadonlyArray<EventLog.LoggedEvent>) =>
  Effect.promise(async () => {
    const rowsName = `${name}-balances`
    const key = (id: string): Record<string, AttributeValue> => ({ Name: { S: rowsName }, Id: { S: id } })
    for (let i = 0; i < events.length; i += BATCH) {
      const batch = events.slice(i, i + BATCH)
      const ids = [...new Set(batch.map((e) => e.streamId))]
      const rows = new Map<string, Balance>()
      for (let j = 0; j < ids.length; j += 100) {
        const r = await sdk.send(new BatchGetItemCommand({
          RequestItems: { [table]: { Keys: ids.slice(j, j + 100).map(key), ConsistentRead: true } },
          ReturnConsumedCapacity: "TOTAL"
        }))
        for (const item of r.Responses?.[table] ?? []) rows.set(item.Id!.S!, JSON.parse(item.Data!.S!))
      }
      for (const e of batch) {
        const current = rows.get(e.streamId) ?? { id: e.streamId, balance: 0, count: 0, note: NOTE }
        rows.set(e.streamId, { ...current, balance: current.balance + (e.payload as { amount: number }).amount, count: current.count + 1 })
      }
      const puts = [...rows.values()]
      const chunks: Array<Array<Balance>> = []
      for (let j = 0; j < puts.length; j += 25) chunks.push(puts.slice(j, j + 25))
      await Promise.all(Array.from({ length: 8 }, async (_, w) => {
        for (let c = w; c < chunks.length; c += 8) {
          await sdk.send(new BatchWriteItemCommand({
            RequestItems: {
              [table]: chunks[c]!.map((b) => ({ PutRequest: { Item: { ...key(b.id), Data: { S: JSON.stringify(b) } } } }))
            },
            ReturnConsumedCapacity: "TOTAL"
          }))
        }
      }))
      await sdk.send(new PutItemCommand({
        TableName: table,
        Item: { Name: { S: "$raw" }, Id: { S: name }, Data: { S: JSON.stringify({ position: batch[batch.length - 1]!.position }) } },
        ReturnConsumedCapacity: "TOTAL"
      }))
    }
  })

const program = Effect.gen(function*() {
  const { clientContext, elapsed, sdk } = yield* startBench("projection benchmark", instrument)
  const table = Fixtures.uniqueTableName("bench_projection")
  yield* Tables.ensureTables([DynamoReadModelStore.readModelsTable(table)]).pipe(Effect.provide(clientContext))
  yield* Effect.addFinalizer(() => Tables.deleteTables([table]).pipe(Effect.provide(clientContext), Effect.ignore))
  const storage = yield* DynamoReadModelStore.makeStorage(table).pipe(Effect.provide(clientContext))
  const readModels = yield* ReadModel.make(storage)

  const { log, store } = yield* EventLog.makeMemory()
  for (let n = 0; n < EVENTS; n++) {
    const id = `acc-${String(n % ACCOUNTS).padStart(5, "0")}`
    yield* store.append(id, [{ type: "Deposited", payload: { amount: (n * 7) % 100 } }], { expectedVersion: Math.floor(n / ACCOUNTS) })
  }
  const events = yield* Stream.runCollect(log.readAll())
  yield* Console.log(`${EVENTS} events over ${ACCOUNTS} accounts in the memory log (${elapsed()})`)

  let seq = 0
  const sides = {
    guarded: (name: string) => Projection.run(projection(name), { until: "caughtUp", batchSize: BATCH, batchWindow: "50 millis" }),
    guarded32: (name: string) =>
      Projection.run(projection(name), { until: "caughtUp", batchSize: BATCH, batchWindow: "50 millis", writeConcurrency: 32 }),
    transactional: (name: string) =>
      Projection.run(projection(name), { mode: "transactional", until: "caughtUp", batchSize: BATCH, batchWindow: "50 millis" }),
    atLeastOnce: (name: string) =>
      Projection.run(projection(name), { mode: "atLeastOnce", until: "caughtUp", batchSize: BATCH, batchWindow: "50 millis" }),
    raw: (name: string) => raw(sdk, table, name, events)
  } as const
  type Key = keyof typeof sides
  const results = new Map<Key, { ms: number; stats: Stats }>()
  const runSide = (key: Key, record: boolean) =>
    Effect.gen(function*() {
      const stats = emptyStats()
      bucket = record ? stats : undefined
      const started = performance.now()
      yield* (sides[key](`${key}-${seq++}`) as Effect.Effect<unknown, unknown, EventLog.EventLog | ReadModel.ReadModelStore>).pipe(
        Effect.provideService(EventLog.EventLog, log),
        Effect.provideService(ReadModel.ReadModelStore, readModels)
      )
      const ms = performance.now() - started
      bucket = undefined
      if (!record) return
      const r = results.get(key) ?? { ms: 0, stats: emptyStats() }
      r.ms += ms
      for (const [c, n] of stats.requests) r.stats.requests.set(c, (r.stats.requests.get(c) ?? 0) + n)
      r.stats.read += stats.read
      r.stats.write += stats.write
      results.set(key, r)
    })
  const order: ReadonlyArray<Key> = ["guarded", "guarded32", "transactional", "atLeastOnce", "raw"]
  yield* Console.log(`warming up (${elapsed()})`)
  for (let w = 0; w < 2; w++) for (const key of order) yield* runSide(key, false)
  for (let round = 0; round < ROUNDS; round++) {
    const keys = round % 2 === 0 ? order : [...order].reverse()
    for (const key of keys) yield* runSide(key, true)
    yield* Console.log(`round ${round + 1}/${ROUNDS} (${elapsed()})`)
  }

  const total = EVENTS * ROUNDS
  const rawRate = total / (results.get("raw")!.ms / 1000)
  const rows = order.map((key) => {
    const r = results.get(key)!
    const rate = total / (r.ms / 1000)
    return {
      side: key,
      eventsPerSecond: Math.round(rate),
      ratioToRaw: Number((rate / rawRate).toFixed(2)),
      requestsPerEvent: Number((totalRequests(r.stats) / total).toFixed(3)),
      requests: Object.fromEntries([...r.stats.requests].map(([c, n]) => [c, Number((n / total).toFixed(3))])),
      wcuPerEvent: Number((r.stats.write / total).toFixed(3)),
      rcuPerEvent: Number((r.stats.read / total).toFixed(3))
    }
  })
  yield* Console.log("\n| side | events/s | ratio to raw | requests/event | by command (per event) | WCU/event | RCU/event |")
  yield* Console.log("| --- | --- | --- | --- | --- | --- | --- |")
  for (const r of rows) {
    yield* Console.log(
      `| ${r.side} | ${r.eventsPerSecond} | ${r.ratioToRaw} | ${r.requestsPerEvent} | ${
        Object.entries(r.requests).map(([c, n]) => `${c} ${n}`).join(", ")
      } | ${r.wcuPerEvent} | ${r.rcuPerEvent} |`
    )
  }
  Fs.mkdirSync("bench/results", { recursive: true })
  Fs.writeFileSync("bench/results/projection.json", JSON.stringify({ events: EVENTS, accounts: ACCOUNTS, batch: BATCH, rounds: ROUNDS, rows }, null, 2))
})

NodeRuntime.runMain(Effect.scoped(program))

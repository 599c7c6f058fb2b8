/**
 * Snapshot and aggregate-load benchmark on DynamoDB Local. See bench/README.md.
 *
 *   npx tsx bench/snapshot.bench.ts      (also part of `npm run bench`)
 *
 * Measures, with requests and consumed capacity counted by SDK middleware:
 * - loading an aggregate of 10,000 events without a snapshot vs with a recent snapshot;
 * - saving and loading a 2 MB snapshot, uncompressed and with gzip (bytes and WCU saved).
 * Writes bench/results/snapshot.json.
 */
import { DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb"
import { Aggregate, EventStore, SnapshotStore } from "@dynamo-es/core"
import { DynamoClient, DynamoEventStore, DynamoSnapshotStore, Tables } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Option, Schema } from "effect"
import { performance } from "node:perf_hooks"
import { countInto, emptyStats, entryLines, makeEntries, type Stats, totalRequests, writeResults } from "./harness.js"

const EVENTS = 10_000
const SNAPSHOT_EVERY = 1_000
const LOAD_ROUNDS = 5

let counter: Stats = emptyStats()
const reset = () => {
  counter = emptyStats()
}
const instrument = countInto(() => counter)

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite, note: Schema.String })
const State = Schema.Struct({ balance: Schema.Finite, count: Schema.Int })
const Account = Aggregate.make({
  events: Deposited,
  initialState: { balance: 0, count: 0 } as typeof State.Type,
  evolve: (s, e) => ({ balance: s.balance + e.amount, count: s.count + 1 }),
  decide: () => [],
  snapshots: { schema: State, schemaVersion: 1 }
})

const { entries: results, entry: record } = makeEntries((n) => n)
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    reset()
    const start = performance.now()
    const value = yield* effect
    return { value, ms: performance.now() - start, requests: totalRequests(counter), read: counter.read, write: counter.write }
  })

const program = Effect.gen(function*() {
  const local = yield* DynamoDBLocal.DynamoDBLocal
  const sdk = new DynamoDBClient(Fixtures.sdkConfig(local))
  instrument(sdk)
  const clientLayer = DynamoClient.layer({ client: sdk })
  const eventsTable = Fixtures.uniqueTableName("bench_events")
  const snapshotsTable = Fixtures.uniqueTableName("bench_snapshots")
  yield* Tables.ensureTables([Tables.eventsTable(eventsTable), DynamoSnapshotStore.snapshotsTable(snapshotsTable)]).pipe(
    Effect.provide(clientLayer)
  )
  const stores = Layer.mergeAll(
    DynamoEventStore.layerExisting({ tableName: eventsTable }),
    DynamoSnapshotStore.layerExisting({ tableName: snapshotsTable })
  ).pipe(Layer.provideMerge(clientLayer))

  yield* Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const Events = EventStore.typed(Deposited)
    const id = "bench-account"
    yield* Console.log(`Writing ${EVENTS} events (100 per append)...`)
    for (let v = 0; v < EVENTS; v += 100) {
      yield* Events.append(
        id,
        Array.from({ length: 100 }, (_, i) => ({ _tag: "Deposited" as const, amount: 1, note: `deposit ${v + i + 1}` })),
        { expectedVersion: v }
      )
    }
    void store

    // Load without a snapshot (warm up first).
    yield* Console.log("Loading without a snapshot...")
    yield* Account.load(id).pipe(Effect.provideService(SnapshotStore.SnapshotStore, yield* SnapshotStore.makeMemory()))
    const noSnapshot = []
    for (let r = 0; r < LOAD_ROUNDS; r++) {
      noSnapshot.push(yield* timed(Account.load(id).pipe(Effect.provideService(SnapshotStore.SnapshotStore, yield* SnapshotStore.makeMemory()))))
    }
    // A snapshot at the last multiple of SNAPSHOT_EVERY, as the policy would have made it.
    const full = noSnapshot[0]!.value
    const at = Math.floor(EVENTS / SNAPSHOT_EVERY) * SNAPSHOT_EVERY - SNAPSHOT_EVERY / 2
    const partial = yield* Effect.gen(function*() {
      let s = Account.definition.initialState
      for (let i = 0; i < at; i++) s = { balance: s.balance + 1, count: s.count + 1 }
      return s
    })
    yield* SnapshotStore.typed(State, { schemaVersion: 1 }).save(id, { version: at, state: partial })
    yield* Console.log(`Loading with a snapshot at version ${at}...`)
    yield* Account.load(id)
    const withSnapshot = []
    for (let r = 0; r < LOAD_ROUNDS; r++) withSnapshot.push(yield* timed(Account.load(id)))
    const last = withSnapshot[withSnapshot.length - 1]!
    if (last.value.state.balance !== full.state.balance) return yield* Effect.die("snapshot load differs from full replay")
    const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const msNo = median(noSnapshot.map((x) => x.ms))
    const msWith = median(withSnapshot.map((x) => x.ms))
    record("load 10,000-event aggregate without snapshot: time", round(msNo), "ms")
    record("load 10,000-event aggregate without snapshot: requests", noSnapshot[0]!.requests, "requests")
    record("load 10,000-event aggregate without snapshot: RCU", round(noSnapshot[0]!.read, 1), "RCU")
    record("load with recent snapshot: time", round(msWith), "ms", round(msNo))
    record("load with recent snapshot: requests", last.requests, "requests", noSnapshot[0]!.requests)
    record("load with recent snapshot: RCU", round(last.read, 1), "RCU", round(noSnapshot[0]!.read, 1))
    record("load with recent snapshot: events read", last.value.eventsRead, "events", full.eventsRead)

    // Command handling: 300 deposits on one account, without and with snapshots every 50.
    const COMMANDS = 300
    for (const every of [undefined, 50] as const) {
      const Depositing = Aggregate.make({
        events: Deposited,
        initialState: { balance: 0, count: 0 } as typeof State.Type,
        evolve: (s, e) => ({ balance: s.balance + e.amount, count: s.count + 1 }),
        decide: (amount: number) => [{ _tag: "Deposited" as const, amount, note: `deposit of ${amount}` }],
        snapshots: { schema: State, schemaVersion: 1, every }
      })
      const account = `bench-commands-${every ?? "none"}`
      yield* Console.log(`Handling ${COMMANDS} commands on one account, ${every === undefined ? "without snapshots" : `snapshot every ${every}`}...`)
      const run = yield* timed(Effect.forEach(Array.from({ length: COMMANDS }, (_, i) => i + 1), (i) => Depositing.handle(account, i), {
        discard: true
      }).pipe(Effect.provideService(SnapshotStore.SnapshotStore, every === undefined ? yield* SnapshotStore.makeMemory() : yield* SnapshotStore.SnapshotStore)))
      const label = `handle ${COMMANDS} commands, ${every === undefined ? "no snapshots" : `snapshot every ${every}`}`
      record(`${label}: time per command`, round(run.ms / COMMANDS, 3), "ms")
      record(`${label}: requests per command`, round(run.requests / COMMANDS, 3), "requests")
      record(`${label}: RCU per command`, round(run.read / COMMANDS, 3), "RCU")
      record(`${label}: WCU per command`, round(run.write / COMMANDS, 3), "WCU")
    }

    // 2 MB snapshots, plain and gzip.
    const big = Array.from({ length: 30_000 }, (_, i) => ({ id: i, name: `customer-${i}`, tags: ["gold", "eu"], balance: i * 3 }))
    const bytes = JSON.stringify(big).length
    for (const compression of ["none", "gzip"] as const) {
      const table = Fixtures.uniqueTableName(`bench_snap_${compression}`)
      yield* Tables.ensureTables([DynamoSnapshotStore.snapshotsTable(table)])
      const snapshots = yield* DynamoSnapshotStore.make({ tableName: table, compression })
      yield* snapshots.save("warm", { version: 1, state: big })
      yield* snapshots.load("warm")
      const saved = yield* timed(snapshots.save("big", { version: 1, state: big }))
      const loaded = yield* timed(snapshots.load("big"))
      if (Option.isNone(loaded.value)) return yield* Effect.die("2 MB snapshot did not load")
      const header = yield* Effect.promise(() =>
        sdk.send(new QueryCommand({
          TableName: table,
          KeyConditionExpression: "s = :s AND begins_with(k, :h)",
          ExpressionAttributeValues: { ":s": { S: "big" }, ":h": { S: "h#" } }
        }))
      )
      const stored = Number(header.Items?.[0]?.z?.N ?? NaN)
      const label = `2 MB snapshot (${(bytes / 1e6).toFixed(2)} MB JSON), ${compression}`
      record(`${label}: stored bytes`, stored, "bytes", bytes)
      record(`${label}: save time`, round(saved.ms), "ms")
      record(`${label}: save requests`, saved.requests, "requests")
      record(`${label}: save WCU`, round(saved.write, 1), "WCU")
      record(`${label}: load time`, round(loaded.ms), "ms")
      record(`${label}: load requests`, loaded.requests, "requests")
      record(`${label}: load RCU`, round(loaded.read, 1), "RCU")
      yield* Tables.deleteTables([table])
    }
  }).pipe(Effect.provide(stores))

  yield* Tables.deleteTables([eventsTable, snapshotsTable]).pipe(Effect.provide(clientLayer))
  yield* writeResults("snapshot.json", entryLines(results), results)
})

Console.log("Starting DynamoDB Local...").pipe(
  Effect.andThen(program),
  Effect.provide(DynamoDBLocal.layer({ fastStartup: false })),
  NodeRuntime.runMain
)

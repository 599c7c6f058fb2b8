/**
 * The bank-account projection on DynamoDB Local: a balance per account and totals per day,
 * kept from the global log.
 *
 *   npm run example:projections
 *
 * It appends events to an events table, runs the sequencer (the global log) and the
 * projection live (version 1), rebuilds it into version 2 with a progress line while version
 * 1 serves, switches over, keeps version 2 live while more events are appended, prints the
 * read models through readers of the active version, and drops version 1. Set DYNAMODB_ENDPOINT to use a DynamoDB you started yourself.
 */
import { EventLog, EventStore, Projection } from "@dynamo-es/core"
import { DynamoEventLog, DynamoEventStore, DynamoReadModelStore, DynamoSequencer, Tables } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Console, DateTime, Effect, Fiber, Layer, Option, Ref, Schedule, Schema, Stream } from "effect"
import { runMain } from "./main.js"

// --- the events and the read models -------------------------------------------------

const AccountOpened = Schema.TaggedStruct("AccountOpened", { owner: Schema.String })
const MoneyDeposited = Schema.TaggedStruct("MoneyDeposited", { amount: Schema.Finite })
const MoneyWithdrawn = Schema.TaggedStruct("MoneyWithdrawn", { amount: Schema.Finite })
const AccountEvent = Schema.Union([AccountOpened, MoneyDeposited, MoneyWithdrawn])

const Balance = Schema.Struct({ id: Schema.String, owner: Schema.String, balance: Schema.Finite })
const DailyTotals = Schema.Struct({ id: Schema.String, deposited: Schema.Finite, withdrawn: Schema.Finite, events: Schema.Int })

const dayOf = (event: EventStore.EventEnvelope) => DateTime.formatIso(event.recordedAt).slice(0, 10)

const bank = Projection.make({
  name: "bank",
  events: AccountEvent,
  types: ["AccountOpened", "MoneyDeposited", "MoneyWithdrawn"],
  readModels: {
    balances: Projection.readModel("bank-balances", Balance),
    totals: Projection.readModel("bank-daily-totals", DailyTotals)
  },
  // The rows an event reads: fetched for a whole batch at once.
  prefetch: (event) => ({ balances: event.streamId, totals: dayOf(event) }),
  handle: (event, { balances, totals }) =>
    Effect.gen(function*() {
      const day = dayOf(event)
      const total = Option.getOrElse(yield* totals.find(day), () => ({ id: day, deposited: 0, withdrawn: 0, events: 0 }))
      const e = event.payload
      yield* totals.save({
        ...total,
        deposited: total.deposited + (e._tag === "MoneyDeposited" ? e.amount : 0),
        withdrawn: total.withdrawn + (e._tag === "MoneyWithdrawn" ? e.amount : 0),
        events: total.events + 1
      })
      if (e._tag === "AccountOpened") return yield* balances.save({ id: event.streamId, owner: e.owner, balance: 0 })
      const account = yield* balances.get(event.streamId)
      yield* balances.save({ ...account, balance: account.balance + (e._tag === "MoneyDeposited" ? e.amount : -e.amount) })
    })
})

// --- the program ----------------------------------------------------------------------

const Accounts = EventStore.typed(AccountEvent)

/** Opens `count` accounts (from `first`) and makes `perAccount` deposits and withdrawals in each. */
const appendSome = (first: number, count: number, perAccount: number) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => first + i), (n) =>
    Effect.gen(function*() {
      const id = `account-${n}`
      let version = (yield* Accounts.append(id, [{ _tag: "AccountOpened", owner: `owner ${n}` }], { expectedVersion: "noStream" })).version
      for (let k = 1; k <= perAccount; k++) {
        const event = k % 3 === 0 ? { _tag: "MoneyWithdrawn" as const, amount: 5 } : { _tag: "MoneyDeposited" as const, amount: 10 * k }
        version = (yield* Accounts.append(id, [event], { expectedVersion: version })).version
      }
    }), { concurrency: 4, discard: true })

/** Waits until the sequencer has put `count` events in the log. */
const awaitLogged = (count: number) =>
  EventLog.EventLog.use((log) =>
    log.head.pipe(Effect.repeat({ until: (head) => head >= count, schedule: Schedule.spaced("50 millis") }))
  )

const progressLine = (p: Projection.Progress) =>
  Console.log(`  ${p.projection}: ${p.position}/${p.head} (lag ${p.lag}), ${p.eventsApplied} applied, ${p.eventsPerSecond.toFixed(0)} events/s`)

const program = Effect.gen(function*() {
  yield* Console.log("Appending 20 accounts x 15 events ...")
  yield* appendSome(1, 20, 14)
  yield* awaitLogged(300)

  // The live runner: the active version, moving to a new one when a rebuild switches over.
  const latest = yield* Ref.make<Projection.Progress | undefined>(undefined)
  const liveAt = (projection: string, position: number) =>
    Ref.get(latest).pipe(
      Effect.repeat({ until: (p) => p?.projection === projection && p.position >= position, schedule: Schedule.spaced("50 millis") })
    )
  yield* Console.log("Version 1, live (Projection.runActive), catching up:")
  const live = yield* Projection.runActive(bank, {
    batchSize: 100,
    batchWindow: "50 millis",
    checkInterval: "200 millis",
    onProgress: (p) => Effect.andThen(progressLine(p), Ref.set(latest, p))
  }).pipe(Effect.forkChild)
  yield* liveAt("bank", 300)
  // Readers read the active version (looked up through one row, cached for a second).
  const readers = yield* Projection.readers(bank, { cacheTtl: "1 second" })

  yield* Console.log("Rebuilding into version 2 while version 1 serves:")
  const rebuilt = yield* Projection.rebuild(bank, { batchSize: 100, onProgress: progressLine })
  yield* Console.log(
    `  version ${rebuilt.version} is active (was ${rebuilt.previous}): ${rebuilt.progress.eventsApplied} events, ${rebuilt.progress.requests} write requests`
  )

  yield* Console.log("Live: the runner moves to version 2 and follows the log while 5 more accounts are opened ...")
  yield* appendSome(21, 5, 14)
  yield* liveAt("bank@2", 375)
  yield* Fiber.interrupt(live)

  yield* Effect.sleep("1 second") // the readers' cache lifetime: they read version 2 now
  const all = yield* Stream.runCollect(readers.balances.findAll())
  yield* Console.log(`${all.length} balances (version ${yield* readers.balances.version}), e.g. ${JSON.stringify(all[0])}`)
  for (const day of yield* Stream.runCollect(readers.totals.findAll())) yield* Console.log(`  ${JSON.stringify(day)}`)
  const dropped = yield* Projection.drop(bank, { version: rebuilt.previous })
  yield* Console.log(`Dropped version ${rebuilt.previous}: ${dropped.rowsDeleted} rows.`)
})

// --- wiring: DynamoDB Local -> client -> event store, log + sequencer, read models ------

const suffix = Date.now().toString(36)
const tables = { eventsTable: `bank-events-${suffix}`, logTable: `bank-log-${suffix}` }

const Live = Layer.mergeAll(
  DynamoEventStore.layerExisting({ tableName: tables.eventsTable }),
  DynamoEventLog.layer({ ...tables, pollInterval: "50 millis" }),
  DynamoSequencer.layer({ ...tables, pollInterval: "50 millis" }),
  DynamoReadModelStore.layer({ tableName: `bank-read-models-${suffix}` })
).pipe(
  Layer.provideMerge(Layer.effectDiscard(Tables.ensureTables([Tables.eventsTable(tables.eventsTable), Tables.logTable(tables.logTable)]))),
  Layer.provide(Fixtures.layerClientFor()),
  Layer.provide(DynamoDBLocal.layer())
)

Console.log("Starting DynamoDB Local (set DYNAMODB_ENDPOINT to use your own)...").pipe(
  Effect.andThen(program.pipe(Effect.provide(Live))),
  runMain
)

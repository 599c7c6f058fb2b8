/**
 * A bank account on the dynamo-es event store, against an embedded DynamoDB Local.
 *
 *   npm run example
 *
 * Part 1 uses the event store directly: opens an account, deposits, withdraws, rejects
 * an overdraft, lets two writers race (one gets a ConflictError) and prints the stream.
 * Part 2 defines the account as an aggregate (decider) with snapshots every 25 events and
 * shows how many events a load reads. Set DYNAMODB_ENDPOINT to run it against a DynamoDB
 * you started yourself instead.
 */
import { Aggregate, Errors, EventStore } from "@dynamo-es/core"
import { DynamoEventStore, DynamoSnapshotStore } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Console, DateTime, Effect, Layer, Schema, Stream } from "effect"
import { runMain } from "./main.js"

// --- the domain: events of an account --------------------------------------------

const AccountOpened = Schema.TaggedStruct("AccountOpened", { owner: Schema.String })
const MoneyDeposited = Schema.TaggedStruct("MoneyDeposited", { amount: Schema.Finite })
const MoneyWithdrawn = Schema.TaggedStruct("MoneyWithdrawn", { amount: Schema.Finite })
const AccountEvent = Schema.Union([AccountOpened, MoneyDeposited, MoneyWithdrawn])
type AccountEvent = typeof AccountEvent.Type

class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Finite,
  requested: Schema.Finite
}) {}

const balanceOf = (events: ReadonlyArray<AccountEvent>) =>
  events.reduce((balance, e) =>
    e._tag === "MoneyDeposited" ? balance + e.amount : e._tag === "MoneyWithdrawn" ? balance - e.amount : balance, 0)

// --- typed access to the store -----------------------------------------------------

const Accounts = EventStore.typed(AccountEvent)

/** Load the account, check the rule, append with the loaded version as expected version. */
const withdraw = (accountId: string, amount: number) =>
  Effect.gen(function*() {
    const history = yield* Stream.runCollect(Accounts.read(accountId))
    const balance = balanceOf(history.map((e) => e.payload))
    if (amount > balance) return yield* new InsufficientFunds({ balance, requested: amount })
    const version = history.at(-1)?.version ?? 0
    return yield* Accounts.append(accountId, [{ _tag: "MoneyWithdrawn", amount }], { expectedVersion: version })
  })

const program = Effect.gen(function*() {
  const id = `account-${Date.now().toString(36)}`
  yield* Console.log(`Opening ${id}`)
  const opened = yield* Accounts.append(id, [
    { _tag: "AccountOpened", owner: "Ada" },
    { _tag: "MoneyDeposited", amount: 100 }
  ], { expectedVersion: "noStream", metadata: { actor: "teller-1" } })
  yield* Console.log(`  appended ${opened.events.length} events, stream at version ${opened.version}`)

  yield* Accounts.append(id, [{ _tag: "MoneyDeposited", amount: 50 }], { expectedVersion: opened.version })
  yield* withdraw(id, 30)
  yield* Console.log("  deposited 50, withdrew 30")

  yield* withdraw(id, 500).pipe(
    Effect.catchTag("InsufficientFunds", (e) =>
      Console.log(`  overdraft rejected: balance ${e.balance}, requested ${e.requested}`))
  )

  // Two writers load version 4 and both try to append: exactly one wins.
  const version = yield* Accounts.version(id)
  const race = (writer: string, amount: number) =>
    Accounts.append(id, [{ _tag: "MoneyDeposited", amount }], { expectedVersion: version, metadata: { actor: writer } }).pipe(
      Effect.map((r) => `${writer} appended version ${r.version}`),
      Effect.catchTag("ConflictError", (e: Errors.ConflictError) => Effect.succeed(`${writer} lost: ${e.message}`))
    )
  const outcomes = yield* Effect.all([race("writer-A", 10), race("writer-B", 20)], { concurrency: 2 })
  for (const outcome of outcomes) yield* Console.log(`  ${outcome}`)

  yield* Console.log(`\nStream ${id}:`)
  yield* Stream.runForEach(Accounts.read(id), (e) =>
    Console.log(
      `  v${e.version}  ${DateTime.formatIso(e.recordedAt)}  ${e.type.padEnd(15)} ${JSON.stringify(e.payload)}  ${
        e.metadata.actor ?? ""
      }`
    ))
  const last = yield* Accounts.readLast(id, 2)
  yield* Console.log(`\nLast two versions: ${last.map((e) => e.version).join(", ")}`)
  yield* Console.log(`Balance: ${balanceOf((yield* Stream.runCollect(Accounts.read(id))).map((e) => e.payload))}`)
})

// --- part 2: the same account as an aggregate, with snapshots ----------------------

const AccountState = Schema.Struct({ owner: Schema.String, balance: Schema.Finite })
type AccountState = typeof AccountState.Type
type AccountCommand =
  | { readonly _tag: "Open"; readonly owner: string }
  | { readonly _tag: "Deposit"; readonly amount: number }
  | { readonly _tag: "Withdraw"; readonly amount: number }

const Account = Aggregate.make({
  events: AccountEvent,
  initialState: { owner: "", balance: 0 } as AccountState,
  evolve: (state: AccountState, event: AccountEvent): AccountState =>
    event._tag === "AccountOpened"
      ? { ...state, owner: event.owner }
      : { ...state, balance: state.balance + (event._tag === "MoneyDeposited" ? event.amount : -event.amount) },
  decide: (command: AccountCommand, state): Effect.Effect<ReadonlyArray<AccountEvent>, InsufficientFunds> => {
    switch (command._tag) {
      case "Open":
        return Effect.succeed([{ _tag: "AccountOpened", owner: command.owner }])
      case "Deposit":
        return Effect.succeed([{ _tag: "MoneyDeposited", amount: command.amount }])
      case "Withdraw":
        return command.amount > state.balance
          ? Effect.fail(new InsufficientFunds({ balance: state.balance, requested: command.amount }))
          : Effect.succeed([{ _tag: "MoneyWithdrawn", amount: command.amount }])
    }
  },
  // Bump schemaVersion whenever evolve or AccountState changes meaning: old snapshots are ignored.
  snapshots: { schema: AccountState, schemaVersion: 1, every: 25 }
})

const aggregates = Effect.gen(function*() {
  const id = `account-${Date.now().toString(36)}-agg`
  yield* Console.log(`\nAggregate ${id}: 1 open + 60 deposits, a snapshot every 25 events`)
  yield* Account.handle(id, { _tag: "Open", owner: "Grace" })
  for (let i = 1; i <= 60; i++) yield* Account.handle(id, { _tag: "Deposit", amount: 1 })
  const loaded = yield* Account.load(id)
  yield* Console.log(
    `  loaded version ${loaded.version}: snapshot at version ${loaded.snapshotVersion} + ${loaded.eventsRead} events read (instead of ${loaded.version})`
  )
  yield* Console.log(`  state: ${JSON.stringify(loaded.state)}`)
  yield* Account.handle(id, { _tag: "Withdraw", amount: 1_000 }).pipe(
    Effect.catchTag("InsufficientFunds", (e) => Console.log(`  withdraw 1000 rejected: balance is ${e.balance}`))
  )
})

// --- wiring: DynamoDB Local -> client -> event store + snapshot store ------------

const StoresLive = Layer.mergeAll(
  DynamoEventStore.layer({ tableName: "bank-events" }),
  DynamoSnapshotStore.layer({ tableName: "bank-snapshots" })
).pipe(
  Layer.provide(Fixtures.layerClientFor()),
  Layer.provide(DynamoDBLocal.layer())
)

const endpoint = process.env["DYNAMODB_ENDPOINT"]?.trim()
// The message comes first: providing the layer starts DynamoDB Local (a few seconds).
Console.log(
  endpoint ? `Using the DynamoDB at ${endpoint} (DYNAMODB_ENDPOINT)` : "Starting DynamoDB Local (set DYNAMODB_ENDPOINT to use your own)..."
).pipe(
  Effect.andThen(program.pipe(Effect.andThen(aggregates), Effect.provide(StoresLive))),
  runMain
)

/**
 * A bank account on the dynamo-es event store, against an embedded DynamoDB Local.
 *
 *   npm run example
 *
 * Opens an account, deposits, withdraws, rejects an overdraft, lets two writers race
 * (one gets a ConflictError) and prints the stream. Set DYNAMODB_ENDPOINT to run it
 * against a DynamoDB you started yourself instead.
 */
import { Errors, EventStore } from "@dynamo-es/core"
import { DynamoEventStore } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { NodeRuntime } from "@effect/platform-node"
import { Console, DateTime, Effect, Layer, Schema, Stream } from "effect"

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

// --- wiring: DynamoDB Local -> client -> event store ------------------------------

const EventStoreLive = DynamoEventStore.layer({ tableName: "bank-events" }).pipe(
  Layer.provide(Fixtures.layerClientFor()),
  Layer.provide(DynamoDBLocal.layer())
)

Console.log("Starting DynamoDB Local (set DYNAMODB_ENDPOINT to use your own)...").pipe(
  Effect.andThen(program),
  Effect.provide(EventStoreLive),
  NodeRuntime.runMain
)

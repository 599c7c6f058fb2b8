/**
 * Read-model repositories against an embedded DynamoDB Local:
 *
 *   npx tsx examples/src/read-models.ts
 *
 * A projection replays account events into a "balances" read model with a deferred
 * repository (one batched flush), then a request handler reads it back.
 */
import { ReadModel } from "@dynamo-es/core"
import { DynamoReadModelStore } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Console, Effect, Layer, Option, Schema, Stream } from "effect"
import { runMain } from "./main.js"

const Balance = Schema.Struct({
  id: Schema.String,
  owner: Schema.String,
  balance: Schema.Finite,
  tags: Schema.Array(Schema.String)
})
type Balance = typeof Balance.Type

const events = Array.from({ length: 300 }, (_, i) => ({ account: `acc-${i % 60}`, amount: (i % 7) + 1 }))

const program = Effect.gen(function*() {
  // Projection: one deferred repository, saves collapse per id, one flush at the end.
  const projection = yield* ReadModel.deferred("balances", Balance)
  for (const e of events) {
    const current = Option.getOrElse(yield* projection.find(e.account), (): Balance => ({
      id: e.account,
      owner: `owner of ${e.account}`,
      balance: 0,
      tags: []
    }))
    const balance = current.balance + e.amount
    yield* projection.save({ ...current, balance, tags: balance > 20 ? ["vip"] : [] })
  }
  yield* Console.log(`pending before flush: ${(yield* projection.pendingOperations).length} operations for ${events.length} events`)
  const flushed = yield* projection.flushWithContext({ projector: "balances" })
  yield* Console.log(`flushed: ${flushed.saved} saved in ${flushed.requests} BatchWriteItem requests`)

  // Request side: immediate repository.
  const balances = yield* ReadModel.repository("balances", Balance)
  const one = yield* balances.find("acc-7")
  yield* Console.log(`acc-7: ${JSON.stringify(Option.getOrUndefined(one))}`)
  const vips = yield* balances.findBy({ tags: "vip" })
  yield* Console.log(`vip accounts: ${vips.length}`)
  const some = yield* balances.findBy({ id: ["acc-3", "acc-1", "missing"] })
  yield* Console.log(`by ids (requested order, missing dropped): ${some.map((b) => b.id).join(", ")}`)
  const total = yield* Stream.runFold(balances.findAll(), () => 0, (sum, b) => sum + b.balance)
  yield* Console.log(`sum of balances: ${total} (events: ${events.reduce((s, e) => s + e.amount, 0)})`)
})

const ReadModelsLive = DynamoReadModelStore.layer({ tableName: "example-read-models" }).pipe(
  Layer.provide(Fixtures.layerClientFor()),
  Layer.provide(DynamoDBLocal.layer())
)

runMain(program.pipe(Effect.provide(ReadModelsLive)))

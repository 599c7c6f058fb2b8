import { assert, describe, layer } from "@effect/vitest"
import { Errors, EventLog, EventStore, Metrics, Projection, ReadModel } from "@dynamo-es/core"
import { projectionConformance } from "@dynamo-es/core/testing/ProjectionConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Option, Schema, Stream } from "effect"
import { DynamoReadModelStore } from "../src/index.js"
import { layerLog } from "./logHelpers.js"

const Sum = Schema.Struct({ id: Schema.String, sum: Schema.Number, versions: Schema.Array(Schema.Number) })

// DynamoDB Local is started once by the test run's global setup: building the layer per
// test only connects to it.
const client = Fixtures.layerClientFor().pipe(Layer.provide(DynamoDBLocal.layer()))

projectionConformance(
  "DynamoDB read models (guarded rows by PartiQL BatchExecuteStatement and conditional PutItems, checkpoints by compare-and-set)",
  () =>
    Effect.gen(function*() {
      // The client lives as long as the test's scope (the storage keeps using it).
      const context = yield* Layer.build(client)
      return yield* Effect.gen(function*() {
        const table = yield* Fixtures.scopedTable(DynamoReadModelStore.readModelsTable(Fixtures.uniqueTableName("rm")))
        return yield* DynamoReadModelStore.makeStorage(table)
      }).pipe(Effect.provide(context))
    }),
  { timeout: 120_000 }
)

// The whole path on DynamoDB: events table, sequencer, log table, read-models table.
describe("Projection on the DynamoDB global log", () => {
  layer(Layer.provideMerge(Fixtures.layerClientFor(), DynamoDBLocal.layer()), { timeout: 60_000, excludeTestServices: true })((it) => {
    for (const guardedBatches of [true, false]) {
      it.effect(`catches up through the sequencer's log, then follows appends live, with the rows of a plain fold (guardedBatches: ${guardedBatches})`, () =>
        Effect.gen(function*() {
          const readModelsTable = yield* Fixtures.scopedTable(DynamoReadModelStore.readModelsTable(Fixtures.uniqueTableName("rm")))
          const readModels = yield* DynamoReadModelStore.make({ tableName: readModelsTable, guardedBatches })
          yield* Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const log = yield* EventLog.EventLog
            const deposit = (id: string, amount: number, expectedVersion: number) =>
              store.append(id, [{ type: "Deposited", payload: { amount } }], { expectedVersion })
            for (const [i, id] of ["acc-a", "acc-b", "acc-c"].entries()) for (let v = 0; v < 4; v++) yield* deposit(id, i + v, v)
            const projection = Projection.make({
              name: "sums",
              events: Schema.Struct({ amount: Schema.Number }),
              readModels: { sums: Projection.readModel("sums", Sum) },
              prefetch: (event) => ({ sums: event.streamId }),
              handle: (event, { sums }) =>
                Effect.gen(function*() {
                  const current = Option.getOrElse(yield* sums.find(event.streamId), () => ({ id: event.streamId, sum: 0, versions: [] }))
                  yield* sums.save({ id: event.streamId, sum: current.sum + event.payload.amount, versions: [...current.versions, event.version] })
                })
            })
            const reached = yield* Deferred.make<void>()
            const runner = yield* Projection.run(projection, {
              batchWindow: "20 millis",
              pollInterval: "20 millis",
              onProgress: (p) => (p.position >= 16 ? Deferred.succeed(reached, undefined) : Effect.void)
            }).pipe(Effect.provideService(ReadModel.ReadModelStore, readModels), Effect.forkChild)
            // Live: more appends while it runs.
            for (const [i, id] of ["acc-a", "acc-d"].entries()) for (let v = 0; v < 2; v++) yield* deposit(id, 10 + i, id === "acc-a" ? 4 + v : v)
            yield* Deferred.await(reached)
            yield* Fiber.interrupt(runner)
            const logged = yield* Stream.runCollect(log.readAll())
            assert.strictEqual(logged.length, 16)
            const want = new Map<string, { id: string; sum: number; versions: Array<number> }>()
            for (const e of logged) {
              const row = want.get(e.streamId) ?? { id: e.streamId, sum: 0, versions: [] }
              want.set(e.streamId, { id: e.streamId, sum: row.sum + (e.payload as { amount: number }).amount, versions: [...row.versions, e.version] })
            }
            const repo = yield* readModels.create("sums", Sum)
            assert.deepStrictEqual(yield* Stream.runCollect(repo.findAll()), [...want.values()].sort((a, b) => a.id.localeCompare(b.id)))
            // The guarded rows went 25 per BatchExecuteStatement, or one conditional PutItem each.
            const batches = yield* Metrics.total(Metrics.requests, { command: "BatchExecuteStatement", table: readModelsTable })
            const puts = yield* Metrics.total(Metrics.requests, { command: "PutItem", table: readModelsTable })
            if (guardedBatches) assert.isAbove(batches, 0)
            else {
              assert.strictEqual(batches, 0)
              assert.isAtLeast(puts, want.size)
            }
          }).pipe(Effect.provide(layerLog()))
        }))
    }

    it.effect("a guardedBatches that is not a boolean is refused when the store is built", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(
          DynamoReadModelStore.make({ tableName: "rm-never-created", guardedBatches: "yes" as unknown as boolean })
        )
        assert.isTrue(Exit.isFailure(exit))
        const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.isTrue(defect instanceof Errors.InvalidInputError)
        assert.strictEqual((defect as Errors.InvalidInputError).field, "options.guardedBatches")
      }))
  })
})

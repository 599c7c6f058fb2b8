import { projectionConformance } from "@dynamo-es/core/testing/ProjectionConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer } from "effect"
import { DynamoReadModelStore } from "../src/index.js"

// DynamoDB Local is started once by the test run's global setup: building the layer per
// test only connects to it.
const client = Fixtures.layerClientFor().pipe(Layer.provide(DynamoDBLocal.layer()))

projectionConformance(
  "DynamoDB read models (guarded rows as conditional PutItems, checkpoints by compare-and-set)",
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

import { aggregateConformance } from "@dynamo-es/core/testing/AggregateConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer } from "effect"
import { DynamoSnapshotStore } from "../src/index.js"

const client = Fixtures.layerClientFor().pipe(Layer.provide(DynamoDBLocal.layer()))

const snapshots = Layer.unwrap(Effect.gen(function*() {
  const tableName = Fixtures.uniqueTableName("snapshots")
  yield* Fixtures.scopedTable(DynamoSnapshotStore.snapshotsTable(tableName))
  return DynamoSnapshotStore.layerExisting({ tableName })
}))

aggregateConformance("DynamoDB", () => Layer.merge(Fixtures.layerEventStore(), snapshots).pipe(Layer.provide(client)))

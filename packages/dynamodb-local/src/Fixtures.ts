/**
 * Test fixtures on top of DynamoDB Local: a client for it, and tables that exist for one
 * test (or one suite) only, so that test files run in parallel without seeing each
 * other's data. Creating and deleting a table on DynamoDB Local takes about 10 ms.
 *
 * ```ts
 * it.live("appends", () =>
 *   Effect.gen(function*() { ... }).pipe(Effect.provide(Fixtures.layerEventStore())))
 * ```
 *
 * @since 0.1.0
 */
import type { DynamoDBClientConfig } from "@aws-sdk/client-dynamodb"
import { DynamoClient, DynamoEventStore, Tables } from "@dynamo-es/dynamodb"
import type { EventStore } from "@dynamo-es/core"
import type { Errors } from "@dynamo-es/core"
import { Effect, Layer } from "effect"
import { DynamoDBLocal, type LayerError, layer as layerDynamoDBLocal } from "./DynamoDBLocal.js"

let sequence = 0

/**
 * A table name unique within the process and across processes (time + pid + counter).
 *
 * @since 0.1.0
 * @category fixtures
 */
export const uniqueTableName = (prefix = "test"): string =>
  `${prefix}_${Date.now().toString(36)}_${process.pid.toString(36)}_${(sequence++).toString(36)}`

/**
 * A {@link DynamoClient.DynamoClient} for the DynamoDB Local of the {@link DynamoDBLocal}
 * service. `client` lets a test bring its own SDK client (e.g. with fault-injecting
 * middleware) pointed at the same endpoint.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const layerClientFor = (
  options: Omit<DynamoClient.DynamoClientOptions, "endpoint" | "region" | "credentials"> = {}
): Layer.Layer<DynamoClient.DynamoClient, never, DynamoDBLocal> =>
  Layer.unwrap(
    Effect.map(DynamoDBLocal.use(Effect.succeed), (local) =>
      DynamoClient.layer({
        ...options,
        endpoint: local.endpoint,
        region: local.region,
        credentials: local.credentials
      }))
  )

/**
 * A client for DynamoDB Local, starting it when `DYNAMODB_ENDPOINT` is not set.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const layerClient: Layer.Layer<DynamoClient.DynamoClient, LayerError> = layerClientFor().pipe(
  Layer.provide(layerDynamoDBLocal())
)

/**
 * The connection settings (endpoint, region, credentials) as SDK client configuration,
 * for tests that build their own SDK client.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const sdkConfig = (local: DynamoDBLocal["Service"]): DynamoDBClientConfig => ({
  endpoint: local.endpoint,
  region: local.region,
  credentials: local.credentials,
  maxAttempts: 1
})

/**
 * Creates the given table for the duration of the scope, then deletes it.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const scopedTable = (definition: Tables.TableDefinition) =>
  Effect.acquireRelease(
    Tables.ensureTables([definition]).pipe(Effect.as(definition.create.TableName)),
    () => Tables.deleteTables([definition.create.TableName]).pipe(Effect.ignore)
  )

/**
 * A DynamoDB event store on its own fresh table, deleted when the layer is released.
 * Needs a {@link DynamoClient.DynamoClient} (see {@link layerClient}).
 *
 * @since 0.1.0
 * @category fixtures
 */
export const layerEventStore = (
  options: Partial<DynamoEventStore.DynamoEventStoreOptions> = {}
): Layer.Layer<EventStore.EventStore, Errors.StorageError | Tables.TableMismatchError, DynamoClient.DynamoClient> =>
  Layer.unwrap(Effect.gen(function*() {
    const tableName = options.tableName ?? uniqueTableName("events")
    yield* scopedTable(Tables.eventsTable(tableName))
    return DynamoEventStore.layerExisting({ ...options, tableName })
  }))

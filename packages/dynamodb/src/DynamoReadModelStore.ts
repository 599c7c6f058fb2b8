/**
 * The DynamoDB implementation of the core `ReadModel.ReadModelStore`: Broadway-style
 * read-model repositories, immediate and deferred.
 *
 * Layout (see {@link readModelsTable}), the one of the PHP package this project learned
 * from: partition key `Name` (S, the repository name), sort key `Id` (S, the read-model
 * id), attribute `Data` (S, the model's Schema-encoded JSON). No secondary index.
 *
 * Requests and costs (on-demand billing; 1 WCU per started KB written, 1 RCU per started
 * 4 KB read strongly consistent, half of it eventually consistent):
 *
 * | operation | requests |
 * | --- | --- |
 * | `save` | one `PutItem` (none when the stored state is known to be the same) |
 * | `remove` | one `DeleteItem` |
 * | `find`, `findBy({ id })` | one `GetItem` |
 * | `findBy({ id: [...] })` | one `BatchGetItem` per 100 ids (4 in flight), unprocessed keys retried |
 * | `findAll`, `findBy` on other fields | one `Query` per 1 MB page of the whole partition |
 * | deferred `flush` | one `BatchWriteItem` per 25 saves and per 25 removes, never mixed (8 in flight), unprocessed items retried |
 *
 * A deferred flush costs the same write units as one `PutItem` per model, in 25 times
 * fewer requests. It is not a transaction: see `ReadModel.DeferredRepository`.
 *
 * Projections' guarded rows (`storage.conditional`) are written 25 to a PartiQL
 * `BatchExecuteStatement` (`INSERT`, or `UPDATE ... WHERE Pos < ?`; 1 WCU per KB each, as a
 * `PutItem`/`UpdateItem`), a statement that fails written again as a conditional `PutItem`:
 * the role needs `dynamodb:PartiQLInsert` and `dynamodb:PartiQLUpdate` on the table.
 *
 * Reads pass an abort signal to the SDK (an interrupted read stops); writes do not
 * (aborting cannot undo a write): an interrupted flush lets its requests finish unseen, and
 * their operations stay pending, to be written again (idempotently) by the next flush.
 *
 * @since 0.1.0
 */
import {
  type AttributeValue,
  BatchExecuteStatementCommand,
  type BatchStatementRequest,
  BatchGetItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  type WriteRequest
} from "@aws-sdk/client-dynamodb"
import { Errors, ReadModel } from "@dynamo-es/core"
import { Config, Effect, Layer, Predicate } from "effect"
import { DynamoClient, unconditional } from "./DynamoClient.js"
import { writeBatch as writeOnce } from "./internal/batchWrite.js"
import { queryPage as queryPageOnce } from "./internal/query.js"
import { readModelLimits } from "./internal/sizes.js"
import { checkTableName, ensuring, readModelsTable, type TableMismatchError } from "./Tables.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface DynamoReadModelStoreOptions extends ReadModel.ReadModelStoreOptions {
  /** The read-models table (one table for every repository). */
  readonly tableName: string
  /**
   * How projections' guarded writes are sent. `true` (the default): 25 rows per PartiQL
   * `BatchExecuteStatement` (the role needs `dynamodb:PartiQLInsert` and
   * `dynamodb:PartiQLUpdate` on the table), a failed statement sent again alone as a
   * conditional `PutItem`. `false`: one conditional `PutItem` per row (about half the speed,
   * no PartiQL permission needed). Both land exactly the same writes.
   *
   * @since 0.2.0
   */
  readonly guardedBatches?: boolean | undefined
}


// `Name` and `Data` are DynamoDB reserved words: expressions use placeholders. `Pos` (N)
// and `Del` (BOOL) are written by projections' guarded writes: a row's log position, and
// a tombstone (a removed row whose position is kept), which no read returns.
const names = { "#n": "Name", "#i": "Id", "#d": "Data", "#del": "Del" }
const projection = "#i, #d, #del"
const rowNames = { "#i": "Id", "#d": "Data", "#del": "Del" }
const isTombstone = (item: Record<string, AttributeValue>) => item.Del?.BOOL === true

const keyOf = (name: string, id: string): Record<string, AttributeValue> => ({ Name: { S: name }, Id: { S: id } })

const toRow = (item: Record<string, AttributeValue>): ReadModel.StoredRow => ({
  id: item.Id?.S ?? "",
  data: item.Data?.S
})

const writeRequestId = (w: WriteRequest): string => w.PutRequest?.Item?.Id?.S ?? w.DeleteRequest?.Key?.Id?.S ?? ""

/** The conditional storage without its batched guarded writes: one conditional `PutItem` per row. */
const oneByOne = ({ writeGuardedBatch: _batched, ...rest }: ReadModel.ConditionalStorage): ReadModel.ConditionalStorage => rest

/**
 * The read-model {@link ReadModel.Storage} on a DynamoDB table: one SDK request per
 * primitive, through `DynamoClient.call` (typed errors, retries of transient failures).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeStorage = (tableName: string, options: { readonly guardedBatches?: boolean | undefined } = {}) =>
  Effect.gen(function*() {
    const client = yield* DynamoClient
    const table = tableName

    const get: ReadModel.Storage["get"] = (name, id, consistentRead) =>
      unconditional(client.call("GetItem", table, (c, abortSignal) =>
        c.send(
          new GetItemCommand({
            TableName: table,
            Key: keyOf(name, id),
            ConsistentRead: consistentRead,
            ProjectionExpression: projection,
            ExpressionAttributeNames: rowNames,
            ReturnConsumedCapacity: "TOTAL"
          }),
          { abortSignal }
        ))).pipe(Effect.map((r) => (r.Item === undefined || isTombstone(r.Item) ? undefined : toRow(r.Item))))

    const getBatch: ReadModel.Storage["getBatch"] = (name, ids, consistentRead) =>
      unconditional(client.call("BatchGetItem", table, (c, abortSignal) =>
        c.send(
          new BatchGetItemCommand({
            RequestItems: {
              [table]: {
                Keys: ids.map((id) => keyOf(name, id)),
                ConsistentRead: consistentRead,
                ProjectionExpression: projection,
                ExpressionAttributeNames: rowNames
              }
            },
            ReturnConsumedCapacity: "TOTAL"
          }),
          { abortSignal }
        ))).pipe(
          Effect.map((r) => ({
            rows: (r.Responses?.[table] ?? []).filter((item) => !isTombstone(item)).map(toRow),
            unprocessed: (r.UnprocessedKeys?.[table]?.Keys ?? []).map((k) => k.Id?.S ?? "")
          }))
        )

    const queryPage: ReadModel.Storage["queryPage"] = (name, { consistentRead, exclusiveStartId, limit }) =>
      queryPageOnce(client, table, {
        KeyConditionExpression: "#n = :n",
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ":n": { S: name } },
        // Tombstones are read (and billed) but not returned.
        FilterExpression: "attribute_not_exists(#del)",
        ProjectionExpression: projection,
        ConsistentRead: consistentRead,
        ...(limit !== undefined ? { Limit: limit } : {})
      }, exclusiveStartId !== undefined ? keyOf(name, exclusiveStartId) : undefined).pipe(
        Effect.map((page) => ({ rows: page.items.map(toRow), lastEvaluatedId: page.lastEvaluatedKey?.Id?.S }))
      )

    const put: ReadModel.Storage["put"] = (name, id, data) =>
      unconditional(client.call("PutItem", table, (c) =>
        c.send(
          new PutItemCommand({
            TableName: table,
            Item: { Name: { S: name }, Id: { S: id }, Data: { S: data } },
            ReturnConsumedCapacity: "TOTAL"
          })
        ))).pipe(Effect.asVoid)

    const remove: ReadModel.Storage["delete"] = (name, id) =>
      unconditional(client.call("DeleteItem", table, (c) =>
        c.send(
          new DeleteItemCommand({ TableName: table, Key: keyOf(name, id), ReturnConsumedCapacity: "TOTAL" })
        ))).pipe(Effect.asVoid)

    // One request; core's ReadModel.make retries what is left unprocessed, for every driver.
    const writeBatch: ReadModel.Storage["writeBatch"] = (name, operations) =>
      writeOnce(
        client,
        table,
        operations.map((op): WriteRequest =>
          Predicate.isTagged(op, "Put")
            ? { PutRequest: { Item: { Name: { S: name }, Id: { S: op.id }, Data: { S: op.data } } } }
            : { DeleteRequest: { Key: keyOf(name, op.id) } }
        )
      ).pipe(Effect.map((left) => ({ unprocessed: left.map(writeRequestId) })))

    const conditionalPut = (
      operation: string,
      item: Record<string, AttributeValue>,
      condition: string,
      values: Record<string, AttributeValue>,
      attributeNames: Record<string, string>
    ) =>
      client.call("PutItem", table, (c) =>
        c.send(
          new PutItemCommand({
            TableName: table,
            Item: item,
            ConditionExpression: condition,
            ExpressionAttributeNames: attributeNames,
            ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
            ReturnConsumedCapacity: "TOTAL"
          })
        )).pipe(
          Effect.as(true),
          Effect.catchTag("ConditionFailed", () => Effect.succeed(false)),
          Effect.catchTag("TransactionCanceled", (e) => Effect.die(e)),
          Effect.withSpan(`DynamoReadModelStore.${operation}`)
        )

    const conditional: ReadModel.ConditionalStorage = {
      readGuarded: (name, id) =>
        unconditional(client.call("GetItem", table, (c, abortSignal) =>
          c.send(
            new GetItemCommand({ TableName: table, Key: keyOf(name, id), ConsistentRead: true, ReturnConsumedCapacity: "TOTAL" }),
            { abortSignal }
          ))).pipe(
            Effect.map((r) =>
              r.Item === undefined
                ? undefined
                : { data: isTombstone(r.Item) ? undefined : r.Item.Data?.S, position: Number(r.Item.Pos?.N ?? 0) }
            )
          ),
      readGuardedBatch: (name, ids) =>
        unconditional(client.call("BatchGetItem", table, (c, abortSignal) =>
          c.send(
            new BatchGetItemCommand({
              RequestItems: { [table]: { Keys: ids.map((id) => keyOf(name, id)), ConsistentRead: true } },
              ReturnConsumedCapacity: "TOTAL"
            }),
            { abortSignal }
          ))).pipe(
            Effect.map((r) => ({
              rows: (r.Responses?.[table] ?? []).map((item) => ({
                id: item.Id?.S ?? "",
                data: isTombstone(item) ? undefined : item.Data?.S,
                position: Number(item.Pos?.N ?? 0)
              })),
              unprocessed: (r.UnprocessedKeys?.[table]?.Keys ?? []).map((k) => k.Id?.S ?? "")
            }))
          ),
      queryTombstones: (name, exclusiveStartId) =>
        queryPageOnce(client, table, {
          KeyConditionExpression: "#n = :n",
          FilterExpression: "#del = :t",
          ExpressionAttributeNames: { "#n": "Name", "#i": "Id", "#del": "Del", "#p": "Pos" },
          ExpressionAttributeValues: { ":n": { S: name }, ":t": { BOOL: true } },
          ProjectionExpression: "#i, #p",
          ConsistentRead: true
        }, exclusiveStartId !== undefined ? keyOf(name, exclusiveStartId) : undefined).pipe(
          Effect.map((page) => ({
            rows: page.items.map((item) => ({ id: item.Id?.S ?? "", position: Number(item.Pos?.N ?? 0) })),
            lastEvaluatedId: page.lastEvaluatedKey?.Id?.S
          }))
        ),
      deleteTombstone: (name, id, position) =>
        client.call("DeleteItem", table, (c) =>
          c.send(
            new DeleteItemCommand({
              TableName: table,
              Key: keyOf(name, id),
              ConditionExpression: "#del = :t AND #p = :p",
              ExpressionAttributeNames: { "#del": "Del", "#p": "Pos" },
              ExpressionAttributeValues: { ":t": { BOOL: true }, ":p": { N: String(position) } },
              ReturnConsumedCapacity: "TOTAL"
            })
          )).pipe(
            Effect.as(true),
            Effect.catchTag("ConditionFailed", () => Effect.succeed(false)),
            Effect.catchTag("TransactionCanceled", (e) => Effect.die(e))
          ),
      writeGuarded: (name, write) =>
        conditionalPut(
          "writeGuarded",
          write._tag === "Put"
            ? { Name: { S: name }, Id: { S: write.id }, Data: { S: write.data }, Pos: { N: String(write.position) } }
            : { Name: { S: name }, Id: { S: write.id }, Pos: { N: String(write.position) }, Del: { BOOL: true } },
          "attribute_not_exists(#i) OR attribute_not_exists(#p) OR #p < :p",
          { ":p": { N: String(write.position) } },
          { "#i": "Id", "#p": "Pos" }
        ),
      // PartiQL: INSERT fails on any stored row (DuplicateItem), UPDATE on a missing one or
      // one at a later position (ConditionalCheckFailed); together they are writeGuarded's
      // condition. A failed statement is unsettled: the caller sends it as writeGuarded.
      writeGuardedBatch: (name, writes) =>
        unconditional(client.call("BatchExecuteStatement", table, (c) =>
          c.send(
            new BatchExecuteStatementCommand({
              Statements: writes.map((write): BatchStatementRequest =>
                write.stored
                  ? {
                    Statement: write._tag === "Put"
                      ? `UPDATE "${table}" SET "Data" = ? SET "Pos" = ? REMOVE "Del" WHERE "Name" = ? AND "Id" = ? AND ("Pos" IS MISSING OR "Pos" < ?)`
                      : `UPDATE "${table}" SET "Del" = ? SET "Pos" = ? REMOVE "Data" WHERE "Name" = ? AND "Id" = ? AND ("Pos" IS MISSING OR "Pos" < ?)`,
                    Parameters: [
                      write._tag === "Put" ? { S: write.data } : { BOOL: true },
                      { N: String(write.position) },
                      { S: name },
                      { S: write.id },
                      { N: String(write.position) }
                    ]
                  }
                  : write._tag === "Put"
                  ? {
                    Statement: `INSERT INTO "${table}" VALUE {'Name': ?, 'Id': ?, 'Data': ?, 'Pos': ?}`,
                    Parameters: [{ S: name }, { S: write.id }, { S: write.data }, { N: String(write.position) }]
                  }
                  : {
                    Statement: `INSERT INTO "${table}" VALUE {'Name': ?, 'Id': ?, 'Pos': ?, 'Del': ?}`,
                    Parameters: [{ S: name }, { S: write.id }, { N: String(write.position) }, { BOOL: true }]
                  }
              ),
              ReturnConsumedCapacity: "TOTAL"
            })
          ))).pipe(
            // Responses are in the order of the statements.
            Effect.map((r) => ({
              unsettled: writes.flatMap((write, i) => (r.Responses?.[i] === undefined || r.Responses[i]!.Error !== undefined ? [write.id] : []))
            })),
            Effect.withSpan("DynamoReadModelStore.writeGuardedBatch")
          ),
      compareAndSet: (name, id, expected, data) =>
        expected === undefined
          ? conditionalPut("compareAndSet", { Name: { S: name }, Id: { S: id }, Data: { S: data } }, "attribute_not_exists(#i)", {}, { "#i": "Id" })
          : conditionalPut(
            "compareAndSet",
            { Name: { S: name }, Id: { S: id }, Data: { S: data } },
            "#d = :e",
            { ":e": { S: expected } },
            { "#d": "Data" }
          )
    }

    // The compare-and-set is the last item: a ConditionalCheckFailed can only be its own.
    const transact: ReadModel.ConditionalStorage["transact"] = (writes, check) =>
      client.call("TransactWriteItems", table, (c) =>
        c.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              ...writes.map(({ name, operation }): TransactWriteItem =>
                Predicate.isTagged(operation, "Put")
                  ? { Put: { TableName: table, Item: { Name: { S: name }, Id: { S: operation.id }, Data: { S: operation.data } } } }
                  : { Delete: { TableName: table, Key: keyOf(name, operation.id) } }
              ),
              {
                Put: {
                  TableName: table,
                  Item: { Name: { S: check.name }, Id: { S: check.id }, Data: { S: check.data } },
                  ConditionExpression: "#d = :e",
                  ExpressionAttributeNames: { "#d": "Data" },
                  ExpressionAttributeValues: { ":e": { S: check.expected } }
                }
              }
            ],
            ReturnConsumedCapacity: "TOTAL"
          })
        )).pipe(
          Effect.as(true),
          Effect.catchTag("TransactionCanceled", () => Effect.succeed(false)),
          Effect.catchTag("ConditionFailed", (e) => Effect.die(e))
        )

    const storage: ReadModel.Storage = {
      table,
      limits: readModelLimits,
      get,
      getBatch,
      queryPage,
      put,
      delete: remove,
      writeBatch,
      conditional: options.guardedBatches === false ? { ...oneByOne(conditional), transact } : { ...conditional, transact }
    }
    return storage
  })

/**
 * Builds the store on an existing table (see {@link layer} to also create it). Dies when
 * the table name is not a valid DynamoDB table name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: DynamoReadModelStoreOptions): Effect.Effect<ReadModel.ReadModelStoreShape, never, DynamoClient> =>
  Effect.gen(function*() {
    const table = yield* checkTableName("DynamoReadModelStore", options.tableName)
    if (options.guardedBatches !== undefined && typeof options.guardedBatches !== "boolean") {
      return yield* Effect.die(
        new Errors.InvalidInputError({
          operation: "DynamoReadModelStore.make",
          field: "options.guardedBatches",
          reason: `must be a boolean, got ${JSON.stringify(options.guardedBatches)}`
        })
      )
    }
    return yield* ReadModel.make(yield* makeStorage(table, { guardedBatches: options.guardedBatches }), options)
  })

/**
 * The DynamoDB read-model store as a layer, creating its table first when it does not
 * exist (`ensureTables`). Use {@link layerExisting} when tables are managed elsewhere.
 *
 * ```ts
 * const ReadModelsLive = DynamoReadModelStore.layer({ tableName: "read-models" }).pipe(
 *   Layer.provide(DynamoClient.layerConfig())
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: DynamoReadModelStoreOptions
): Layer.Layer<ReadModel.ReadModelStore, Errors.StorageError | TableMismatchError, DynamoClient> =>
  Layer.effect(ReadModel.ReadModelStore, ensuring(readModelsTable(options.tableName), make(options)))

/**
 * The DynamoDB read-model store on a table that already exists (no request at start).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerExisting = (options: DynamoReadModelStoreOptions): Layer.Layer<ReadModel.ReadModelStore, never, DynamoClient> =>
  Layer.effect(ReadModel.ReadModelStore, make(options))

/**
 * The configuration {@link layerConfig} reads when called without one: the table name from
 * `DYNAMO_ES_READ_MODELS_TABLE` (default `"read-models"`), through the current
 * `ConfigProvider` (environment variables unless you provide another).
 *
 * @since 0.2.0
 * @category config
 */
export const envConfig: Config.Config<DynamoReadModelStoreOptions> = Config.all({
  tableName: Config.String("DYNAMO_ES_READ_MODELS_TABLE").pipe(Config.withDefault("read-models"))
})

/**
 * {@link layer} with its options read through Effect `Config` (`Config.Wrap`: one `Config`
 * of the whole options, or a record with a `Config` per option). Without an argument it
 * reads {@link envConfig}. A missing or malformed value fails the layer with a
 * `ConfigError` that names it.
 *
 * ```ts
 * DynamoReadModelStore.layerConfig({ tableName: Config.String("READ_MODELS_TABLE") })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<DynamoReadModelStoreOptions> = envConfig
): Layer.Layer<ReadModel.ReadModelStore, Errors.StorageError | TableMismatchError | Config.ConfigError, DynamoClient> =>
  Layer.unwrap(Effect.map(Config.unwrap(config), layer))

export {
  /**
   * The table definition, also at `Tables.readModelsTable` (where all three are defined).
   *
   * @since 0.1.0
   * @category definitions
   */
  readModelsTable
}

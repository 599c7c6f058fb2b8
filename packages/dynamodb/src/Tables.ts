/**
 * Table definitions and `ensureTables`: create the tables the stores need, wait until
 * they are ACTIVE, and leave existing ones alone. For production, print the definitions
 * (`cloudFormation(...)`, or `npm run tables -- print` in this repository) and manage the
 * tables with your infrastructure tool instead.
 *
 * @since 0.1.0
 */
import {
  type CreateTableCommandInput,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  UpdateTimeToLiveCommand
} from "@aws-sdk/client-dynamodb"
import { Errors } from "@dynamo-es/core"
import { Duration, Effect, Predicate, Schedule, Schema } from "effect"
import { DynamoClient, unconditional } from "./DynamoClient.js"

/**
 * A table the library needs: its `CreateTable` input and, optionally, its TTL attribute.
 *
 * @since 0.1.0
 * @category models
 */
export interface TableDefinition {
  readonly create: CreateTableCommandInput & { readonly TableName: string }
  /** Attribute holding the TTL (epoch seconds); TTL is enabled on it by `ensureTables`. */
  readonly ttlAttribute?: string | undefined
}

/**
 * Checks a table name as DynamoDB does (3 to 255 characters of `[A-Za-z0-9_.-]`): a store
 * built with a wrong one dies at once with a message naming the store, instead of failing
 * on every request. The one table-name check of every store.
 *
 * @since 0.2.0
 * @category constructors
 */
export const checkTableName = (store: string, tableName: unknown): Effect.Effect<string> =>
  typeof tableName === "string" && /^[A-Za-z0-9_.-]{3,255}$/.test(tableName)
    ? Effect.succeed(tableName)
    : Effect.die(new Error(`${store}: tableName must be 3 to 255 characters of [A-Za-z0-9_.-], got ${JSON.stringify(tableName)}`))

/**
 * The one shape of every table of the library: a string partition key and a sort key,
 * on-demand billing, no secondary index; a stream and a TTL attribute where a table needs
 * them.
 */
const keyedTable = (
  tableName: string,
  keys: { readonly partition: string; readonly sort: string; readonly sortType: "S" | "N" },
  extra: { readonly stream?: boolean; readonly ttlAttribute?: string } = {}
): TableDefinition => ({
  create: {
    TableName: tableName,
    AttributeDefinitions: [
      { AttributeName: keys.partition, AttributeType: "S" },
      { AttributeName: keys.sort, AttributeType: keys.sortType }
    ],
    KeySchema: [
      { AttributeName: keys.partition, KeyType: "HASH" },
      { AttributeName: keys.sort, KeyType: "RANGE" }
    ],
    BillingMode: "PAY_PER_REQUEST",
    ...(extra.stream === true ? { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_IMAGE" } } : {})
  },
  ...(extra.ttlAttribute !== undefined ? { ttlAttribute: extra.ttlAttribute } : {})
})

/**
 * The events table: partition key `s` (stream id, S), sort key `v` (version, N),
 * on-demand billing, TTL on `x`, a DynamoDB Stream of new images (for projections; it
 * costs nothing until read). No secondary index: every event costs one item write.
 *
 * @since 0.1.0
 * @category definitions
 */
export const eventsTable = (tableName: string): TableDefinition =>
  keyedTable(tableName, { partition: "s", sort: "v", sortType: "N" }, { stream: true, ttlAttribute: "x" })

/**
 * The global log table (see `docs/global-log.md`): partition key `p` (S), sort key `k` (S),
 * on-demand billing, no index, no stream. It holds the log's entries (partitioned by epochs
 * of a million positions), one item per stream (its last indexed version, for `listStreams`
 * and the sequencer) and the sequencer's lease.
 *
 * @since 0.2.0
 * @category definitions
 */
export const logTable = (tableName: string): TableDefinition =>
  keyedTable(tableName, { partition: "p", sort: "k", sortType: "S" })

/**
 * The snapshots table: partition key `s` (S), sort key `k` (S), on-demand, no index.
 *
 * @since 0.1.0
 * @category definitions
 */
export const snapshotsTable = (tableName: string): TableDefinition =>
  keyedTable(tableName, { partition: "s", sort: "k", sortType: "S" })

/**
 * The read-models table: partition key `Name` (S), sort key `Id` (S), on-demand billing,
 * no secondary index, no stream.
 *
 * @since 0.1.0
 * @category definitions
 */
export const readModelsTable = (tableName: string): TableDefinition =>
  keyedTable(tableName, { partition: "Name", sort: "Id", sortType: "S" })

/**
 * An existing table does not have the key schema the library needs.
 *
 * @since 0.1.0
 * @category errors
 */
export class TableMismatchError extends Schema.TaggedError<TableMismatchError>()("TableMismatchError", {
  tableName: Schema.String,
  expected: Schema.String,
  actual: Schema.String
}) {
  override get message(): string {
    return `Table "${this.tableName}" exists with key schema ${this.actual}, but dynamo-es needs ${this.expected}. Use another table name or migrate the table.`
  }
}

const keyString = (keys: ReadonlyArray<{ AttributeName?: string | undefined; KeyType?: string | undefined }> | undefined) =>
  (keys ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(",")

const waitActive = (client: DynamoClient["Service"], tableName: string) =>
  client.call("DescribeTable", tableName, (c, abortSignal) => c.send(new DescribeTableCommand({ TableName: tableName }), { abortSignal })).pipe(
    Effect.flatMap((r) =>
      r.Table?.TableStatus === "ACTIVE"
        ? Effect.succeed(r.Table)
        : Effect.fail(new Errors.StorageError({
          operation: "DescribeTable",
          reason: "Unavailable",
          resource: tableName,
          detail: `table is ${r.Table?.TableStatus ?? "unknown"}, waiting for ACTIVE`
        }))
    ),
    // New tables (with streams) take seconds to minutes on AWS; DynamoDB Local is instant.
    Effect.retry({
      while: (e) => Predicate.isTagged(e, "StorageError") && e.reason === "Unavailable",
      schedule: Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("2 seconds")])
    }),
    Effect.timeoutOrElse({
      duration: Duration.minutes(10),
      orElse: () =>
        Effect.fail(new Errors.StorageError({
          operation: "DescribeTable",
          reason: "Unavailable",
          resource: tableName,
          detail: "the table did not become ACTIVE within 10 minutes"
        }))
    })
  )

const notFound = (e: { readonly _tag: string; readonly reason?: string }) =>
  e.reason === "ResourceNotFound" && Predicate.isTagged(e, "StorageError")

/**
 * Creates each table that does not exist, waits until it is ACTIVE and enables its TTL.
 * Existing tables are left alone, but their key schema is checked
 * ({@link TableMismatchError} when it differs). Idempotent; safe to run at every start
 * in development. Returns the names of the tables it created. A table name DynamoDB would
 * refuse dies ({@link checkTableName}) before any request is sent.
 *
 * @since 0.1.0
 * @category operations
 */
export const ensureTables = Effect.fn("ensureTables")(function*(definitions: ReadonlyArray<TableDefinition>) {
  const client = yield* DynamoClient
  // Every name first: a bad one dies before any table is created.
  for (const def of definitions) yield* checkTableName("ensureTables", def.create.TableName)
  const created: Array<string> = []
  for (const def of definitions) {
    const name = def.create.TableName
    const existing = yield* client.call("DescribeTable", name, (c, abortSignal) =>
      c.send(new DescribeTableCommand({ TableName: name }), { abortSignal })).pipe(
        Effect.map((r) => r.Table),
        Effect.catchIf(notFound, () => Effect.succeed(undefined))
      )
    if (existing === undefined) {
      yield* client.call("CreateTable", name, (c, abortSignal) => c.send(new CreateTableCommand(def.create), { abortSignal })).pipe(
        Effect.catchIf(
          (e) => Predicate.isTagged(e, "StorageError") && /ResourceInUse/.test(e.detail),
          () => Effect.void // created concurrently by someone else: fine
        )
      )
      created.push(name)
    } else {
      const expected = keyString(def.create.KeySchema)
      const actual = keyString(existing.KeySchema)
      if (expected !== actual) return yield* new TableMismatchError({ tableName: name, expected, actual })
    }
    yield* waitActive(client, name)
    if (def.ttlAttribute !== undefined) {
      const ttl = yield* client.call("DescribeTimeToLive", name, (c, abortSignal) =>
        c.send(new DescribeTimeToLiveCommand({ TableName: name }), { abortSignal }))
      const status = ttl.TimeToLiveDescription?.TimeToLiveStatus
      if (status !== "ENABLED" && status !== "ENABLING") {
        yield* client.call("UpdateTimeToLive", name, (c, abortSignal) =>
          c.send(
            new UpdateTimeToLiveCommand({
              TableName: name,
              TimeToLiveSpecification: { AttributeName: def.ttlAttribute!, Enabled: true }
            }),
            { abortSignal }
          ))
      }
    }
  }
  return created
}, unconditional)

/**
 * Runs `make` after `ensureTables([definition])`: what the `layer` constructors of the
 * stores use to create their table on first start.
 *
 * @since 0.1.0
 * @category operations
 */
export const ensuring = <A, E, R>(definition: TableDefinition, make: Effect.Effect<A, E, R>) =>
  Effect.andThen(ensureTables([definition]), make)

/**
 * Deletes tables (missing ones are ignored). For tests and tear-down scripts.
 *
 * @since 0.1.0
 * @category operations
 */
export const deleteTables = Effect.fn("deleteTables")(function*(tableNames: ReadonlyArray<string>) {
  const client = yield* DynamoClient
  for (const name of tableNames) {
    yield* client.call("DeleteTable", name, (c, abortSignal) => c.send(new DeleteTableCommand({ TableName: name }), { abortSignal })).pipe(
      Effect.catchIf(notFound, () => Effect.void)
    )
  }
}, unconditional)

/**
 * The definitions as a CloudFormation `Resources` object, with production settings that
 * `ensureTables` does not apply: point-in-time recovery (billed), deletion protection and
 * `DeletionPolicy: Retain`. For CDK use `CfnInclude` (or camelCase the keys for `CfnTable`).
 * Print it with `JSON.stringify({ Resources: cloudFormation([...]) }, null, 2)`.
 *
 * @since 0.1.0
 * @category definitions
 */
export const cloudFormation = (definitions: ReadonlyArray<TableDefinition>): Record<string, unknown> =>
  Object.fromEntries(definitions.map((def) => [
    def.create.TableName.replace(/[^A-Za-z0-9]/g, "") + "Table",
    {
      Type: "AWS::DynamoDB::Table",
      DeletionPolicy: "Retain",
      Properties: {
        TableName: def.create.TableName,
        AttributeDefinitions: def.create.AttributeDefinitions,
        KeySchema: def.create.KeySchema,
        BillingMode: def.create.BillingMode,
        ...(def.create.GlobalSecondaryIndexes ? { GlobalSecondaryIndexes: def.create.GlobalSecondaryIndexes } : {}),
        ...(def.create.StreamSpecification
          ? { StreamSpecification: { StreamViewType: def.create.StreamSpecification.StreamViewType } }
          : {}),
        ...(def.ttlAttribute ? { TimeToLiveSpecification: { AttributeName: def.ttlAttribute, Enabled: true } } : {}),
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true
      }
    }
  ]))

/**
 * The DynamoDB implementation of the core `EventStore`: the storage primitives of
 * `EventStore.Storage` on a DynamoDB table, under the rules that `EventStore.make`
 * implements once for every implementation.
 *
 * Layout (see `Tables.eventsTable`): one item per event, partition key `s` = stream id,
 * sort key `v` = version. Attribute names are one letter because names count towards
 * every item's billed size: `i` event id, `y` type, `d` payload JSON, `m` metadata JSON
 * (absent when empty), `t` recorded-at epoch ms, `x` TTL epoch seconds.
 *
 * Requests, and why appends are gap-free and cheap:
 * - `write` puts versions with `attribute_not_exists(v)`, so a version is never written
 *   twice, whatever the concurrency: one `PutItem` (1 WCU under 1 KB) for one event, one
 *   `TransactWriteItems` (with a `ClientRequestToken`, so that retries of the very same
 *   request are idempotent) for several. `ReturnValuesOnConditionCheckFailure: ALL_OLD`
 *   returns what is in the way, so recognising an append that is already stored costs no read;
 * - `lastVersion` is one `Query` (`Limit 1`, backwards, projecting `v`): 1 RCU for an event
 *   up to 4 KB. The event store needs it only for an expected version it has not proven
 *   itself (its version cache remembers the versions it read or wrote), `"any"` and
 *   `"streamExists"`;
 * - `readPage` is one `Query` page (1 MB, or `Limit`).
 *
 * The storage declares DynamoDB's limits to core (`EventStore.Storage.limits`, from
 * `internal/sizes.ts`): an item of at most 409,600 bytes, sized as DynamoDB sizes it (the
 * one-letter attribute names plus their values), and at most 100 items and 4 MB per
 * `TransactWriteItems`; core refuses larger events and appends before any request.
 *
 * @since 0.1.0
 */
import {
  type AttributeValue,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand
} from "@aws-sdk/client-dynamodb"
import { Errors, EventStore } from "@dynamo-es/core"
import { Config, Effect, Layer } from "effect"
import { ulid } from "ulid"
import { DynamoClient, unconditional } from "./DynamoClient.js"
import { eventStoreLimits } from "./internal/sizes.js"
import { checkTableName, ensuring, eventsTable, type TableMismatchError } from "./Tables.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface DynamoEventStoreOptions extends EventStore.EventStoreOptions {
  /** The events table. */
  readonly tableName: string
}

/** The versions an event can have: 1 to 2^53 - 1. */
const first: AttributeValue = { N: "1" }
const last: AttributeValue = { N: String(Number.MAX_SAFE_INTEGER) }

/** The largest `Limit` sent with a Query (DynamoDB's 1 MB page applies below it anyway). */
const MAX_QUERY_LIMIT = 10_000

const toItem = (streamId: string, version: number, e: EventStore.EventRecord): Record<string, AttributeValue> => {
  const item: Record<string, AttributeValue> = {
    s: { S: streamId },
    v: { N: String(version) },
    i: { S: e.eventId },
    y: { S: e.type },
    d: { S: e.payloadJson },
    t: { N: String(e.recordedAtMillis) }
  }
  if (e.metadataJson !== undefined) item.m = { S: e.metadataJson }
  if (e.expiresAtSeconds !== undefined) item.x = { N: String(e.expiresAtSeconds) }
  return item
}

const num = (a: AttributeValue | undefined): number | undefined => (a?.N === undefined ? undefined : Number(a.N))

/**
 * An item of the events table as the event store sees it: whatever is there, with `null`
 * for an attribute of the wrong kind, so that the store reports it as corrupted (it checks
 * every field). Also decodes the new images of the table's DynamoDB Stream
 * (`DynamoStreams`).
 *
 * @since 0.2.0
 * @category storage
 */
export const fromItem = (streamId: string, item: Record<string, AttributeValue>): EventStore.StoredEvent => ({
  streamId: item.s?.S ?? streamId,
  version: num(item.v) ?? Number.NaN,
  eventId: item.i?.S,
  type: item.y?.S,
  payloadJson: item.d?.S,
  metadataJson: item.m === undefined ? undefined : item.m.S ?? null,
  recordedAtMillis: num(item.t),
  expiresAtSeconds: item.x === undefined ? undefined : num(item.x) ?? null
})

/**
 * The event store's storage on a DynamoDB table (see the module documentation for the
 * requests). For drivers and tests; most code uses {@link make} or the layers.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeStorage = (tableName: string) =>
  Effect.gen(function*() {
    const client = yield* DynamoClient
    const table = yield* checkTableName("DynamoEventStore", tableName)

    const lastVersion: EventStore.Storage["lastVersion"] = (streamId, consistentRead) =>
      // A one-item query: not worth an AbortController per call.
      unconditional(client.call("Query", table, (c) =>
        c.send(
          new QueryCommand({
            TableName: table,
            // Bounded: an item at a version no event can have (0, negative, beyond 2^53) is
            // not the stream's head.
            KeyConditionExpression: "s = :s AND v BETWEEN :first AND :last",
            ExpressionAttributeValues: { ":s": { S: streamId }, ":first": first, ":last": last },
            ProjectionExpression: "v",
            ScanIndexForward: false,
            Limit: 1,
            ConsistentRead: consistentRead,
            ReturnConsumedCapacity: "TOTAL"
          })
        ))).pipe(Effect.map((r) => num(r.Items?.[0]?.v) ?? 0))

    const write: EventStore.Storage["write"] = (streamId, base, events) => {
      const taken = (stored?: ReadonlyArray<EventStore.StoredEvent | undefined>): EventStore.WriteOutcome => ({ _tag: "Taken", stored })
      const storedItem = (version: number, item: Record<string, AttributeValue> | undefined) =>
        item === undefined ? undefined : fromItem(streamId, { ...item, v: item.v ?? { N: String(version) } })
      if (events.length === 1) {
        // No abort signal on writes: aborting cannot undo a write, and it saves an AbortController per call.
        return client.call("PutItem", table, (c) =>
          c.send(
            new PutItemCommand({
              TableName: table,
              Item: toItem(streamId, base + 1, events[0]),
              ConditionExpression: "attribute_not_exists(v)",
              ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              ReturnConsumedCapacity: "TOTAL"
            })
          )).pipe(
            Effect.as<EventStore.WriteOutcome>(written),
            // The item at base+1 came back with the failure.
            Effect.catchTag("ConditionFailed", (e) => Effect.succeed(taken([storedItem(base + 1, e.oldItem)]))),
            unconditional
          )
      }
      // Makes our own retries of this very request idempotent for 10 minutes. A token must
      // never be reused for a different request (other versions): one per write, made here,
      // outside the request function that every retry calls again.
      const token = ulid()
      return client.call("TransactWriteItems", table, (c) =>
        c.send(
          new TransactWriteItemsCommand({
            TransactItems: events.map((e, i) => ({
              Put: {
                TableName: table,
                Item: toItem(streamId, base + 1 + i, e),
                ConditionExpression: "attribute_not_exists(v)",
                ReturnValuesOnConditionCheckFailure: "ALL_OLD"
              }
            })),
            ClientRequestToken: token,
            ReturnConsumedCapacity: "TOTAL"
          })
        )).pipe(
          Effect.as<EventStore.WriteOutcome>(written),
          Effect.catchTags({
            // One reason per item, with the existing item where its condition failed.
            TransactionCanceled: (e) =>
              Effect.succeed(taken(events.map((_, i) => {
                const reason = e.cancellationReasons[i]
                return reason?.Code === "ConditionalCheckFailed" ? storedItem(base + 1 + i, reason.Item) : undefined
              }))),
            ConditionFailed: () => Effect.succeed(taken())
          })
        )
    }

    const readPage: EventStore.Storage["readPage"] = (request, cursor) => {
      const limit = Math.min(request.maxEvents, MAX_QUERY_LIMIT)
      return unconditional(client.call("Query", table, (c, abortSignal) =>
        c.send(
          new QueryCommand({
            TableName: table,
            // Always bounded (the range is within 1..2^53-1): an item at a version no event
            // can have is never read, so it can never block a reader.
            KeyConditionExpression: "s = :s AND v BETWEEN :from AND :to",
            ExpressionAttributeValues: {
              ":s": { S: request.streamId },
              ":from": { N: String(request.from) },
              ":to": { N: String(request.to) }
            },
            ScanIndexForward: request.direction === "forward",
            ConsistentRead: request.consistentRead,
            ...(Number.isFinite(limit) ? { Limit: limit } : {}),
            ...(cursor !== undefined ? { ExclusiveStartKey: cursor as Record<string, AttributeValue> } : {}),
            ReturnConsumedCapacity: "TOTAL"
          }),
          { abortSignal }
        ))).pipe(
          Effect.map((r): EventStore.Page => ({
            rows: (r.Items ?? []).map((item) => fromItem(request.streamId, item)),
            cursor: r.LastEvaluatedKey
          }))
        )
    }

    return { limits: eventStoreLimits, lastVersion, write, readPage } satisfies EventStore.Storage
  })

const written: EventStore.WriteOutcome = { _tag: "Written" }

/**
 * Builds the store on an existing table (see {@link layer} to also create it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: DynamoEventStoreOptions) =>
  Effect.flatMap(makeStorage(options.tableName), (storage) => EventStore.make(storage, options))

/**
 * The DynamoDB event store as a layer, creating its table first when it does not exist
 * (`ensureTables`). Use {@link layerExisting} when tables are managed elsewhere.
 *
 * ```ts
 * const EventStoreLive = DynamoEventStore.layer({ tableName: "events" }).pipe(
 *   Layer.provide(DynamoClient.layerConfig())
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: DynamoEventStoreOptions): Layer.Layer<EventStore.EventStore, Errors.StorageError | TableMismatchError, DynamoClient> =>
  Layer.effect(EventStore.EventStore, ensuring(eventsTable(options.tableName), make(options)))

/**
 * The DynamoDB event store on a table that already exists (no `DescribeTable` at start).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerExisting = (options: DynamoEventStoreOptions): Layer.Layer<EventStore.EventStore, never, DynamoClient> =>
  Layer.effect(EventStore.EventStore, make(options))

/**
 * The configuration {@link layerConfig} reads when called without one: the table name from
 * `DYNAMO_ES_EVENTS_TABLE` (default `"events"`), through the current `ConfigProvider`
 * (environment variables unless you provide another).
 *
 * @since 0.2.0
 * @category config
 */
export const envConfig: Config.Config<DynamoEventStoreOptions> = Config.all({
  tableName: Config.String("DYNAMO_ES_EVENTS_TABLE").pipe(Config.withDefault("events"))
})

/**
 * {@link layer} with its options read through Effect `Config`, as Effect's own drivers take
 * them (`Config.Wrap`): one `Config` of the whole options, or a record with a `Config` (or
 * `Config.succeed(value)`) per option. Without an argument it reads {@link envConfig}. A
 * missing or malformed value fails the layer with a `ConfigError` that names it.
 *
 * ```ts
 * DynamoEventStore.layerConfig({ tableName: Config.String("EVENTS_TABLE") })
 * DynamoEventStore.layerConfig() // DYNAMO_ES_EVENTS_TABLE, default "events"
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<DynamoEventStoreOptions> = envConfig
): Layer.Layer<EventStore.EventStore, Errors.StorageError | TableMismatchError | Config.ConfigError, DynamoClient> =>
  Layer.unwrap(Effect.map(Config.unwrap(config), layer))

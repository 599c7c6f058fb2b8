/**
 * The DynamoDB implementation of the core `EventStore`.
 *
 * Layout (see `Tables.eventsTable`): one item per event, partition key `s` = stream id,
 * sort key `v` = version. Attribute names are one letter because names count towards
 * every item's billed size.
 *
 * How `append` stays gap-free and cheap:
 * - versions are written with `attribute_not_exists(v)`, so a version is never written
 *   twice, whatever the concurrency;
 * - to rule out gaps, version N+1 is only written when version N is known to exist. The
 *   store remembers, per stream, the highest version it has itself read or written (a
 *   bounded LRU); versions never disappear, so an expected version at or below it is
 *   proven and the append is a single request: one `PutItem` (1 WCU under 1 KB) for one
 *   event, one `TransactWriteItems` for several. An expected version from elsewhere (a
 *   bare number) is checked first with one strongly consistent `Query` (`Limit 1`,
 *   backwards; 1 RCU for an event up to 4 KB), which also tells the actual version for the `ConflictError`;
 * - `"noStream"` / `0` needs no read: version 1 either exists or not;
 * - `"any"` and `"streamExists"` read the current version, then write after it, and try
 *   again (up to 50 times) when another writer got there first;
 * - a retried request whose first attempt did succeed (a lost response) is recognised by
 *   its event id on the condition failure and reported as success, not appended twice.
 *
 * @since 0.1.0
 */
import {
  type AttributeValue,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteItemsCommand
} from "@aws-sdk/client-dynamodb"
import { Errors, EventStore } from "@dynamo-es/core"
import { decodeStoredEvent, envelopeOf } from "@dynamo-es/core/internal/envelope"
import {
  type PreparedEvent,
  prepareAppend,
  validateCount,
  validateReadOptions,
  validateStreamId
} from "@dynamo-es/core/internal/prepare"
import { Clock, Config, Effect, Layer, Option, Random, Stream } from "effect"
import { makeUlid } from "@dynamo-es/core/internal/ids"
import { DynamoClient, unconditional } from "./DynamoClient.js"
import { ensuring, eventsTable, type TableMismatchError } from "./Tables.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface DynamoEventStoreOptions extends EventStore.EventStoreOptions {
  /** The events table. */
  readonly tableName: string
  /**
   * How many streams' proven versions the store remembers (LRU). Each entry saves the
   * read before an append with an exact expected version. Default 10,000; 0 disables.
   */
  readonly versionCacheSize?: number | undefined
  /** Attempts of an `"any"`/`"streamExists"` append under contention. Default 50. */
  readonly maxAppendAttempts?: number | undefined
}

const MAX_VERSION = Number.MAX_SAFE_INTEGER

/** A bounded map of stream id -> highest version known to exist. */
const makeVersionCache = (capacity: number) => {
  const map = new Map<string, number>()
  return {
    get: (streamId: string): number => {
      const v = map.get(streamId)
      if (v === undefined) return 0
      map.delete(streamId)
      map.set(streamId, v)
      return v
    },
    observe: (streamId: string, version: number) => {
      if (capacity <= 0 || version <= 0) return
      const known = map.get(streamId) ?? 0
      map.delete(streamId)
      map.set(streamId, Math.max(known, version))
      if (map.size > capacity) map.delete(map.keys().next().value!)
    }
  }
}

const toItem = (streamId: string, version: number, e: PreparedEvent): Record<string, AttributeValue> => {
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

const fromItem = (streamId: string, item: Record<string, AttributeValue>) => {
  const version = num(item.v)
  return decodeStoredEvent({
    streamId: item.s?.S ?? streamId,
    version: version ?? -1,
    eventId: item.i?.S,
    type: item.y?.S,
    payloadJson: item.d?.S,
    metadataJson: item.m === undefined ? undefined : item.m.S ?? null,
    recordedAtMillis: num(item.t),
    expiresAtSeconds: item.x === undefined ? undefined : num(item.x) ?? null
  })
}

const nextToken = (): string => makeUlid()

/**
 * Builds the store on an existing table (see {@link layer} to also create it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: DynamoEventStoreOptions) =>
  Effect.gen(function*() {
    const client = yield* DynamoClient
    const table = options.tableName
    if (typeof table !== "string" || table.length < 3 || table.length > 255) {
      return yield* Effect.die(new Error(`DynamoEventStore: tableName must be 3 to 255 characters, got ${JSON.stringify(table)}`))
    }
    const cache = makeVersionCache(options.versionCacheSize ?? 10_000)
    const maxAttempts = options.maxAppendAttempts ?? 50

    /** Strongly consistent (by default) read of the current version: Query, backwards, Limit 1. */
    const currentVersion = (streamId: string, consistentRead = true) =>
      // A one-item query: not worth an AbortController per call.
      unconditional(client.call("Query", table, (c) =>
        c.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: "s = :s",
            ExpressionAttributeValues: { ":s": { S: streamId } },
            ProjectionExpression: "v",
            ScanIndexForward: false,
            Limit: 1,
            ConsistentRead: consistentRead,
            ReturnConsumedCapacity: "TOTAL"
          })
        ))).pipe(
          Effect.map((r) => {
            const v = num(r.Items?.[0]?.v) ?? 0
            cache.observe(streamId, v)
            return v
          })
        )

    /**
     * Writes `events` as versions base+1..base+k. Succeeds with `true`, or `false` when one
     * of the versions already exists (someone else appended). A condition failure caused
     * by our own earlier attempt (same event id at base+1) counts as success.
     */
    const write = (streamId: string, base: number, events: ReadonlyArray<PreparedEvent>) => {
      const ours = (item: Record<string, AttributeValue> | undefined) => item?.i?.S === events[0]!.eventId
      if (events.length === 1) {
        // No abort signal on writes: aborting cannot undo a write, and it saves an AbortController per call.
        return client.call("PutItem", table, (c) =>
          c.send(
            new PutItemCommand({
              TableName: table,
              Item: toItem(streamId, base + 1, events[0]!),
              ConditionExpression: "attribute_not_exists(v)",
              ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              ReturnConsumedCapacity: "TOTAL"
            })
          )).pipe(
            Effect.as(true),
            Effect.catchTag("ConditionFailed", (e) => Effect.succeed(ours(e.oldItem))),
            unconditional
          )
      }
      const token = nextToken()
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
            // Makes our own retries of this very request idempotent for 10 minutes. A token
            // must never be reused for a different request (other versions): one per write.
            ClientRequestToken: token,
            ReturnConsumedCapacity: "TOTAL"
          })
        )).pipe(
          Effect.as(true),
          Effect.catchTag("TransactionCanceled", (e) =>
            Effect.succeed(ours(e.cancellationReasons[0]?.Item))),
          Effect.catchTag("ConditionFailed", () => Effect.succeed(false))
        )
    }

    const append: EventStore.EventStoreShape["append"] = Effect.fnUntraced(
      function*(streamId, events, appendOptions) {
        yield* validateStreamId("append", streamId)
        const now = yield* Clock.currentTimeMillis
        const { events: prepared, expectedVersion: expected } = yield* prepareAppend(
          "append",
          streamId,
          events,
          appendOptions,
          options,
          now
        )
        const conflict = (actual: number) =>
          new Errors.ConflictError({ streamId, expectedVersion: expected, actualVersion: actual })

        let base: number
        if (typeof expected === "number" || expected === "noStream") {
          const n = expected === "noStream" ? 0 : expected
          if (n > 0 && cache.get(streamId) < n) {
            const actual = yield* currentVersion(streamId)
            if (actual !== n) return yield* conflict(actual)
          }
          base = n
          if (!(yield* write(streamId, base, prepared))) return yield* conflict(yield* currentVersion(streamId))
        } else {
          let attempt = 0
          while (true) {
            base = yield* currentVersion(streamId)
            if (expected === "streamExists" && base === 0) return yield* conflict(0)
            if (yield* write(streamId, base, prepared)) break
            if (++attempt >= maxAttempts) return yield* conflict(yield* currentVersion(streamId))
            // Someone else appended: back off a little so that racing writers spread out.
            yield* Effect.sleep(yield* Random.nextBetween(0, Math.min(100, 5 * attempt)))
          }
        }
        const version = base + prepared.length
        cache.observe(streamId, version)
        return {
          streamId,
          version,
          events: prepared.map((e, i) => envelopeOf(streamId, base + 1 + i, e))
        }
      }
    )

    interface PageState {
      readonly startKey: Record<string, AttributeValue> | undefined
      readonly emitted: number
      readonly first: boolean
    }

    const read: EventStore.EventStoreShape["read"] = (streamId, readOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        yield* validateStreamId("read", streamId)
        const o = yield* validateReadOptions("read", readOptions)
        const bounded = o.to !== undefined
        const base: QueryCommandInput = {
          TableName: table,
          KeyConditionExpression: bounded || o.from > 1 ? "s = :s AND v BETWEEN :from AND :to" : "s = :s",
          ExpressionAttributeValues: bounded || o.from > 1
            ? { ":s": { S: streamId }, ":from": { N: String(o.from) }, ":to": { N: String(o.to ?? MAX_VERSION) } }
            : { ":s": { S: streamId } },
          ScanIndexForward: o.direction === "forward",
          ConsistentRead: o.consistentRead,
          ReturnConsumedCapacity: "TOTAL"
        }
        const page = (state: PageState) =>
          Effect.gen(function*() {
            const remaining = o.limit === undefined ? undefined : o.limit - state.emitted
            const limit = remaining === undefined ? o.pageSize : Math.min(remaining, o.pageSize ?? remaining)
            const response = yield* unconditional(client.call("Query", table, (c, abortSignal) =>
              c.send(
                new QueryCommand({
                  ...base,
                  ...(limit !== undefined ? { Limit: limit } : {}),
                  ...(state.startKey !== undefined ? { ExclusiveStartKey: state.startKey } : {})
                }),
                { abortSignal }
              )))
            const items = response.Items ?? []
            if (state.first && items.length === 0 && response.LastEvaluatedKey === undefined && o.ifMissing === "fail") {
              // Either the stream does not exist, or the range is past its end.
              const exists = bounded || o.from > 1 ? (yield* currentVersion(streamId, o.consistentRead)) > 0 : false
              if (!exists) return yield* new Errors.NotFoundError({ resource: "stream", id: streamId })
            }
            const envelopes = yield* Effect.forEach(items, (item) => fromItem(streamId, item))
            if (envelopes.length > 0) {
              cache.observe(streamId, Math.max(envelopes[0]!.version, envelopes[envelopes.length - 1]!.version))
            }
            const emitted = state.emitted + envelopes.length
            const more = response.LastEvaluatedKey !== undefined && (o.limit === undefined || emitted < o.limit)
            const next: Option.Option<PageState> = more
              ? Option.some({ startKey: response.LastEvaluatedKey, emitted, first: false })
              : Option.none()
            return [envelopes, next] as const
          })
        return Stream.paginate<PageState, EventStore.EventEnvelope, EventStore.ReadError>(
          { startKey: undefined, emitted: 0, first: true },
          page
        )
      }))

    const readLast: EventStore.EventStoreShape["readLast"] = Effect.fn("DynamoEventStore.readLast")(
      function*(streamId, n, readOptions) {
        yield* validateStreamId("readLast", streamId)
        yield* validateCount("readLast", n)
        const events = yield* Stream.runCollect(
          read(streamId, { direction: "backward", limit: n, consistentRead: readOptions?.consistentRead })
        )
        return events.reverse()
      }
    )

    const version: EventStore.EventStoreShape["version"] = Effect.fn("DynamoEventStore.version")(
      function*(streamId, versionOptions) {
        yield* validateStreamId("version", streamId)
        return yield* currentVersion(streamId, versionOptions?.consistentRead ?? true)
      }
    )

    return EventStore.EventStore.of({ append, read, readLast, version })
  })

/**
 * The DynamoDB event store as a layer, creating its table first when it does not exist
 * (`ensureTables`). Use {@link layerExisting} when tables are managed elsewhere.
 *
 * ```ts
 * const EventStoreLive = DynamoEventStore.layer({ tableName: "events" }).pipe(
 *   Layer.provide(DynamoClient.layerConfig)
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
 * {@link layer} configured from the environment: `DYNAMO_ES_EVENTS_TABLE` (default
 * `"events"`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<EventStore.EventStore, Errors.StorageError | TableMismatchError | Config.ConfigError, DynamoClient> = Layer.unwrap(
  Effect.gen(function*() {
    const tableName = yield* Config.String("DYNAMO_ES_EVENTS_TABLE").pipe(Config.withDefault("events"))
    return layer({ tableName })
  })
)

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
 * - an append whose events are all stored with the same content at exactly its versions
 *   (a retry after a lost response, by the client or by the caller) reports the original
 *   result, not a conflict and not a second copy; a reused event id otherwise is an
 *   `EventIdConflictError`. A write whose outcome is unknown is read back before it is
 *   reported (`StorageError.unknownOutcome` only when the read cannot tell).
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
import { matchStored, type StoredIdentity, type StoredMatch } from "@dynamo-es/core/internal/idempotency"
import {
  type PreparedEvent,
  prepareAppend,
  validateConsistency,
  validateCount,
  validateDefaults,
  validateReadOptions,
  validateStreamId
} from "@dynamo-es/core/internal/prepare"
import { Clock, Config, Effect, Layer, Option, Random, Stream } from "effect"
import { makeUlid } from "@dynamo-es/core/internal/ids"
import { type ConditionFailed, DynamoClient, type TransactionCanceled, unconditional } from "./DynamoClient.js"
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

/** The largest `Limit` sent with a Query (DynamoDB's 1 MB page applies below it anyway). */
const MAX_QUERY_LIMIT = 10_000

/** The identifying fields of a stored item, for recognising an append that is already stored. */
const identityOf = (item: Record<string, AttributeValue> | undefined): StoredIdentity | undefined =>
  item === undefined ? undefined : {
    eventId: item.i?.S,
    type: item.y?.S,
    payloadJson: item.d?.S,
    metadataJson: item.m?.S,
    recordedAtMillis: num(item.t),
    expiresAtSeconds: num(item.x)
  }

interface QueryPage {
  readonly items: ReadonlyArray<Record<string, AttributeValue>>
  /** The first page of the query. */
  readonly first: boolean
  /** More pages follow. */
  readonly more: boolean
}

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
    yield* validateDefaults("DynamoEventStore", options)
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
     * The items matching `input`, one page per request, following `LastEvaluatedKey`,
     * at most `maxItems` in all. The one paginator of reads and read-backs.
     */
    const queryPages = <A, E>(
      input: QueryCommandInput,
      maxItems: number | undefined,
      onPage: (page: QueryPage) => Effect.Effect<ReadonlyArray<A>, E>
    ): Stream.Stream<A, E | Errors.StorageError> =>
      Stream.paginate(
        { startKey: undefined as Record<string, AttributeValue> | undefined, emitted: 0 },
        (state) =>
          Effect.gen(function*() {
            const remaining = maxItems === undefined ? Infinity : maxItems - state.emitted
            const limit = Math.min(remaining, input.Limit ?? Infinity, MAX_QUERY_LIMIT)
            const response = yield* unconditional(client.call("Query", table, (c, abortSignal) =>
              c.send(
                new QueryCommand({
                  ...input,
                  ...(Number.isFinite(limit) ? { Limit: limit } : {}),
                  ...(state.startKey !== undefined ? { ExclusiveStartKey: state.startKey } : {})
                }),
                { abortSignal }
              )))
            const items = response.Items ?? []
            const emitted = state.emitted + items.length
            const more = response.LastEvaluatedKey !== undefined && emitted < (maxItems ?? Infinity)
            const out = yield* onPage({ items, first: state.startKey === undefined, more })
            return [out, more ? Option.some({ startKey: response.LastEvaluatedKey, emitted }) : Option.none()] as const
          })
      )

    /** What is stored at versions base+1..base+k (strongly consistent): `undefined` where nothing is. */
    const storedAfter = (streamId: string, base: number, k: number) =>
      queryPages({
        TableName: table,
        KeyConditionExpression: "s = :s AND v BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":s": { S: streamId }, ":from": { N: String(base + 1) }, ":to": { N: String(base + k) } },
        ConsistentRead: true,
        ReturnConsumedCapacity: "TOTAL"
      }, k, (page) => Effect.succeed(page.items)).pipe(
        Stream.runFold(() => new Array<StoredIdentity | undefined>(k).fill(undefined), (acc, item) => {
          const v = num(item.v)
          if (v !== undefined && v > base && v <= base + k) acc[v - base - 1] = identityOf(item)
          return acc
        })
      )

    type WriteOutcome = { readonly _tag: "Written" } | StoredMatch
    const written: WriteOutcome = { _tag: "Written" }

    /**
     * Writes `events` as versions base+1..base+k, or tells what is in the way: this very
     * append already stored (`Applied`: a retried write whose first attempt landed),
     * someone else's events (`Conflict`), or a reused event id (`EventIdConflict`).
     * A write that failed with an unknown outcome is read back: if it landed it is
     * `Applied`; when the read cannot tell, the StorageError (`unknownOutcome: true`) stands.
     */
    const write = (
      streamId: string,
      base: number,
      events: ReadonlyArray<PreparedEvent>
    ): Effect.Effect<WriteOutcome, Errors.StorageError> => {
      const match = (stored: ReadonlyArray<StoredIdentity | undefined>) => matchStored(streamId, base, events, stored)
      const readBack = (error: Errors.StorageError) =>
        storedAfter(streamId, base, events.length).pipe(
          Effect.catchTag("StorageError", () => Effect.fail(error)),
          Effect.flatMap((stored) =>
            stored.every((s) => s === undefined)
              ? Effect.fail(error) // nothing there (yet): the outcome stays unknown
              : Effect.succeed(match(stored))
          )
        )
      // Makes our own retries of this very request idempotent for 10 minutes. A token must
      // never be reused for a different request (other versions): one per write, made
      // here, outside the request function that every retry calls again.
      const token = events.length === 1 ? undefined : nextToken()
      const send: Effect.Effect<unknown, Errors.StorageError | ConditionFailed | TransactionCanceled> = events.length === 1
        // No abort signal on writes: aborting cannot undo a write, and it saves an AbortController per call.
        ? client.call("PutItem", table, (c) =>
          c.send(
            new PutItemCommand({
              TableName: table,
              Item: toItem(streamId, base + 1, events[0]!),
              ConditionExpression: "attribute_not_exists(v)",
              ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              ReturnConsumedCapacity: "TOTAL"
            })
          ))
        : client.call("TransactWriteItems", table, (c) =>
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
          ))
      return send.pipe(
        Effect.as(written),
        Effect.catchTags({
          // The item at base+1 came back with the failure: no read needed.
          ConditionFailed: (e) =>
            events.length === 1
              ? Effect.succeed(match([identityOf(e.oldItem)]))
              : storedAfter(streamId, base, events.length).pipe(Effect.map(match)),
          // One reason per item, with the existing item where its condition failed.
          TransactionCanceled: (e) =>
            Effect.succeed(match(events.map((_, i) => {
              const reason = e.cancellationReasons[i]
              return reason?.Code === "ConditionalCheckFailed" ? identityOf(reason.Item) : undefined
            }))),
          StorageError: (e) => (e.unknownOutcome === true ? readBack(e) : Effect.fail(e))
        })
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
        const done = (base: number, events: ReadonlyArray<EventStore.EventEnvelope>) => {
          const version = base + events.length
          // Only versions proven stored reach the cache: a write that succeeded, or this
          // append found stored at exactly its versions.
          cache.observe(streamId, version)
          return { streamId, version, events }
        }
        const appended = (base: number) => done(base, prepared.map((e, i) => envelopeOf(streamId, base + 1 + i, e)))

        if (typeof expected === "number" || expected === "noStream") {
          const base = expected === "noStream" ? 0 : expected
          let outcome: WriteOutcome
          if (base > 0 && cache.get(streamId) < base) {
            // Version `base` must be proven to exist before base+1 is written (no gaps).
            const actual = yield* currentVersion(streamId)
            if (actual < base) return yield* conflict(actual)
            outcome = actual === base
              ? yield* write(streamId, base, prepared)
              : matchStored(streamId, base, prepared, yield* storedAfter(streamId, base, prepared.length))
          } else {
            outcome = yield* write(streamId, base, prepared)
          }
          switch (outcome._tag) {
            case "Written":
              return appended(base)
            case "Applied":
              return done(base, outcome.events)
            case "EventIdConflict":
              return yield* outcome.error
            case "Conflict":
              return yield* conflict(yield* currentVersion(streamId))
          }
        }
        let attempt = 0
        while (true) {
          const base = yield* currentVersion(streamId)
          if (expected === "streamExists" && base === 0) return yield* conflict(0)
          const outcome = yield* write(streamId, base, prepared)
          if (outcome._tag === "Written") return appended(base)
          if (outcome._tag === "Applied") return done(base, outcome.events)
          if (outcome._tag === "EventIdConflict") return yield* outcome.error
          if (++attempt >= maxAttempts) return yield* conflict(yield* currentVersion(streamId))
          // Someone else appended: back off a little so that racing writers spread out.
          yield* Effect.sleep(yield* Random.nextBetween(0, Math.min(100, 5 * attempt)))
        }
      }
    )

    const read: EventStore.EventStoreShape["read"] = (streamId, readOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        yield* validateStreamId("read", streamId)
        const o = yield* validateReadOptions("read", readOptions)
        const bounded = o.to !== undefined
        const input: QueryCommandInput = {
          TableName: table,
          KeyConditionExpression: bounded || o.from > 1 ? "s = :s AND v BETWEEN :from AND :to" : "s = :s",
          ExpressionAttributeValues: bounded || o.from > 1
            ? { ":s": { S: streamId }, ":from": { N: String(o.from) }, ":to": { N: String(o.to ?? MAX_VERSION) } }
            : { ":s": { S: streamId } },
          ScanIndexForward: o.direction === "forward",
          ConsistentRead: o.consistentRead,
          ...(o.pageSize !== undefined ? { Limit: o.pageSize } : {}),
          ReturnConsumedCapacity: "TOTAL"
        }
        return queryPages(input, o.limit, (page) =>
            Effect.gen(function*() {
              if (page.first && page.items.length === 0 && !page.more && o.ifMissing === "fail") {
                // Either the stream does not exist, or the range is past its end.
                const exists = bounded || o.from > 1 ? (yield* currentVersion(streamId, o.consistentRead)) > 0 : false
                if (!exists) return yield* new Errors.NotFoundError({ resource: "stream", id: streamId })
              }
              // A corrupted item fails the read with CorruptedEventError (stream, version):
              // read on from the next version to skip it.
              const envelopes = yield* Effect.forEach(page.items, (item) => fromItem(streamId, item))
              if (envelopes.length > 0) {
                cache.observe(streamId, Math.max(envelopes[0]!.version, envelopes[envelopes.length - 1]!.version))
              }
              return envelopes
            }))
      }))

    const readLast: EventStore.EventStoreShape["readLast"] = Effect.fn("DynamoEventStore.readLast")(
      function*(streamId, n, readOptions) {
        yield* validateStreamId("readLast", streamId)
        yield* validateCount("readLast", n)
        const consistentRead = yield* validateConsistency("readLast", readOptions)
        const events = yield* Stream.runCollect(read(streamId, { direction: "backward", limit: n, consistentRead }))
        return events.reverse()
      }
    )

    const version: EventStore.EventStoreShape["version"] = Effect.fn("DynamoEventStore.version")(
      function*(streamId, versionOptions) {
        yield* validateStreamId("version", streamId)
        return yield* currentVersion(streamId, yield* validateConsistency("version", versionOptions))
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

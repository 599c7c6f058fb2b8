/**
 * The event store: append events to a stream with optimistic concurrency, read a stream
 * forwards or backwards as a lazy Stream, read its last events, get its version.
 *
 * The service {@link EventStore} is storage-independent. Provide it with
 * {@link layerMemory} in unit tests, or with `DynamoEventStore.layer(...)` from
 * `@dynamo-es/dynamodb` in production; code that `yield*`s it does not change.
 *
 * The service works on JSON payloads. Most code uses {@link typed}, which encodes and
 * decodes payloads with an Effect Schema of the caller's events:
 *
 * ```ts
 * const Accounts = EventStore.typed(AccountEvent)
 * const { version } = yield* Accounts.append("account-1", [new Opened({ owner: "Ada" })], {
 *   expectedVersion: "noStream"
 * })
 * const history = yield* Stream.runCollect(Accounts.read("account-1"))
 * ```
 *
 * Invariants (every implementation, whatever the concurrency):
 * - a stream's versions are exactly 1..N: no gap, no duplicate;
 * - `append` is all-or-nothing and fails with {@link ConflictError} when the stream is not
 *   at the expected version (also when it is behind it); nothing is written on failure;
 * - bad input is a typed error and writes nothing.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, type Result, Stream } from "effect"
import type { Duration, Schema } from "effect"
import { type AppendBulkInterrupted, type CorruptedEventError, EventEncodeError, type InvalidInputError, type StorageError } from "./Errors.js"
import * as bulk from "./internal/appendBulk.js"
import { decodeStoredEvent } from "./internal/envelope.js"
import * as internal from "./internal/eventStore.js"
import {
  type AppendError,
  type AppendOptions,
  type AppendResult,
  type EventEnvelope,
  type EventInput,
  EventInputTypeId,
  type EventMetadata,
  type EventStoreOptions,
  type EventStoreShape,
  type NewEvent,
  type ReadError,
  type ReadOptions,
  type Storage,
  type StorageLimits,
  type StoredEvent
} from "./internal/eventStoreModel.js"
import { defaultStorageLimits as memoryLimits, makeMemoryStorage } from "./internal/memoryStorage.js"
import * as TypedCodec from "./internal/typed.js"

// The models and the storage contract are defined in internal/eventStoreModel.ts, which the
// modules implementing the store import too; every one of them is public here.
export type {
  AppendError,
  AppendOptions,
  AppendResult,
  EventEnvelope,
  EventInput,
  EventMetadata,
  EventRecord,
  EventStoreOptions,
  EventStoreShape,
  ExpectedVersion,
  NewEvent,
  Page,
  PageRequest,
  ReadError,
  ReadOptions,
  Storage,
  StorageLimits,
  StoredEvent,
  WriteOutcome
} from "./internal/eventStoreModel.js"

// -----------------------------------------------------------------------------
// service
// -----------------------------------------------------------------------------

/**
 * The event store service. `yield* EventStore` in your code; provide {@link layerMemory}
 * or a DynamoDB layer.
 *
 * @since 0.1.0
 * @category services
 */
export class EventStore extends Context.Service<EventStore, EventStoreShape>()("@dynamo-es/core/EventStore") {}

// -----------------------------------------------------------------------------
// typed access
// -----------------------------------------------------------------------------


/**
 * Attaches per-event metadata, TTL or your own event id to an event for
 * {@link TypedEventStore.append}.
 *
 * ```ts
 * Accounts.append("a-1", [EventStore.withOptions(new Deposited({ amount: 5 }), { ttl: "30 days" })], ...)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const withOptions = <E>(
  event: E,
  options: { readonly metadata?: EventMetadata; readonly ttl?: Duration.Input; readonly eventId?: string }
): EventInput<E> => ({ [EventInputTypeId]: EventInputTypeId, event, ...options })

/**
 * The event store seen through the Schema of one kind of events. Payloads are stored in the
 * Schema's canonical JSON form (`Schema.toCodecJson`: Dates, non-finite numbers, bigints
 * and the like survive the trip). `append` refuses a payload that fails the Schema or whose
 * encoding would not decode back (`EventEncodeError`, nothing written); `read` fails with
 * `CorruptedEventError` (stream, version) on stored data that no longer decodes. The
 * payloads in an append's result are the decoded stored form, i.e. what a read returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedEventStore<E extends { readonly _tag: string }> {
  readonly schema: Schema.Codec<E, unknown>
  readonly append: (
    streamId: string,
    events: ReadonlyArray<E | EventInput<E>>,
    options: AppendOptions
  ) => Effect.Effect<AppendResult<E>, AppendError, EventStore>
  /** {@link appendBulk} with payloads encoded by the Schema (all of them before anything is written). */
  readonly appendBulk: (
    streamId: string,
    events: ReadonlyArray<E | EventInput<E>>,
    options: AppendOptions
  ) => Effect.Effect<AppendResult<E>, AppendError | AppendBulkInterrupted, EventStore>
  readonly read: (streamId: string, options?: ReadOptions) => Stream.Stream<EventEnvelope<E>, ReadError, EventStore>
  readonly readLast: (
    streamId: string,
    n: number,
    options?: { readonly consistentRead?: boolean | undefined }
  ) => Effect.Effect<ReadonlyArray<EventEnvelope<E>>, ReadError, EventStore>
  readonly version: (
    streamId: string,
    options?: { readonly consistentRead?: boolean | undefined }
  ) => Effect.Effect<number, InvalidInputError | StorageError, EventStore>
}

/**
 * Typed access to the event store for events described by `schema`, usually a
 * `Schema.Union` of `Schema.TaggedClass`es. The event type stored with each event is its
 * `_tag`. Define it once at module level and use it anywhere an {@link EventStore} is
 * provided.
 *
 * @since 0.1.0
 * @category constructors
 */
export const typed = <E extends { readonly _tag: string }, I>(
  schema: Schema.Codec<E, I>
): TypedEventStore<E> => {
  const codec = TypedCodec.make(schema as Schema.Codec<E, unknown>)
  return {
    schema: schema as Schema.Codec<E, unknown>,
    append: (streamId, events, options) => EventStore.use((store) => codec.appendTo(store, streamId, events, options)),
    appendBulk: (streamId, events, options) =>
      EventStore.use((store) =>
        Effect.suspend(() => {
          // Encoded here, once; the bulk append validates and prepares them once more for
          // storage (JSON, sizes), and not again per transaction.
          const encoded = codec.encodeAll(streamId, events)
          if (encoded instanceof EventEncodeError) return Effect.fail(encoded)
          return Effect.map(bulk.appendBulk(store, streamId, encoded.raw, options), (result) =>
            TypedCodec.withPayloads(result, encoded.stored))
        })
      ),
    read: (streamId, options) =>
      EventStore.use((store) => Effect.succeed(store.read(streamId, options))).pipe(
        Stream.unwrap,
        Stream.mapArrayEffect(codec.decodePage)
      ) as Stream.Stream<EventEnvelope<E>, ReadError, EventStore>,
    readLast: (streamId, n, options) =>
      EventStore.use((store) => store.readLast(streamId, n, options)).pipe(Effect.flatMap(codec.decodeAll)),
    version: (streamId, options) => EventStore.use((store) => store.version(streamId, options))
  }
}

/**
 * Appends any number of events as a sequence of atomic appends (each at most 100 events and
 * 4 MB, one DynamoDB transaction), each expecting the version the previous one returned.
 * For imports and migrations of long histories. **Not atomic as a whole**: every event is
 * validated and encoded before anything is written, and a failure of the first transaction
 * writes nothing (its error is returned as is; if its outcome is unknown, it is an
 * `AppendBulkInterrupted` with `appended: 0`), but a failure after that is an
 * {@link AppendBulkInterrupted} saying how many events are known to be stored, at which
 * version to resume, and which events remain (with the event ids given to them here): resume
 * with `appendBulk(streamId, error.remaining, { expectedVersion: error.version })`, which is
 * safe even when the interrupted transaction was in fact stored (`unknownOutcome`). Cost:
 * that of the transactions, ceil(n / 100) requests or more for large events.
 *
 * @since 0.1.0
 * @category accessors
 */
export const appendBulk = (
  streamId: string,
  events: ReadonlyArray<NewEvent>,
  options: AppendOptions
): Effect.Effect<AppendResult, AppendError | AppendBulkInterrupted, EventStore> =>
  EventStore.use((store) => bulk.appendBulk(store, streamId, events, options))

// -----------------------------------------------------------------------------
// storage: what a driver implements
// -----------------------------------------------------------------------------


/**
 * Checks a {@link StoredEvent} and turns it into an envelope (payload and metadata as parsed
 * JSON), exactly as the event store's reads do: anything missing or malformed is a
 * `CorruptedEventError` naming stream and version. For drivers that read stored events
 * outside the event store (the global log, DynamoDB Streams records).
 *
 * @since 0.2.0
 * @category storage
 */
export const decodeStored: (stored: StoredEvent) => Result.Result<EventEnvelope, CorruptedEventError> = decodeStoredEvent

/**
 * The limits of a storage that declares none, and those of the memory storage: DynamoDB's.
 * An event of at most 409,600 bytes, sized as a DynamoDB item of the events table (its
 * one-letter attribute names plus their values), and at most 100 events and 4 MB per `write`
 * (one `TransactWriteItems`).
 *
 * @since 0.2.0
 * @category storage
 */
export const defaultStorageLimits: StorageLimits = memoryLimits

/**
 * The event store over a driver's {@link Storage}: every implementation is this, over its
 * own storage. The options are decoded with a Schema when the store is built: a malformed
 * one (a `versionCacheSize` that is not an integer >= 0, a `maxAppendAttempts` that is not an
 * integer >= 1, a `defaultTtl` that is not a duration) is a defect, an `InvalidInputError`
 * naming it (`EventStore.make: invalid options.maxAppendAttempts: must be an integer >= 1`),
 * as the options of `SnapshotStore.make` and `ReadModel.make` are.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (storage: Storage, options?: EventStoreOptions) => Effect.Effect<EventStoreShape> = internal.make

// -----------------------------------------------------------------------------
// in-memory implementation
// -----------------------------------------------------------------------------

/**
 * Builds an in-memory event store: {@link make} over a storage that keeps events in a
 * map, so it has exactly the semantics of the DynamoDB one (same validation, same limits,
 * same errors). Each call is a new empty store. Events are kept as JSON, so later mutation
 * of an appended object changes nothing. TTLs are recorded (`expiresAt`) but nothing is
 * deleted, as DynamoDB deletes lazily. `eventCount` (not part of the service) counts every
 * stored event, for tests.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (
  options: EventStoreOptions = {}
): Effect.Effect<EventStoreShape & { readonly eventCount: Effect.Effect<number> }> =>
  Effect.gen(function*() {
    const storage = makeMemoryStorage()
    const store = yield* make(storage, options)
    return { ...EventStore.of(store), eventCount: storage.eventCount }
  })

/**
 * An in-memory {@link EventStore} for unit tests and prototypes. Each build of the
 * layer is a new empty store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<EventStore> = Layer.effect(EventStore, makeMemory())

/**
 * {@link layerMemory} with options (e.g. a default TTL).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryWith = (options: EventStoreOptions): Layer.Layer<EventStore> =>
  Layer.effect(EventStore, makeMemory(options))

/**
 * `Some(version)` for an existing stream, `None` for a missing one: a convenience over
 * `version`, which returns 0 for a missing stream.
 *
 * @since 0.1.0
 * @category accessors
 */
export const versionOption = (
  streamId: string
): Effect.Effect<Option.Option<number>, InvalidInputError | StorageError, EventStore> =>
  EventStore.use((store) => store.version(streamId)).pipe(
    Effect.map((v) => (v === 0 ? Option.none() : Option.some(v)))
  )

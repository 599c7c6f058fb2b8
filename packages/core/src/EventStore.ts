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
import { Context, Effect, Layer, Option, type Result, Schema, Stream } from "effect"
import type { DateTime, Duration } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import {
  AppendBulkInterrupted,
  type AppendTooLargeError,
  ConflictError,
  CorruptedEventError,
  EventEncodeError,
  type EventIdConflictError,
  type EventTooLargeError,
  type ExpectedVersionSchema,
  type InvalidInputError,
  NotFoundError,
  type StorageError
} from "./Errors.js"
import * as bulk from "./internal/appendBulk.js"
import { decodeStoredEvent } from "./internal/envelope.js"
import * as internal from "./internal/eventStore.js"
import { makeMemoryStorage } from "./internal/memoryStorage.js"
import * as TypedCodec from "./internal/typed.js"
import type { StoreDefaults } from "./internal/prepare.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * What `append` expects the stream to be at:
 * - a number `n`: exactly version `n` (`0` = the stream does not exist yet);
 * - `"noStream"`: the stream does not exist (same as `0`);
 * - `"streamExists"`: the stream has at least one event, any version;
 * - `"any"`: no check; the events go after whatever is there.
 *
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = typeof ExpectedVersionSchema.Type

/**
 * Metadata recorded with an event. `custom` holds your own JSON fields (tenant, request
 * id, ...). The recorded time is on the envelope (`recordedAt`).
 *
 * @since 0.1.0
 * @category models
 */
export interface EventMetadata {
  readonly actor?: string | undefined
  readonly correlationId?: string | undefined
  readonly causationId?: string | undefined
  readonly custom?: { readonly [key: string]: unknown } | undefined
}

/**
 * An event to append, with an already encoded (JSON) payload. Used by the untyped
 * service; {@link typed} builds these for you.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewEvent<P = unknown> {
  readonly type: string
  readonly payload: P
  readonly metadata?: EventMetadata | undefined
  /**
   * Time to live of this event; it beats the store's `defaultTtl`. Zero disables the
   * TTL for this event. DynamoDB deletes expired items within days, not at once.
   */
  readonly ttl?: Duration.Input | undefined
  /**
   * Your own event id (at most 64 bytes of well-formed Unicode); a ULID is generated when
   * absent. Derive it from the command (`${commandId}-0`, ...) to make retries safe: an
   * append whose events are all stored with these ids at its versions reports the original
   * result instead of writing again.
   */
  readonly eventId?: string | undefined
}

/**
 * A stored event as read back.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventEnvelope<P = unknown> {
  /** ULID unless the caller gave its own id: unique, sorts by time within a process. */
  readonly eventId: string
  readonly streamId: string
  /** 1 for the first event of the stream; no gaps. */
  readonly version: number
  readonly type: string
  readonly payload: P
  readonly metadata: EventMetadata
  readonly recordedAt: DateTime.Utc
  /** When the TTL makes the event eligible for deletion, if it has one. */
  readonly expiresAt: DateTime.Utc | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AppendOptions {
  readonly expectedVersion: ExpectedVersion
  /** Metadata for every event of this append; an event's own metadata wins per field. */
  readonly metadata?: EventMetadata | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AppendResult<P = unknown> {
  readonly streamId: string
  /** The stream's version after the append: the version of the last appended event. */
  readonly version: number
  /** The stored events; their payloads are the values you passed (not re-read from storage). */
  readonly events: ReadonlyArray<EventEnvelope<P>>
}

/**
 * Options of {@link EventStoreShape.read}. `from` and `to` are inclusive version bounds
 * whatever the direction: `{ direction: "backward", from: 10, to: 20 }` reads 20 down to 10.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadOptions {
  /** First version of the range (default 1). */
  readonly from?: number | undefined
  /** Last version of the range (default: the end of the stream). */
  readonly to?: number | undefined
  /** Default `"forward"` (ascending versions). */
  readonly direction?: "forward" | "backward" | undefined
  /** At most this many events are emitted. */
  readonly limit?: number | undefined
  /**
   * Strongly consistent reads (default `true`): a read after an append sees it. `false`
   * halves the read cost on DynamoDB; fine for projections that tolerate a lag.
   */
  readonly consistentRead?: boolean | undefined
  /** Events per storage request (default: DynamoDB's 1 MB pages). */
  readonly pageSize?: number | undefined
  /**
   * What a stream without events gives: `"fail"` (default) a `NotFoundError`, `"empty"` an
   * empty Stream. `"empty"` also saves the extra request a range read past the end of a
   * stream otherwise needs to tell "no such stream" from "nothing in this range".
   */
  readonly ifMissing?: "fail" | "empty" | undefined
}

/**
 * The errors `append` can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type AppendError =
  | ConflictError
  | EventIdConflictError
  | InvalidInputError
  | EventEncodeError
  | EventTooLargeError
  | AppendTooLargeError
  | StorageError

/**
 * The errors a read can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type ReadError = NotFoundError | InvalidInputError | CorruptedEventError | StorageError

/**
 * The event store service, on JSON payloads.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventStoreShape {
  /**
   * Appends events at the end of a stream, all or nothing, if the stream is at
   * `expectedVersion`. At most 100 events and 4 MB per append (one DynamoDB
   * transaction); larger appends fail with `AppendTooLargeError` before writing.
   *
   * With an exact expected version (a number or `"noStream"`) an append is idempotent: if
   * all its events are already stored with the same content at the versions they would
   * take, it reports the original result and writes nothing; an event id reused otherwise
   * is an `EventIdConflictError`. Success means every event is stored; failure means none
   * is, except a `StorageError` with `unknownOutcome: true`, after which retrying with the
   * same event ids and expected version is safe.
   */
  readonly append: (
    streamId: string,
    events: ReadonlyArray<NewEvent>,
    options: AppendOptions
  ) => Effect.Effect<AppendResult, AppendError>
  /**
   * Reads a stream as a lazy Stream, one storage request per page: memory stays flat
   * whatever the stream's length. Fails with `NotFoundError` when the stream has no
   * events (unless `ifMissing: "empty"`); an existing stream with no events in the range
   * gives an empty Stream.
   */
  readonly read: (streamId: string, options?: ReadOptions) => Stream.Stream<EventEnvelope, ReadError>
  /**
   * The last `n` events of a stream, in version order. Fails with `NotFoundError` when
   * the stream has no events.
   */
  readonly readLast: (
    streamId: string,
    n: number,
    options?: { readonly consistentRead?: boolean | undefined }
  ) => Effect.Effect<ReadonlyArray<EventEnvelope>, ReadError>
  /**
   * The stream's current version: the version of its last event, or `0` when the
   * stream does not exist (not an error: a new stream is at version 0).
   */
  readonly version: (
    streamId: string,
    options?: { readonly consistentRead?: boolean | undefined }
  ) => Effect.Effect<number, InvalidInputError | StorageError>
}

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

const EventInputTypeId: typeof TypedCodec.EventInputTypeId = TypedCodec.EventInputTypeId

/**
 * An event with per-event options, made by {@link withOptions}.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventInput<E> {
  readonly [EventInputTypeId]: typeof EventInputTypeId
  readonly event: E
  readonly metadata?: EventMetadata | undefined
  readonly ttl?: Duration.Input | undefined
  readonly eventId?: string | undefined
}

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
 * One event as the event store hands it to storage: validated and encoded. A driver stores
 * these fields as they are and gives them back in a {@link StoredEvent}.
 *
 * @since 0.2.0
 * @category storage
 */
export interface EventRecord {
  readonly eventId: string
  readonly type: string
  /** The payload as JSON. */
  readonly payloadJson: string
  /** The metadata as JSON; `undefined` when empty. */
  readonly metadataJson: string | undefined
  readonly recordedAtMillis: number
  /** When the TTL makes the event eligible for deletion (epoch seconds), if it has one. */
  readonly expiresAtSeconds: number | undefined
}

/**
 * One event as storage gives it back. The fields are `unknown` because storage can hold
 * anything (an item edited by hand, a bug elsewhere): the event store checks every field
 * and turns a malformed one into a `CorruptedEventError`, so a driver never validates.
 *
 * @since 0.2.0
 * @category storage
 */
export interface StoredEvent {
  readonly streamId: string
  /** `NaN` when storage holds no usable version. */
  readonly version: number
  readonly eventId: unknown
  readonly type: unknown
  readonly payloadJson: unknown
  readonly metadataJson: unknown
  readonly recordedAtMillis: unknown
  readonly expiresAtSeconds: unknown
}

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
 * What {@link Storage.write} did: wrote every event, or found at least one of the versions
 * taken and wrote nothing. `stored` holds what is at each version (`undefined` where
 * nothing is) when the request returned it; otherwise the event store reads it.
 *
 * @since 0.2.0
 * @category storage
 */
export type WriteOutcome =
  | { readonly _tag: "Written" }
  | { readonly _tag: "Taken"; readonly stored?: ReadonlyArray<StoredEvent | undefined> | undefined }

/**
 * One page of a version range, for {@link Storage.readPage}.
 *
 * @since 0.2.0
 * @category storage
 */
export interface PageRequest {
  readonly streamId: string
  /** Inclusive version bounds, whatever the direction. */
  readonly from: number
  readonly to: number
  readonly direction: "forward" | "backward"
  readonly consistentRead: boolean
  /** At most this many events (`Infinity`: the storage's own page size). */
  readonly maxEvents: number
}

/**
 * @since 0.2.0
 * @category storage
 */
export interface Page {
  /** The events of the page, in the requested direction. */
  readonly rows: ReadonlyArray<StoredEvent>
  /** Where the next page starts; `undefined` when the range is exhausted. */
  readonly cursor: unknown
}

/**
 * The storage primitives an event store driver implements, each one request (or one page).
 * {@link make} implements every rule of the event store on top of them once: validation,
 * encoding, limits, expected versions, the version cache, idempotent appends, reading back
 * writes of unknown outcome, paging and decoding. A driver maps these to its database and
 * classifies its failures into `StorageError` (with `unknownOutcome: true` for a write that
 * may have been applied).
 *
 * @since 0.2.0
 * @category storage
 */
export interface Storage {
  /** The highest stored version of the stream, 0 when it has none. */
  readonly lastVersion: (streamId: string, consistentRead: boolean) => Effect.Effect<number, StorageError>
  /**
   * Writes `events` as versions base+1, base+2, ... of the stream, all or nothing, each
   * only where that version does not exist yet (never overwriting).
   */
  readonly write: (
    streamId: string,
    base: number,
    events: NonEmptyReadonlyArray<EventRecord>
  ) => Effect.Effect<WriteOutcome, StorageError>
  /** One page of a version range; `cursor` is `undefined` for the first page. */
  readonly readPage: (request: PageRequest, cursor: unknown) => Effect.Effect<Page, StorageError>
}

/**
 * Options shared by every EventStore implementation.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventStoreOptions extends StoreDefaults {
  /**
   * How many streams' proven versions the store remembers (LRU). Each entry saves the
   * read before an append with an exact expected version. Default 10,000; 0 disables.
   */
  readonly versionCacheSize?: number | undefined
  /** Attempts of an `"any"`/`"streamExists"` append under contention. Default 50. */
  readonly maxAppendAttempts?: number | undefined
}

/**
 * The event store over a driver's {@link Storage}: every implementation is this, over its
 * own storage.
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

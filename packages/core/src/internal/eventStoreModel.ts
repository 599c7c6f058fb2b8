/**
 * The models of the event store: what callers pass and get back, the service's shape, and the
 * storage contract a driver implements. `EventStore.ts` re-exports every one of them; they
 * live here so that the modules implementing the store (`internal/*`) and the public module
 * can both import them without importing each other.
 */
import type { DateTime, Duration, Effect, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type {
  AppendTooLargeError,
  ConflictError,
  CorruptedEventError,
  EventEncodeError,
  EventIdConflictError,
  EventTooLargeError,
  ExpectedVersionSchema,
  InvalidInputError,
  NotFoundError,
  StorageError
} from "../Errors.js"

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
 * service; `EventStore.typed` builds these for you.
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

/** The symbol `EventStore.withOptions` marks its inputs with (a registered symbol: the same everywhere). */
export const EventInputTypeId: unique symbol = Symbol.for("@dynamo-es/core/EventStore/EventInput") as never

/**
 * An event with per-event options, made by `EventStore.withOptions`.
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
 * The limits of a storage, which its driver declares in {@link Storage.limits} and the
 * event store enforces before anything is sent: an event larger than `maxEventBytes` is an
 * `EventTooLargeError`, an append of more than `maxEventsPerWrite` events or
 * `maxWriteBytes` bytes an `AppendTooLargeError` (`appendBulk` cuts its chunks to fit).
 * Sizes are what `eventSize` counts, in the storage's own terms. DynamoDB's are an item of
 * 409,600 bytes counted as DynamoDB counts item sizes (attribute names and values), and a
 * `TransactWriteItems` of 100 items and 4 MB: `EventStore.defaultStorageLimits`, which the
 * memory storage declares.
 *
 * @since 0.2.0
 * @category storage
 */
export interface StorageLimits {
  /** The largest event, in the bytes `eventSize` counts (an integer >= 1). */
  readonly maxEventBytes: number
  /** The most events one `write` stores (all or nothing), an integer >= 1. */
  readonly maxEventsPerWrite: number
  /** The most bytes (the sum of `eventSize`) one `write` stores, an integer >= 1. */
  readonly maxWriteBytes: number
  /**
   * The size of `event` stored as `version` of `streamId`. Before a write its version is
   * not known yet: the event store counts the widest, `Number.MAX_SAFE_INTEGER`.
   */
  readonly eventSize: (streamId: string, version: number, event: EventRecord) => number
}

/**
 * The storage primitives an event store driver implements, each one request (or one page).
 * `EventStore.make` implements every rule of the event store on top of them once: validation,
 * encoding, the limits the driver declares, expected versions, the version cache, idempotent
 * appends, reading back writes of unknown outcome, paging and decoding. A driver maps these to its database and
 * classifies its failures into `StorageError` (with `unknownOutcome: true` for a write that
 * may have been applied).
 *
 * @since 0.2.0
 * @category storage
 */
export interface Storage {
  /**
   * What this storage takes in one event and in one `write` (see {@link StorageLimits}),
   * each field optional: what a storage leaves out is `EventStore.defaultStorageLimits`
   * (DynamoDB's), so storages written before it keep working unchanged.
   */
  readonly limits?: Partial<StorageLimits> | undefined
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
 * Options shared by every EventStore implementation, decoded by `EventStore.make` (a malformed
 * one is a defect naming it). A driver's own options may sit beside them.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventStoreOptions {
  /** TTL applied to events that do not set their own; `undefined` or zero: no TTL. */
  readonly defaultTtl?: Duration.Input | undefined
  /**
   * How many streams' proven versions the store remembers (LRU). Each entry saves the
   * read before an append with an exact expected version. An integer >= 0; default
   * 10,000; 0 disables.
   */
  readonly versionCacheSize?: number | undefined
  /** Attempts of an `"any"`/`"streamExists"` append under contention: an integer >= 1. Default 50. */
  readonly maxAppendAttempts?: number | undefined
}

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
import { Clock, Context, Effect, Layer, Option, Schema, Semaphore, Stream } from "effect"
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
  type InvalidInputError,
  NotFoundError,
  type StorageError
} from "./Errors.js"
import { decodeStoredEvent, envelopeOf } from "./internal/envelope.js"
import { matchStored } from "./internal/idempotency.js"
import {
  MAX_APPEND_BYTES,
  MAX_EVENTS_PER_APPEND,
  mergeMetadata,
  type PreparedEvent,
  prepareAppend,
  type StoreDefaults,
  validateConsistency,
  validateCount,
  validateDefaults,
  validateReadOptions,
  validateStreamId
} from "./internal/prepare.js"

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
export type ExpectedVersion = number | "any" | "noStream" | "streamExists"

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

const EventInputTypeId: unique symbol = Symbol.for("@dynamo-es/core/EventStore/EventInput")

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

const isEventInput = (u: unknown): u is EventInput<unknown> =>
  typeof u === "object" && u !== null && EventInputTypeId in u

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
  // The canonical JSON form of the Schema: Dates, non-finite numbers, bigints, ... get a
  // JSON representation, so that what is stored is exactly what decodes back.
  const codec = Schema.toCodecJson(schema as Schema.Codec<E, unknown>)
  const encode = Schema.encodeExit(codec)
  const decode = Schema.decodeUnknownExit(codec)

  const decodeEnvelope = (e: EventEnvelope): Effect.Effect<EventEnvelope<E>, CorruptedEventError> => {
    const exit = decode(e.payload)
    return exit._tag === "Success"
      ? Effect.succeed({ ...e, payload: exit.value })
      : Effect.fail(
        new CorruptedEventError({
          streamId: e.streamId,
          version: e.version,
          reason: `the payload of a "${e.type}" event does not match the event Schema: ${String(exit.cause)}`,
          cause: exit.cause
        })
      )
  }
  const decodeAll = (events: ReadonlyArray<EventEnvelope>) => Effect.forEach(events, decodeEnvelope)
  // forEach keeps the length, so a non-empty page stays non-empty.
  const decodePage = decodeAll as unknown as (
    events: NonEmptyReadonlyArray<EventEnvelope>
  ) => Effect.Effect<NonEmptyReadonlyArray<EventEnvelope<E>>, CorruptedEventError>

  /** Encodes every event (and checks it decodes back) before anything is written. */
  const encodeAll = (streamId: string, events: ReadonlyArray<E | EventInput<E>>) =>
    Effect.gen(function*() {
      const raw: Array<NewEvent> = []
      const stored: Array<E> = []
      for (let index = 0; index < (events?.length ?? 0); index++) {
        const input = events[index]!
        const event = (isEventInput(input) ? input.event : input) as E
        const eventType = typeof event?._tag === "string" ? event._tag : "<unknown>"
        const fail = (reason: string, cause: unknown) =>
          new EventEncodeError({ streamId: String(streamId), index, eventType, reason, cause })
        const encoded = encode(event)
        if (encoded._tag === "Failure") {
          return yield* fail(`the payload does not match the event Schema: ${String(encoded.cause)}`, encoded.cause)
        }
        // Refuse what would be written but could not be read back (a Schema whose
        // decoding does not accept its own encoding).
        const decoded = decode(encoded.value)
        if (decoded._tag === "Failure") {
          return yield* fail(`the encoded payload does not decode with the event Schema: ${String(decoded.cause)}`, decoded.cause)
        }
        stored.push(decoded.value)
        raw.push(
          isEventInput(input)
            ? { type: eventType, payload: encoded.value, metadata: input.metadata, ttl: input.ttl, eventId: input.eventId }
            : { type: eventType, payload: encoded.value }
        )
      }
      return { raw, stored }
    })

  return {
    schema: schema as Schema.Codec<E, unknown>,
    append: (streamId, events, options) =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const { raw, stored } = yield* encodeAll(streamId, events)
        const result = yield* store.append(streamId, raw, options)
        return { ...result, events: result.events.map((e, i) => ({ ...e, payload: stored[i]! })) }
      }),
    appendBulk: (streamId, events, options) =>
      Effect.gen(function*() {
        const { raw, stored } = yield* encodeAll(streamId, events)
        const result = yield* appendBulk(streamId, raw, options)
        return { ...result, events: result.events.map((e, i) => ({ ...e, payload: stored[i]! })) }
      }),
    read: (streamId, options) =>
      EventStore.use((store) => Effect.succeed(store.read(streamId, options))).pipe(
        Stream.unwrap,
        Stream.mapArrayEffect(decodePage)
      ) as Stream.Stream<EventEnvelope<E>, ReadError, EventStore>,
    readLast: (streamId, n, options) =>
      EventStore.use((store) => store.readLast(streamId, n, options)).pipe(Effect.flatMap(decodeAll)),
    version: (streamId, options) => EventStore.use((store) => store.version(streamId, options))
  }
}

/**
 * Appends any number of events as a sequence of atomic appends (each at most 100 events and
 * 4 MB, one DynamoDB transaction), each expecting the version the previous one returned.
 * For imports and migrations of long histories. **Not atomic as a whole**: every event is
 * validated and encoded before anything is written, and a failure of the first transaction
 * writes nothing (its error is returned as is), but a failure after that is an
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
  Effect.gen(function*() {
    const store = yield* EventStore
    yield* validateStreamId("appendBulk", streamId)
    const now = yield* Clock.currentTimeMillis
    const { events: prepared, sizes, expectedVersion } = yield* prepareAppend(
      "appendBulk",
      streamId,
      events,
      options,
      {},
      now,
      false
    )
    // Greedy chunks within one transaction's limits.
    const chunks: Array<Array<number>> = []
    let current: Array<number> = []
    let bytes = 0
    for (let i = 0; i < prepared.length; i++) {
      if (current.length === MAX_EVENTS_PER_APPEND || (current.length > 0 && bytes + sizes[i]! > MAX_APPEND_BYTES)) {
        chunks.push(current)
        current = []
        bytes = 0
      }
      current.push(i)
      bytes += sizes[i]!
    }
    chunks.push(current)

    let expected: ExpectedVersion = expectedVersion
    let version = 0
    let appended = 0
    const envelopes: Array<EventEnvelope> = []
    // The ids given by validation are kept, so the stored events are the validated ones,
    // and so that a resumed import recognises a transaction that was in fact applied.
    // The append's metadata goes into each event, so that `remaining` resumes with exactly
    // the events of this import, whatever options the resuming call passes.
    const withIds = events.map((e, i): NewEvent => {
      const metadata = mergeMetadata(options.metadata, e.metadata)
      return { ...e, eventId: prepared[i]!.eventId, ...(metadata !== undefined ? { metadata } : {}) }
    })
    for (const chunk of chunks) {
      const batch = chunk.map((i) => withIds[i]!)
      const result = yield* store.append(streamId, batch, { expectedVersion: expected, metadata: options.metadata }).pipe(
        Effect.mapError((cause) =>
          appended === 0 ? cause : new AppendBulkInterrupted({
            streamId,
            appended,
            version,
            total: events.length,
            // The store already read back what it could: a write whose outcome stays
            // unknown says so; resuming with `remaining` is safe either way.
            unknownOutcome: cause._tag === "StorageError" && cause.unknownOutcome === true,
            remaining: withIds.slice(appended),
            cause
          })
        )
      )
      expected = result.version
      version = result.version
      appended += chunk.length
      envelopes.push(...result.events)
    }
    return { streamId, version, events: envelopes }
  })

// -----------------------------------------------------------------------------
// in-memory implementation
// -----------------------------------------------------------------------------

/**
 * Options shared by every EventStore implementation.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventStoreOptions extends StoreDefaults {}

interface MemoryEvent extends PreparedEvent {
  readonly version: number
}

/**
 * Builds an in-memory event store with exactly the semantics of the DynamoDB one
 * (same validation, same limits, same errors). Each call is a new empty store. Events
 * are kept as JSON, so later mutation of an appended object changes nothing. TTLs are
 * recorded (`expiresAt`) but nothing is deleted, as DynamoDB deletes lazily.
 * `eventCount` (not part of the service) counts every stored event, for tests.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (
  options: EventStoreOptions = {}
): Effect.Effect<EventStoreShape & { readonly eventCount: Effect.Effect<number> }> =>
  Effect.gen(function*() {
    yield* validateDefaults("EventStore.makeMemory", options)
    const streams = new Map<string, Array<MemoryEvent>>()
    // Appends are check-then-write; one permit makes each append atomic for other fibers.
    const lock = yield* Semaphore.make(1)

    const toEnvelope = (streamId: string, e: MemoryEvent) =>
      decodeStoredEvent({
        streamId,
        version: e.version,
        eventId: e.eventId,
        type: e.type,
        payloadJson: e.payloadJson,
        metadataJson: e.metadataJson,
        recordedAtMillis: e.recordedAtMillis,
        expiresAtSeconds: e.expiresAtSeconds
      })

    const append: EventStoreShape["append"] = Effect.fn("EventStore.append")(function*(streamId, events, appendOptions) {
      yield* validateStreamId("append", streamId)
      const now = yield* Clock.currentTimeMillis
      const prepared = yield* prepareAppend("append", streamId, events, appendOptions, options, now)
      return yield* lock.withPermit(Effect.suspend(() => {
        const stream = streams.get(streamId) ?? []
        const actual = stream.length
        const expected = prepared.expectedVersion
        const ok = expected === "any" ||
          (expected === "noStream" && actual === 0) ||
          (expected === "streamExists" && actual > 0) ||
          expected === actual
        if (!ok) {
          const conflict = new ConflictError({ streamId, expectedVersion: expected, actualVersion: actual })
          if (expected === "streamExists") return Effect.fail(conflict)
          // An exact expected version: maybe this very append is already stored (a retry).
          const base = expected === "noStream" ? 0 : expected
          const match = matchStored(streamId, base, prepared.events, prepared.events.map((_, i) => stream[base + i]))
          return match._tag === "Applied"
            ? Effect.succeed({ streamId, version: base + match.events.length, events: match.events })
            : Effect.fail(match._tag === "Conflict" ? conflict : match.error)
        }
        const stored = prepared.events.map((e, i): MemoryEvent => ({ ...e, payload: undefined, version: actual + i + 1 }))
        streams.set(streamId, stream.concat(stored))
        return Effect.succeed({
          streamId,
          version: actual + stored.length,
          events: prepared.events.map((e, i) => envelopeOf(streamId, actual + i + 1, e))
        })
      }))
    })

    const rangeOf = (streamId: string, o: { from: number; to: number | undefined; direction: "forward" | "backward" }) => {
      const stream = streams.get(streamId) ?? []
      const to = Math.min(o.to ?? stream.length, stream.length)
      const slice = stream.slice(o.from - 1, Math.max(o.from - 1, to))
      return o.direction === "backward" ? slice.reverse() : slice
    }

    const read: EventStoreShape["read"] = (streamId, readOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        yield* validateStreamId("read", streamId)
        const o = yield* validateReadOptions("read", readOptions)
        if ((streams.get(streamId)?.length ?? 0) === 0) {
          if (o.ifMissing === "empty") return Stream.empty
          return yield* new NotFoundError({ resource: "stream", id: streamId })
        }
        const selected = rangeOf(streamId, o)
        const limited = o.limit === undefined ? selected : selected.slice(0, o.limit)
        return Stream.fromArray(limited).pipe(
          Stream.rechunk(o.pageSize ?? 100),
          Stream.mapArrayEffect((page) =>
            Effect.forEach(page, (e) => toEnvelope(streamId, e)) as Effect.Effect<
              NonEmptyReadonlyArray<EventEnvelope>,
              CorruptedEventError
            >
          )
        )
      }))

    const readLast: EventStoreShape["readLast"] = Effect.fn("EventStore.readLast")(function*(streamId, n, readOptions) {
      yield* validateStreamId("readLast", streamId)
      yield* validateCount("readLast", n)
      yield* validateConsistency("readLast", readOptions)
      const stream = streams.get(streamId) ?? []
      if (stream.length === 0) return yield* new NotFoundError({ resource: "stream", id: streamId })
      return yield* Effect.forEach(stream.slice(Math.max(0, stream.length - n)), (e) => toEnvelope(streamId, e))
    })

    const version: EventStoreShape["version"] = Effect.fn("EventStore.version")(function*(streamId, versionOptions) {
      yield* validateStreamId("version", streamId)
      yield* validateConsistency("version", versionOptions)
      return streams.get(streamId)?.length ?? 0
    })

    const eventCount = Effect.sync(() => {
      let n = 0
      for (const stream of streams.values()) n += stream.length
      return n
    })

    return { ...EventStore.of({ append, read, readLast, version }), eventCount }
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

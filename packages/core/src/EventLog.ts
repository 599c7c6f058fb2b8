/**
 * The global log: every event of the store in one gap-free order that never changes, read
 * as a lazy Stream (`readAll`), followed live (`subscribeAll`), and the stream ids of a
 * category (`listStreams`).
 *
 * Every event has a **position** (1, 2, 3, ... with no gap), assigned after it committed.
 * A position is an exclusive resume token: `readAll({ from: p })` gives exactly the events
 * after `p`, so a projection that stores the position of the last event it applied resumes
 * without losing or repeating anything.
 *
 * Guarantees (every implementation):
 * - each event appears exactly once, at one position that never changes;
 * - per stream, version `v` comes after version `v - 1`;
 * - a reader never passes an event that commits later: positions are assigned in order and
 *   a reader stops at the first one not yet written.
 *
 * Implementations: {@link layerMemory} (an event store and its log, in memory, positions
 * assigned at commit) and `DynamoEventLog` in `@dynamo-es/dynamodb` (a sequencer reads the
 * events table's DynamoDB Stream and writes the log table; see `docs/global-log.md`). On
 * DynamoDB an event appears in the log shortly after its append (the sequencer's lag), not
 * at once.
 *
 * ```ts
 * const log = yield* EventLog.EventLog
 * yield* log.subscribeAll({ from: checkpoint }).pipe(
 *   Stream.runForEach((item) => item._tag === "Event" ? apply(item.event) : Effect.log("caught up"))
 * )
 * ```
 *
 * @since 0.2.0
 */
import { Context, Duration, Effect, Layer, Option, Schema, Stream } from "effect"
import { CorruptedEventError, type StorageError } from "./Errors.js"
import { EventStore, type EventEnvelope, type EventStoreOptions, type EventStoreShape, make as makeEventStore, type StoredEvent } from "./EventStore.js"
import { decodeStoredEvent } from "./internal/envelope.js"
import type { EventPointer, Storage } from "./internal/eventLogModel.js"
import { makeMemoryLogStorage } from "./internal/memoryLog.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * An event with its position in the log.
 *
 * @since 0.2.0
 * @category models
 */
export interface LoggedEvent<P = unknown> extends EventEnvelope<P> {
  /** 1 for the first event of the log; no gaps. An exclusive resume token. */
  readonly position: number
}

/**
 * Which events a read emits. Every listed criterion must hold (types AND categories).
 * Filters save decoding and your handler's work, not read capacity: a log entry mixes every
 * stream, so the events filtered out are read too.
 *
 * @since 0.2.0
 * @category models
 */
export interface Filter {
  /** Only events of these types. */
  readonly types?: ReadonlyArray<string> | undefined
  /** Only events of streams in these categories (see {@link defaultCategory}). */
  readonly categories?: ReadonlyArray<string> | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface ReadAllOptions {
  /** Exclusive: the events after this position (default 0, from the first event). */
  readonly from?: number | undefined
  /** Inclusive: the last position to read (default: the head of the log when it is reached). */
  readonly to?: number | undefined
  readonly filter?: Filter | undefined
}

/**
 * What {@link EventLogShape.subscribeAll} emits: events, and once, when the subscription has
 * read everything that was in the log, `CaughtUp` with the position reached.
 *
 * @since 0.2.0
 * @category models
 */
export type SubscriptionItem<P = unknown> =
  | { readonly _tag: "Event"; readonly event: LoggedEvent<P> }
  | { readonly _tag: "CaughtUp"; readonly position: number }

/**
 * @since 0.2.0
 * @category models
 */
export interface SubscribeOptions {
  /**
   * `"start"` (position 0), `"end"` (the head when subscribing) or a position (exclusive; a
   * position beyond the head waits for the events after it).
   */
  readonly from: "start" | "end" | number
  readonly filter?: Filter | undefined
  /** How long to wait at the head before looking again (default: the implementation's). */
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * The errors a read of the log can fail with: a stored event that does not decode (named by
 * stream and version, as in the event store) or a storage failure.
 *
 * @since 0.2.0
 * @category errors
 */
export type LogReadError = CorruptedEventError | StorageError

/**
 * The global log service.
 *
 * @since 0.2.0
 * @category models
 */
export interface EventLogShape {
  /**
   * The events after `from` up to `to` (or the head), as a lazy Stream: one storage request
   * per page of log entries, so memory stays flat whatever the length of the log.
   */
  readonly readAll: (options?: ReadAllOptions) => Stream.Stream<LoggedEvent, LogReadError>
  /**
   * Catch-up, then live, in one loop over the same cursor (no duplicate and no skip across
   * the switch): emits every event after `from`, then `CaughtUp` once when the head is
   * reached, then new events as they are logged. Never ends by itself.
   */
  readonly subscribeAll: (options: SubscribeOptions) => Stream.Stream<SubscriptionItem, LogReadError>
  /** The ids of the streams of a category that have events in the log, in id order. */
  readonly listStreams: (options: { readonly category: string }) => Stream.Stream<string, StorageError>
  /** The position of the last event in the log (0 when empty). */
  readonly head: Effect.Effect<number, StorageError>
  /** The category of a stream id, by the rule the log was built with. */
  readonly categoryOf: (streamId: string) => string
}

/**
 * The global log. `yield* EventLog` in your code; provide {@link layerMemory} or the
 * DynamoDB layer.
 *
 * @since 0.2.0
 * @category services
 */
export class EventLog extends Context.Service<EventLog, EventLogShape>()("@dynamo-es/core/EventLog") {}

/**
 * The default category rule: the stream id's prefix before the first `-`
 * (`"account-42"` is in `"account"`); an id without `-` is its own category. Give your own
 * rule to the implementation (memory layer or sequencer and readers alike).
 *
 * @since 0.2.0
 * @category models
 */
export const defaultCategory = (streamId: string): string => {
  const i = streamId.indexOf("-")
  return i < 0 ? streamId : streamId.slice(0, i)
}

// -----------------------------------------------------------------------------
// storage: what a driver implements
// -----------------------------------------------------------------------------

// The storage contract is defined in internal/eventLogModel.ts (which the memory log imports
// too); every name of it is public here.
export type { EventPointer, Storage, StoredEntry } from "./internal/eventLogModel.js"

const isPointer = (e: StoredEvent | EventPointer): e is EventPointer => "_tag" in e && e._tag === "Pointer"

interface Cursor {
  /** The last position emitted or passed over. */
  readonly after: number
  /** The storage's cursor within the current read, or undefined to start a new read at `after`. */
  readonly next: unknown
  /** `after` is the last position of an entry (or 0). */
  readonly aligned: boolean
}

/**
 * The log reader over a driver's {@link Storage}: every implementation is this, over its own
 * storage.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (storage: Storage): EventLogShape => {
  const matches = (filter: Filter | undefined) => {
    if (filter === undefined) return () => true
    const types = filter.types === undefined ? undefined : new Set(filter.types)
    const categories = filter.categories === undefined ? undefined : new Set(filter.categories)
    return (streamId: string, type: unknown) =>
      (types === undefined || (typeof type === "string" && types.has(type))) &&
      (categories === undefined || categories.has(storage.categoryOf(streamId)))
  }

  /**
   * One page from `cursor`: the events in (after, to] that pass the filter, the cursor after
   * them, and whether the head was reached (nothing more right now).
   */
  const page = (cursor: Cursor, to: number, accept: (streamId: string, type: unknown) => boolean) =>
    Effect.gen(function*() {
      const { entries, next } = yield* storage.readEntries(cursor.after, cursor.next, cursor.aligned)
      const out: Array<LoggedEvent> = []
      let after = cursor.after
      let aligned = cursor.aligned
      for (const entry of entries) {
        // Entries are dense; one that does not start right after what was read is a missing
        // entry: stop there, as at the head, and read again from `after` next time.
        if (entry.first > after + 1) return { events: out, cursor: { after, next: undefined, aligned }, atHead: true }
        for (let i = 0; i < entry.events.length; i++) {
          const position = entry.first + i
          if (position <= after) continue
          if (position > to) return { events: out, cursor: { after, next: undefined, aligned }, atHead: true }
          aligned = i === entry.events.length - 1
          after = position
          const e = entry.events[i]!
          // A pointer's type is known once the event is read.
          const stored = isPointer(e) ? yield* storage.readEvent(e.streamId, e.version) : e
          // A pointer to an event deleted by its TTL: the event is gone from the store too.
          if (stored === undefined || !accept(stored.streamId, stored.type)) continue
          const decoded = decodeStoredEvent(stored)
          if (decoded._tag === "Failure") return yield* decoded.failure
          out.push({ ...decoded.success, position })
        }
      }
      return { events: out, cursor: { after, next, aligned }, atHead: next === undefined }
    })

  const readAll = (options: ReadAllOptions = {}): Stream.Stream<LoggedEvent, LogReadError> => {
    const to = options.to ?? Number.POSITIVE_INFINITY
    const accept = matches(options.filter)
    return Stream.suspend(() =>
      Stream.paginate({ after: Math.max(0, options.from ?? 0), next: undefined, aligned: (options.from ?? 0) <= 0 } as Cursor, (cursor) =>
        page(cursor, to, accept).pipe(
          Effect.map((r) => [r.events, r.atHead || r.cursor.after >= to ? Option.none() : Option.some(r.cursor)] as const)
        ))
    )
  }

  const wait = (after: number, pollInterval: Duration.Duration) =>
    storage.awaitChange === undefined
      ? Effect.sleep(pollInterval)
      : Effect.raceFirst(storage.awaitChange(after), Effect.sleep(pollInterval))

  const subscribeAll = (options: SubscribeOptions): Stream.Stream<SubscriptionItem, LogReadError> => {
    const accept = matches(options.filter)
    const pollInterval = options.pollInterval === undefined ? storage.pollInterval : Duration.fromInputUnsafe(options.pollInterval)
    interface State {
      readonly cursor: Cursor
      readonly caughtUp: boolean
      /** The previous look found nothing new: wait before the next. */
      readonly idle: boolean
    }
    const start = options.from === "end"
      ? storage.head
      : Effect.succeed(options.from === "start" ? 0 : Math.max(0, options.from))
    return Stream.unwrap(Effect.map(start, (from) =>
      // "end" starts at the head, which is the end of an entry.
      Stream.paginate({ cursor: { after: from, next: undefined, aligned: from === 0 || options.from === "end" }, caughtUp: false, idle: false } as State, (state) =>
        Effect.gen(function*() {
          if (state.idle) yield* wait(state.cursor.after, pollInterval)
          const r = yield* page(state.cursor, Number.POSITIVE_INFINITY, accept)
          const items: Array<SubscriptionItem> = r.events.map((event) => ({ _tag: "Event", event }))
          const reachedHead = r.atHead && !state.caughtUp
          if (reachedHead) items.push({ _tag: "CaughtUp", position: r.cursor.after })
          const progressed = r.cursor.after > state.cursor.after
          return [
            items,
            Option.some<State>({ cursor: r.cursor, caughtUp: state.caughtUp || r.atHead, idle: r.atHead && !progressed })
          ] as const
        })))
    )
  }

  const listStreams = (options: { readonly category: string }): Stream.Stream<string, StorageError> =>
    Stream.suspend(() =>
      Stream.paginate(undefined as unknown, (cursor) =>
        storage.listStreams(options.category, cursor).pipe(
          Effect.map((r) => [r.streamIds, r.next === undefined ? Option.none() : Option.some(r.next)] as const)
        ))
    )

  return EventLog.of({ readAll, subscribeAll, listStreams, head: storage.head, categoryOf: storage.categoryOf })
}

// -----------------------------------------------------------------------------
// in-memory implementation
// -----------------------------------------------------------------------------

/**
 * Options of the in-memory log.
 *
 * @since 0.2.0
 * @category models
 */
export interface MemoryOptions extends EventStoreOptions {
  /** The category rule (default {@link defaultCategory}). */
  readonly categoryOf?: ((streamId: string) => string) | undefined
}

/**
 * An in-memory event store and its log: each successful append becomes one log entry at
 * commit, so positions are assigned in commit order and an event is in the log as soon as
 * its append returns. Same reading rules as every log ({@link make}); entries are paged ten
 * at a time so that paging runs in tests too.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory = (
  options: MemoryOptions = {}
): Effect.Effect<{ readonly store: EventStoreShape; readonly log: EventLogShape }> =>
  Effect.gen(function*() {
    const storage = makeMemoryLogStorage(options.categoryOf ?? defaultCategory)
    const store = yield* makeEventStore(storage.events, options)
    return { store, log: make(storage.log) }
  })

/**
 * An in-memory {@link EventStore} and {@link EventLog} over the same events. Each build of the
 * layer is a new empty store.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<EventLog | EventStore> =>
  Layer.effectContext(Effect.map(makeMemory(options), ({ log, store }) =>
    Context.make(EventLog, log).pipe(Context.add(EventStore, store))))

// -----------------------------------------------------------------------------
// typed access
// -----------------------------------------------------------------------------

/**
 * The global log seen through the Schema of one kind of events, as
 * `EventStore.typed(schema)` sees the store: payloads decoded from the Schema's canonical
 * JSON form. The log holds the events of every stream, so give a `filter` (the categories or
 * types of this Schema): an event that passes the filter and does not decode fails the read
 * with `CorruptedEventError` (stream, version), as a typed read of the store does; resume
 * after it with `from: its position` to pass it.
 *
 * @since 0.2.0
 * @category models
 */
export interface TypedEventLog<E> {
  readonly schema: Schema.Codec<E, unknown>
  readonly readAll: (options?: ReadAllOptions) => Stream.Stream<LoggedEvent<E>, LogReadError, EventLog>
  readonly subscribeAll: (options: SubscribeOptions) => Stream.Stream<SubscriptionItem<E>, LogReadError, EventLog>
}

/**
 * Typed access to the log for events described by `schema` (the Schema given to
 * `EventStore.typed` for the same streams). Define it once at module level and use it
 * anywhere an {@link EventLog} is provided.
 *
 * ```ts
 * const AccountLog = EventLog.typed(AccountEvent)
 * AccountLog.subscribeAll({ from: checkpoint, filter: { categories: ["account"] } })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const typed = <E, I>(schema: Schema.Codec<E, I>): TypedEventLog<E> => {
  // The same canonical JSON form as EventStore.typed writes.
  const decode = Schema.decodeUnknownExit(Schema.toCodecJson(schema as Schema.Codec<E, unknown>))
  const decodeEvent = (e: LoggedEvent): Effect.Effect<LoggedEvent<E>, CorruptedEventError> => {
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
  return {
    schema: schema as Schema.Codec<E, unknown>,
    readAll: (options) =>
      EventLog.use((log) => Effect.succeed(log.readAll(options))).pipe(
        Stream.unwrap,
        Stream.mapEffect(decodeEvent)
      ),
    subscribeAll: (options) =>
      EventLog.use((log) => Effect.succeed(log.subscribeAll(options))).pipe(
        Stream.unwrap,
        Stream.mapEffect((item): Effect.Effect<SubscriptionItem<E>, CorruptedEventError> =>
          item._tag === "CaughtUp" ? Effect.succeed(item) : Effect.map(decodeEvent(item.event), (event) => ({ _tag: "Event", event }))
        )
      )
  }
}

/**
 * Aggregates as deciders: an initial state, `evolve(state, event)` and
 * `decide(command, state)` returning events or a typed domain error. The aggregate
 * loads itself (newest usable snapshot + the events after it), handles commands with
 * optimistic concurrency (retrying on `ConflictError`), and snapshots every N events
 * when you ask it to.
 *
 * ```ts
 * const Account = Aggregate.make({
 *   events: AccountEvent,
 *   initialState: { balance: 0, open: false },
 *   evolve: (s, e) => ...,
 *   decide: (command, state) => ... , // events, or Effect.fail(new InsufficientFunds(...))
 *   snapshots: { schema: AccountState, schemaVersion: 1, every: 100 }
 * })
 * yield* Account.handle("account-1", { _tag: "Withdraw", amount: 30 })
 * ```
 *
 * Snapshots are used when a `SnapshotStore` is provided and `snapshots` is set; without a
 * `SnapshotStore` in the context the aggregate replays from events.
 *
 * @since 0.1.0
 */
import { type Cause, Effect, Option, Predicate, Schedule, Schema, Stream } from "effect"
import type { ConflictError, InvalidInputError, StorageError } from "./Errors.js"
import { CorruptedEventError, EventEncodeError, NotFoundError } from "./Errors.js"
import * as EventStore from "./EventStore.js"
import * as EventStoreInternal from "./internal/eventStore.js"
import * as Tracing from "./internal/tracing.js"
import * as TypedCodec from "./internal/typed.js"
import * as Retry from "./Retry.js"
import * as SnapshotStore from "./SnapshotStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Definition<State, Event extends { readonly _tag: string }, EventEncoded, Command, E, StateEncoded> {
  /** The Schema of the aggregate's events (a union of tagged structs/classes). */
  readonly events: Schema.Codec<Event, EventEncoded>
  readonly initialState: State
  /** Applies one event to the state. Pure. */
  readonly evolve: (state: State, event: Event) => State
  /**
   * Decides which events a command produces in a state: an array (possibly empty: nothing
   * to append), or an Effect failing with a domain error.
   */
  readonly decide: (
    command: Command,
    state: State,
    context: { readonly streamId: string; readonly version: number }
  ) => ReadonlyArray<Event> | Effect.Effect<ReadonlyArray<Event>, E>
  /**
   * Snapshot policy. `schemaVersion`: bump it whenever `evolve` or the state Schema changes
   * meaning; older snapshots are then ignored and the state rebuilt from events.
   * `every`: save a snapshot when a command crosses a multiple of this many events.
   */
  readonly snapshots?: {
    readonly schema: Schema.Codec<State, StateEncoded>
    readonly schemaVersion: number
    readonly every?: number | undefined
  } | undefined
  /**
   * Retries of `handle` after a `ConflictError` (reload, decide again, append). Default:
   * 10 retries, exponential from 10 ms, jittered. After that the `ConflictError` is returned.
   */
  readonly conflictRetry?: Schedule.Schedule<unknown, ConflictError> | undefined
}

/**
 * A loaded aggregate.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded<State> {
  readonly streamId: string
  readonly state: State
  /** The stream version the state includes (0: no events). */
  readonly version: number
  /** The snapshot version the load started from, if one was used. */
  readonly snapshotVersion: number | undefined
  /** How many events were read and applied (after the snapshot, if any). */
  readonly eventsRead: number
}

/**
 * The result of a handled command.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handled<State, Event> {
  readonly streamId: string
  readonly state: State
  readonly version: number
  /** The appended events (empty when the command decided nothing). */
  readonly events: ReadonlyArray<EventStore.EventEnvelope<Event>>
}

/**
 * Errors of loading.
 *
 * @since 0.1.0
 * @category errors
 */
export type LoadError = InvalidInputError | CorruptedEventError | StorageError

/**
 * @since 0.1.0
 * @category models
 */
export interface Aggregate<State, Event extends { readonly _tag: string }, Command, E> {
  readonly events: EventStore.TypedEventStore<Event>
  /** Loads the current state; a missing stream is the initial state at version 0. */
  readonly load: (streamId: string) => Effect.Effect<Loaded<State>, LoadError, EventStore.EventStore>
  /** Like `load`, but a missing stream is a `NotFoundError`. */
  readonly loadExisting: (streamId: string) => Effect.Effect<Loaded<State>, LoadError | NotFoundError, EventStore.EventStore>
  /**
   * Load, decide, append with the loaded version as expected version; on `ConflictError`
   * retry with `conflictRetry`. Snapshots afterwards when the policy says so (a failed
   * snapshot is logged, never fails the command: the events are stored).
   */
  readonly handle: (
    streamId: string,
    command: Command,
    options?: { readonly metadata?: EventStore.EventMetadata | undefined }
  ) => Effect.Effect<Handled<State, Event>, E | EventStore.AppendError | LoadError, EventStore.EventStore>
  /** Folds events over the initial state (or a given state). Pure. */
  readonly fold: (events: Iterable<Event>, from?: State) => State
  readonly definition: Definition<State, Event, unknown, Command, E, unknown>
}

const defaultConflictRetry: Schedule.Schedule<unknown, ConflictError> = Schedule.exponential("10 millis").pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 10 })
)

/**
 * Defines an aggregate.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Event extends { readonly _tag: string }, EventEncoded, Command, E = never, StateEncoded = unknown>(
  definition: Definition<State, Event, EventEncoded, Command, E, StateEncoded>
): Aggregate<State, Event, Command, E> => {
  const events = EventStore.typed(definition.events)
  // The same codec as `events`, to append on the store `handle` already holds.
  const codec = TypedCodec.make(definition.events as Schema.Codec<Event, unknown>)
  const snapshots = definition.snapshots === undefined
    ? undefined
    : SnapshotStore.typed(definition.snapshots.schema, { schemaVersion: definition.snapshots.schemaVersion })
  const every = definition.snapshots?.every
  if (every !== undefined && (!Number.isSafeInteger(every) || every < 1)) {
    throw new Error(`Aggregate: snapshots.every must be an integer >= 1, got ${every}`)
  }

  const fold = (list: Iterable<Event>, from: State = definition.initialState) => {
    let state = from
    for (const e of list) state = definition.evolve(state, e)
    return state
  }

  const loadSnapshot = (streamId: string) =>
    Effect.gen(function*() {
      if (snapshots === undefined) return Option.none<SnapshotStore.Snapshot<State>>()
      const store = yield* Effect.serviceOption(SnapshotStore.SnapshotStore)
      if (Option.isNone(store)) return Option.none<SnapshotStore.Snapshot<State>>()
      return yield* snapshots.load(streamId).pipe(
        Effect.provideService(SnapshotStore.SnapshotStore, store.value),
        // A snapshot is an optimisation: when stored data cannot be read, replay from events.
        // Storage failures (wrong table, access denied, ...) are not hidden: they fail the load.
        Effect.catchTag("CorruptedSnapshotError", (error) =>
          Effect.logWarning(`Ignoring the snapshot of ${streamId}: ${error.message}`).pipe(
            Effect.as(Option.none<SnapshotStore.Snapshot<State>>())
          ))
      )
    })

  // Loading decodes the payloads itself, a page at a time, with the codec `events.read` uses
  // and the same CorruptedEventError: the same result as folding `events.read`. On a store
  // built by `EventStore.make` (every implementation in this repository) it reads through the
  // store's page fold: the same requests, checks and errors, without a Stream, an Effect per
  // page or an envelope (two DateTimes) per event, which were most of the command path's CPU.
  const decodePayload = Schema.decodeUnknownExit(Schema.toCodecJson(definition.events as Schema.Codec<Event, unknown>))
  const corruptedPayload = (e: { readonly streamId: string; readonly version: number; readonly type: unknown }, cause: Cause.Cause<unknown>) =>
    new CorruptedEventError({
      streamId: e.streamId,
      version: e.version,
      reason: `the payload of a "${String(e.type)}" event does not match the event Schema: ${String(cause)}`,
      cause
    })

  /** Folds the events after the snapshot (if any) over its state, from the given store. */
  const replay = (
    store: EventStore.EventStoreShape,
    streamId: string,
    snapshot: Option.Option<SnapshotStore.Snapshot<State>>
  ): Effect.Effect<Loaded<State>, LoadError> =>
    Effect.suspend(() => {
      const from = Option.isSome(snapshot) ? snapshot.value.version + 1 : 1
      let state = Option.isSome(snapshot) ? snapshot.value.state : definition.initialState
      let version = from - 1
      let count = 0
      /** One page: every payload decoded before any is applied, as `events.read` does. */
      const apply = (
        rows: ReadonlyArray<{ readonly streamId: string; readonly version: number; readonly type: unknown }>,
        payloads: ReadonlyArray<unknown>
      ): CorruptedEventError | undefined => {
        const decoded = new Array<Event>(payloads.length)
        for (let i = 0; i < payloads.length; i++) {
          const exit = decodePayload(payloads[i])
          if (exit._tag === "Failure") return corruptedPayload(rows[i]!, exit.cause)
          decoded[i] = exit.value
        }
        for (let i = 0; i < decoded.length; i++) state = definition.evolve(state, decoded[i]!)
        version = rows[decoded.length - 1]!.version
        count += decoded.length
        return undefined
      }
      const fold = EventStoreInternal.pageFoldOf(store)
      // ifMissing "empty": a missing stream is the initial state, and a snapshot at the head
      // of the stream costs no extra request to tell "no events after it" from "no stream".
      const events: Effect.Effect<void, LoadError> = fold !== undefined && Number.isSafeInteger(from) && from >= 1
        ? fold(streamId, from, apply)
        : Stream.runForEachArray(
          store.read(streamId, { from, ifMissing: "empty" }),
          (page) => {
            const failure = apply(page, page.map((e) => e.payload))
            return failure === undefined ? Effect.void : Effect.fail(failure)
          }
        ).pipe(Effect.catchTag("NotFoundError", (e) => Effect.die(e))) // cannot happen with ifMissing "empty"
      return Effect.map(events, () => ({
        streamId,
        state,
        version,
        snapshotVersion: Option.isSome(snapshot) ? snapshot.value.version : undefined,
        eventsRead: count
      }))
    })

  const loadWith = (store: EventStore.EventStoreShape, streamId: string): Effect.Effect<Loaded<State>, LoadError> =>
    Tracing.withSpan(
      snapshots === undefined
        ? replay(store, streamId, Option.none())
        : Effect.flatMap(loadSnapshot(streamId), (snapshot) => replay(store, streamId, snapshot)),
      "Aggregate.load",
      () => ({ streamId })
    )

  const load = (streamId: string): Effect.Effect<Loaded<State>, LoadError, EventStore.EventStore> =>
    EventStore.EventStore.use((store) => loadWith(store, streamId))

  const loadExisting = (streamId: string) =>
    Effect.flatMap(load(streamId), (loaded) =>
      loaded.version === 0 ? Effect.fail(new NotFoundError({ resource: "stream", id: streamId })) : Effect.succeed(loaded))

  const maybeSnapshot = (streamId: string, before: number, after: number, state: State) =>
    Effect.gen(function*() {
      if (snapshots === undefined || every === undefined) return
      if (Math.floor(after / every) <= Math.floor(before / every)) return
      const store = yield* Effect.serviceOption(SnapshotStore.SnapshotStore)
      if (Option.isNone(store)) return
      yield* snapshots.save(streamId, { version: after, state }).pipe(
        Effect.provideService(SnapshotStore.SnapshotStore, store.value),
        Effect.catch((error) => Effect.logWarning(`Snapshot of ${streamId} at version ${after} failed: ${error.message}`))
      )
    })

  const attempt = (
    streamId: string,
    command: Command,
    metadata: EventStore.EventMetadata | undefined
  ): Effect.Effect<Handled<State, Event>, E | EventStore.AppendError | LoadError, EventStore.EventStore> =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const loaded = yield* loadWith(store, streamId)
      const decided = definition.decide(command, loaded.state, { streamId, version: loaded.version })
      const decidedEvents: ReadonlyArray<Event> = Effect.isEffect(decided)
        ? yield* (decided as Effect.Effect<ReadonlyArray<Event>, E>)
        : decided as ReadonlyArray<Event>
      if (decidedEvents.length === 0) {
        return { streamId, state: loaded.state, version: loaded.version, events: [] }
      }
      const encoded = codec.encodeAll(streamId, decidedEvents)
      if (encoded instanceof EventEncodeError) return yield* encoded
      const appended = TypedCodec.withPayloads(
        yield* store.append(streamId, encoded.raw, { expectedVersion: loaded.version, metadata }),
        encoded.stored
      )
      // Fold the events as stored (decoded from their encoded form), not the objects
      // decide returned: the state, and a snapshot of it, must equal what a replay gives.
      let state = loaded.state
      for (const e of appended.events) state = definition.evolve(state, e.payload)
      if (snapshots !== undefined && every !== undefined) yield* maybeSnapshot(streamId, loaded.version, appended.version, state)
      return { streamId, state, version: appended.version, events: appended.events }
    })

  const conflictRetry = (definition.conflictRetry ?? defaultConflictRetry) as Schedule.Schedule<unknown, unknown>
  const isConflict = (e: unknown) => Predicate.isTagged(e, "ConflictError")

  const handle: Aggregate<State, Event, Command, E>["handle"] = (streamId, command, options) => {
    return Tracing.withSpan(
      // The retry machinery (a schedule driver) is built only after a first ConflictError.
      Retry.afterFailure(attempt(streamId, command, options?.metadata), { schedule: conflictRetry, while: isConflict }),
      "Aggregate.handle",
      () => ({ streamId })
    )
  }

  return {
    events,
    load,
    loadExisting,
    handle,
    fold,
    definition: definition as unknown as Definition<State, Event, unknown, Command, E, unknown>
  }
}

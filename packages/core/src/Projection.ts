/**
 * Projections: read models kept from the global log, exactly once in effect.
 *
 * A projection has a name, the events it handles (a Schema of their payloads) and a handler
 * from an event (with its log position) to read-model changes, made through the
 * repositories the runner gives it. {@link run} catches up from the projection's checkpoint
 * and follows the log live: events in batches, each batch one flush, then the checkpoint.
 *
 * ```ts
 * const Balance = Schema.Struct({ id: Schema.String, balance: Schema.Number })
 * const Deposited = Schema.Struct({ amount: Schema.Number })
 *
 * const balances = Projection.make({
 *   name: "balances",
 *   events: Deposited,
 *   readModels: { balances: Projection.readModel("balances", Balance) },
 *   handle: (event, { balances }) =>
 *     Effect.gen(function*() {
 *       const current = yield* balances.find(event.streamId)
 *       const balance = Option.match(current, { onNone: () => 0, onSome: (b) => b.balance })
 *       yield* balances.save({ id: event.streamId, balance: balance + event.payload.amount })
 *     })
 * })
 *
 * // Needs EventLog.EventLog and ReadModel.ReadModelStore.
 * const rebuilt = Projection.run(balances, { until: "caughtUp" })
 * ```
 *
 * Modes (see `docs/projections.md` for the design and the costs):
 * - `"guarded"` (default): every row carries the position of the last event applied to it;
 *   a write lands only when the stored position is lower, and an event is not applied to a
 *   row that already holds it. Replays, duplicates and stale runners change nothing.
 *   Removes become tombstones (invisible to readers).
 * - `"atLeastOnce"`: batched flush (`BatchWriteItem`), then the checkpoint. A crash between
 *   the two replays the batch: for idempotent handlers only.
 * - `"transactional"`: the batch's rows and the checkpoint in one `TransactWriteItems` (a
 *   batch is cut at 99 changed rows or 4 MB; 2 WCU per KB per row).
 *
 * The checkpoint is a row of the read-models storage (repository `$projections`, id: the
 * projection's name), held by one runner at a time (a lease with a fencing token).
 *
 * @since 0.2.0
 */
import { type Cause, Clock, Duration, type Exit, Effect, Option, Schema, Stream } from "effect"
import type { InvalidInputError, NotFoundError, StorageError } from "./Errors.js"
import { EventLog, type Filter, type LoggedEvent, type LogReadError } from "./EventLog.js"
import type { EventEnvelope } from "./EventStore.js"
import * as Checkpoint from "./internal/projection/checkpoint.js"
import { makeUnitOfWork } from "./internal/projection/unitOfWork.js"
import type {
  CorruptedReadModelError,
  ReadError,
  ReadModelEncodeError,
  ReadModelIdMismatchError,
  ReadModelTooLargeError
} from "./internal/readModel/errors.js"
import { ReadModelStore } from "./ReadModel.js"

export { CHECKPOINTS, CorruptedCheckpointError } from "./internal/projection/checkpoint.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * A read model a projection writes: a repository name and the model's Schema (and how to
 * get a model's id, default its `id` field).
 *
 * @since 0.2.0
 * @category models
 */
export interface ReadModelSpec<A> {
  readonly name: string
  readonly schema: Schema.Codec<A, any>
  readonly idOf?: ((model: A) => string) | undefined
}

/**
 * A {@link ReadModelSpec}, with the model type inferred from the Schema.
 *
 * @since 0.2.0
 * @category constructors
 */
export const readModel = <A, I>(
  name: string,
  schema: Schema.Codec<A, I>,
  options: { readonly idOf?: ((model: A) => string) | undefined } = {}
): ReadModelSpec<A> => ({ name, schema, idOf: options.idOf })

/**
 * What a handler gets for each read model: keyed read-modify-write on a unit of work the
 * runner flushes once per batch. `find` reads storage once per batch and row (strongly
 * consistent) and then the unit of work; `save` and `remove` stage. No `findAll`/`findBy`:
 * a handler derives a row from that row and the event.
 *
 * @since 0.2.0
 * @category models
 */
export interface Repository<A> {
  readonly name: string
  readonly find: (id: string) => Effect.Effect<Option.Option<A>, ReadError>
  readonly get: (id: string) => Effect.Effect<A, ReadError | NotFoundError>
  readonly save: (model: A) => Effect.Effect<void, ReadError | ReadModelEncodeError | ReadModelTooLargeError>
  readonly remove: (id: string) => Effect.Effect<void, ReadError>
}

/**
 * The repositories of a projection, by the keys of its `readModels`.
 *
 * @since 0.2.0
 * @category models
 */
export type Repositories<RM> = { readonly [K in keyof RM]: RM[K] extends ReadModelSpec<infer A> ? Repository<A> : never }

/**
 * A projection definition (see {@link make}).
 *
 * @since 0.2.0
 * @category models
 */
export interface Projection<E, RM extends Record<string, ReadModelSpec<any>>, Err, R> {
  readonly name: string
  readonly events: Schema.Codec<E, any>
  /**
   * The event types the projection handles. When given, only those are read (a log filter)
   * and one whose payload does not decode with `events` stops the projection
   * ({@link ProjectionDecodeError}). When absent, every event is offered and those whose
   * payload does not decode are not the projection's business: they are skipped.
   */
  readonly types?: ReadonlyArray<string> | undefined
  readonly readModels: RM
  readonly handle: (event: LoggedEvent<E>, repositories: Repositories<RM>) => Effect.Effect<void, Err, R>
  /**
   * The ids of the rows the handler will read for an event, by read-model key. The runner
   * reads those of a whole batch at once before running the handler (`BatchGetItem`, 100
   * ids per request, strongly consistent) instead of one `GetItem` per row on the first
   * `find`: the difference between a per-row round trip and a per-100-rows one. Optional:
   * rows not named here are read on their first `find`.
   */
  readonly prefetch?: ((event: LoggedEvent<E>) => { readonly [K in keyof RM]?: string | ReadonlyArray<string> | undefined }) | undefined
}

/**
 * Defines a projection.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <E, RM extends Record<string, ReadModelSpec<any>>, Err = never, R = never>(
  definition: Projection<E, RM, Err, R>
): Projection<E, RM, Err, R> => definition

/**
 * Progress of a run, after each checkpoint: a CLI, a log line or a metric can show it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Progress {
  readonly projection: string
  /** The checkpoint: every event up to it is applied. */
  readonly position: number
  /** The last position of the log when the batch was checkpointed. */
  readonly head: number
  /** `head - position`. */
  readonly lag: number
  /** Events handled by this run (skipped and filtered ones excluded). */
  readonly eventsApplied: number
  /** `eventsApplied` per second since the run started. */
  readonly eventsPerSecond: number
  /** The run has reached the head of the log once. */
  readonly caughtUp: boolean
  /** Row writes that landed, guarded writes refused (the row was newer), and requests. */
  readonly rowsWritten: number
  readonly rowsRejected: number
  readonly requests: number
}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * A handler failed: the projection stopped at this event. Everything before it is applied
 * and checkpointed; nothing of it is. `cause` is the handler's error.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionHandlerError extends Schema.TaggedError<ProjectionHandlerError>()("ProjectionHandlerError", {
  projection: Schema.String,
  streamId: Schema.String,
  version: Schema.Number,
  position: Schema.Number,
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `Projection "${this.projection}" failed at ${this.streamId}@${this.version} (log position ${this.position}): ${
      String((this.cause as { message?: unknown })?.message ?? this.cause)
    }`
  }
}

/**
 * An event of a type the projection handles whose payload does not decode with its Schema.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionDecodeError extends Schema.TaggedError<ProjectionDecodeError>()("ProjectionDecodeError", {
  projection: Schema.String,
  streamId: Schema.String,
  version: Schema.Number,
  position: Schema.Number,
  reason: Schema.String
}) {}

/**
 * Another runner holds the projection's checkpoint now (this one's lease expired and was
 * claimed): this runner stopped without moving the checkpoint.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionFencedError extends Schema.TaggedError<ProjectionFencedError>()("ProjectionFencedError", {
  projection: Schema.String,
  owner: Schema.String,
  token: Schema.Number
}) {}

/**
 * Transactional mode: one event changes more rows than one transaction holds (99 rows and
 * the checkpoint, 4 MB). Everything before it is applied and checkpointed. Run this
 * projection in another mode.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionTransactionTooLargeError
  extends Schema.TaggedError<ProjectionTransactionTooLargeError>()("ProjectionTransactionTooLargeError", {
    projection: Schema.String,
    streamId: Schema.String,
    version: Schema.Number,
    position: Schema.Number,
    rows: Schema.Number,
    bytes: Schema.Number
  })
{}

/** Rows per transaction: 100 items, one of them the checkpoint. */
const MAX_TRANSACTION_ROWS = 99
/** DynamoDB's 4 MB per transaction, less room for the checkpoint and keys. */
const MAX_TRANSACTION_BYTES = 4 * 1024 * 1024 - 64 * 1024

/**
 * What {@link run} can fail with, besides the handler's own errors (wrapped in
 * {@link ProjectionHandlerError}).
 *
 * @since 0.2.0
 * @category errors
 */
export type RunError =
  | ProjectionHandlerError
  | ProjectionDecodeError
  | ProjectionFencedError
  | ProjectionTransactionTooLargeError
  | Checkpoint.CorruptedCheckpointError
  | LogReadError
  | StorageError
  | InvalidInputError
  | CorruptedReadModelError
  | ReadModelIdMismatchError

// -----------------------------------------------------------------------------
// running
// -----------------------------------------------------------------------------

/**
 * @since 0.2.0
 * @category models
 */
export interface RunOptions {
  /** `"guarded"` (default), `"atLeastOnce"` or `"transactional"` (see the module documentation). */
  readonly mode?: "guarded" | "atLeastOnce" | "transactional" | undefined
  /** Events per batch (default 500): one flush and one checkpoint per batch. */
  readonly batchSize?: number | undefined
  /** How long a batch waits for more events once it has one (default 100 ms). */
  readonly batchWindow?: Duration.Input | undefined
  /** `"caughtUp"`: end once everything that was in the log at the head is applied. Default: run until interrupted. */
  readonly until?: "caughtUp" | undefined
  /** This runner's name in the checkpoint (default: a random one). */
  readonly owner?: string | undefined
  /** How long a claim holds without renewal (default 30 s); renewed every third of it. */
  readonly leaseDuration?: Duration.Input | undefined
  /** Row writes in flight during a flush (default 8). */
  readonly writeConcurrency?: number | undefined
  /** Prefetch requests (100 rows each) in flight (default 4). */
  readonly readConcurrency?: number | undefined
  /** The log's wait at the head between two looks. */
  readonly pollInterval?: Duration.Input | undefined
  /** Called after each checkpoint. */
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
}

type Item = { readonly _tag: "Event"; readonly event: LoggedEvent } | { readonly _tag: "CaughtUp"; readonly position: number }

/** The ids `prefetch` names for these events, by read-model key. */
const prefetchIds = <E>(
  projection: Projection<E, any, any, any>,
  decode: (u: unknown) => Exit.Exit<E, unknown>,
  events: ReadonlyArray<LoggedEvent>
): Map<string, Array<string>> => {
  const ids = new Map<string, Array<string>>()
  if (projection.prefetch === undefined) return ids
  for (const event of events) {
    const payload = decode(event.payload)
    if (payload._tag === "Failure") continue
    const named = projection.prefetch({ ...event, payload: payload.value }) as Record<string, string | ReadonlyArray<string> | undefined>
    for (const [key, value] of Object.entries(named)) {
      if (value === undefined) continue
      const list = ids.get(key) ?? []
      if (typeof value === "string") list.push(value)
      else list.push(...value)
      ids.set(key, list)
    }
  }
  return ids
}

/**
 * Runs a projection: claims its checkpoint (waiting while another runner holds it), then
 * catches up from it and follows the log live, in batches (handler for each event, one
 * flush, then the checkpoint). Ends only with `until: "caughtUp"` (returning the last
 * progress), or with an error: a handler failure ({@link ProjectionHandlerError}, after
 * applying and checkpointing what came before it), a lost claim
 * ({@link ProjectionFencedError}), or a read or write failure (then restart it: it resumes
 * from its checkpoint, and replayed events change nothing in `"guarded"` mode).
 *
 * Needs an `EventLog` and a `ReadModelStore` whose storage has the conditional primitives
 * (the memory and DynamoDB stores have them); dies otherwise.
 *
 * @since 0.2.0
 * @category running
 */
export const run = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  options: RunOptions = {}
): Effect.Effect<Progress, RunError, EventLog | ReadModelStore | R> =>
  Effect.gen(function*() {
    const log = yield* EventLog
    const store = yield* ReadModelStore
    const storage = store.storage
    const conditional = storage?.conditional
    if (storage === undefined || conditional === undefined) {
      return yield* Effect.die(new Error(`Projection.run: the read-model store "${store.table}" has no conditional primitives (ReadModel.Storage.conditional)`))
    }
    const mode = options.mode ?? "guarded"
    if (mode === "transactional" && conditional.transact === undefined) {
      return yield* Effect.die(new Error(`Projection.run: the read-model store "${store.table}" has no transactions (ConditionalStorage.transact)`))
    }
    const batchSize = Math.max(1, options.batchSize ?? 500)
    const leaseMillis = Duration.toMillis(Duration.fromInputUnsafe(options.leaseDuration ?? "30 seconds"))
    const owner = options.owner ?? `runner-${Math.random().toString(36).slice(2, 10)}`
    const decode = Schema.decodeUnknownExit(projection.events)
    const filter: Filter | undefined = projection.types === undefined ? undefined : { types: projection.types }

    const lease = yield* Checkpoint.claim(conditional, projection.name, owner, leaseMillis)
    const fenced = new ProjectionFencedError({ projection: projection.name, owner, token: lease.token })
    const commit = (position: number) =>
      Effect.flatMap(lease.commit(position), (r) => (r === "fenced" ? Effect.fail(fenced) : Effect.void))
    const renew = Effect.flatMap(lease.renew, (r) => (r === "fenced" ? Effect.fail(fenced) : Effect.void))

    const uow = makeUnitOfWork({
      storage,
      conditional,
      mode,
      specs: projection.readModels,
      writeConcurrency: Math.max(1, options.writeConcurrency ?? 8),
      readConcurrency: Math.max(1, options.readConcurrency ?? 4)
    })
    const repositories = uow.repositories as Repositories<RM>

    const started = yield* Clock.currentTimeMillis
    let applied = 0
    let caughtUp = false
    /** The last position handled or passed over in this run. */
    let after = lease.position()
    let last: Progress | undefined

    const progress = Effect.gen(function*() {
      const head = yield* log.head
      const now = yield* Clock.currentTimeMillis
      const position = lease.position()
      const p: Progress = {
        projection: projection.name,
        position,
        head,
        lag: Math.max(0, head - position),
        eventsApplied: applied,
        eventsPerSecond: now > started ? (applied * 1000) / (now - started) : 0,
        caughtUp,
        rowsWritten: uow.stats.rowsWritten,
        rowsRejected: uow.stats.rowsRejected,
        requests: uow.stats.requests
      }
      last = p
      if (options.onProgress !== undefined) yield* options.onProgress(p)
    })

    /** Writes the unit of work and moves the checkpoint to `position` (renewing first when the lease runs short). */
    /** `keep`: a transactional batch cut in the middle keeps the rows it read. */
    const checkpoint = (position: number, keep = false) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // A runner whose lease may have been taken checks before it writes anything.
        if (lease.expiresAt() - now < leaseMillis / 2) yield* renew
        if (mode === "transactional") {
          const { writes } = uow.staged()
          if (writes.length > 0) {
            uow.stats.requests++
            const result = yield* Effect.onError(
              lease.commitWith(position, (expected, data) =>
                conditional.transact!(writes, { name: Checkpoint.CHECKPOINTS, id: projection.name, expected, data })),
              () => Effect.sync(uow.discard)
            )
            if (result === "fenced") {
              uow.discard()
              return yield* fenced
            }
            uow.settle(keep)
          } else if (position > lease.position()) yield* commit(position)
        } else {
          yield* Effect.onError(uow.flush, () => Effect.sync(uow.discard))
          if (position > lease.position()) yield* commit(position)
        }
        yield* progress
      })

    /** A transaction holds at most 100 items (99 rows and the checkpoint) and 4 MB. */
    const overLimits = () => {
      if (mode !== "transactional") return false
      const { bytes, writes } = uow.staged()
      return writes.length > MAX_TRANSACTION_ROWS || bytes > MAX_TRANSACTION_BYTES
    }

    const handleBatch = (items: ReadonlyArray<Item>) =>
      Effect.gen(function*() {
        let reached = after
        const fresh = items.flatMap((item) => (item._tag === "Event" && item.event.position > after ? [item.event] : []))
        yield* uow.prefetch(prefetchIds(projection, decode, fresh))
        for (const item of items) {
          if (item._tag === "CaughtUp") {
            caughtUp = true
            reached = Math.max(reached, item.position)
            continue
          }
          const event = item.event
          // A duplicated or replayed delivery: already handled.
          if (event.position <= after) continue
          const payload = decode(event.payload)
          if (payload._tag === "Failure") {
            if (projection.types === undefined) {
              after = reached = event.position
              continue
            }
            yield* checkpoint(after)
            return yield* new ProjectionDecodeError({
              projection: projection.name,
              streamId: event.streamId,
              version: event.version,
              position: event.position,
              reason: String(payload.cause)
            })
          }
          uow.begin(event.position)
          let outcome = yield* Effect.exit(projection.handle({ ...event, payload: payload.value }, repositories))
          if (outcome._tag === "Success" && overLimits()) {
            // Transactional: this event does not fit in the batch's transaction. Commit what
            // came before it, then apply it again alone.
            uow.rollback()
            yield* checkpoint(after, true)
            uow.begin(event.position)
            outcome = yield* Effect.exit(projection.handle({ ...event, payload: payload.value }, repositories))
            if (outcome._tag === "Success" && overLimits()) {
              const { bytes, writes } = uow.staged()
              uow.rollback()
              return yield* new ProjectionTransactionTooLargeError({
                projection: projection.name,
                streamId: event.streamId,
                version: event.version,
                position: event.position,
                rows: writes.length,
                bytes
              })
            }
          }
          if (outcome._tag === "Failure") {
            // Undo the failing event, write what came before it, and stop there.
            uow.rollback()
            yield* checkpoint(after)
            const failure = outcome.cause.reasons.find((r) => r._tag === "Fail")
            if (failure === undefined) return yield* Effect.failCause(outcome.cause as Cause.Cause<never>)
            return yield* new ProjectionHandlerError({
              projection: projection.name,
              streamId: event.streamId,
              version: event.version,
              position: event.position,
              cause: (failure as { readonly error: unknown }).error
            })
          }
          applied++
          after = reached = event.position
        }
        after = Math.max(after, reached)
        yield* checkpoint(after)
      })

    const items = log.subscribeAll({
      from: lease.position(),
      filter,
      ...(options.pollInterval !== undefined ? { pollInterval: options.pollInterval } : {})
    }) as Stream.Stream<Item, LogReadError>
    const bounded = options.until === "caughtUp" ? items.pipe(Stream.takeUntil((item) => item._tag === "CaughtUp")) : items
    const main = bounded.pipe(
      Stream.groupedWithin(batchSize, options.batchWindow ?? "100 millis"),
      Stream.runForEach(handleBatch)
    )
    // Renews the lease while the runner waits at the head (or a long batch runs).
    const heartbeat = Effect.sleep(leaseMillis / 3).pipe(Effect.andThen(renew), Effect.forever)
    yield* Effect.raceFirst(main, heartbeat).pipe(
      Effect.ensuring(Effect.ignore(lease.release))
    )
    if (last === undefined) yield* progress
    return last!
  }).pipe(Effect.withSpan("Projection.run", { attributes: { projection: projection.name } }))

// -----------------------------------------------------------------------------
// applying events without the log (DynamoDB Streams, Lambda)
// -----------------------------------------------------------------------------

/**
 * What {@link applyEvents} did: how many events it applied (skipped ones included), and
 * when it stopped early, the index of the event it stopped at and why.
 *
 * @since 0.2.0
 * @category models
 */
export interface ApplyResult {
  readonly applied: number
  readonly failure?: {
    readonly index: number
    readonly error: ProjectionHandlerError | ProjectionDecodeError
  } | undefined
}

/**
 * Applies events in the given order to a projection's read models and flushes once, without
 * the log and without a checkpoint: for projections fed straight from the events table's
 * DynamoDB Stream (`DynamoProjection.handleStreamEvent`), where the event source mapping
 * is the checkpoint. Stops at the first event the handler fails on (or whose payload of a
 * handled type does not decode): the events before it are written, nothing of it is, and the
 * result names it, so that the caller reports it and everything after it for a retry.
 *
 * Order: only per-stream order exists here. In `"guarded"` mode the guard of a row is the
 * **stream version** of the last event applied to it (there is no global position), which
 * is exact only for rows that events of one stream write (a row per stream); use
 * `"atLeastOnce"` with idempotent handlers for rows fed by several streams.
 *
 * A storage failure (or a prefetched row that does not decode) fails the effect: nothing is
 * known applied, retry it all.
 *
 * @since 0.2.0
 * @category running
 */
export const applyEvents = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  events: ReadonlyArray<EventEnvelope>,
  options: {
    readonly mode?: "guarded" | "atLeastOnce" | undefined
    readonly writeConcurrency?: number | undefined
    readonly readConcurrency?: number | undefined
  } = {}
): Effect.Effect<ApplyResult, StorageError | CorruptedReadModelError | ReadModelIdMismatchError, ReadModelStore | R> =>
  Effect.gen(function*() {
    const store = yield* ReadModelStore
    const storage = store.storage
    if (storage === undefined || storage.conditional === undefined) {
      return yield* Effect.die(new Error(`Projection.applyEvents: the read-model store "${store.table}" has no conditional primitives`))
    }
    const uow = makeUnitOfWork({
      storage,
      conditional: storage.conditional,
      mode: options.mode ?? "guarded",
      specs: projection.readModels,
      writeConcurrency: Math.max(1, options.writeConcurrency ?? 8),
      readConcurrency: Math.max(1, options.readConcurrency ?? 4)
    })
    const decode = Schema.decodeUnknownExit(projection.events)
    const handled = projection.types === undefined ? undefined : new Set(projection.types)
    yield* uow.prefetch(prefetchIds(projection, decode, events.map((e) => ({ ...e, position: e.version }))))
    let failure: ApplyResult["failure"]
    let applied = 0
    for (const [index, event] of events.entries()) {
      if (handled !== undefined && !handled.has(event.type)) {
        applied++
        continue
      }
      const payload = decode(event.payload)
      if (payload._tag === "Failure") {
        if (handled === undefined) {
          applied++
          continue
        }
        failure = {
          index,
          error: new ProjectionDecodeError({
            projection: projection.name,
            streamId: event.streamId,
            version: event.version,
            position: event.version,
            reason: String(payload.cause)
          })
        }
        break
      }
      uow.begin(event.version)
      const outcome = yield* Effect.exit(projection.handle({ ...event, payload: payload.value, position: event.version }, uow.repositories as Repositories<RM>))
      if (outcome._tag === "Failure") {
        uow.rollback()
        const reason = outcome.cause.reasons.find((r) => r._tag === "Fail")
        failure = {
          index,
          error: new ProjectionHandlerError({
            projection: projection.name,
            streamId: event.streamId,
            version: event.version,
            position: event.version,
            cause: reason === undefined ? outcome.cause : (reason as { readonly error: unknown }).error
          })
        }
        break
      }
      applied++
    }
    yield* Effect.onError(uow.flush, () => Effect.sync(uow.discard))
    return { applied, failure }
  }).pipe(Effect.withSpan("Projection.applyEvents", { attributes: { projection: projection.name } }))

// -----------------------------------------------------------------------------
// tombstones
// -----------------------------------------------------------------------------

/**
 * Deletes the tombstones that `"guarded"` removes left in a projection's read models, those
 * at positions below `before` and at or below the projection's checkpoint. A tombstone keeps a
 * replayed older save from resurrecting a removed row: delete only those no replay can reach
 * any more. A crash replays from the checkpoint, so the checkpoint is always a safe bound; a
 * stale runner (fenced at its next checkpoint) may still replay events older than it for a
 * while: give `before` some margin behind the head (e.g. the position of an hour ago).
 *
 * Cost: reads each read model's whole partition (one `Query` page per 1 MB, tombstones
 * filtered by DynamoDB but billed), plus one conditional `DeleteItem` per tombstone deleted.
 *
 * @since 0.2.0
 * @category running
 */
export const cleanTombstones = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  options: { readonly before: number }
): Effect.Effect<{ readonly removed: number }, StorageError | Checkpoint.CorruptedCheckpointError, ReadModelStore> =>
  Effect.gen(function*() {
    const store = yield* ReadModelStore
    const conditional = store.storage?.conditional
    if (conditional === undefined) {
      return yield* Effect.die(new Error(`Projection.cleanTombstones: the read-model store "${store.table}" has no conditional primitives`))
    }
    const checkpoint = yield* Checkpoint.read(conditional, projection.name)
    const bound = Math.min(options.before - 1, checkpoint?.data.position ?? 0)
    let removed = 0
    for (const spec of Object.values(projection.readModels) as ReadonlyArray<ReadModelSpec<unknown>>) {
      let cursor: string | undefined = undefined
      do {
        const page: { readonly rows: ReadonlyArray<{ readonly id: string; readonly position: number }>; readonly lastEvaluatedId: string | undefined } =
          yield* conditional.queryTombstones(spec.name, cursor)
        for (const row of page.rows) {
          if (row.position <= bound && (yield* conditional.deleteTombstone(spec.name, row.id, row.position))) removed++
        }
        cursor = page.lastEvaluatedId
      } while (cursor !== undefined)
    }
    return { removed }
  }).pipe(Effect.withSpan("Projection.cleanTombstones", { attributes: { projection: projection.name } }))

// -----------------------------------------------------------------------------
// status
// -----------------------------------------------------------------------------

/**
 * A projection's checkpoint as stored, and how far behind the log it is.
 *
 * @since 0.2.0
 * @category models
 */
export interface Status {
  readonly projection: string
  /** The checkpoint (0 when the projection never ran). */
  readonly position: number
  readonly head: number
  readonly lag: number
  /** The runner holding the lease, if it has not expired (or been released). */
  readonly owner: Option.Option<string>
  readonly leaseExpiresAt: Option.Option<Date>
}

/**
 * The status of a projection by name: one strongly consistent read of its checkpoint and one
 * of the log's head. What `dynamo-es projection status` shows.
 *
 * @since 0.2.0
 * @category running
 */
export const status = (
  name: string
): Effect.Effect<Status, StorageError | Checkpoint.CorruptedCheckpointError, EventLog | ReadModelStore> =>
  Effect.gen(function*() {
    const store = yield* ReadModelStore
    const conditional = store.storage?.conditional
    if (conditional === undefined) {
      return yield* Effect.die(new Error(`Projection.status: the read-model store "${store.table}" has no conditional primitives`))
    }
    const checkpoint = yield* Checkpoint.read(conditional, name)
    const head = yield* (yield* EventLog).head
    const now = yield* Clock.currentTimeMillis
    const position = checkpoint?.data.position ?? 0
    const held = checkpoint !== undefined && checkpoint.data.expiresAt > now
    return {
      projection: name,
      position,
      head,
      lag: Math.max(0, head - position),
      owner: held ? Option.some(checkpoint.data.owner) : Option.none(),
      leaseExpiresAt: held ? Option.some(new Date(checkpoint.data.expiresAt)) : Option.none()
    }
  })

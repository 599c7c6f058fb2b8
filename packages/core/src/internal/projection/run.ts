/** The runner: claim, catch up and follow the log, batches, checkpoints, progress. */
import { type Cause, Clock, Duration, Effect, Schema, Stream } from "effect"
import { EventLog, type Filter, type LoggedEvent, type LogReadError } from "../../EventLog.js"
import { ReadModelStore } from "../../ReadModel.js"
import * as Checkpoint from "./checkpoint.js"
import {
  ProjectionDecodeError,
  ProjectionFencedError,
  ProjectionHandlerError,
  ProjectionTransactionTooLargeError,
  type RunError
} from "./errors.js"
import type { Progress, Projection, ReadModelSpec, Repositories, RunOptions } from "./model.js"
import { MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ROWS } from "./limits.js"
import { prefetchIds } from "./prefetch.js"
import { makeUnitOfWork } from "./unitOfWork.js"

/** How often a runner behind the head it knows reads the head again, for its progress. */
const HEAD_READ_INTERVAL_MILLIS = 1000


type Item = { readonly _tag: "Event"; readonly event: LoggedEvent } | { readonly _tag: "CaughtUp"; readonly position: number }

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

    const uow = makeUnitOfWork({ storage, conditional, mode, specs: projection.readModels }, options)
    const repositories = uow.repositories as Repositories<RM>

    const started = yield* Clock.currentTimeMillis
    let applied = 0
    let caughtUp = false
    /** The last position handled or passed over in this run. */
    let after = lease.position()
    let last: Progress | undefined

    // The head costs a read of the log: it is read again when the runner reaches the head it
    // knows, and otherwise at most once a second (a rebuild's batches do not each pay a read).
    let knownHead = 0
    let headReadAt = Number.NEGATIVE_INFINITY
    const progress = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const position = lease.position()
      if (position >= knownHead || now - headReadAt >= HEAD_READ_INTERVAL_MILLIS) {
        knownHead = yield* log.head
        headReadAt = now
      }
      const head = Math.max(knownHead, position)
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

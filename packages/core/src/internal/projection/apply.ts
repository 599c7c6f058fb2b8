/** Applying events without the log (DynamoDB Streams, Lambda). */
import { Effect, Schema } from "effect"
import type { StorageError } from "../../Errors.js"
import type { EventEnvelope } from "../../EventStore.js"
import { ReadModelStore } from "../../ReadModel.js"
import type { CorruptedReadModelError, ReadModelIdMismatchError } from "../readModel/errors.js"
import { ProjectionDecodeError, ProjectionHandlerError } from "./errors.js"
import type { ApplyResult, Projection, ReadModelSpec, Repositories } from "./model.js"
import { prefetchIds } from "./prefetch.js"
import { makeUnitOfWork } from "./unitOfWork.js"

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

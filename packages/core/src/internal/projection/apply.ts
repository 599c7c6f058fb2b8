/** Applying events without the log (DynamoDB Streams, Lambda). */
import { Effect, Option, Random, Schema } from "effect"
import { StorageError } from "../../Errors.js"
import type { EventEnvelope } from "../../EventStore.js"
import { type ConditionalStorage, ReadModelStore, type Storage } from "../../ReadModel.js"
import { limitsOf } from "../readModel/limits.js"
import type { CorruptedReadModelError, ReadModelIdMismatchError } from "../readModel/errors.js"
import { chunksOf } from "../readModel/unprocessed.js"
import { CHECKPOINTS, CorruptedCheckpointError } from "./checkpoint.js"
import { ProjectionDecodeError, ProjectionHandlerError, ProjectionTransactionTooLargeError } from "./errors.js"
import { MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ROWS } from "./limits.js"
import type { ApplyResult, Projection, ReadModelSpec, Repositories } from "./model.js"
import { prefetchIds } from "./prefetch.js"
import { makeUnitOfWork } from "./unitOfWork.js"
import { untilAllProcessed } from "./unprocessed.js"

type Failure = NonNullable<ApplyResult["failure"]>

/** Options of {@link applyEvents}. */
interface ApplyOptions {
  readonly mode?: "guarded" | "atLeastOnce" | "transactional" | undefined
  readonly writeConcurrency?: number | undefined
  readonly readConcurrency?: number | undefined
}

/**
 * Applies events in the given order to a projection's read models and flushes once, without
 * the log: for projections fed straight from the events table's DynamoDB Stream
 * (`DynamoProjection.handleStreamEvent`). Stops at the first event the handler fails on (or
 * whose payload of a handled type does not decode): the events before it are written,
 * nothing of it is, and the result names it, so that the caller reports it and everything
 * after it for a retry.
 *
 * Order: only per-stream order exists here. Modes:
 * - `"guarded"` (default): the guard of a row is the **stream version** of the last event
 *   applied to it (there is no global position), exact only for rows that events of one
 *   stream write (a row per stream).
 * - `"atLeastOnce"`: `BatchWriteItem`; a retried batch is applied again: idempotent
 *   handlers only.
 * - `"transactional"`: exactly once for any rows, also those fed by several streams. Each
 *   stream has a checkpoint row (repository `$projections:<projection>`, id: the stream,
 *   the last version applied); events at or below it are skipped (a retried or duplicated
 *   delivery), and the rows and the checkpoints of the batch are written in one
 *   `TransactWriteItems` with a compare-and-set of the projection's row
 *   `$projections/<projection>#streams`, so that two invocations at once cannot both write
 *   rows they both read: the loser reads again and re-applies (at most 20 times). A batch
 *   whose rows and stream checkpoints pass 99 items (or 4 MB) is committed in several
 *   transactions; one event that alone passes them is a
 *   {@link ProjectionTransactionTooLargeError} failure. Cost: 2 WCU per KB per item, one
 *   `GetItem` and one `BatchGetItem` per 100 streams per batch, and one row per stream.
 *
 * A storage failure (or a prefetched row that does not decode) fails the effect: nothing is
 * known applied (in `"transactional"` mode: nothing of the transaction that failed), retry
 * it all.
 *
 * @since 0.2.0
 * @category running
 */
export const applyEvents = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  events: ReadonlyArray<EventEnvelope>,
  options: ApplyOptions = {}
): Effect.Effect<
  ApplyResult,
  StorageError | CorruptedReadModelError | ReadModelIdMismatchError | CorruptedCheckpointError,
  ReadModelStore | R
> =>
  Effect.gen(function*() {
    const store = yield* ReadModelStore
    const storage = store.storage
    const conditional = storage?.conditional
    if (storage === undefined || conditional === undefined) {
      return yield* Effect.die(new Error(`Projection.applyEvents: the read-model store "${store.table}" has no conditional primitives`))
    }
    const mode = options.mode ?? "guarded"
    if (mode === "transactional" && conditional.transact === undefined) {
      return yield* Effect.die(new Error(`Projection.applyEvents: the read-model store "${store.table}" has no transactions (ConditionalStorage.transact)`))
    }
    const makeUow = () => makeUnitOfWork({ storage, conditional, mode, specs: projection.readModels }, options)
    const decode = Schema.decodeUnknownExit(projection.events)
    const handled = projection.types === undefined ? undefined : new Set(projection.types)

    /** Runs the handler for one event on `uow`: applied (or not the projection's business), or why it stopped. */
    const step = (uow: ReturnType<typeof makeUow>, event: EventEnvelope, index: number) =>
      Effect.gen(function*() {
        if (handled !== undefined && !handled.has(event.type)) return undefined
        const payload = decode(event.payload)
        if (payload._tag === "Failure") {
          if (handled === undefined) return undefined
          return {
            index,
            error: new ProjectionDecodeError({
              projection: projection.name,
              streamId: event.streamId,
              version: event.version,
              position: event.version,
              reason: String(payload.cause)
            })
          } satisfies Failure
        }
        uow.begin(event.version)
        const outcome = yield* Effect.exit(
          projection.handle({ ...event, payload: payload.value, position: event.version }, uow.repositories as Repositories<RM>)
        )
        if (outcome._tag === "Success") return undefined
        uow.rollback()
        const reason = outcome.cause.reasons.find((r) => r._tag === "Fail")
        return {
          index,
          error: new ProjectionHandlerError({
            projection: projection.name,
            streamId: event.streamId,
            version: event.version,
            position: event.version,
            cause: reason === undefined ? outcome.cause : (reason as { readonly error: unknown }).error
          })
        } satisfies Failure
      })

    const prefetch = (uow: ReturnType<typeof makeUow>, list: ReadonlyArray<EventEnvelope>) =>
      uow.prefetch(prefetchIds(projection, decode, list.map((e) => ({ ...e, position: e.version }))))

    if (mode === "transactional") {
      return yield* applyTransactional(storage, conditional, projection.name, events, makeUow, step, prefetch)
    }
    const uow = makeUow()
    yield* prefetch(uow, events)
    let failure: Failure | undefined
    let applied = 0
    for (const [index, event] of events.entries()) {
      failure = yield* step(uow, event, index)
      if (failure !== undefined) break
      applied++
    }
    yield* Effect.onError(uow.flush, () => Effect.sync(uow.discard))
    return { applied, failure }
  }).pipe(Effect.withSpan("Projection.applyEvents", { attributes: { projection: projection.name } }))

const Marker = Schema.fromJsonString(Schema.Struct({ version: Schema.Number }))
const decodeMarker = Schema.decodeUnknownOption(Marker)
const Lock = Schema.fromJsonString(Schema.Struct({ batches: Schema.Number }))
const decodeLock = Schema.decodeUnknownOption(Lock)

/** Attempts of a transactional batch that lost the compare-and-set to another invocation. */
const MAX_CONFLICTS = 20

type Uow = ReturnType<typeof makeUnitOfWork>

const applyTransactional = <X, R>(
  storage: Storage,
  conditional: ConditionalStorage,
  projection: string,
  events: ReadonlyArray<EventEnvelope>,
  makeUow: () => Uow,
  step: (uow: Uow, event: EventEnvelope, index: number) => Effect.Effect<Failure | undefined, X, R>,
  prefetch: (uow: Uow, events: ReadonlyArray<EventEnvelope>) => Effect.Effect<void, X>
) => {
  const markers = `${CHECKPOINTS}:${projection}`
  const lockId = `${projection}#streams`
  const limits = limitsOf(storage)

  const readLock = Effect.gen(function*() {
    let row = yield* conditional.readGuarded(CHECKPOINTS, lockId)
    if (row?.data === undefined) {
      // Created once; a concurrent creation is as good as this one.
      yield* conditional.compareAndSet(CHECKPOINTS, lockId, undefined, JSON.stringify({ batches: 0 }))
      row = yield* conditional.readGuarded(CHECKPOINTS, lockId)
    }
    const data = row?.data
    const lock = data === undefined ? Option.none() : decodeLock(data)
    if (data === undefined || Option.isNone(lock)) return yield* new CorruptedCheckpointError({ projection: lockId, data: data ?? "" })
    return { raw: data, batches: lock.value.batches }
  })

  /** The last version applied per stream (strongly consistent, 100 streams per request). */
  const readMarkers = (streams: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const done = new Map<string, number>()
      for (const chunk of chunksOf(streams, limits.maxBatchGet)) {
        let remaining = chunk
        yield* untilAllProcessed(
          "BatchGetItem",
          storage.table,
          Effect.gen(function*() {
            const r = yield* conditional.readGuardedBatch(markers, remaining)
            for (const row of r.rows) {
              if (row.data === undefined) continue
              const marker = decodeMarker(row.data)
              if (Option.isNone(marker)) return yield* new CorruptedCheckpointError({ projection: `${markers}/${row.id}`, data: row.data })
              done.set(row.id, marker.value.version)
            }
            remaining = r.unprocessed
            return remaining.length
          })
        )
      }
      return done
    })

  /** One attempt: `undefined` when another invocation's transaction landed first. */
  const attempt = Effect.gen(function*() {
    let lock = yield* readLock
    const done = yield* readMarkers([...new Set(events.map((e) => e.streamId))])
    const uow = makeUow()
    yield* prefetch(uow, events.filter((e) => e.version > (done.get(e.streamId) ?? 0)))
    /** Stream checkpoints of the transaction being built. */
    const pending = new Map<string, number>()
    const items = () => {
      const { bytes, writes } = uow.staged()
      return { bytes: bytes + pending.size * 64, count: writes.length + pending.size, writes }
    }
    const over = () => {
      const { bytes, count } = items()
      return count > MAX_TRANSACTION_ROWS || bytes > MAX_TRANSACTION_BYTES
    }
    const commit = (keep: boolean) =>
      Effect.gen(function*() {
        const { count, writes } = items()
        if (count === 0) return true
        const next = JSON.stringify({ batches: lock.batches + 1 })
        const checkpoints = [...pending].map(([id, version]) => ({
          name: markers,
          operation: { _tag: "Put" as const, id, data: JSON.stringify({ version }) }
        }))
        const landed = yield* Effect.onError(
          conditional.transact!([...writes, ...checkpoints], { name: CHECKPOINTS, id: lockId, expected: lock.raw, data: next }),
          () => Effect.sync(uow.discard)
        )
        if (!landed) return false
        lock = { raw: next, batches: lock.batches + 1 }
        uow.settle(keep)
        for (const [id, version] of pending) done.set(id, version)
        pending.clear()
        return true
      })
    let applied = 0
    let failure: Failure | undefined
    for (const [index, event] of events.entries()) {
      const before = pending.get(event.streamId)
      // Already applied: a retried or duplicated delivery.
      if (event.version <= (before ?? done.get(event.streamId) ?? 0)) {
        applied++
        continue
      }
      failure = yield* step(uow, event, index)
      if (failure !== undefined) break
      pending.set(event.streamId, event.version)
      if (over()) {
        // Commit what came before this event, then apply it again alone.
        uow.rollback()
        if (before === undefined) pending.delete(event.streamId)
        else pending.set(event.streamId, before)
        if (!(yield* commit(true))) return undefined
        failure = yield* step(uow, event, index)
        if (failure !== undefined) break
        pending.set(event.streamId, event.version)
        if (over()) {
          const { bytes, writes } = uow.staged()
          uow.rollback()
          pending.delete(event.streamId)
          failure = {
            index,
            error: new ProjectionTransactionTooLargeError({
              projection,
              streamId: event.streamId,
              version: event.version,
              position: event.version,
              rows: writes.length,
              bytes
            })
          }
          break
        }
      }
      applied++
    }
    if (!(yield* commit(false))) return undefined
    return { applied, failure }
  })

  return Effect.gen(function*() {
    for (let conflicts = 0; conflicts < MAX_CONFLICTS; conflicts++) {
      const result = yield* attempt
      if (result !== undefined) return result
      // Another invocation committed first: back off a little, then read everything again.
      yield* Effect.sleep(5 + (yield* Random.nextIntBetween(0, 20 * (conflicts + 1))))
    }
    return yield* new StorageError({
      operation: "TransactWriteItems",
      reason: "Throttled",
      resource: storage.table,
      detail: `projection ${projection}: ${MAX_CONFLICTS} transactions in a row lost to concurrent ones`
    })
  })
}

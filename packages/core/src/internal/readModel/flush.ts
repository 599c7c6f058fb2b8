/**
 * The flush of a unit of work: staged removes and saves in batches of `maxBatchWrite` (25 on
 * DynamoDB; never mixed),
 * `writeConcurrency` batches in flight, unprocessed items retried with backoff, saves
 * known to be stored dropped without a request, and exact accounting when it fails: what
 * was confirmed written is no longer pending, everything else is (`DeferredFlushFailed`).
 * Flushes of one unit of work run one at a time.
 */
import { Effect, Semaphore } from "effect"
import { StorageError } from "../../Errors.js"
import type { FlushResult, WriteOperation } from "./model.js"
import type { RepositoryContext } from "./context.js"
import { DeferredFlushFailed } from "./errors.js"
import { chunksOf, untilProcessed } from "./unprocessed.js"

/** A staged operation; `seq` tells a later staging of the same id apart. */
export type Staged<A> =
  | { readonly _tag: "Save"; readonly id: string; readonly model: A; readonly data: string; readonly seq: number }
  | { readonly _tag: "Remove"; readonly id: string; readonly seq: number }

/** The pending operations of a unit of work by id, in the order their ids were first staged. */
export type Pending<A> = Map<string, Staged<A>>

/**
 * The flush of the unit of work whose pending operations are `pending`: removes from it
 * what it writes (unless staged again meanwhile), leaves the rest.
 */
export const makeFlush = <A>(ctx: RepositoryContext<A>, pending: Pending<A>) =>
  Effect.map(Semaphore.make(1), (lock) => (context: Readonly<Record<string, unknown>>): Effect.Effect<FlushResult, DeferredFlushFailed> =>
    lock.withPermits(1)(Effect.suspend(() => flushOnce(ctx, pending, context))).pipe(
      Effect.withSpan("ReadModel.deferred.flush", { attributes: { repository: ctx.name } })
    ))

const flushOnce = <A>(
  ctx: RepositoryContext<A>,
  pending: Pending<A>,
  context: Readonly<Record<string, unknown>>
): Effect.Effect<FlushResult, DeferredFlushFailed> => {
  const { keyOf, memory, name, storage, table } = ctx
  const staged = [...pending.values()]
  let unchanged = 0
  let saved = 0
  let removed = 0
  let requests = 0
  let failure: { readonly operation: "save" | "remove"; readonly ids: ReadonlyArray<string>; readonly cause: StorageError } | undefined

  /** The op is written (or known stored): no longer pending, unless it was staged again meanwhile. */
  const settle = (op: Staged<A>) => {
    const current = pending.get(op.id)
    if (current !== undefined && current.seq === op.seq) pending.delete(op.id)
  }

  const removes: Array<Staged<A>> = []
  const saves: Array<Staged<A>> = []
  for (const op of staged) {
    if (op._tag === "Remove") removes.push(op)
    else if (memory.get(keyOf(op.id)) === op.data) {
      unchanged++
      settle(op)
    } else saves.push(op)
  }

  const runBatch = (operation: "save" | "remove", batch: ReadonlyArray<Staged<A>>) =>
    Effect.suspend(() => {
      if (failure !== undefined) return Effect.void
      const byId = new Map(batch.map((op) => [op.id, op]))
      const tokens = new Map(batch.map((op) => [op.id, memory.begin(keyOf(op.id), "write")]))
      let remaining: ReadonlyArray<Staged<A>> = batch
      const done = (op: Staged<A>) => {
        settle(op)
        const token = tokens.get(op.id)!
        tokens.delete(op.id)
        memory.end(token, op._tag === "Save" ? op.data : null)
        if (op._tag === "Save") saved++
        else removed++
      }
      return untilProcessed(
        ctx.retrySchedule,
        Effect.suspend(() => {
          requests++
          return storage.writeBatch(
            name,
            remaining.map((op): WriteOperation => (op._tag === "Save" ? { _tag: "Put", id: op.id, data: op.data } : { _tag: "Delete", id: op.id }))
          )
        }).pipe(
          Effect.map(({ unprocessed }) => {
            const left = new Set(unprocessed)
            for (const op of remaining) if (!left.has(op.id)) done(op)
            remaining = remaining.filter((op) => left.has(op.id) && byId.has(op.id))
            return remaining.length
          })
        )
      ).pipe(
        Effect.catch((error) =>
          Effect.sync(() => {
            const cause = error instanceof StorageError
              ? error
              : new StorageError({
                operation: "BatchWriteItem",
                reason: "Throttled",
                resource: table,
                detail: `${remaining.length} item(s) stayed unprocessed (UnprocessedItems) after every retry`
              })
            failure ??= { operation, ids: remaining.map((op) => op.id), cause }
          })
        ),
        // Whatever is not confirmed (failed, unprocessed or interrupted) stays pending and unknown.
        Effect.ensuring(Effect.sync(() => {
          for (const token of tokens.values()) memory.end(token, undefined)
          tokens.clear()
        }))
      )
    })

  const batches = [
    ...chunksOf(removes, ctx.limits.maxBatchWrite).map((batch) => ["remove", batch] as const),
    ...chunksOf(saves, ctx.limits.maxBatchWrite).map((batch) => ["save", batch] as const)
  ]
  return Effect.forEach(batches, ([operation, batch]) => runBatch(operation, batch), {
    concurrency: ctx.writeConcurrency,
    discard: true
  }).pipe(
    Effect.flatMap(() =>
      failure === undefined
        ? Effect.succeed<FlushResult>({ saved, removed, unchanged, requests })
        : Effect.fail(
          new DeferredFlushFailed({
            operation: failure.operation,
            ids: [...failure.ids],
            table,
            repository: name,
            model: ctx.modelName,
            context: { ...context },
            written: saved + removed,
            pending: pending.size,
            cause: failure.cause
          })
        )
    )
  )
}

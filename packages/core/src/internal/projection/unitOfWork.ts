/**
 * The unit of work of one projection batch: the repositories a handler gets (keyed
 * read-modify-write: find, get, save, remove), staged changes with the log position of the
 * event that made them, a savepoint per event (a failing event's changes are undone), and
 * the flush of the two write modes:
 *
 * - guarded: a conditional write per changed row, landing only when the stored position is
 *   lower, 25 to a request where the storage has `writeGuardedBatch` (the rows it leaves
 *   unsettled go one by one through `writeGuarded`); a row loaded with position `p` ignores
 *   saves and removes by events at `e <= p` (that event is already in the row);
 * - atLeastOnce: `BatchWriteItem`, 25 rows per request, unprocessed items retried.
 */
import { Effect, Option, type Schema } from "effect"
import { NotFoundError, type StorageError } from "../../Errors.js"
import type { ConditionalStorage, GuardedWrite, Storage, WriteOperation } from "../../ReadModel.js"
import { makeRowCodec, type RowCodec } from "../readModel/codec.js"
import { limitsOf, MAX_ID_BYTES } from "../readModel/limits.js"
import { chunksOf } from "../readModel/unprocessed.js"
import { validateId, validateText } from "../readModel/validation.js"
import { untilAllProcessed } from "./unprocessed.js"

export type WriteMode = "guarded" | "atLeastOnce" | "transactional"

/** What the unit of work knows of one row. */
interface Entry<A> {
  readonly model: Option.Option<A>
  /** The position of the last event applied to the row (stored or staged). */
  readonly position: number
  /** The staged write: the row's new JSON, or `null` for a remove. */
  readonly staged?: string | null | undefined
  /** Storage held the row (or its tombstone) when it was read: picks the batched guarded write's statement. */
  readonly stored?: boolean | undefined
}

export interface RepositorySpec {
  readonly name: string
  readonly schema: Schema.Codec<any, any>
  readonly idOf?: ((model: any) => string) | undefined
}

export interface UnitOfWorkStats {
  /** Rows written (guarded writes that landed, or batch items). */
  rowsWritten: number
  /** Guarded writes refused because the row already held a later event. */
  rowsRejected: number
  /** Saves and removes dropped because the row already held the event. */
  changesSkipped: number
  requests: number
}

export const makeUnitOfWork = (
  options: {
    readonly storage: Storage
    readonly conditional: ConditionalStorage | undefined
    readonly mode: WriteMode
    readonly specs: Readonly<Record<string, RepositorySpec>>
  },
  concurrency: {
    /** Write requests in flight during a flush (default 8). */
    readonly writeConcurrency?: number | undefined
    /** Prefetch requests in flight (default 4). */
    readonly readConcurrency?: number | undefined
  }
) => {
  const { conditional, mode, storage } = options
  const writeConcurrency = Math.max(1, concurrency.writeConcurrency ?? 8)
  const readConcurrency = Math.max(1, concurrency.readConcurrency ?? 4)
  const limits = limitsOf(storage)
  /** Per repository name: its rows. */
  const rows = new Map<string, Map<string, Entry<any>>>()
  /** Undo log since the last savepoint: (repository, id, entry before). */
  let undo: Array<readonly [string, string, Entry<any> | undefined]> = []
  let position = 0
  const stats: UnitOfWorkStats = { rowsWritten: 0, rowsRejected: 0, changesSkipped: 0, requests: 0 }

  const tableOf = (name: string) => {
    let t = rows.get(name)
    if (t === undefined) {
      t = new Map()
      rows.set(name, t)
    }
    return t
  }

  const makeRepository = <A>(spec: RepositorySpec) => {
    const name = spec.name
    const idOf = spec.idOf ?? ((model: A) => (model as { readonly id: string }).id)
    const codec: RowCodec<A> = makeRowCodec({ table: storage.table, name, schema: spec.schema, idOf, limits })
    const table = tableOf(name)

    /** The row as storage has it: its model and position (guarded: tombstones included). */
    const load = (id: string) =>
      Effect.gen(function*() {
        if (mode === "guarded") {
          const row = yield* conditional!.readGuarded(name, id)
          if (row === undefined) return { model: Option.none<A>(), position: 0, stored: false }
          if (row.data === undefined) return { model: Option.none<A>(), position: row.position, stored: true }
          return { model: Option.some(yield* codec.decodeRow({ id, data: row.data })), position: row.position, stored: true }
        }
        const row = yield* storage.get(name, id, true)
        return { model: row === undefined ? Option.none<A>() : Option.some(yield* codec.decodeRow(row)), position: 0 }
      })

    const entry = (id: string) =>
      Effect.suspend(() => {
        const known = table.get(id)
        if (known !== undefined) return Effect.succeed(known as Entry<A>)
        return Effect.map(load(id), (loaded): Entry<A> => {
          // Another fiber of the handler may have staged it meanwhile: the unit of work wins.
          const again = table.get(id)
          if (again !== undefined) return again as Entry<A>
          table.set(id, loaded)
          return loaded
        })
      })

    const stage = (id: string, model: Option.Option<A>, staged: string | null) =>
      // At least once: a blind write needs no read (nothing is guarded).
      Effect.map(mode === "guarded" ? entry(id) : Effect.succeed(table.get(id)), (current) => {
        // The event is already in the row (a replay, a duplicate, a stale runner): skip it.
        if (mode === "guarded" && current !== undefined && current.position >= position) {
          stats.changesSkipped++
          return
        }
        undo.push([name, id, current])
        table.set(id, { model, position, staged, stored: current?.stored })
      })

    /** Reads the rows of `ids` not known yet, 100 per request, `readConcurrency` in flight. */
    const prefetch = (ids: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        const missing = [...new Set(ids)].filter((id) => !table.has(id) && validateText("prefetch", "id", id, MAX_ID_BYTES) === undefined)
        return Effect.forEach(chunksOf(missing, limits.maxBatchGet), (chunk) => {
          let remaining: ReadonlyArray<string> = chunk
          return untilAllProcessed(
            "BatchGetItem",
            storage.table,
            Effect.gen(function*() {
              stats.requests++
              const found = new Map<string, { readonly data: string | undefined; readonly position: number }>()
              let unprocessed: ReadonlyArray<string>
              if (mode === "guarded") {
                const r = yield* conditional!.readGuardedBatch(name, remaining)
                for (const row of r.rows) found.set(row.id, row)
                unprocessed = r.unprocessed
              } else {
                const r = yield* storage.getBatch(name, remaining, true)
                for (const row of r.rows) found.set(row.id, { data: row.data, position: 0 })
                unprocessed = r.unprocessed
              }
              const left = new Set(unprocessed)
              for (const id of remaining) {
                if (left.has(id) || table.has(id)) continue
                const row = found.get(id)
                table.set(id, {
                  model: row?.data === undefined ? Option.none() : Option.some(yield* codec.decodeRow({ id, data: row.data })),
                  position: row?.position ?? 0,
                  stored: row !== undefined
                })
              }
              remaining = remaining.filter((id) => left.has(id))
              return remaining.length
            })
          )
        }, { concurrency: readConcurrency, discard: true })
      })

    const find = (idInput: string) =>
      Effect.flatMap(validateId("find", idInput), (id) => Effect.map(entry(id), (e) => e.model))

    return {
      name,
      prefetch,
      find,
      get: (id: string) =>
        Effect.flatMap(find(id), (found) =>
          Option.isSome(found) ? Effect.succeed(found.value) : Effect.fail(new NotFoundError({ resource: "readModel", id }))),
      save: (model: A) => Effect.flatMap(codec.prepare("save", model), ({ data, id }) => stage(id, Option.some(model), data)),
      remove: (idInput: string) => Effect.flatMap(validateId("remove", idInput), (id) => stage(id, Option.none(), null))
    }
  }

  const made = Object.fromEntries(
    Object.entries(options.specs).map(([key, spec]) => [key, makeRepository(spec)])
  )
  const repositories = Object.fromEntries(
    Object.entries(made).map(([key, { prefetch: _, ...repository }]) => [key, repository])
  )

  /** Reads at once the rows a batch will read: ids per repository key. */
  const prefetch = (ids: ReadonlyMap<string, ReadonlyArray<string>>) =>
    Effect.forEach(ids, ([key, list]) => made[key]?.prefetch(list) ?? Effect.void, { concurrency: "unbounded", discard: true })

  /** Starts the event at `at`: its changes can be undone until the next savepoint. */
  const begin = (at: number) => {
    position = at
    undo = []
  }

  /** Undoes the changes of the current event. */
  const rollback = () => {
    for (let i = undo.length - 1; i >= 0; i--) {
      const [name, id, before] = undo[i]!
      if (before === undefined) tableOf(name).delete(id)
      else tableOf(name).set(id, before)
    }
    undo = []
  }

  const stagedWrites = () =>
    [...rows.entries()].flatMap(([name, table]) =>
      [...table.entries()].flatMap(([id, e]) =>
        e.staged === undefined ? [] : [{ name, id, data: e.staged, position: e.position, stored: e.stored === true }]
      )
    )

  type Staged = ReturnType<typeof stagedWrites>[number]
  const guardedWrite = (w: Staged): GuardedWrite =>
    w.data === null ? { _tag: "Tombstone", id: w.id, position: w.position } : { _tag: "Put", id: w.id, data: w.data, position: w.position }

  /** One conditional write: landed, or refused because the row holds a later event. */
  const writeOne = (w: Staged) =>
    Effect.suspend(() => {
      stats.requests++
      return conditional!.writeGuarded(w.name, guardedWrite(w))
    }).pipe(
      Effect.map((landed) => {
        if (landed) stats.rowsWritten++
        else stats.rowsRejected++
      })
    )

  // With `writeGuardedBatch`, 25 rows a request (a guarded write per row costs the same
  // capacity either way); what a batch leaves unsettled (a row changed since it was read,
  // a replay onto rows that hold it, throttling) is settled row by row.
  const flushGuarded = Effect.suspend(() => {
    const writeBatch = conditional!.writeGuardedBatch
    if (writeBatch === undefined) return Effect.forEach(stagedWrites(), writeOne, { concurrency: writeConcurrency, discard: true })
    const byName = new Map<string, Array<Staged>>()
    for (const w of stagedWrites()) {
      const list = byName.get(w.name) ?? []
      list.push(w)
      byName.set(w.name, list)
    }
    const batches = [...byName.entries()].flatMap(([name, writes]) => chunksOf(writes, limits.maxBatchWrite).map((batch) => [name, batch] as const))
    return Effect.forEach(batches, ([name, batch]) =>
      Effect.suspend(() => {
        stats.requests++
        return writeBatch(name, batch.map((w) => ({ ...guardedWrite(w), stored: w.stored })))
      }).pipe(
        Effect.flatMap(({ unsettled }) => {
          const left = new Set(unsettled)
          const rest = batch.filter((w) => left.has(w.id))
          stats.rowsWritten += batch.length - rest.length
          return Effect.forEach(rest, writeOne, { discard: true })
        })
      ), { concurrency: writeConcurrency, discard: true })
  })

  const flushBatched = Effect.suspend(() => {
    const byName = new Map<string, Array<WriteOperation>>()
    for (const w of stagedWrites()) {
      const list = byName.get(w.name) ?? []
      list.push(w.data === null ? { _tag: "Delete", id: w.id } : { _tag: "Put", id: w.id, data: w.data })
      byName.set(w.name, list)
    }
    const batches = [...byName.entries()].flatMap(([name, ops]) => chunksOf(ops, limits.maxBatchWrite).map((batch) => [name, batch] as const))
    return Effect.forEach(batches, ([name, batch]) => {
      let remaining = batch
      return untilAllProcessed(
        "BatchWriteItem",
        storage.table,
        Effect.suspend(() => {
          stats.requests++
          return storage.writeBatch(name, remaining)
        }).pipe(Effect.map(({ unprocessed }) => {
          const left = new Set(unprocessed)
          stats.rowsWritten += remaining.length - left.size
          remaining = remaining.filter((op) => left.has(op.id))
          return remaining.length
        }))
      )
    }, { concurrency: writeConcurrency, discard: true })
  })

  /** The staged writes as plain operations, and their size (for a transaction's limits). */
  const staged = () => {
    const writes = stagedWrites().map((w) => ({
      name: w.name,
      operation: w.data === null ? { _tag: "Delete" as const, id: w.id } : { _tag: "Put" as const, id: w.id, data: w.data }
    }))
    const bytes = writes.reduce((sum, w) => sum + limits.rowSize(w.name, w.operation.id, w.operation._tag === "Put" ? w.operation.data : ""), 0)
    return { writes, bytes }
  }

  /**
   * After a transaction landed: forgets everything, or with `keep` (a batch cut in the
   * middle), keeps every row as now stored, so that the rest of the batch reads nothing again.
   */
  const settle = (keep: boolean) => {
    stats.rowsWritten += stagedWrites().length
    for (const table of rows.values()) {
      if (!keep) table.clear()
      else for (const [id, entry] of table) if (entry.staged !== undefined) table.set(id, { model: entry.model, position: entry.position })
    }
    undo = []
  }

  /** Writes every staged change, then forgets everything (the next batch reads again). */
  const flush: Effect.Effect<void, StorageError> = Effect.andThen(
    mode === "guarded" ? flushGuarded : flushBatched,
    Effect.sync(() => {
      for (const table of rows.values()) table.clear()
      undo = []
    })
  )

  return {
    repositories,
    prefetch,
    staged,
    settle,
    begin,
    rollback,
    flush,
    stats,
    /** Forgets everything without writing (after a failed flush, the next run reads again). */
    discard: () => {
      for (const table of rows.values()) table.clear()
      undo = []
    }
  }
}

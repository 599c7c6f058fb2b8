/**
 * The in-memory `ReadModel.Storage`, with DynamoDB's semantics (id order, 1 MB pages,
 * unprocessed items only when injected) and inspection for tests.
 */
import { Effect, Option, Stream } from "effect"
import { StorageError } from "../../Errors.js"
import type { MemoryFault, MemoryStorage, StorageOperation, StoredRow } from "../../ReadModel.js"
import { compareIds, rowSize } from "./limits.js"

const ONE_MB = 1024 * 1024

/**
 * Builds an in-memory {@link Storage}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryStorage = (table = "memory"): MemoryStorage => {
  const partitions = new Map<string, Map<string, string | undefined>>()
  const operations: Array<StorageOperation> = []
  let writes = 0
  let fault: ((operation: StorageOperation, name: string, ids: ReadonlyArray<string>) => MemoryFault | undefined) | undefined
  const partition = (name: string) => {
    let p = partitions.get(name)
    if (p === undefined) {
      p = new Map()
      partitions.set(name, p)
    }
    return p
  }
  const sortedIds = (name: string) => [...(partitions.get(name)?.keys() ?? [])].sort(compareIds)

  /** Records the request, applies a fault, and runs `apply` on the ids storage processes. */
  const request = <X>(
    operation: StorageOperation,
    name: string,
    ids: ReadonlyArray<string>,
    apply: (processed: ReadonlyArray<string>) => X
  ): Effect.Effect<{ readonly value: X; readonly unprocessed: ReadonlyArray<string> }, StorageError> =>
    // Yield first, as a real request would: concurrent requests then overlap, which the
    // skip-unchanged bookkeeping must survive just as it must on DynamoDB.
    Effect.andThen(Effect.yieldNow, () => {
      operations.push(operation)
      const f = fault?.(operation, name, ids)
      if (f?._tag === "Fail") {
        if (f.applied === true) apply(ids)
        return Effect.fail(f.error)
      }
      if (f?._tag === "Partial") {
        const processed = new Set(f.processed)
        const kept = ids.filter((id) => processed.has(id))
        return Effect.succeed({ value: apply(kept), unprocessed: ids.filter((id) => !processed.has(id)) })
      }
      return Effect.succeed({ value: apply(ids), unprocessed: [] })
    })

  const rowOf = (name: string, id: string): StoredRow | undefined => {
    const p = partitions.get(name)
    return p?.has(id) ? { id, data: p.get(id) } : undefined
  }

  return {
    table,
    get: (name, id) => request("GetItem", name, [id], () => rowOf(name, id)).pipe(Effect.map((r) => r.value)),
    getBatch: (name, ids) =>
      // DynamoDB returns the rows of a batch in no particular order: so does this (reversed).
      request("BatchGetItem", name, ids, (processed) => processed.flatMap((id) => rowOf(name, id) ?? []).reverse()).pipe(
        Effect.map((r) => ({ rows: r.value, unprocessed: r.unprocessed }))
      ),
    query: (name, { pageSize }) =>
      Stream.paginate({ after: undefined as string | undefined }, ({ after }) =>
        request("Query", name, [], () => {
          const ids = sortedIds(name).filter((id) => after === undefined || compareIds(id, after) > 0)
          const page: Array<StoredRow> = []
          let bytes = 0
          for (const id of ids) {
            if (pageSize !== undefined && page.length >= pageSize) break
            const row = rowOf(name, id)!
            bytes += rowSize(name, id, row.data ?? "")
            page.push(row)
            if (bytes >= ONE_MB) break
          }
          const more = page.length > 0 && page.length < ids.length
          return [page, more ? Option.some({ after: page[page.length - 1]!.id }) : Option.none()] as const
        }).pipe(Effect.map((r) => r.value))),
    put: (name, id, data) =>
      request("PutItem", name, [id], (processed) => {
        for (const pid of processed) {
          partition(name).set(pid, data)
          writes++
        }
      }).pipe(Effect.asVoid),
    delete: (name, id) =>
      request("DeleteItem", name, [id], (processed) => {
        for (const pid of processed) {
          partitions.get(name)?.delete(pid)
          writes++
        }
      }).pipe(Effect.asVoid),
    writeBatch: (name, ops) =>
      Effect.suspend(() => {
        const byId = new Map(ops.map((op) => [op.id, op]))
        if (byId.size !== ops.length) {
          return Effect.fail(
            new StorageError({ operation: "BatchWriteItem", reason: "Validation", resource: table, detail: "Provided list of item keys contains duplicates" })
          )
        }
        return request("BatchWriteItem", name, ops.map((op) => op.id), (processed) => {
          for (const id of processed) {
            const op = byId.get(id)!
            if (op._tag === "Put") partition(name).set(id, op.data)
            else partitions.get(name)?.delete(id)
            writes++
          }
        }).pipe(Effect.map((r) => ({ unprocessed: r.unprocessed })))
      }),
    operations,
    itemWrites: () => writes,
    rows: (name) => sortedIds(name).map((id) => rowOf(name, id)!),
    putRaw: (name, id, data) => {
      partition(name).set(id, data)
    },
    reset: () => partitions.clear(),
    setFault: (f) => {
      fault = f
    }
  }
}

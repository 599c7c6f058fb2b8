/**
 * The in-memory `ReadModel.Storage`, with DynamoDB's semantics: rows in id order (UTF-8
 * byte order), `Query` pages of at most 1 MB, batch rows returned in no particular order,
 * duplicate ids in a batch refused. It never leaves items unprocessed and never fails:
 * inject faults with a wrapper (`@dynamo-es/core/testing`, `ReadModelStorageTest.instrument`).
 */
import { Effect } from "effect"
import { StorageError } from "../../Errors.js"
import type { MemoryStorage, StoredRow } from "../../ReadModel.js"
import { compareIds, rowSize } from "./limits.js"

const ONE_MB = 1024 * 1024

/**
 * Builds an in-memory {@link MemoryStorage}: DynamoDB's semantics, no faults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryStorage = (table = "memory"): MemoryStorage => {
  const partitions = new Map<string, Map<string, string | undefined>>()
  const partition = (name: string) => {
    let p = partitions.get(name)
    if (p === undefined) {
      p = new Map()
      partitions.set(name, p)
    }
    return p
  }
  const sortedIds = (name: string) => [...(partitions.get(name)?.keys() ?? [])].sort(compareIds)
  const rowOf = (name: string, id: string): StoredRow | undefined => {
    const p = partitions.get(name)
    return p?.has(id) ? { id, data: p.get(id) } : undefined
  }
  // Yield first, as a real request would: concurrent requests then overlap, which the
  // skip-unchanged bookkeeping must survive just as it must on DynamoDB.
  const request = <X>(apply: () => X): Effect.Effect<X> => Effect.andThen(Effect.yieldNow, Effect.sync(apply))

  return {
    table,
    get: (name, id) => request(() => rowOf(name, id)),
    getBatch: (name, ids) =>
      // DynamoDB returns the rows of a batch in no particular order: so does this (reversed).
      request(() => ({ rows: ids.flatMap((id) => rowOf(name, id) ?? []).reverse(), unprocessed: [] })),
    queryPage: (name, { exclusiveStartId, limit }) =>
      request(() => {
        const ids = sortedIds(name).filter((id) => exclusiveStartId === undefined || compareIds(id, exclusiveStartId) > 0)
        const rows: Array<StoredRow> = []
        let bytes = 0
        for (const id of ids) {
          if (limit !== undefined && rows.length >= limit) break
          const row = rowOf(name, id)!
          bytes += rowSize(name, id, row.data ?? "")
          rows.push(row)
          if (bytes >= ONE_MB) break
        }
        const more = rows.length > 0 && rows.length < ids.length
        return { rows, lastEvaluatedId: more ? rows[rows.length - 1]!.id : undefined }
      }),
    put: (name, id, data) =>
      request(() => {
        partition(name).set(id, data)
      }),
    delete: (name, id) =>
      request(() => {
        partitions.get(name)?.delete(id)
      }),
    writeBatch: (name, operations) =>
      Effect.suspend(() => {
        if (new Set(operations.map((op) => op.id)).size !== operations.length) {
          return Effect.fail(
            new StorageError({ operation: "BatchWriteItem", reason: "Validation", resource: table, detail: "Provided list of item keys contains duplicates" })
          )
        }
        return request(() => {
          for (const op of operations) {
            if (op._tag === "Put") partition(name).set(op.id, op.data)
            else partitions.get(name)?.delete(op.id)
          }
          return { unprocessed: [] }
        })
      }),
    rows: (name) => Effect.sync(() => sortedIds(name).map((id) => rowOf(name, id)!))
  }
}

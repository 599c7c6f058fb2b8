/**
 * The in-memory `ReadModel.Storage`, with DynamoDB's semantics: rows in id order (UTF-8
 * byte order), `Query` pages of at most 1 MB, batch rows returned in no particular order,
 * duplicate ids in a batch refused. It never leaves items unprocessed and never fails:
 * inject faults with a wrapper (`@dynamo-es/core/testing`, `ReadModelStorageTest.instrument`).
 */
import { Effect } from "effect"
import { StorageError } from "../../Errors.js"
import type { MemoryStorage, StoredRow } from "./model.js"
import { compareIds, defaultStorageLimits, rowSize } from "./limits.js"

const ONE_MB = 1024 * 1024

/** A stored row: `Data` (absent: `undefined`), `Pos` when written by a guarded write, `Del` for a tombstone. */
interface Cell {
  readonly data: string | undefined
  readonly position?: number | undefined
  readonly tombstone?: boolean | undefined
}

/**
 * Builds an in-memory {@link MemoryStorage}: DynamoDB's semantics, no faults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryStorage = (table = "memory"): MemoryStorage => {
  const partitions = new Map<string, Map<string, Cell>>()
  const partition = (name: string) => {
    let p = partitions.get(name)
    if (p === undefined) {
      p = new Map()
      partitions.set(name, p)
    }
    return p
  }
  // Tombstones are invisible to every primitive but the guarded ones.
  const sortedIds = (name: string) =>
    [...(partitions.get(name)?.entries() ?? [])].flatMap(([id, cell]) => (cell.tombstone === true ? [] : [id])).sort(compareIds)
  const rowOf = (name: string, id: string): StoredRow | undefined => {
    const cell = partitions.get(name)?.get(id)
    return cell === undefined || cell.tombstone === true ? undefined : { id, data: cell.data }
  }
  // Yield first, as a real request would: concurrent requests then overlap, which the
  // skip-unchanged bookkeeping must survive just as it must on DynamoDB.
  const request = <X>(apply: () => X): Effect.Effect<X> => Effect.andThen(Effect.yieldNow, Effect.sync(apply))

  return {
    table,
    // It mimics DynamoDB: DynamoDB's row size formula and limits.
    limits: defaultStorageLimits,
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
        partition(name).set(id, { data })
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
            if (op._tag === "Put") partition(name).set(op.id, { data: op.data })
            else partitions.get(name)?.delete(op.id)
          }
          return { unprocessed: [] }
        })
      }),
    conditional: {
      readGuarded: (name, id) =>
        request(() => {
          const cell = partitions.get(name)?.get(id)
          return cell === undefined ? undefined : { data: cell.tombstone === true ? undefined : cell.data, position: cell.position ?? 0 }
        }),
      readGuardedBatch: (name, ids) =>
        request(() => ({
          rows: ids.flatMap((id) => {
            const cell = partitions.get(name)?.get(id)
            return cell === undefined ? [] : [{ id, data: cell.tombstone === true ? undefined : cell.data, position: cell.position ?? 0 }]
          }).reverse(),
          unprocessed: []
        })),
      writeGuarded: (name, write) =>
        request(() => {
          const cell = partitions.get(name)?.get(write.id)
          if (cell !== undefined && (cell.position ?? 0) >= write.position) return false
          partition(name).set(
            write.id,
            write._tag === "Put"
              ? { data: write.data, position: write.position }
              : { data: undefined, position: write.position, tombstone: true }
          )
          return true
        }),
      writeGuardedBatch: (name, writes) =>
        request(() => ({
          unsettled: writes.flatMap((write) => {
            const cell = partitions.get(name)?.get(write.id)
            // What DynamoDB's INSERT / UPDATE do: the hint decides which rows can land.
            if (write.stored ? cell === undefined || (cell.position ?? 0) >= write.position : cell !== undefined) return [write.id]
            partition(name).set(
              write.id,
              write._tag === "Put"
                ? { data: write.data, position: write.position }
                : { data: undefined, position: write.position, tombstone: true }
            )
            return []
          })
        })),
      compareAndSet: (name, id, expected, data) =>
        request(() => {
          const cell = partitions.get(name)?.get(id)
          const holds = expected === undefined ? cell === undefined : cell !== undefined && cell.tombstone !== true && cell.data === expected
          if (!holds) return false
          partition(name).set(id, { data })
          return true
        }),
      queryTombstones: (name, exclusiveStartId) =>
        request(() => ({
          rows: [...(partitions.get(name)?.entries() ?? [])]
            .filter(([id, cell]) => cell.tombstone === true && (exclusiveStartId === undefined || compareIds(id, exclusiveStartId) > 0))
            .sort(([a], [b]) => compareIds(a, b))
            .map(([id, cell]) => ({ id, position: cell.position ?? 0 })),
          lastEvaluatedId: undefined
        })),
      deleteTombstone: (name, id, position) =>
        request(() => {
          const cell = partitions.get(name)?.get(id)
          if (cell?.tombstone !== true || cell.position !== position) return false
          partitions.get(name)!.delete(id)
          return true
        }),
      transact: (writes, check) =>
        request(() => {
          const cell = partitions.get(check.name)?.get(check.id)
          if (cell === undefined || cell.tombstone === true || cell.data !== check.expected) return false
          for (const { name, operation } of writes) {
            if (operation._tag === "Put") partition(name).set(operation.id, { data: operation.data })
            else partitions.get(name)?.delete(operation.id)
          }
          partition(check.name).set(check.id, { data: check.data })
          return true
        })
    },
    rows: (name) => Effect.sync(() => sortedIds(name).map((id) => rowOf(name, id)!))
  }
}

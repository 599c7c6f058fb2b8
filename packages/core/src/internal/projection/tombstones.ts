/** Deleting the tombstones of guarded removes once no replay can reach them. */
import { Effect } from "effect"
import type { StorageError } from "../../Errors.js"
import { ReadModelStore } from "../../ReadModel.js"
import * as Checkpoint from "./checkpoint.js"
import type { CorruptedCheckpointError } from "./checkpoint.js"
import type { Projection, ReadModelSpec } from "./model.js"

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
): Effect.Effect<{ readonly removed: number }, StorageError | CorruptedCheckpointError, ReadModelStore> =>
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

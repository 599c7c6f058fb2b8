/**
 * Rebuilds without downtime: project into a new version of the read models while the active
 * version keeps serving, switch readers over, then drop the old version.
 */
import { Effect } from "effect"
import { InvalidInputError, type StorageError } from "../../Errors.js"
import { EventLog } from "../../EventLog.js"
import { ReadModelStore, type WriteOperation } from "../../ReadModel.js"
import { limitsOf } from "../readModel/limits.js"
import { chunksOf } from "../readModel/unprocessed.js"
import { CHECKPOINTS, type CorruptedCheckpointError } from "./checkpoint.js"
import { ProjectionVersionError, type RunError } from "./errors.js"
import type { Projection, ReadModelSpec, RebuildOptions, RebuildResult } from "./model.js"
import { run } from "./run.js"
import { untilAllProcessed } from "./unprocessed.js"
import { readActive, switchActive, versioned, versionedName } from "./versions.js"

/** The store's storage and its conditional primitives; dies without them (a misconfiguration). */
export const conditionalOf = (operation: string) =>
  Effect.gen(function*() {
    const store = yield* ReadModelStore
    if (store.storage?.conditional === undefined) {
      return yield* Effect.die(new Error(`${operation}: the read-model store "${store.table}" has no conditional primitives (ReadModel.Storage.conditional)`))
    }
    return { storage: store.storage, conditional: store.storage.conditional }
  })

/**
 * The version of a projection that readers use now (one strongly consistent `GetItem` of
 * its active-version row; 1 when it has none).
 *
 * @since 0.2.0
 * @category versions
 */
export const activeVersion = (
  name: string
): Effect.Effect<number, StorageError | CorruptedCheckpointError, ReadModelStore> =>
  Effect.flatMap(conditionalOf("Projection.activeVersion"), ({ conditional }) =>
    Effect.map(readActive(conditional, name), (active) => active.version))

/**
 * Rebuilds a projection into a new version of its read models, without downtime:
 *
 * 1. runs the projection at `version` (every name suffixed `@version`: its own checkpoint,
 *    its own repositories) from the start of the log until it has caught up, with `run`'s
 *    progress, and once more while more than a batch (`batchSize`) was appended meanwhile
 *    (at most 3 passes); a crash anywhere resumes from that checkpoint when `rebuild` is
 *    called again with the same version (the default version is the same while the switch
 *    has not happened);
 * 2. switches readers over: a compare-and-set of the projection's active-version row
 *    (`$projections`, id `<name>#active`). {@link readers} see the new version once their
 *    cache expires; `runActive` runners stop the old version and continue the new one live.
 *
 * The previous version stays stored: `drop` it once no reader or runner can use it any more
 * (after the readers' `cacheTtl` and the runners' `checkInterval`).
 *
 * Fails with {@link ProjectionVersionError} when `version` is older than the active one, or
 * when a newer version became active while it ran (nothing is switched then).
 *
 * @since 0.2.0
 * @category versions
 */
export const rebuild = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  options: RebuildOptions = {}
): Effect.Effect<RebuildResult, RunError | ProjectionVersionError, EventLog | ReadModelStore | R> =>
  Effect.gen(function*() {
    const { conditional } = yield* conditionalOf("Projection.rebuild")
    const before = yield* readActive(conditional, projection.name)
    const version = options.version ?? before.version + 1
    if (!Number.isSafeInteger(version) || version < 1) {
      return yield* new InvalidInputError({ operation: "Projection.rebuild", field: "options.version", reason: "must be an integer >= 1" })
    }
    if (version < before.version) {
      return yield* new ProjectionVersionError({
        projection: projection.name,
        version,
        active: before.version,
        reason: "is older than the active version: rebuild into a newer one"
      })
    }
    // Catch up, then again while what was appended meanwhile is more than a batch (at most 3
    // passes): the switch-over then leaves the live runner little to do.
    const target = versioned(projection, version)
    const maxLag = Math.max(1, options.batchSize ?? 500)
    const log = yield* EventLog
    let progress = yield* run(target, { ...options, until: "caughtUp" })
    let applied = progress.eventsApplied
    for (let pass = 1; pass < 3 && (yield* log.head) - progress.position > maxLag; pass++) {
      progress = yield* run(target, { ...options, until: "caughtUp" })
      applied += progress.eventsApplied
    }
    progress = { ...progress, eventsApplied: applied }
    const current = yield* readActive(conditional, projection.name)
    if (current.version !== version) {
      const switched = current.version < version && (yield* switchActive(conditional, projection.name, current, version))
      if (!switched) {
        const now = yield* readActive(conditional, projection.name)
        if (now.version !== version) {
          return yield* new ProjectionVersionError({
            projection: projection.name,
            version,
            active: now.version,
            reason: "a newer version became active while this one was rebuilt: nothing switched"
          })
        }
      }
    }
    return { projection: projection.name, version, previous: before.version, progress }
  }).pipe(Effect.withSpan("Projection.rebuild", { attributes: { projection: projection.name } }))

/**
 * Deletes a version of a projection that is not the active one: every row of its read
 * models (tombstones included) and its checkpoint. A runner still running that version is
 * fenced at its next checkpoint (its checkpoint row is gone), but may write a batch before
 * it notices: drop a version once every `runActive` runner has moved on (its
 * `checkInterval`) and every reader's cache has expired (`cacheTtl`).
 *
 * Cost: each read model's partition read once (`Query`, 1 MB pages) and deleted in
 * `BatchWriteItem`s of 25; tombstones by one `Query` per 1 MB and one `DeleteItem` each.
 *
 * @since 0.2.0
 * @category versions
 */
export const drop = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  options: { readonly version: number }
): Effect.Effect<{ readonly rowsDeleted: number }, StorageError | CorruptedCheckpointError | ProjectionVersionError, ReadModelStore> =>
  Effect.gen(function*() {
    const { conditional, storage } = yield* conditionalOf("Projection.drop")
    const active = yield* readActive(conditional, projection.name)
    if (options.version === active.version) {
      return yield* new ProjectionVersionError({
        projection: projection.name,
        version: options.version,
        active: active.version,
        reason: "is the active version: readers use it"
      })
    }
    const limits = limitsOf(storage)
    let rowsDeleted = 0
    for (const spec of Object.values(projection.readModels) as ReadonlyArray<ReadModelSpec<unknown>>) {
      const name = versionedName(spec.name, options.version)
      let cursor: string | undefined = undefined
      do {
        const page: { readonly rows: ReadonlyArray<{ readonly id: string }>; readonly lastEvaluatedId: string | undefined } =
          yield* storage.queryPage(name, { consistentRead: true, limit: undefined, exclusiveStartId: cursor })
        yield* Effect.forEach(chunksOf(page.rows, limits.maxBatchWrite), (chunk) => {
          let remaining: ReadonlyArray<WriteOperation> = chunk.map((row) => ({ _tag: "Delete", id: row.id }))
          return untilAllProcessed(
            "BatchWriteItem",
            storage.table,
            Effect.map(Effect.suspend(() => storage.writeBatch(name, remaining)), ({ unprocessed }) => {
              const left = new Set(unprocessed)
              rowsDeleted += remaining.length - left.size
              remaining = remaining.filter((op) => left.has(op.id))
              return remaining.length
            })
          )
        }, { discard: true })
        cursor = page.lastEvaluatedId
      } while (cursor !== undefined)
      do {
        const page: { readonly rows: ReadonlyArray<{ readonly id: string; readonly position: number }>; readonly lastEvaluatedId: string | undefined } =
          yield* conditional.queryTombstones(name, cursor)
        for (const row of page.rows) if (yield* conditional.deleteTombstone(name, row.id, row.position)) rowsDeleted++
        cursor = page.lastEvaluatedId
      } while (cursor !== undefined)
    }
    yield* storage.delete(CHECKPOINTS, versionedName(projection.name, options.version))
    return { rowsDeleted }
  }).pipe(Effect.withSpan("Projection.drop", { attributes: { projection: projection.name } }))

/**
 * Versions of a projection and the row that says which one readers use.
 *
 * Version 1 is the projection as defined (its own names); version `n > 1` suffixes every
 * name with `@n`: the checkpoint `balances@2`, the repositories `balances-rows@2`. A rebuild
 * projects into a new version with its own checkpoint, so it resumes after a crash like any
 * run, while the active version keeps serving.
 *
 * The active version is one more row under `$projections`, id `<name>#active`, data
 * `{"version":n}`; no row means version 1. It is moved with a compare-and-set.
 */
import { Effect, Schema } from "effect"
import type { StorageError } from "../../Errors.js"
import type { ConditionalStorage } from "../../ReadModel.js"
import { CHECKPOINTS, CorruptedCheckpointError } from "./checkpoint.js"
import type { Projection, ReadModelSpec } from "./model.js"

/** The id of a projection's active-version row under `$projections`. */
export const activeId = (name: string): string => `${name}#active`

/** A name at a version: itself at version 1, `name@version` after. */
export const versionedName = (name: string, version: number): string => version === 1 ? name : `${name}@${version}`

/** A projection at a version: the same handler, every name (checkpoint, repositories) suffixed. */
export const versioned = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  version: number
): Projection<E, RM, Err, R> =>
  version === 1 ? projection : {
    ...projection,
    name: versionedName(projection.name, version),
    readModels: Object.fromEntries(
      Object.entries(projection.readModels).map(([key, spec]) => [key, { ...spec, name: versionedName(spec.name, version) }])
    ) as RM
  }

const ActiveData = Schema.Struct({ version: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)) })
const decodeActive = Schema.decodeUnknownOption(Schema.fromJsonString(ActiveData))

/** The active-version row as stored: its raw JSON (for compare-and-set) and version (1 when absent). */
export interface Active {
  readonly raw: string | undefined
  readonly version: number
}

/** Reads the active version (one strongly consistent `GetItem`); a row that does not decode is a typed error. */
export const readActive = (
  storage: ConditionalStorage,
  projection: string
): Effect.Effect<Active, StorageError | CorruptedCheckpointError> =>
  Effect.flatMap(storage.readGuarded(CHECKPOINTS, activeId(projection)), (row): Effect.Effect<Active, CorruptedCheckpointError> => {
    if (row?.data === undefined) return Effect.succeed({ raw: undefined, version: 1 })
    const data = decodeActive(row.data)
    return data._tag === "Some"
      ? Effect.succeed({ raw: row.data, version: data.value.version })
      : Effect.fail(new CorruptedCheckpointError({ projection: activeId(projection), data: row.data }))
  })

/**
 * Moves the active version from `from` (as read) to `version`: `true` when it landed (a
 * failed condition is read back, so a lost response of a landed write counts as landed).
 */
export const switchActive = (
  storage: ConditionalStorage,
  projection: string,
  from: Active,
  version: number
): Effect.Effect<boolean, StorageError | CorruptedCheckpointError> => {
  const raw = JSON.stringify({ version })
  return Effect.flatMap(storage.compareAndSet(CHECKPOINTS, activeId(projection), from.raw, raw), (landed) =>
    landed ? Effect.succeed(true) : Effect.map(readActive(storage, projection), (now) => now.raw === raw))
}

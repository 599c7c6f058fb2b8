/** Reading a projection's read models at its active version. */
import { Cache, type Duration, Effect, Exit, Stream } from "effect"
import { ReadModelStore, type Repository } from "../../ReadModel.js"
import type { Projection, Readers, ReadModelSpec } from "./model.js"
import { conditionalOf } from "./rebuild.js"
import { readActive, versionedName } from "./versions.js"

/**
 * Read-only repositories of a projection's read models that follow its **active version**:
 * each call resolves the version through the projection's active-version row (one
 * strongly consistent `GetItem`, cached for `cacheTtl`, default 5 seconds; a failed lookup
 * is not cached), then reads that version's repository. Until a `rebuild` switches over,
 * readers read the old version; at most `cacheTtl` after it, the new one.
 *
 * A projection that is never rebuilt is at version 1, whose names are the projection's
 * own: readers then read what `ReadModel.repository` reads, plus the cached lookup.
 *
 * @since 0.2.0
 * @category versions
 */
export const readers = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  options: { readonly cacheTtl?: Duration.Input | undefined } = {}
): Effect.Effect<Readers<RM>, never, ReadModelStore> =>
  Effect.gen(function*() {
    const store = yield* ReadModelStore
    const { conditional } = yield* conditionalOf("Projection.readers")
    const ttl = options.cacheTtl ?? "5 seconds"
    const active = yield* Cache.makeWith(
      (_: "active") => Effect.map(readActive(conditional, projection.name), (a) => a.version),
      { capacity: 1, timeToLive: (exit) => (Exit.isSuccess(exit) ? ttl : 0) }
    )
    const version = Cache.get(active, "active")
    const entries = Object.entries(projection.readModels).map(([key, spec]: [string, ReadModelSpec<any>]) => {
      const byVersion = new Map<number, Repository<any>>()
      const repository = Effect.flatMap(version, (v) => {
        const known = byVersion.get(v)
        if (known !== undefined) return Effect.succeed(known)
        const options = spec.idOf === undefined ? {} : { idOf: spec.idOf }
        return Effect.tap(
          store.create(versionedName(spec.name, v), spec.schema, options as { readonly idOf: (model: any) => string }),
          (created) => Effect.sync(() => byVersion.set(v, created))
        )
      })
      return [key, {
        version,
        find: (id: string) => Effect.flatMap(repository, (r) => r.find(id)),
        get: (id: string) => Effect.flatMap(repository, (r) => r.get(id)),
        findAll: () => Stream.unwrap(Effect.map(repository, (r) => r.findAll())),
        findBy: (criteria: any) => Effect.flatMap(repository, (r) => r.findBy(criteria))
      }] as const
    })
    return Object.fromEntries(entries) as Readers<RM>
  })

/** Running the active version of a projection, following rebuilds' switch-overs. */
import { type Duration, Effect } from "effect"
import type { StorageError } from "../../Errors.js"
import type { EventLog } from "../../EventLog.js"
import type { ReadModelStore } from "../../ReadModel.js"
import type { RunError } from "./errors.js"
import type { Progress, Projection, ReadModelSpec, RunOptions } from "./model.js"
import { conditionalOf } from "./rebuild.js"
import { run } from "./run.js"
import { readActive, versioned } from "./versions.js"

/**
 * `run` of the projection's **active version**, following switch-overs: it looks at the
 * active-version row every `checkInterval` (default 5 seconds; one `GetItem` each), and when
 * a `rebuild` has switched to another version, it stops the old version's run (releasing
 * its lease) and runs the new one live from that version's checkpoint. This is the runner to
 * deploy for a projection that is ever rebuilt; `run` runs one fixed version.
 *
 * Ends like `run`: with `until: "caughtUp"` once the active version has caught up, else with
 * an error or when interrupted.
 *
 * @since 0.2.0
 * @category versions
 */
export const runActive = <E, RM extends Record<string, ReadModelSpec<any>>, Err, R>(
  projection: Projection<E, RM, Err, R>,
  options: RunOptions & { readonly checkInterval?: Duration.Input | undefined } = {}
): Effect.Effect<Progress, RunError | StorageError, EventLog | ReadModelStore | R> =>
  Effect.gen(function*() {
    const { conditional } = yield* conditionalOf("Projection.runActive")
    const checkInterval = options.checkInterval ?? "5 seconds"
    while (true) {
      const active = yield* readActive(conditional, projection.name)
      const switched = Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(checkInterval)
          if ((yield* readActive(conditional, projection.name)).version !== active.version) return undefined
        }
      })
      const outcome = yield* Effect.raceFirst(run(versioned(projection, active.version), options), switched)
      if (outcome !== undefined) return outcome
    }
  }).pipe(Effect.withSpan("Projection.runActive", { attributes: { projection: projection.name } }))

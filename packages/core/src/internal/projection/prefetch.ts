/** What a batch reads at once: the rows a projection's `prefetch` names. */
import type { Exit } from "effect"
import type { LoggedEvent } from "../../EventLog.js"
import type { Projection } from "./model.js"

/** The ids `prefetch` names for these events, by read-model key. */
export const prefetchIds = <E>(
  projection: Projection<E, any, any, any>,
  decode: (u: unknown) => Exit.Exit<E, unknown>,
  events: ReadonlyArray<LoggedEvent>
): Map<string, Array<string>> => {
  const ids = new Map<string, Array<string>>()
  if (projection.prefetch === undefined) return ids
  for (const event of events) {
    const payload = decode(event.payload)
    if (payload._tag === "Failure") continue
    const named = projection.prefetch({ ...event, payload: payload.value }) as Record<string, string | ReadonlyArray<string> | undefined>
    for (const [key, value] of Object.entries(named)) {
      if (value === undefined) continue
      const list = ids.get(key) ?? []
      if (typeof value === "string") list.push(value)
      else list.push(...value)
      ids.set(key, list)
    }
  }
  return ids
}

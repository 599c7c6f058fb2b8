/** Batch requests of projections retried until storage processed every key or item. */
import { Effect } from "effect"
import { StorageError } from "../../Errors.js"
import { defaultUnprocessedRetrySchedule, untilProcessed } from "../readModel/unprocessed.js"

/**
 * Runs `attempt` (which returns how many keys or items storage left unprocessed, and keeps
 * them for its next run) until none is left, with the default backoff; then a `StorageError`
 * (`Throttled`) naming how many stayed unprocessed.
 */
export const untilAllProcessed = <E>(
  operation: "BatchGetItem" | "BatchWriteItem",
  table: string,
  attempt: Effect.Effect<number, E>
): Effect.Effect<void, E | StorageError> =>
  Effect.suspend(() => {
    let left = 0
    return untilProcessed(defaultUnprocessedRetrySchedule, Effect.tap(attempt, (n) => Effect.sync(() => void (left = n)))).pipe(
      Effect.catchTag("Unprocessed", () =>
        Effect.fail(
          new StorageError({
            operation,
            reason: "Throttled",
            resource: table,
            detail: `${left} ${operation === "BatchGetItem" ? "key(s)" : "item(s)"} stayed unprocessed after every retry`
          })
        ))
    )
  })

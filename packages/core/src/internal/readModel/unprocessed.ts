/**
 * The one retry of unprocessed batch items (DynamoDB `UnprocessedKeys`/`UnprocessedItems`):
 * the default backoff, the loop that runs a batch until storage processed all of it, and
 * the slicing of work into batches. Public through `ReadModel` so that drivers (the
 * DynamoDB snapshot storage's part writes) use the same loop as core's read models.
 */
import { Data, Effect, Predicate, Schedule } from "effect"

/**
 * The default backoff for unprocessed batch items: exponential from 50 ms, jittered, at
 * most 8 retries (about 13 s in the worst case, up to about 15 s with jitter).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultUnprocessedRetrySchedule: Schedule.Schedule<unknown> = Schedule.exponential("50 millis").pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 8 })
)

/**
 * A batch still has unprocessed items: drives `Effect.retry` with the backoff schedule,
 * and is the failure of {@link untilProcessed} when the schedule runs out.
 *
 * @since 0.2.0
 * @category errors
 */
export class Unprocessed extends Data.TaggedError("Unprocessed")<{}> {}

/**
 * Runs `attempt` (which returns how many items are still unprocessed) until nothing is
 * left, with `schedule` in between. Fails with {@link Unprocessed} when the schedule runs
 * out. `attempt` is re-run as it is: keep what is still pending in a variable it reads.
 *
 * @since 0.2.0
 * @category combinators
 */
export const untilProcessed = <E>(
  schedule: Schedule.Schedule<unknown>,
  attempt: Effect.Effect<number, E>
): Effect.Effect<void, E | Unprocessed> =>
  attempt.pipe(
    Effect.flatMap((left) => (left === 0 ? Effect.void : Effect.fail(new Unprocessed()))),
    Effect.retry({ schedule, while: (e) => Predicate.isTagged(e, "Unprocessed") })
  )

/**
 * `items` in consecutive slices of at most `size` (the batch limits of storage).
 *
 * @since 0.2.0
 * @category utils
 */
export const chunksOf = <X>(items: ReadonlyArray<X>, size: number): Array<ReadonlyArray<X>> => {
  const out: Array<ReadonlyArray<X>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

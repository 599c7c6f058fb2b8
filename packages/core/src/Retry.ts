/**
 * Retries for hot paths: `Effect.retry` that costs nothing until something fails.
 *
 * `Effect.retry(self, { schedule, while })` builds a schedule driver every time it runs, also
 * when `self` succeeds at once, which is nearly always for a command or a DynamoDB request.
 * {@link afterFailure} runs `self` once and builds the retry only after a failure the
 * `while` predicate accepts, with the same outcome as `Effect.retry`: the schedule sees that
 * first failure, waits, and runs `self` again. Used by `Aggregate.handle` (retries after a
 * `ConflictError`) and by `DynamoClient.call` of `@dynamo-es/dynamodb` (retries of throttling,
 * 5xx and network errors).
 *
 * @since 0.2.0
 */
import { Effect, type Schedule } from "effect"

/**
 * `Effect.retry(self, { schedule, while })`, with the retry machinery built only after a
 * first failure that `while` accepts. Other failures are returned as they are.
 *
 * ```ts
 * const sent = Retry.afterFailure(request, { schedule: Schedule.exponential("50 millis"), while: (e) => e.isRetryable })
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const afterFailure = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  options: {
    readonly schedule: Schedule.Schedule<unknown, NoInfer<E>, never, R>
    readonly while: (error: E) => boolean
  }
): Effect.Effect<A, E, R> =>
  Effect.catch(self, (first) => {
    if (!options.while(first)) return Effect.fail(first)
    // The first attempt already ran: the schedule sees its failure first, as in `Effect.retry`.
    let replayed = false
    return Effect.retry(
      Effect.suspend(() => {
        if (replayed) return self
        replayed = true
        return Effect.fail(first)
      }),
      { schedule: options.schedule, while: options.while }
    )
  })

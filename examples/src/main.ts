/**
 * How the examples run: `NodeRuntime.runMain`, except that an expected failure (a
 * `ConfigError` naming a variable, a `StorageError`, DynamoDB Local that cannot start) is
 * printed on one line that says what to do, instead of a stack trace. Defects (bugs) keep
 * Effect's full report.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Errors } from "@dynamo-es/core"
import { Cause, Console, Effect, Result } from "effect"

export const runMain = <E>(program: Effect.Effect<void, E>): void =>
  NodeRuntime.runMain(
    program.pipe(
      Effect.tapCause((cause) => {
        if (Cause.hasInterruptsOnly(cause)) return Effect.void
        const error = Cause.findError(cause)
        return Console.error(Result.isSuccess(error) ? `error: ${Errors.oneLine(error.success)}` : Cause.pretty(cause))
      })
    ),
    { disableErrorReporting: true }
  )

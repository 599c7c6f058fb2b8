/**
 * How the examples run: `NodeRuntime.runMain`, except that an expected failure (a
 * `ConfigError` naming a variable, a `StorageError`, DynamoDB Local that cannot start) is
 * printed on one line that says what to do, instead of a stack trace. Defects (bugs) keep
 * Effect's full report.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Predicate, Result } from "effect"

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

/** One line: a `ConfigError`'s message is `SchemaError(<what to do>\n  at ["NAME"])`. */
const oneLine = (error: unknown): string =>
  Predicate.isTagged(error, "ConfigError")
    ? messageOf(error).replace(/^SchemaError\(([\s\S]*)\)$/, "$1").replace(/\s*\n\s*at \[(.*)\]$/, " (at $1)").replace(/\s*\n\s*/g, " ")
    : messageOf(error).replace(/\s*\n\s*/g, " ")

export const runMain = <E>(program: Effect.Effect<void, E>): void =>
  NodeRuntime.runMain(
    program.pipe(
      Effect.tapCause((cause) => {
        if (Cause.hasInterruptsOnly(cause)) return Effect.void
        const error = Cause.findError(cause)
        return Console.error(Result.isSuccess(error) ? `error: ${oneLine(error.success)}` : Cause.pretty(cause))
      })
    ),
    { disableErrorReporting: true }
  )

/**
 * Given/when/then for deciders, without any storage: the decider tests of
 * `@dynamo-es/core/testing`.
 *
 * @since 0.2.0
 */
import { Effect, Schema } from "effect"
import type { Aggregate } from "../src/Aggregate.js"

/**
 * A given/when/then expectation did not hold. The message shows expected and actual.
 *
 * @since 0.2.0
 * @category errors
 */
export class DeciderAssertionError extends Schema.TaggedError<DeciderAssertionError>()("DeciderAssertionError", {
  expected: Schema.String,
  actual: Schema.String
}) {
  override get message(): string {
    return `Expected ${this.expected}\n     got ${this.actual}`
  }
}

const describeError = (e: unknown) => {
  if (typeof e !== "object" || e === null) return JSON.stringify(e)
  const fields = Object.fromEntries(Object.entries(e).filter(([k]) => k !== "stack"))
  return JSON.stringify({ _tag: (e as { _tag?: unknown })._tag, ...fields })
}

/**
 * Given/when/then for deciders, without any storage:
 *
 * ```ts
 * it.effect("rejects an overdraft", () =>
 *   DeciderTest.given(Account, [opened, deposited(10)])
 *     .when({ _tag: "Withdraw", amount: 50 })
 *     .thenFails(new InsufficientFunds({ balance: 10, requested: 50 })))
 * ```
 *
 * Events are compared in their Schema-encoded form; errors by tag and fields.
 *
 * @since 0.2.0
 * @category testing
 */
export const given = <State, Event extends { readonly _tag: string }, Command, E>(
  aggregate: Aggregate<State, Event, Command, E>,
  history: ReadonlyArray<Event>,
  options: { readonly streamId?: string } = {}
) => {
  const encodeAll = (list: ReadonlyArray<Event>) =>
    JSON.stringify(list.map((e) => Schema.encodeSync(aggregate.definition.events)(e)))
  const state = aggregate.fold(history)
  const when = (command: Command) => {
    const decided = Effect.suspend(() => {
      const d = aggregate.definition.decide(command, state, {
        streamId: options.streamId ?? "test-stream",
        version: history.length
      })
      return Effect.isEffect(d) ? (d as Effect.Effect<ReadonlyArray<Event>, E>) : Effect.succeed(d as ReadonlyArray<Event>)
    })
    return {
      /** The decided events and the resulting state, for your own assertions. */
      result: Effect.map(decided, (events) => ({ events, state: aggregate.fold(events, state) })),
      /** Expects exactly these events (in order). */
      then: (expected: ReadonlyArray<Event>) =>
        Effect.flatMap(
          Effect.mapError(decided, (e) => new DeciderAssertionError({ expected: encodeAll(expected), actual: `error ${describeError(e)}` })),
          (events) =>
            encodeAll(events) === encodeAll(expected)
              ? Effect.void
              : Effect.fail(new DeciderAssertionError({ expected: encodeAll(expected), actual: encodeAll(events) }))
        ),
      /** Expects the command to fail with this error (same tag and fields) or one matching the predicate. */
      thenFails: (expected: E | ((error: E) => boolean)) =>
        Effect.matchEffect(decided, {
          onSuccess: (events) =>
            Effect.fail(new DeciderAssertionError({
              expected: typeof expected === "function" ? "an error" : `error ${describeError(expected)}`,
              actual: `events ${encodeAll(events)}`
            })),
          onFailure: (error) => {
            const ok = typeof expected === "function"
              ? (expected as (error: E) => boolean)(error)
              : describeError(error) === describeError(expected)
            return ok
              ? Effect.void
              : Effect.fail(new DeciderAssertionError({
                expected: typeof expected === "function" ? "an error matching the predicate" : `error ${describeError(expected)}`,
                actual: `error ${describeError(error)}`
              }))
          }
        })
    }
  }
  return { state, when }
}

import { assert, describe, it } from "@effect/vitest"
import { Data, Effect, Exit, Schedule } from "effect"
import { Retry } from "../src/index.js"

class Failed extends Data.TaggedError("Failed")<{ readonly attempt: number; readonly retryable: boolean }> {}

/** An effect failing with `outcomes[n]` on its n-th run (retryable or not), succeeding after them; counts its runs. */
const scripted = (outcomes: ReadonlyArray<"retryable" | "fatal">) => {
  const runs = { count: 0 }
  const self = Effect.suspend(() => {
    const n = runs.count++
    const outcome = outcomes[n]
    return outcome === undefined
      ? Effect.succeed(`ok after ${n}`)
      : Effect.fail(new Failed({ attempt: n + 1, retryable: outcome === "retryable" }))
  })
  return { self, runs }
}

const options = { schedule: Schedule.recurs(3), while: (e: Failed) => e.retryable }

describe("Retry.afterFailure", () => {
  it.effect("runs once when the first attempt succeeds", () =>
    Effect.gen(function*() {
      const { runs, self } = scripted([])
      assert.strictEqual(yield* Retry.afterFailure(self, options), "ok after 0")
      assert.strictEqual(runs.count, 1)
    }))

  it.effect("retries retryable failures with the schedule, like Effect.retry", () =>
    Effect.gen(function*() {
      for (const script of [["retryable"], ["retryable", "retryable", "retryable"]] as const) {
        const ours = scripted(script)
        const effects = scripted(script)
        const a = yield* Retry.afterFailure(ours.self, options)
        const b = yield* Effect.retry(effects.self, options)
        assert.strictEqual(a, b)
        assert.strictEqual(ours.runs.count, effects.runs.count)
        assert.strictEqual(ours.runs.count, script.length + 1)
      }
    }))

  it.effect("gives up when the schedule ends, with the last failure, after as many runs as Effect.retry", () =>
    Effect.gen(function*() {
      const script = ["retryable", "retryable", "retryable", "retryable", "retryable"] as const
      const ours = scripted(script)
      const effects = scripted(script)
      const a = yield* Effect.exit(Retry.afterFailure(ours.self, options))
      const b = yield* Effect.exit(Effect.retry(effects.self, options))
      assert.deepStrictEqual(a, b)
      assert.isTrue(Exit.isFailure(a))
      assert.strictEqual(ours.runs.count, 4, "the first attempt and 3 retries")
    }))

  it.effect("does not retry a failure `while` refuses, on the first attempt or later", () =>
    Effect.gen(function*() {
      const first = scripted(["fatal"])
      const e1 = yield* Effect.flip(Retry.afterFailure(first.self, options))
      assert.deepInclude(e1, { attempt: 1, retryable: false })
      assert.strictEqual(first.runs.count, 1)

      const later = scripted(["retryable", "fatal"])
      const e2 = yield* Effect.flip(Retry.afterFailure(later.self, options))
      assert.deepInclude(e2, { attempt: 2, retryable: false })
      assert.strictEqual(later.runs.count, 2)
    }))
})

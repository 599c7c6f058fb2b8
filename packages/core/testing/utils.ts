/** Small assertion helpers shared by the test suites of every package. */
import { assert } from "./vitest.js"
import { Exit } from "effect"

/** The typed error of a failed Exit; fails the test on success or on a defect/interruption. */
export const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) assert.fail(`expected a failure, got success: ${safeJson(exit.value)}`)
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") assert.fail(`expected a typed failure, got ${String(exit.cause)}`)
  return reason.error
}

const safeJson = (value: unknown) => {
  try {
    return JSON.stringify(value)?.slice(0, 500)
  } catch {
    return String(value)
  }
}

/** The integers from..to, inclusive. */
export const range = (from: number, to: number): Array<number> => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/**
 * Property-test tools shared by the conformance suites: generators that mix valid inputs
 * with hostile ones, and a runner that reports the shrunk counterexample and the seed.
 *
 * Properties are run with Effect's own `Arbitrary` module inside one test (one store), so
 * that the DynamoDB run builds one table per property, not one per case.
 */
import { assert } from "./vitest.js"
import { Arbitrary, Cause, Effect, Exit, Schema } from "effect"

/**
 * The seed of every property of the suites: fixed, so that a failure reproduces. Set
 * `PROPERTY_SEED` to explore other cases.
 */
export const PROPERTY_SEED: number = Number(process.env.PROPERTY_SEED ?? 20_260_101)

/** Picks one of `choices`, each with its weight (an integer); shrinks towards the first. */
export const weighted = <A>(...choices: ReadonlyArray<readonly [number, Arbitrary.Arbitrary<A>]>): Arbitrary.Arbitrary<A> => {
  const slots: Array<number> = []
  choices.forEach(([weight], i) => {
    for (let n = 0; n < weight; n++) slots.push(i)
  })
  const index = Arbitrary.schema(Schema.Literals(slots.map((_, i) => i)))
  return Arbitrary.flatMap(index, (i) => choices[slots[i]!]![1])
}

/** One of the given values. */
export const oneOf = <const A extends ReadonlyArray<unknown>>(values: A): Arbitrary.Arbitrary<A[number]> =>
  Arbitrary.map(Arbitrary.schema(Schema.Literals(values.map((_, i) => i))), (i) => values[i])

const cyclic: Record<string, unknown> = {}
cyclic.self = cyclic

/** Values that have broken libraries before, beyond what Schema-derived generation gives. */
export const curiosities: ReadonlyArray<unknown> = [
  undefined,
  null,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
  Number.MAX_SAFE_INTEGER + 2,
  1e20,
  1e308,
  -1,
  1.5,
  "",
  " ",
  "\u0000",
  "\uD800",
  "a\uDC00b",
  "\uDFFF",
  "\uDC00\uD800",
  "😀",
  "__proto__",
  "constructor",
  "toString",
  "Infinity",
  "NaN",
  "-1",
  "30 days",
  "x".repeat(1100),
  "é".repeat(600),
  {},
  [],
  [1, 2],
  { __proto__: null },
  JSON.parse("{\"__proto__\":{\"polluted\":true}}"),
  new Date(Number.NaN),
  new Map([["a", 1]]),
  () => 1,
  Symbol("s"),
  10n,
  cyclic,
  { toJSON: () => undefined }
]

/** Anything: Schema-derived JSON-ish values, strings, numbers, and the curiosities above. */
export const hostile: Arbitrary.Arbitrary<unknown> = weighted<unknown>(
  [2, Arbitrary.schema(Schema.Unknown)],
  [2, Arbitrary.schema(Schema.String)],
  [1, Arbitrary.schema(Schema.Number)],
  [3, oneOf(curiosities)]
)

/** Event metadata an append accepts: absent, or any mix of the known fields. */
export const validMetadata: Arbitrary.Arbitrary<unknown> = weighted<unknown>(
  [3, Arbitrary.Constant(undefined)],
  [2, Arbitrary.schema(Schema.Struct({
    actor: Schema.optional(Schema.String),
    correlationId: Schema.optional(Schema.String),
    causationId: Schema.optional(Schema.String),
    custom: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
  }))]
)

/** Describes a value for a failure message (lone surrogates and symbols visible). */
export const show = (value: unknown): string => {
  try {
    const json = JSON.stringify(value, (_key, v: unknown) =>
      typeof v === "bigint" ? `${v}n` : typeof v === "symbol" || typeof v === "function" ? String(v) : v)
    return json === undefined ? String(value) : json.slice(0, 400)
  } catch {
    return String(value)
  }
}

/** What every error of the library has. */
export interface TaggedError {
  readonly _tag: string
  readonly message: string
}

/** The `_tag` of the typed failure of `exit`, or a description of why it is not one. */
export const outcomeOf = <A, E>(
  exit: Exit.Exit<A, E>
): { readonly _tag: "Success"; readonly value: A } | { readonly _tag: "Refused"; readonly error: E & TaggedError } | {
  readonly _tag: "Broken"
  readonly reason: string
} => {
  if (Exit.isSuccess(exit)) return { _tag: "Success", value: exit.value }
  const fail = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (fail === undefined || fail._tag !== "Fail") return { _tag: "Broken", reason: `not a typed failure: ${Cause.pretty(exit.cause)}` }
  const error = fail.error as unknown
  if (typeof error !== "object" || error === null || typeof (error as { _tag?: unknown })._tag !== "string") {
    return { _tag: "Broken", reason: `a failure without a _tag: ${show(error)}` }
  }
  let message: unknown
  try {
    message = (error as { message?: unknown }).message
  } catch (cause) {
    return { _tag: "Broken", reason: `the error's message throws: ${String(cause)}` }
  }
  if (typeof message !== "string" || message.length === 0) return { _tag: "Broken", reason: "the error has no message" }
  return { _tag: "Refused", error: error as E & TaggedError }
}

/**
 * Checks that `exit` is a success or a failure with one of `tags`; fails (the property) with
 * a description otherwise. A `StorageError` of reason `Validation` is never acceptable:
 * every input is validated before any request, so storage must not refuse one.
 */
export const expectTyped = <A, E>(
  label: string,
  exit: Exit.Exit<A, E>,
  tags: ReadonlyArray<string>
): Effect.Effect<{ readonly _tag: "Success"; readonly value: A } | { readonly _tag: "Refused"; readonly error: E & TaggedError }, string> => {
  const outcome = outcomeOf(exit)
  if (outcome._tag === "Broken") return Effect.fail(`${label}: ${outcome.reason}`)
  if (outcome._tag === "Refused") {
    if (!tags.includes(outcome.error._tag)) {
      return Effect.fail(`${label}: failed with ${outcome.error._tag}, not one of ${tags.join(", ")}: ${outcome.error.message}`)
    }
    if (outcome.error._tag === "StorageError" && (outcome.error as { readonly reason?: unknown }).reason === "Validation") {
      return Effect.fail(`${label}: storage refused an input that passed validation: ${outcome.error.message}`)
    }
  }
  return Effect.succeed(outcome)
}

/** Fails the property with `message` unless `condition` holds. */
export const check = (condition: boolean, message: () => string): Effect.Effect<void, string> =>
  condition ? Effect.void : Effect.fail(message())

/**
 * Runs `property` on `runs` generated cases with the suite's seed, and fails the test with
 * the shrunk counterexample when it does not hold. A property fails with a description (a
 * string); any other failure, or a defect in the property (e.g. a failed `assert`), is
 * reported as a failure too.
 */
export const holds = <A, R>(
  arbitrary: Arbitrary.Arbitrary<A>,
  property: (value: A) => Effect.Effect<void, unknown, R>,
  options: { readonly runs: number }
): Effect.Effect<void, never, R> =>
  Effect.gen(function*() {
    const result = yield* Arbitrary.checkEffect(
      arbitrary,
      (value) =>
        property(value).pipe(
          Effect.catchCause((cause) => {
            if (!Cause.hasFails(cause)) return Effect.fail(`defect: ${Cause.pretty(cause)}`)
            const error = Cause.squash(cause)
            return Effect.fail(typeof error === "string" ? error : `the property failed: ${Cause.pretty(cause)}`)
          }),
          Effect.as(true)
        ),
      { runs: options.runs, seed: PROPERTY_SEED, maxShrinks: 100 }
    )
    if (result._tag !== "Passed") {
      assert.fail(`${Arbitrary.formatCheckFailure(result)}\n(seed ${PROPERTY_SEED}; PROPERTY_SEED=<n> runs other cases)`)
    }
    assert.strictEqual(result.runs, options.runs)
  })

/** Counts the outcomes of a property's cases, to prove it exercised both sides. */
export class Tally {
  succeeded = 0
  refused = 0
  readonly tags = new Map<string, number>()
  record(outcome: { readonly _tag: "Success" } | { readonly _tag: "Refused"; readonly error: { readonly _tag: string } }): void {
    if (outcome._tag === "Success") this.succeeded++
    else {
      this.refused++
      this.tags.set(outcome.error._tag, (this.tags.get(outcome.error._tag) ?? 0) + 1)
    }
  }
  /** Both sides were exercised: at least `min` cases succeeded and `min` were refused. */
  assertMixed(min: number): void {
    const summary = `${this.succeeded} succeeded, ${this.refused} refused (${[...this.tags].map(([t, n]) => `${t}: ${n}`).join(", ")})`
    if (process.env.PROPERTY_VERBOSE !== undefined) console.log(summary)
    assert.isAtLeast(this.succeeded, min, `too few valid cases: ${summary}`)
    assert.isAtLeast(this.refused, min, `too few refused cases: ${summary}`)
  }
}

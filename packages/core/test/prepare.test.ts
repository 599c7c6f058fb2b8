/**
 * The quick check of append inputs (`plainAppend` in `internal/prepare.ts`) lets plain
 * inputs skip decoding by the Schemas of `internal/inputs.ts`. It must never accept what
 * those Schemas refuse, and must say the same expected version: checked here on valid
 * appends and on appends with one field replaced by a hostile value.
 */
import { assert, describe, it } from "@effect/vitest"
import { holds, hostile, oneOf, validMetadata, weighted } from "@dynamo-es/core/testing/properties"
import { Arbitrary, Effect, Exit, Schema } from "effect"
import * as Inputs from "../src/internal/inputs.js"
import { plainAppend } from "../src/internal/prepare.js"

const decodeOptions = Schema.decodeUnknownExit(Inputs.AppendOptions)
const decodeEvents = Schema.decodeUnknownExit(Inputs.NewEvents)

const validEvent = Arbitrary.all({
  type: oneOf(["Opened", "Deposited", "Tÿpe-😀", "x".repeat(256)]),
  payload: Arbitrary.schema(Schema.Unknown),
  metadata: validMetadata,
  ttl: weighted<unknown>([4, Arbitrary.Constant(undefined)], [1, oneOf(["30 days", "1 hour", 0, 86_400_000, { days: 1 }, [60, 0]])]),
  eventId: weighted<unknown>([3, Arbitrary.Constant(undefined)], [2, oneOf(["e-1", "e-2", "e-😀", "x".repeat(64)])])
})
const FIELDS = [
  "events",
  "options",
  "expectedVersion",
  "options.metadata",
  "options.metadata.field",
  "event",
  "type",
  "payload",
  "metadata",
  "metadata.field",
  "ttl",
  "eventId"
] as const

/** A valid append, or one with one field replaced by (or a metadata field set to) a hostile value. */
const appendArb = Arbitrary.map(
  Arbitrary.all({
    events: Arbitrary.array(validEvent, { minLength: 1, maxLength: 3 }),
    options: Arbitrary.all({
      expectedVersion: oneOf(["any", "noStream", "streamExists", 0, 1, Number.MAX_SAFE_INTEGER]),
      metadata: validMetadata
    }),
    corruption: weighted<{ readonly field: typeof FIELDS[number]; readonly key: string; readonly value: unknown } | undefined>(
      [2, Arbitrary.Constant(undefined)],
      [5, Arbitrary.all({ field: oneOf(FIELDS), key: oneOf(["actor", "custom", "other", "__proto__"]), value: hostile })]
    )
  }),
  ({ corruption, events, options }): { readonly events: unknown; readonly options: unknown } => {
    if (corruption === undefined) return { events, options }
    const { field, key, value } = corruption
    const withField = (o: unknown) => ({ ...(o as object), [key]: value })
    switch (field) {
      case "events":
        return { events: value, options }
      case "options":
        return { events, options: value }
      case "expectedVersion":
        return { events, options: { ...options, expectedVersion: value } }
      case "options.metadata":
        return { events, options: { ...options, metadata: value } }
      case "options.metadata.field":
        return { events, options: { ...options, metadata: withField(options.metadata) } }
      default: {
        const list: Array<unknown> = [...events]
        const e = events[0]!
        list[0] = field === "event"
          ? value
          : field === "metadata.field"
          ? { ...e, metadata: withField(e.metadata) }
          : { ...e, [field]: value }
        return { events: list, options }
      }
    }
  }
)

describe("prepare: the quick check of append inputs", () => {
  it.effect("accepts only what the input Schemas accept, with the same expected version", () =>
    Effect.gen(function*() {
      let plain = 0
      let refused = 0
      yield* holds(appendArb, ({ events, options }) =>
        Effect.sync(() => {
          const expected = plainAppend(events, options)
          if (expected === undefined) {
            refused++
            return
          }
          plain++
          const decodedOptions = decodeOptions(options)
          assert.isTrue(Exit.isSuccess(decodedOptions), `accepted options the Schema refuses: ${String(decodedOptions)}`)
          assert.strictEqual(Exit.isSuccess(decodedOptions) ? decodedOptions.value.expectedVersion : undefined, expected)
          const decodedEvents = decodeEvents(events)
          assert.isTrue(Exit.isSuccess(decodedEvents), `accepted events the Schema refuses: ${String(decodedEvents)}`)
        }), { runs: 3_000 })
      // Both sides were exercised.
      assert.isAbove(plain, 300)
      assert.isAbove(refused, 300)
    }))

  it("leaves unusual but valid inputs to the Schemas", () => {
    const event = { type: "Deposited", payload: 1 }
    class Options {
      readonly expectedVersion = 1
    }
    assert.strictEqual(plainAppend([event], { expectedVersion: 3 }), 3)
    assert.strictEqual(plainAppend([event], { expectedVersion: "any", metadata: { actor: "a", custom: { k: new Date(0) } } }), "any")
    // A class instance, an inherited payload, a getter that throws: the Schemas decide.
    assert.isUndefined(plainAppend([event], new Options()))
    assert.isUndefined(plainAppend([Object.create({ payload: 1, type: "Deposited" })], { expectedVersion: 1 }))
    const throwing = Object.defineProperty({ payload: 1 }, "type", {
      enumerable: true,
      get: () => {
        throw new Error("no")
      }
    })
    assert.isUndefined(plainAppend([throwing], { expectedVersion: 1 }))
    assert.isTrue(Exit.isSuccess(decodeOptions(new Options())))
  })
})

/**
 * An aggregate load checks stored events with `checkedPayload`, which recognises the
 * metadata JSON the store writes without parsing it; a read uses `checkStoredEvent`, which
 * parses it. They must agree on every stored event: the same CorruptedEventError, or the
 * same payload.
 */
import { assert, describe, it } from "@effect/vitest"
import { holds, hostile, oneOf, show, weighted } from "@dynamo-es/core/testing/properties"
import { Arbitrary, Effect, Schema } from "effect"
import { CorruptedEventError } from "../src/Errors.js"
import type { StoredEvent } from "../src/EventStore.js"
import { checkedPayload, checkStoredEvent } from "../src/internal/envelope.js"

const KEYS = ["actor", "correlationId", "causationId", "custom", "other", "__proto__"] as const
const strings = weighted<unknown>(
  [4, Arbitrary.schema(Schema.String)],
  [2, oneOf(["", "corr-000123", "a\"b", "a\\b", "\n", "\u0000", "\u001f", "\uD800", "é😀", "\\u0041"])],
  [1, hostile]
)
/** Metadata objects of known and unknown fields, with strings and anything else as values. */
const metadataObject = Arbitrary.map(
  Arbitrary.array(Arbitrary.all({ key: oneOf(KEYS), value: strings }), { maxLength: 4 }),
  (fields) => {
    const o: Record<string, unknown> = {}
    for (const { key, value } of fields) Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
    return o
  }
)
/** The JSON of such an object, or that JSON damaged: a character dropped, doubled or replaced. */
const metadataJson = Arbitrary.map(
  Arbitrary.all({
    object: metadataObject,
    damage: weighted<{ readonly at: number; readonly kind: "drop" | "double" | "replace"; readonly with: string } | undefined>(
      [3, Arbitrary.Constant(undefined)],
      [2, Arbitrary.all({ at: Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 60 }))), kind: oneOf(["drop", "double", "replace"] as const), with: oneOf(["\"", ",", "\\", "}", " ", "\n", "x", "{"]) })]
    )
  }),
  ({ damage, object }): unknown => {
    let json: string
    try {
      json = JSON.stringify(object) ?? "null"
    } catch {
      return "{"
    }
    if (damage === undefined) return json
    const at = damage.at % Math.max(1, json.length)
    return damage.kind === "drop"
      ? json.slice(0, at) + json.slice(at + 1)
      : damage.kind === "double"
      ? json.slice(0, at) + json[at] + json.slice(at)
      : json.slice(0, at) + damage.with + json.slice(at + 1)
  }
)
const rowArb = Arbitrary.all({
  metadataJson: weighted<unknown>([8, metadataJson], [1, Arbitrary.Constant(undefined)], [1, hostile]),
  payloadJson: weighted<unknown>([6, oneOf(["{\"_tag\":\"Deposited\",\"amount\":1}", "1", "null"])], [1, hostile]),
  version: weighted<number>([6, Arbitrary.Constant(3)], [1, oneOf([0, -1, 1.5, Number.NaN])])
})

const row = (r: typeof rowArb extends Arbitrary.Arbitrary<infer A> ? A : never): StoredEvent => ({
  streamId: "s",
  version: r.version,
  eventId: "e-1",
  type: "Deposited",
  payloadJson: r.payloadJson,
  metadataJson: r.metadataJson,
  recordedAtMillis: 1_700_000_000_000,
  expiresAtSeconds: undefined
})

describe("checkedPayload", () => {
  it.effect("agrees with checkStoredEvent on any stored metadata: the same error, or the same payload", () =>
    Effect.gen(function*() {
      let accepted = 0
      let refused = 0
      yield* holds(rowArb, (r) =>
        Effect.sync(() => {
          const stored = row(r)
          const full = checkStoredEvent(stored)
          const quick = checkedPayload(stored)
          if (full instanceof CorruptedEventError) {
            refused++
            assert.instanceOf(quick, CorruptedEventError, `accepted what a read refuses: ${show(r.metadataJson)}`)
            assert.strictEqual((quick as CorruptedEventError).reason, full.reason)
          } else {
            accepted++
            assert.notInstanceOf(quick, CorruptedEventError, `refused what a read accepts: ${show(r.metadataJson)}`)
            assert.deepStrictEqual(quick, full.payload)
          }
        }), { runs: 5_000 })
      assert.isAbove(accepted, 500)
      assert.isAbove(refused, 500)
    }))

  it("recognises the metadata the store writes, and refuses near misses", () => {
    const payloadJson = "{\"amount\":1}"
    const check = (metadataJson: string) =>
      checkedPayload({ ...row({ metadataJson, payloadJson, version: 3 }) }) instanceof CorruptedEventError ? "refused" : "accepted"
    assert.strictEqual(check("{\"correlationId\":\"corr-000123\"}"), "accepted")
    assert.strictEqual(check("{\"actor\":\"a\",\"correlationId\":\"c\",\"causationId\":\"d\"}"), "accepted")
    assert.strictEqual(check("{\"actor\":\"a\\u0041\\n\"}"), "accepted")
    assert.strictEqual(check("{}"), "accepted")
    assert.strictEqual(check("{\"actor\":\"a\"\"causationId\":\"b\"}"), "refused")
    assert.strictEqual(check("{\"actor\":\"a\",}"), "refused")
    assert.strictEqual(check("{\"actor\":5}"), "refused")
    assert.strictEqual(check("{\"actor\":\"a\u0001\"}"), "refused")
    assert.strictEqual(check("{\"custom\":5}"), "refused")
  })
})

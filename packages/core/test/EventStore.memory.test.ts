import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schema, SchemaGetter, Stream } from "effect"
import { EventStore } from "../src/index.js"
import { eventStoreConformance, StoreProbe } from "../testing/EventStoreConformance.js"

eventStoreConformance("in-memory", (options) =>
  Layer.effectContext(Effect.gen(function*() {
    const store = yield* EventStore.makeMemory(options)
    return Context.make(EventStore.EventStore, store).pipe(
      Context.add(StoreProbe, { countItems: store.eventCount })
    )
  })))

describe("appendBulk encodes each event once", () => {
  it.effect("a payload becomes JSON once, however many transactions the import takes", () =>
    Effect.gen(function*() {
      let stringified = 0
      const payload = (n: number) => ({ n, toJSON: () => (stringified++, { n }) })
      const events = Array.from({ length: 250 }, (_, i) => ({ type: "Counted", payload: payload(i) }))
      const result = yield* EventStore.appendBulk("bulk-once", events, { expectedVersion: "noStream" })
      assert.strictEqual(result.version, 250)
      assert.strictEqual(stringified, 250, "one JSON encoding per payload (3 transactions)")
      const stored = yield* Stream.runCollect((yield* EventStore.EventStore).read("bulk-once"))
      assert.deepStrictEqual(stored.map((e) => e.payload), Array.from({ length: 250 }, (_, n) => ({ n })))
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("typed: one Schema encoding and one decoding (the round-trip check) per event", () =>
    Effect.gen(function*() {
      let encoded = 0
      let decoded = 0
      const Counted = Schema.TaggedStruct("Counted", {
        n: Schema.Number.pipe(Schema.decodeTo(Schema.Number, {
          decode: SchemaGetter.transform((n: number) => (decoded++, n)),
          encode: SchemaGetter.transform((n: number) => (encoded++, n))
        }))
      })
      const Typed = EventStore.typed(Counted)
      const result = yield* Typed.appendBulk("typed-bulk-once", Array.from({ length: 150 }, (_, n) => Counted.make({ n })), {
        expectedVersion: "noStream"
      })
      assert.strictEqual(result.version, 150)
      assert.deepStrictEqual([encoded, decoded], [150, 150])
      assert.deepStrictEqual(result.events.map((e) => e.payload.n), Array.from({ length: 150 }, (_, n) => n))
    }).pipe(Effect.provide(EventStore.layerMemory)))
})

import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, Option, Tracer } from "effect"
import { EventStore, Metrics } from "../src/index.js"

/** A fresh registry per test: counts are exact whatever else runs in this process. */
const isolated = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provideService(self, Metric.MetricRegistry, new Map())

const event = { type: "Deposited", payload: { amount: 1 } }

describe("Metrics", () => {
  it.effect("tagged is the same series as Metric.withAttributes", () =>
    isolated(Effect.gen(function*() {
      const attributes = { command: "PutItem", table: "events" }
      yield* Metric.update(Metrics.tagged(Metrics.requests, attributes), 2)
      yield* Metric.update(Metric.withAttributes(Metrics.requests, attributes), 1)
      assert.strictEqual((yield* Metric.value(Metric.withAttributes(Metrics.requests, attributes))).count, 3)
      assert.strictEqual((yield* Metric.value(Metrics.tagged(Metrics.requests, attributes))).count, 3)
      yield* Metric.update(Metrics.tagged(Metrics.requestDuration, attributes), 12)
      const duration = yield* Metric.value(Metric.withAttributes(Metrics.requestDuration, attributes))
      assert.deepInclude(duration, { count: 1, sum: 12 })
      // Counters only count up.
      yield* Metric.update(Metrics.tagged(Metrics.requests, attributes), -5)
      assert.strictEqual((yield* Metric.value(Metrics.tagged(Metrics.requests, attributes))).count, 3)
    })))

  it.effect("total sums the series whose attributes include the given ones", () =>
    isolated(Effect.gen(function*() {
      yield* Metric.update(Metrics.tagged(Metrics.requests, { command: "PutItem", table: "a" }), 2)
      yield* Metric.update(Metrics.tagged(Metrics.requests, { command: "Query", table: "a" }), 3)
      yield* Metric.update(Metrics.tagged(Metrics.requests, { command: "PutItem", table: "b" }), 5)
      yield* Metric.update(Metrics.tagged(Metrics.retries, { command: "PutItem", table: "a" }), 7)
      assert.strictEqual(yield* Metrics.total(Metrics.requests), 10)
      assert.strictEqual(yield* Metrics.total(Metrics.requests, { command: "PutItem" }), 7)
      assert.strictEqual(yield* Metrics.total(Metrics.requests, { table: "a" }), 5)
      assert.strictEqual(yield* Metrics.total(Metrics.requests, { command: "PutItem", table: "b" }), 5)
      assert.strictEqual(yield* Metrics.total(Metrics.requests, { table: "c" }), 0)
      assert.strictEqual(yield* Metrics.total(Metrics.retries), 7)
      assert.deepStrictEqual(
        new Set((yield* Metrics.snapshot).map((s) => s.id)),
        new Set(["dynamo_es_requests_total", "dynamo_es_retries_total"])
      )
    })))

  it.effect("a ConflictError from the memory store's append counts as a conflict; success and bad input do not", () =>
    isolated(Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append("s-1", [event], { expectedVersion: "noStream" })
      yield* Effect.exit(store.append("s-1", [event], { expectedVersion: "noStream" }))
      yield* Effect.exit(store.append("s-1", [event], { expectedVersion: "streamExists" }))
      yield* Effect.exit(store.append("s-2", [event], { expectedVersion: "streamExists" }))
      yield* Effect.exit(store.append("", [event], { expectedVersion: "noStream" }))
      assert.strictEqual(yield* Metrics.total(Metrics.conflicts, { operation: "append" }), 2)
    }).pipe(Effect.provide(EventStore.layerMemory))))

  it.effect("with a tracer, the memory store's operations are spans with the stream and the append's shape", () => {
    const spans: Array<Tracer.NativeSpan> = []
    const tracer = Tracer.make({
      span(options) {
        const span = new Tracer.NativeSpan(options)
        spans.push(span)
        return span
      }
    })
    return Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append("s-1", [event, event], { expectedVersion: "noStream" }).pipe(Effect.withSpan("caller"))
      yield* store.version("s-1")
      yield* store.readLast("s-1", 1)
      // Hostile arguments give no attribute, not a throw.
      yield* Effect.exit(store.append(42 as never, null as never, Object.freeze({ get expectedVersion(): never {
        throw new Error("hostile")
      } }) as never))

      const [append, hostile] = spans.filter((s) => s.name === "EventStore.append")
      assert.deepStrictEqual(Object.fromEntries(append!.attributes), {
        "dynamo_es.stream_id": "s-1",
        "dynamo_es.event_count": 2,
        "dynamo_es.expected_version": "noStream"
      })
      assert.strictEqual(Option.getOrUndefined(append!.parent)?.spanId, spans.find((s) => s.name === "caller")!.spanId)
      assert.strictEqual(hostile!.attributes.size, 0)
      assert.strictEqual(spans.find((s) => s.name === "EventStore.version")!.attributes.get("dynamo_es.stream_id"), "s-1")
      const readLast = spans.find((s) => s.name === "EventStore.readLast")!
      assert.strictEqual(readLast.attributes.get("dynamo_es.count"), 1)
      const read = spans.find((s) => s.name === "EventStore.read")!
      assert.strictEqual(Option.getOrUndefined(read.parent)?.spanId, readLast.spanId)
      assert.isTrue(spans.every((s) => s.status._tag === "Ended"))
    }).pipe(Effect.provide(EventStore.layerMemory), Effect.withTracer(tracer))
  })
})

/**
 * The EventLog contract, written once and run against every implementation (the in-memory
 * store and log here, the DynamoDB store with its sequencer in @dynamo-es/dynamodb).
 *
 * Each test gets a fresh event store whose log starts empty. Implementations where events
 * reach the log after their append (DynamoDB: the sequencer's lag) pass too: the tests wait
 * for the log through `subscribeAll`, never by sleeping.
 */
import { assert, describe, it } from "./vitest.js"
import { Deferred, Effect, Exit, Fiber, Layer, Schedule, Schema, Stream } from "effect"
import { EventLog, EventStore } from "../src/index.js"
import { range } from "./utils.js"

export type MakeLog = () => Layer.Layer<EventLog.EventLog | EventStore.EventStore, unknown>

let counter = 0
/** A stream id unique within the run, in the given category. */
const streamId = (category: string) => `${category}-${Date.now().toString(36)}${(counter++).toString(36)}`

const event = (type: string, n: number): EventStore.NewEvent => ({ type, payload: { n } })

/** The first `n` events of the log after `from`, waiting for them (at most `timeout`). */
export const awaitLogged = (n: number, from = 0) =>
  EventLog.EventLog.use((log) =>
    log.subscribeAll({ from }).pipe(
      Stream.filter((item): item is Extract<EventLog.SubscriptionItem, { readonly _tag: "Event" }> => item._tag === "Event"),
      Stream.map((item) => item.event),
      Stream.take(n),
      Stream.runCollect
    )
  )

const key = (e: { readonly streamId: string; readonly version: number }) => `${e.streamId}@${e.version}`

/** Positions dense from `from + 1`, every (stream, version) once, per-stream versions ascending. */
export const assertLogShape = (events: ReadonlyArray<EventLog.LoggedEvent>, from = 0) => {
  assert.deepStrictEqual(events.map((e) => e.position), range(from + 1, from + events.length), "positions are dense")
  assert.strictEqual(new Set(events.map(key)).size, events.length, "every event appears once")
  const last = new Map<string, number>()
  for (const e of events) {
    const before = last.get(e.streamId)
    if (before !== undefined) assert.strictEqual(e.version, before + 1, `versions of ${e.streamId} in order`)
    last.set(e.streamId, e.version)
  }
}

const Stamped = Schema.TaggedStruct("Stamped", { at: Schema.Date, big: Schema.BigInt })
const Renamed = Schema.TaggedStruct("Renamed", { name: Schema.String })
const TypedEvent = Schema.Union([Stamped, Renamed])

export const eventLogConformance = (name: string, makeLog: MakeLog, options: { readonly timeout?: number } = {}) =>
  describe(`EventLog conformance: ${name}`, { timeout: options.timeout ?? 60_000 }, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, EventLog.EventLog | EventStore.EventStore>) =>
      effect.pipe(Effect.provide(makeLog()))

    /** Appends `count` events to each of the streams, in appends of 1 to 3 events. */
    const appendSome = (ids: ReadonlyArray<string>, count: number, type = "Deposited") =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        for (const id of ids) {
          let version = 0
          while (version < count) {
            const size = Math.min(count - version, 1 + ((version + id.length) % 3))
            yield* store.append(id, range(version + 1, version + size).map((n) => event(type, n)), { expectedVersion: version })
            version += size
          }
        }
      })

    it.live("every event once, at dense positions, in per-stream order, as the store reads it", () =>
      run(Effect.gen(function*() {
        const ids = range(1, 4).map(() => streamId("acc"))
        yield* appendSome(ids, 5)
        const logged = yield* awaitLogged(20)
        assertLogShape(logged)
        const all = yield* Stream.runCollect((yield* EventLog.EventLog).readAll())
        assert.deepStrictEqual(all, logged, "readAll gives what the subscription gave")
        const store = yield* EventStore.EventStore
        for (const id of ids) {
          const read = yield* Stream.runCollect(store.read(id))
          const inLog = all.filter((e) => e.streamId === id).map(({ position: _, ...envelope }) => envelope)
          assert.deepStrictEqual(inLog, read, `the log's copy of ${id} is the store's`)
        }
        assert.strictEqual(yield* (yield* EventLog.EventLog).head, 20)
      })))

    it.live("a position is an exclusive resume token: from every position, exactly the rest; to is inclusive", () =>
      run(Effect.gen(function*() {
        yield* appendSome(range(1, 3).map(() => streamId("res")), 8)
        const all = yield* awaitLogged(24)
        const log = yield* EventLog.EventLog
        for (const from of range(0, 24)) {
          const rest = yield* Stream.runCollect(log.readAll({ from }))
          assert.deepStrictEqual(rest.map(key), all.slice(from).map(key), `from ${from}`)
        }
        const window = yield* Stream.runCollect(log.readAll({ from: 5, to: 11 }))
        assert.deepStrictEqual(window.map((e) => e.position), range(6, 11))
        assert.deepStrictEqual(yield* Stream.runCollect(log.readAll({ from: 24 })), [])
        assert.deepStrictEqual(yield* Stream.runCollect(log.readAll({ from: 100 })), [])
      })))

    it.live("filters by type and by category", () =>
      run(Effect.gen(function*() {
        const a = streamId("alpha")
        const b = streamId("beta")
        yield* appendSome([a], 3, "Opened")
        yield* appendSome([b], 3, "Closed")
        yield* appendSome([streamId("alpha")], 2, "Closed")
        yield* awaitLogged(8)
        const log = yield* EventLog.EventLog
        const closed = yield* Stream.runCollect(log.readAll({ filter: { types: ["Closed"] } }))
        assert.strictEqual(closed.length, 5)
        assert.ok(closed.every((e) => e.type === "Closed"))
        const alphaClosed = yield* Stream.runCollect(log.readAll({ filter: { types: ["Closed"], categories: ["alpha"] } }))
        assert.deepStrictEqual(alphaClosed.map((e) => e.position), [7, 8], "positions are those of the whole log")
        assert.strictEqual(log.categoryOf(a), "alpha")
        assert.strictEqual(log.categoryOf("nodash"), "nodash")
      })))

    it.live("subscribeAll: catch-up, one CaughtUp, then live, with no duplicate and no skip", () =>
      run(Effect.gen(function*() {
        const log = yield* EventLog.EventLog
        const ids = range(1, 2).map(() => streamId("sub"))
        yield* appendSome(ids, 3)
        // In the log (a sequencer may lag) before the subscription starts.
        yield* awaitLogged(6)
        const caughtUp = yield* Deferred.make<void>()
        const fiber = yield* log.subscribeAll({ from: "start" }).pipe(
          Stream.tap((item) => (item._tag === "CaughtUp" ? Deferred.succeed(caughtUp, undefined) : Effect.void)),
          Stream.take(6 + 1 + 6),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* Deferred.await(caughtUp)
        yield* appendSome([streamId("sub"), streamId("sub")], 3)
        const items = yield* Fiber.join(fiber)
        assert.deepStrictEqual(items.map((i) => i._tag), [...Array(6).fill("Event"), "CaughtUp", ...Array(6).fill("Event")])
        assert.deepStrictEqual(items[6], { _tag: "CaughtUp", position: 6 })
        assertLogShape(items.flatMap((i) => (i._tag === "Event" ? [i.event] : [])))

        // From a position: the rest, then CaughtUp.
        const fromFour = yield* log.subscribeAll({ from: 4 }).pipe(Stream.take(9), Stream.runCollect)
        assert.deepStrictEqual(fromFour.map((i) => (i._tag === "Event" ? i.event.position : "CaughtUp")), [...range(5, 12), "CaughtUp"])
        // From the end (the head when the subscription starts): nothing old, CaughtUp at once,
        // then what comes.
        const started = yield* Deferred.make<void>()
        const fromEnd = yield* log.subscribeAll({ from: "end" }).pipe(
          Stream.tap(() => Deferred.succeed(started, undefined)),
          Stream.take(3),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* Deferred.await(started)
        yield* appendSome([streamId("sub")], 2)
        const end = yield* Fiber.join(fromEnd)
        assert.deepStrictEqual(end.map((i) => (i._tag === "Event" ? i.event.position : i.position)), [12, 13, 14])
        assert.strictEqual(end[0]!._tag, "CaughtUp")
      })))

    it.live("concurrent writers while a subscriber follows: every event exactly once, per-stream order", () =>
      run(Effect.gen(function*() {
        const log = yield* EventLog.EventLog
        const store = yield* EventStore.EventStore
        const shared = range(1, 3).map(() => streamId("shared"))
        const writers = 8
        const perWriter = 6
        const total = writers * perWriter * 2
        const subscriber = yield* awaitLogged(total).pipe(Effect.forkChild)
        yield* Effect.forEach(range(1, writers), (w) =>
          Effect.gen(function*() {
            const own = streamId(`w${w}`)
            for (const n of range(1, perWriter)) {
              yield* store.append(own, [event("Own", n)], { expectedVersion: n - 1 })
              // Contended streams: "any" retries until it gets a version.
              yield* store.append(shared[(w + n) % shared.length]!, [event("Shared", n)], { expectedVersion: "any" })
            }
          }), { concurrency: "unbounded" })
        const seen = yield* Fiber.join(subscriber)
        assertLogShape(seen)
        assert.strictEqual(seen.length, total)
        const all = yield* Stream.runCollect(log.readAll())
        assert.deepStrictEqual(all.map(key), seen.map(key), "a later read gives the same order")
      })))

    it.live("typed: payloads decoded with the Schema EventStore.typed wrote them with; one that does not decode is a CorruptedEventError at its stream and version", () =>
      run(Effect.gen(function*() {
        const cat = `typed${Date.now().toString(36)}${(counter++).toString(36)}`
        const Store = EventStore.typed(TypedEvent)
        const Log = EventLog.typed(TypedEvent)
        const at = new Date("2026-01-02T03:04:05.678Z")
        const from = yield* (yield* EventLog.EventLog).head
        yield* Store.append(`${cat}-1`, [Stamped.make({ at, big: 12345678901234567890n }), Renamed.make({ name: "Ada" })], { expectedVersion: 0 })
        // Another category, untyped, in between: the filter keeps it out.
        yield* appendSome([`other${cat}-1`], 1)
        yield* Store.append(`${cat}-2`, [Renamed.make({ name: "Grace" })], { expectedVersion: 0 })
        yield* awaitLogged(4, from)
        const typedEvents = yield* Stream.runCollect(Log.readAll({ from, filter: { categories: [cat] } }))
        assert.deepStrictEqual(typedEvents.map((e) => e.payload), [
          { _tag: "Stamped", at, big: 12345678901234567890n },
          { _tag: "Renamed", name: "Ada" },
          { _tag: "Renamed", name: "Grace" }
        ])
        assert.deepStrictEqual(typedEvents.map((e) => e.position), [from + 1, from + 2, from + 4])
        const live = yield* Log.subscribeAll({ from, filter: { categories: [cat] } }).pipe(Stream.take(4), Stream.runCollect)
        assert.deepStrictEqual(live.map((i) => (i._tag === "Event" ? i.event.payload : i._tag)), [...typedEvents.map((e) => e.payload), "CaughtUp"])
        // Without the filter the untyped event is read, and does not decode.
        const exit = yield* Effect.exit(Stream.runCollect(Log.readAll({ from })))
        assert.ok(Exit.isFailure(exit))
        const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
        assert.ok(failure?._tag === "Fail" && failure.error._tag === "CorruptedEventError")
        assert.deepStrictEqual([failure.error.streamId, failure.error.version], [`other${cat}-1`, 1])
        // Resuming after it passes it.
        const rest = yield* Stream.runCollect(Log.readAll({ from: from + 3 }))
        assert.deepStrictEqual(rest.map((e) => e.payload), [{ _tag: "Renamed", name: "Grace" }])
      })))

    it.live("listStreams: the ids of one category, each once", () =>
      run(Effect.gen(function*() {
        const cat = `cat${Date.now().toString(36)}${(counter++).toString(36)}`
        // Listed in DynamoDB's order of keys, by UTF-8 bytes: U+FF21 before U+1F600, although
        // in UTF-16 units (JavaScript's `<`) the surrogate of U+1F600 comes first.
        const ids = [...range(1, 3).map((i) => `${cat}-${i}`), `${cat}-\u{1F600}`, `${cat}-\uFF21`]
        yield* appendSome(ids, 2)
        yield* appendSome([`other${cat}-1`], 1)
        yield* awaitLogged(11)
        const log = yield* EventLog.EventLog
        // A stream id may be listed moments after its first event is in the log (DynamoDB:
        // the stream items are raised lazily after the entries, every `streamItemsInterval`):
        // look again until all are there.
        const listed = yield* Stream.runCollect(log.listStreams({ category: cat })).pipe(
          Effect.filterOrFail((l) => l.length >= ids.length),
          Effect.retry({ times: 100, schedule: Schedule.spaced("20 millis") }),
          Effect.orElseSucceed(() => [] as ReadonlyArray<string>)
        )
        assert.deepStrictEqual(listed, [...range(1, 3).map((i) => `${cat}-${i}`), `${cat}-\uFF21`, `${cat}-\u{1F600}`])
        assert.deepStrictEqual(yield* Stream.runCollect(log.listStreams({ category: `none${cat}` })), [])
      })))
  })

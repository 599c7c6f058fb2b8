/**
 * The limits an event store's storage declares (`EventStore.Storage.limits`) are the ones
 * core enforces: sizes counted by the storage's own `eventSize`, appends refused before
 * anything is written, bulk imports cut to fit one `write`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { EventStore } from "../src/index.js"
import { makeMemoryStorage } from "../src/internal/memoryStorage.js"

/** The memory storage with `limits` declared, counting its `write`s and the versions sizes were asked for. */
const storageWith = (limits: Partial<EventStore.StorageLimits> | undefined) => {
  const inner = makeMemoryStorage()
  const writes: Array<number> = []
  const storage: EventStore.Storage = {
    ...inner,
    limits,
    write: (streamId, base, events) => {
      writes.push(events.length)
      return inner.write(streamId, base, events)
    }
  }
  return { storage, writes, eventCount: inner.eventCount }
}

const events = (n: number, payload: unknown = 1): Array<EventStore.NewEvent> =>
  Array.from({ length: n }, () => ({ type: "T", payload }))

describe("EventStore.Storage.limits", () => {
  it.effect("an event larger than the declared size, counted by the declared eventSize, is refused before writing", () =>
    Effect.gen(function*() {
      const versions: Array<number> = []
      const { storage, writes, eventCount } = storageWith({
        maxEventBytes: 10,
        eventSize: (_streamId, version, e) => {
          versions.push(version)
          return e.payloadJson.length
        }
      })
      const store = yield* EventStore.make(storage)
      assert.strictEqual((yield* store.append("s", [{ type: "T", payload: "12345678" }], { expectedVersion: "noStream" })).version, 1)
      const error = yield* Effect.flip(store.append("s", [{ type: "T", payload: "123456789" }], { expectedVersion: 1 }))
      assert.deepInclude(error, { _tag: "EventTooLargeError", sizeBytes: 11, maxBytes: 10, index: 0 })
      assert.deepStrictEqual(writes, [1])
      assert.strictEqual(yield* eventCount, 1)
      // The version is not known before the write: the widest is counted.
      assert.isTrue(versions.every((v) => v === Number.MAX_SAFE_INTEGER))
    }))

  it.effect("an append over the declared events or bytes per write is refused before writing", () =>
    Effect.gen(function*() {
      const { storage, writes } = storageWith({ maxEventsPerWrite: 3, maxWriteBytes: 20, eventSize: (_s, _v, e) => e.payloadJson.length })
      const store = yield* EventStore.make(storage)
      const tooMany = yield* Effect.flip(store.append("s", events(4), { expectedVersion: "noStream" }))
      assert.deepInclude(tooMany, { _tag: "AppendTooLargeError", eventCount: 4, maxEvents: 3, maxBytes: 20 })
      const tooLarge = yield* Effect.flip(store.append("s", events(3, "1234567"), { expectedVersion: "noStream" }))
      assert.deepInclude(tooLarge, { _tag: "AppendTooLargeError", eventCount: 3, totalBytes: 27, maxBytes: 20 })
      assert.deepStrictEqual(writes, [])
      assert.strictEqual((yield* store.append("s", events(3), { expectedVersion: "noStream" })).version, 3)
    }))

  it.effect("appendBulk cuts its writes to the declared limits", () =>
    Effect.gen(function*() {
      const { storage, writes } = storageWith({ maxEventsPerWrite: 4, maxWriteBytes: 12, eventSize: (_s, _v, e) => e.payloadJson.length })
      const store = yield* EventStore.make(storage)
      const result = yield* EventStore.appendBulk("s", events(10), { expectedVersion: "noStream" }).pipe(
        Effect.provideService(EventStore.EventStore, store)
      )
      assert.strictEqual(result.version, 10)
      assert.deepStrictEqual(writes, [4, 4, 2])
      writes.length = 0
      // `"12345"` is 7 bytes of JSON: two do not fit in 12 bytes, so one event per write.
      yield* EventStore.appendBulk("s", events(5, "12345"), { expectedVersion: 10 }).pipe(
        Effect.provideService(EventStore.EventStore, store)
      )
      assert.deepStrictEqual(writes, [1, 1, 1, 1, 1])
    }))

  it.effect("what a storage leaves out is the default, DynamoDB's", () =>
    Effect.gen(function*() {
      assert.deepInclude(EventStore.defaultStorageLimits, { maxEventBytes: 409_600, maxEventsPerWrite: 100, maxWriteBytes: 4 * 1024 * 1024 })
      for (const limits of [undefined, {}, { maxEventBytes: 409_600 }]) {
        const { storage } = storageWith(limits)
        const store = yield* EventStore.make(storage)
        const error = yield* Effect.flip(store.append("s", events(101), { expectedVersion: "noStream" }))
        assert.deepInclude(error, { _tag: "AppendTooLargeError", maxEvents: 100, maxBytes: 4 * 1024 * 1024 })
        const huge = yield* Effect.flip(store.append("s", events(1, "x".repeat(409_600)), { expectedVersion: "noStream" }))
        assert.deepInclude(huge, { _tag: "EventTooLargeError", maxBytes: 409_600 })
      }
    }))

  it.effect("a declared limit that is not an integer >= 1 is a defect naming it", () =>
    Effect.gen(function*() {
      for (const [limits, field] of [
        [{ maxEventBytes: 0 }, "maxEventBytes"],
        [{ maxEventsPerWrite: 1.5 }, "maxEventsPerWrite"],
        [{ maxWriteBytes: Number.NaN }, "maxWriteBytes"]
      ] as const) {
        const exit = yield* Effect.exit(EventStore.make(storageWith(limits).storage))
        assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
        if (Exit.isFailure(exit)) assert.match(String(Cause.squash(exit.cause)), new RegExp(`EventStore\\.make: the storage declares limits\\.${field}`))
      }
    }))
})

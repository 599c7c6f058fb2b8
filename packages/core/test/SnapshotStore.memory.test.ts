import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import { SnapshotStore } from "../src/index.js"
import { snapshotStoreConformance } from "../testing/SnapshotStoreConformance.js"
import { failure } from "../testing/utils.js"

snapshotStoreConformance("in-memory", (options) =>
  options === undefined ? SnapshotStore.layerMemory : SnapshotStore.layerMemoryWith(options))


describe("SnapshotStore.make over a Storage", () => {
  it.effect("a state over the storage's declared limit is a SnapshotEncodeError and writes nothing", () =>
    Effect.gen(function*() {
      const storage = SnapshotStore.makeMemoryStorage({ maxStateBytes: 10 })
      const store = yield* SnapshotStore.make(storage)
      yield* store.save("s", { version: 1, state: "12345678" }) // 10 bytes of JSON
      const e = failure(yield* Effect.exit(store.save("s", { version: 2, state: "123456789" })))
      assert.deepInclude(e, { _tag: "SnapshotEncodeError", streamId: "s", version: 2 })
      assert.match(e.message, /11 bytes/)
      assert.strictEqual(yield* storage.snapshotCount, 1)
    }))

  it.effect("a snapshot that disappears between list and read is listed again; one that keeps disappearing is corrupted", () =>
    Effect.gen(function*() {
      const inner = SnapshotStore.makeMemoryStorage()
      let missing = 0
      const storage: SnapshotStore.Storage = {
        ...inner,
        read: (streamId, snapshot) =>
          missing-- > 0 ? Effect.succeed({ _tag: "Missing", reason: "gone" }) : inner.read(streamId, snapshot)
      }
      const store = yield* SnapshotStore.make(storage)
      yield* store.save("s", { version: 3, state: { n: 3 } })
      missing = 2
      assert.deepStrictEqual(Option.getOrThrow(yield* store.load("s")).state, { n: 3 })
      missing = 10
      const e = failure(yield* Effect.exit(store.load("s")))
      assert.deepInclude(e, { _tag: "CorruptedSnapshotError", streamId: "s", version: 3 })
      assert.match(e.message, /gone/)
      assert.strictEqual(missing, 6, "one read and three more attempts")
    }))

  it.effect("what storage holds is checked: a bad schema version, saved-at time or JSON is a CorruptedSnapshotError", () =>
    Effect.gen(function*() {
      const stored = (fields: Partial<SnapshotStore.StoredSnapshot>, json = "{}"): SnapshotStore.Storage => ({
        list: () => Effect.succeed([{ version: 4, schemaVersion: 1, savedAtMillis: 0, ref: undefined, ...fields }]),
        write: () => Effect.void,
        read: () => Effect.succeed({ _tag: "Found", stateJson: json }),
        remove: () => Effect.void
      })
      const cases: Array<[SnapshotStore.Storage, RegExp]> = [
        [stored({ schemaVersion: "1" }), /schema version/],
        [stored({ schemaVersion: -1 }), /schema version/],
        [stored({ savedAtMillis: Number.NaN }), /saved-at/],
        [stored({ savedAtMillis: 1e20 }), /saved-at/],
        [stored({}, "{"), /not valid JSON/]
      ]
      for (const [storage, reason] of cases) {
        const store = yield* SnapshotStore.make(storage)
        const e = failure(yield* Effect.exit(store.load("s")))
        assert.deepInclude(e, { _tag: "CorruptedSnapshotError", streamId: "s", version: 4 })
        assert.match(e.message, reason)
      }
      // An entry without an integer version cannot be named or ordered: it is ignored.
      assert.isTrue(Option.isNone(yield* (yield* SnapshotStore.make(stored({ version: Number.NaN }))).load("s")))
    }))

  it.effect("retention removes what is beyond keepLast and tells storage what it keeps", () =>
    Effect.gen(function*() {
      const inner = SnapshotStore.makeMemoryStorage()
      const removed: Array<[Array<number>, Array<number>]> = []
      const storage: SnapshotStore.Storage = {
        ...inner,
        remove: (streamId, drop, keep) => {
          removed.push([drop.map((s) => s.version), keep.map((s) => s.version)])
          return inner.remove(streamId, drop, keep)
        }
      }
      const store = yield* SnapshotStore.make(storage, { keepLast: 2 })
      for (const version of [1, 2, 3]) yield* store.save("s", { version, state: version })
      assert.deepStrictEqual(removed, [[[1], [3, 2]]])
      assert.strictEqual(yield* inner.snapshotCount, 2)
    }))

  it.effect("keepLast below 1 is refused when the store is made", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(SnapshotStore.make(SnapshotStore.makeMemoryStorage(), { keepLast: 0 }))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
    }))
})

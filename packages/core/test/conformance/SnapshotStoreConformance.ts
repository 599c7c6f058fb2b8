/**
 * The SnapshotStore contract, run against the in-memory store and the DynamoDB store.
 */
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Layer, Option, Schema } from "effect"
import { SnapshotStore } from "../../src/index.js"
import { failure } from "../utils.js"

export type MakeSnapshotStore = (options?: SnapshotStore.SnapshotStoreOptions) => Layer.Layer<SnapshotStore.SnapshotStore, unknown>

let counter = 0
const streamId = () => `snap-${Date.now().toString(36)}-${(counter++).toString(36)}`


/** A JSON string value whose encoded form (with quotes) is exactly `bytes` bytes. */
export const stringOfJsonBytes = (bytes: number, seed = "a") => seed.repeat(bytes - 2)

export const State = Schema.Struct({ balance: Schema.Finite, owners: Schema.Array(Schema.String) })
const Typed = SnapshotStore.typed(State, { schemaVersion: 7 })

export const snapshotStoreConformance = (name: string, make: MakeSnapshotStore) =>
  describe(`SnapshotStore conformance: ${name}`, { timeout: 120_000 }, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, SnapshotStore.SnapshotStore>, options?: SnapshotStore.SnapshotStoreOptions) =>
      effect.pipe(Effect.provide(make(options)))
    const store = SnapshotStore.SnapshotStore

    it.live("a stream without snapshots loads none", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        assert.isTrue(Option.isNone(yield* s.load(streamId())))
      })))

    it.live("saves and loads the newest snapshot, with its version, schema version and time", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        yield* s.save(id, { version: 5, state: { n: 5 } })
        yield* s.save(id, { version: 9, state: { n: 9, nested: [1, { a: "é😀" }] }, schemaVersion: 3 })
        const loaded = Option.getOrThrow(yield* s.load(id))
        assert.strictEqual(loaded.streamId, id)
        assert.strictEqual(loaded.version, 9)
        assert.strictEqual(loaded.schemaVersion, 3)
        assert.deepStrictEqual(loaded.state, { n: 9, nested: [1, { a: "é😀" }] })
        assert.isTrue(Math.abs(DateTime.toEpochMillis(loaded.savedAt) - Date.now()) < 60_000)
        const older = Option.getOrThrow(yield* s.load(id, { atOrBefore: 8 }))
        assert.strictEqual(older.version, 5)
        assert.strictEqual(older.schemaVersion, 1, "the default schema version is 1")
        assert.isTrue(Option.isNone(yield* s.load(id, { atOrBefore: 4 })))
        assert.strictEqual(Option.getOrThrow(yield* s.load(id, { atOrBefore: 9 })).version, 9)
      })))

    it.live("a snapshot made with another schema version is ignored", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        yield* s.save(id, { version: 10, state: "old", schemaVersion: 1 })
        yield* s.save(id, { version: 20, state: "new", schemaVersion: 2 })
        assert.strictEqual(Option.getOrThrow(yield* s.load(id, { schemaVersion: 1 })).state, "old")
        assert.strictEqual(Option.getOrThrow(yield* s.load(id, { schemaVersion: 2 })).state, "new")
        assert.isTrue(Option.isNone(yield* s.load(id, { schemaVersion: 3 })))
      })))

    it.live("keeps only the newest keepLast snapshots", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        for (const version of [1, 2, 3, 4, 5]) yield* s.save(id, { version, state: { version } })
        assert.strictEqual(Option.getOrThrow(yield* s.load(id)).version, 5)
        assert.strictEqual(Option.getOrThrow(yield* s.load(id, { atOrBefore: 4 })).version, 4)
        assert.isTrue(Option.isNone(yield* s.load(id, { atOrBefore: 3 })), "version 3 was deleted by retention")
      }), { keepLast: 2 }))

    it.live("states of any size: 2 MB+, and exactly at and around a part boundary", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        const big = Array.from({ length: 40_000 }, (_, i) => ({ i, name: `owner-${i}`, tags: ["a", "b", "ç"] }))
        assert.isAbove(JSON.stringify(big).length, 2_000_000)
        yield* s.save(id, { version: 1, state: big })
        assert.deepStrictEqual(Option.getOrThrow(yield* s.load(id)).state, big)
        for (const [version, bytes] of [[2, 390_000], [3, 390_001], [4, 389_999], [5, 780_000], [6, 4_096], [7, 4_097]] as const) {
          const state = stringOfJsonBytes(bytes, version % 2 === 0 ? "x" : "y")
          yield* s.save(id, { version, state })
          const loaded = Option.getOrThrow(yield* s.load(id))
          assert.strictEqual(loaded.version, version)
          assert.strictEqual(loaded.state, state, `state of ${bytes} JSON bytes`)
        }
      }), { keepLast: 10 }))

    it.live("keeps what was saved, not what the caller mutates afterwards", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        const state = { list: [1] }
        yield* s.save(id, { version: 1, state })
        state.list.push(2)
        assert.deepStrictEqual(Option.getOrThrow(yield* s.load(id)).state, { list: [1] })
      })))

    it.live("bad input is refused and stores nothing", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        yield* s.save(id, { version: 1, state: "kept" })
        const e1 = failure(yield* Effect.exit(s.save("", { version: 1, state: 1 })))
        assert.deepInclude(e1, { _tag: "InvalidInputError", field: "streamId" })
        const e2 = failure(yield* Effect.exit(s.save(id, { version: 0, state: 1 })))
        assert.deepInclude(e2, { _tag: "InvalidInputError", field: "snapshot.version" })
        const e3 = failure(yield* Effect.exit(s.save(id, { version: 2, state: { n: 1n } })))
        assert.deepInclude(e3, { _tag: "SnapshotEncodeError", streamId: id, version: 2 })
        const e4 = failure(yield* Effect.exit(s.save(id, { version: 3, state: 1, schemaVersion: -1 })))
        assert.deepInclude(e4, { _tag: "InvalidInputError", field: "snapshot.schemaVersion" })
        const e5 = failure(yield* Effect.exit(s.load(id, { atOrBefore: 0 })))
        assert.deepInclude(e5, { _tag: "InvalidInputError", field: "options.atOrBefore" })
        const e6 = failure(yield* Effect.exit(Typed.save(id, { version: 4, state: { balance: "x" } as never })))
        assert.deepInclude(e6, { _tag: "SnapshotEncodeError", version: 4 })
        const loaded = Option.getOrThrow(yield* s.load(id))
        assert.strictEqual(loaded.version, 1)
        assert.strictEqual(loaded.state, "kept")
      })))

    it.live("typed states with Dates and non-finite numbers survive the round trip", () =>
      run(Effect.gen(function*() {
        const Clock = SnapshotStore.typed(Schema.Struct({ at: Schema.Date, max: Schema.Number }), { schemaVersion: 1 })
        const id = streamId()
        const at = new Date("2026-05-06T07:08:09.000Z")
        yield* Clock.save(id, { version: 1, state: { at, max: Number.NEGATIVE_INFINITY } })
        const loaded = Option.getOrThrow(yield* Clock.load(id))
        assert.isTrue(loaded.state.at instanceof Date)
        assert.strictEqual(loaded.state.at.getTime(), at.getTime())
        assert.strictEqual(loaded.state.max, Number.NEGATIVE_INFINITY)
      })))

    it.live("typed access encodes with the state Schema and rejects stored states that no longer decode", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        yield* Typed.save(id, { version: 3, state: { balance: 10, owners: ["ada"] } })
        const loaded = Option.getOrThrow(yield* Typed.load(id))
        assert.deepStrictEqual(loaded.state, { balance: 10, owners: ["ada"] })
        assert.strictEqual(loaded.schemaVersion, 7)
        // A state stored with the same schema version but another shape (a bug): typed error.
        yield* s.save(id, { version: 4, state: { balance: "ten" }, schemaVersion: 7 })
        const e = failure(yield* Effect.exit(Typed.load(id)))
        assert.deepInclude(e, { _tag: "CorruptedSnapshotError", streamId: id, version: 4 })
        // Snapshots of other schema versions are invisible to the typed store.
        const other = streamId()
        yield* s.save(other, { version: 4, state: { balance: 1, owners: [] }, schemaVersion: 6 })
        assert.isTrue(Option.isNone(yield* Typed.load(other)))
      })))
  })

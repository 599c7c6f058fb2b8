/**
 * The SnapshotStore contract, run against the in-memory store and the DynamoDB store.
 */
import { assert, describe, it } from "./vitest.js"
import { Arbitrary, DateTime, Effect, Exit, Layer, Option, Schema } from "effect"
import { SnapshotStore } from "../src/index.js"
import { failure } from "./utils.js"
import { check, expectTyped, holds, hostile, oneOf, show, Tally, weighted } from "./properties.js"

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

    it.live("a stream id with a lone surrogate is refused by save and load, and stores nothing", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const base = streamId()
        for (const id of ["acct-\uD800", "acct-\uDC00", "acct-\uDFFF", `${base}-\uD800`, `\uDBFF${base}`, `${base}-\uDC00\uD800`]) {
          const e1 = failure(yield* Effect.exit(s.save(id, { version: 1, state: "x" })))
          assert.deepInclude(e1, { _tag: "InvalidInputError", operation: "save", field: "streamId" }, show(id))
          const e2 = failure(yield* Effect.exit(s.load(id)))
          assert.deepInclude(e2, { _tag: "InvalidInputError", operation: "load", field: "streamId" }, show(id))
          const e3 = failure(yield* Effect.exit(Typed.save(id, { version: 1, state: { balance: 1, owners: [] } })))
          assert.deepInclude(e3, { _tag: "InvalidInputError", field: "streamId" }, show(id))
          // What storage would have made of the id holds nothing.
          assert.isTrue(Option.isNone(yield* s.load(id.toWellFormed())), show(id))
        }
        // Well-formed astral ids that differ only in their low surrogate are kept apart.
        yield* s.save(`${base}-😀`, { version: 1, state: "grinning" })
        yield* s.save(`${base}-😁`, { version: 1, state: "beaming" })
        assert.strictEqual(Option.getOrThrow(yield* s.load(`${base}-😀`)).state, "grinning")
        assert.strictEqual(Option.getOrThrow(yield* s.load(`${base}-😁`)).state, "beaming")
      })))

    it.live("malformed snapshots and load options are typed errors naming the field, and store nothing", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        yield* s.save(id, { version: 1, state: "kept" })
        const saves: ReadonlyArray<readonly [unknown, string]> = [
          [null, "snapshot"],
          ["x", "snapshot"],
          [{ version: 1.5, state: 1 }, "snapshot.version"],
          [{ version: Number.NaN, state: 1 }, "snapshot.version"],
          [{ version: Number.MAX_SAFE_INTEGER + 2, state: 1 }, "snapshot.version"],
          [{ version: "2", state: 1 }, "snapshot.version"],
          [{ state: 1 }, "snapshot.version"],
          [{ version: 2 }, "snapshot.state"],
          [{ version: 2, state: 1, schemaVersion: 1.5 }, "snapshot.schemaVersion"],
          [{ version: 2, state: 1, schemaVersion: -1 }, "snapshot.schemaVersion"],
          [{ version: 2, state: 1, schemaVersion: "2" }, "snapshot.schemaVersion"],
          [{ version: 2, state: 1, schemaVersion: null }, "snapshot.schemaVersion"]
        ]
        for (const [snapshot, field] of saves) {
          const e = failure(yield* Effect.exit(s.save(id, snapshot as SnapshotStore.SaveSnapshot)))
          assert.deepInclude(e, { _tag: "InvalidInputError", operation: "save", field }, show(snapshot))
        }
        for (const state of [undefined, Symbol("s"), () => 1]) {
          const e = failure(yield* Effect.exit(s.save(id, { version: 2, state })))
          assert.deepInclude(e, { _tag: "SnapshotEncodeError", streamId: id, version: 2 }, String(state))
        }
        const loads: ReadonlyArray<readonly [unknown, string]> = [
          [{ atOrBefore: 1.5 }, "options.atOrBefore"],
          [{ atOrBefore: 0 }, "options.atOrBefore"],
          [{ atOrBefore: Number.NaN }, "options.atOrBefore"],
          [{ atOrBefore: "3" }, "options.atOrBefore"],
          [{ schemaVersion: -1 }, "options.schemaVersion"],
          [{ schemaVersion: 1.5 }, "options.schemaVersion"],
          [null, "options"],
          ["x", "options"]
        ]
        for (const [options, field] of loads) {
          for (const stream of [id, streamId()]) {
            const e = failure(yield* Effect.exit(s.load(stream, options as SnapshotStore.LoadOptions)))
            assert.deepInclude(e, { _tag: "InvalidInputError", operation: "load", field }, show(options))
          }
        }
        const loaded = Option.getOrThrow(yield* s.load(id))
        assert.strictEqual(loaded.version, 1)
        assert.strictEqual(loaded.state, "kept")
        // The extremes of the valid range are accepted.
        yield* s.save(id, { version: Number.MAX_SAFE_INTEGER, state: "last", schemaVersion: 0 })
        const last = Option.getOrThrow(yield* s.load(id, { atOrBefore: Number.MAX_SAFE_INTEGER, schemaVersion: 0 }))
        assert.strictEqual(last.version, Number.MAX_SAFE_INTEGER)
        assert.strictEqual(last.state, "last")
      })))

    it.live("a later save at the same version replaces the earlier one", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const id = streamId()
        yield* s.save(id, { version: 3, state: "first" })
        yield* s.save(id, { version: 3, state: "second" })
        const loaded = Option.getOrThrow(yield* s.load(id))
        assert.strictEqual(loaded.version, 3)
        assert.strictEqual(loaded.state, "second", "load returned a state that a later save replaced")
        assert.strictEqual(Option.getOrThrow(yield* s.load(id, { atOrBefore: 3 })).state, "second")
      })))

    it.live("property (60 generated cases): save and load give a result or a typed error, never a defect; a refused save stores nothing", () =>
      run(Effect.gen(function*() {
        const s = yield* store
        const prefix = streamId()
        const SLOTS = ["A", "B", "😀"] as const
        const keyOf = (u: unknown) => (typeof u === "string" && (SLOTS as ReadonlyArray<string>).includes(u) ? `${prefix}-${u}` : u)
        const isKey = (u: unknown): u is string =>
          typeof u === "string" && u.length > 0 && u.isWellFormed() && Buffer.byteLength(u, "utf8") <= 1024
        const FIELDS = ["streamId", "snapshot", "version", "state", "schemaVersion", "options", "atOrBefore", "loadSchemaVersion"] as const
        const arb = Arbitrary.map(
          Arbitrary.all({
            operation: oneOf(["save", "save", "load"] as const),
            streamId: weighted<unknown>([3, oneOf(SLOTS)], [1, Arbitrary.schema(Schema.String)]),
            snapshot: Arbitrary.all({
              version: oneOf([1, 2, 3, 10, Number.MAX_SAFE_INTEGER]),
              state: Arbitrary.schema(Schema.Unknown),
              schemaVersion: oneOf([undefined, 0, 1, 2])
            }),
            options: weighted<unknown>(
              [1, Arbitrary.Constant(undefined)],
              [2, Arbitrary.all({ atOrBefore: oneOf([undefined, 1, 2, 10, Number.MAX_SAFE_INTEGER]), schemaVersion: oneOf([undefined, 0, 1, 2]) })]
            ),
            corruption: weighted<{ readonly field: typeof FIELDS[number]; readonly value: unknown } | undefined>(
              [3, Arbitrary.Constant(undefined)],
              [2, Arbitrary.all({ field: oneOf(FIELDS), value: hostile })]
            )
          }),
          ({ corruption, ...input }): { operation: "save" | "load"; streamId: unknown; snapshot: unknown; options: unknown } => {
            if (corruption === undefined) return input
            const { field, value } = corruption
            switch (field) {
              case "streamId":
              case "snapshot":
              case "options":
                return { ...input, [field]: value }
              case "atOrBefore":
                return { ...input, options: { ...(input.options as object | undefined), atOrBefore: value } }
              case "loadSchemaVersion":
                return { ...input, options: { ...(input.options as object | undefined), schemaVersion: value } }
              default:
                return { ...input, snapshot: { ...input.snapshot, [field]: value } }
            }
          }
        )
        const loadProbe = (id: unknown) => {
          const sibling = typeof id === "string" ? id.toWellFormed() : undefined
          return isKey(sibling) ? s.load(sibling).pipe(Effect.map(show)) : Effect.succeed("not a key")
        }
        const saved = new Set<string>()
        const tally = new Tally()
        yield* holds(arb, (input) =>
          Effect.gen(function*() {
            const id = keyOf(input.streamId) as string
            if (input.operation === "load") {
              const exit = yield* Effect.exit(s.load(id, input.options as SnapshotStore.LoadOptions))
              const outcome = yield* expectTyped("load", exit, ["InvalidInputError", "StorageError"])
              tally.record(outcome)
              if (outcome._tag === "Success" && Option.isSome(outcome.value)) {
                const found = outcome.value.value
                const o = input.options as SnapshotStore.LoadOptions | undefined
                yield* check(
                  found.streamId === id && (o?.atOrBefore === undefined || found.version <= o.atOrBefore) &&
                    (o?.schemaVersion === undefined || found.schemaVersion === o.schemaVersion),
                  () => `load ${show(o)} gave ${show(found)}`
                )
              }
              return
            }
            const snapshot = input.snapshot as SnapshotStore.SaveSnapshot
            const before = yield* loadProbe(id)
            const exit = yield* Effect.exit(s.save(id, snapshot))
            const outcome = yield* expectTyped("save", exit, ["InvalidInputError", "SnapshotEncodeError", "StorageError"])
            tally.record(outcome)
            if (outcome._tag === "Refused") {
              const after = yield* loadProbe(id)
              return yield* check(after === before, () => `refused with ${outcome.error._tag}, but the stored snapshot went from ${before} to ${after}`)
            }
            const schemaVersion = snapshot.schemaVersion ?? 1
            const loaded = yield* s.load(id, { atOrBefore: snapshot.version, schemaVersion })
            yield* check(Option.isSome(loaded) && loaded.value.version === snapshot.version, () => `saved at ${snapshot.version}, loaded ${show(loaded)}`)
            // The first save of a version must come back as saved (JSON).
            const key = `${id}#${snapshot.version}#${schemaVersion}`
            if (!saved.has(key) && Option.isSome(loaded)) {
              yield* check(
                JSON.stringify(loaded.value.state) === JSON.stringify(snapshot.state),
                () => `saved ${show(snapshot.state)}, loaded ${show(loaded.value.state)}`
              )
            }
            saved.add(key)
          }), { runs: 60 })
        tally.assertMixed(5)
      }), { keepLast: 1000 }))
  })

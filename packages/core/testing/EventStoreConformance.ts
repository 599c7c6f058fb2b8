/**
 * The EventStore contract, written once and run against every implementation (the
 * in-memory store here, the DynamoDB store in @dynamo-es/dynamodb). An implementation
 * passes when all of it passes.
 */
import { assert, describe, it } from "./vitest.js"
import { Arbitrary, Cause, Context, DateTime, Duration, Effect, Exit, Layer, Schema, Stream } from "effect"
import { Errors, EventStore } from "../src/index.js"
import { failure, range } from "./utils.js"
import { check, expectTyped, holds, hostile, oneOf, show, Tally, validMetadata, weighted } from "./properties.js"

/**
 * What the suite needs besides the store: a way to count everything stored, so that it
 * can prove that a refused input left storage untouched.
 */
export class StoreProbe extends Context.Service<StoreProbe, {
  /** Number of stored events (DynamoDB: items in the table). */
  readonly countItems: Effect.Effect<number, unknown>
}>()("@dynamo-es/core/test/StoreProbe") {}

export type MakeStore = (options?: EventStore.EventStoreOptions) => Layer.Layer<EventStore.EventStore | StoreProbe, unknown>

export const Opened = Schema.TaggedStruct("Opened", { owner: Schema.String })
export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite })
export const Note = Schema.TaggedStruct("Note", { text: Schema.String })
export const TestEvent = Schema.Union([Opened, Deposited, Note])
export type TestEvent = typeof TestEvent.Type

export const Accounts = EventStore.typed(TestEvent)

const deposit = (amount: number): TestEvent => ({ _tag: "Deposited", amount })
const deposits = (n: number, start = 1): Array<TestEvent> => Array.from({ length: n }, (_, i) => deposit(start + i))

let counter = 0
/** A stream id unique within the run, so tests never see each other's streams. */
export const streamId = (prefix = "s") => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`


const versions = (events: ReadonlyArray<{ readonly version: number }>) => events.map((e) => e.version)

const readAll = (id: string, options?: EventStore.ReadOptions) => Stream.runCollect(Accounts.read(id, options))

/** Runs `effect`, expects it to fail, and proves that the number of stored items did not change. */
const refusedWithoutWriting = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const probe = yield* StoreProbe
    const before = yield* probe.countItems
    const error = failure(yield* Effect.exit(effect))
    assert.strictEqual(yield* probe.countItems, before, "storage changed although the input was refused")
    return error
  })

export const eventStoreConformance = (name: string, makeStore: MakeStore, options: { readonly timeout?: number } = {}) =>
  describe(`EventStore conformance: ${name}`, { timeout: options.timeout ?? 60_000 }, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, EventStore.EventStore | StoreProbe>, storeOptions?: EventStore.EventStoreOptions) =>
      effect.pipe(Effect.provide(makeStore(storeOptions)))

    describe("round trips", () => {
      it.live("appends and reads back payloads, types, versions and metadata", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const result = yield* Accounts.append(id, [
            { _tag: "Opened", owner: "Ada" },
            EventStore.withOptions(deposit(10), { metadata: { actor: "user-1", custom: { tenant: "t1", n: 1 } } })
          ], { expectedVersion: "noStream", metadata: { correlationId: "corr-1", causationId: "cause-1" } })
          assert.strictEqual(result.version, 2)
          assert.deepStrictEqual(versions(result.events), [1, 2])

          const read = yield* readAll(id)
          assert.deepStrictEqual(read.map((e) => e.payload), [{ _tag: "Opened", owner: "Ada" }, deposit(10)])
          assert.deepStrictEqual(read.map((e) => e.type), ["Opened", "Deposited"])
          assert.deepStrictEqual(versions(read), [1, 2])
          assert.deepStrictEqual(read.map((e) => e.streamId), [id, id])
          assert.deepStrictEqual(read.map((e) => e.eventId), result.events.map((e) => e.eventId))
          assert.deepStrictEqual(read[0]!.metadata, { correlationId: "corr-1", causationId: "cause-1" })
          assert.deepStrictEqual(read[1]!.metadata, {
            actor: "user-1",
            correlationId: "corr-1",
            causationId: "cause-1",
            custom: { tenant: "t1", n: 1 }
          })
          assert.match(read[0]!.eventId, /^[0-9A-HJKMNP-TV-Z]{26}$/, "event ids are ULIDs")
          assert.notStrictEqual(read[0]!.eventId, read[1]!.eventId)
          assert.isTrue(read[0]!.eventId < read[1]!.eventId, "ULIDs of one append sort in version order")
          assert.isTrue(DateTime.isDateTime(read[0]!.recordedAt))
          assert.isTrue(Math.abs(DateTime.toEpochMillis(read[0]!.recordedAt) - Date.now()) < 60_000)
          assert.strictEqual(read[0]!.expiresAt, undefined)
        })))

      it.live("keeps what was appended, not what the caller mutates afterwards", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const event = { _tag: "Note" as const, text: "before" }
          yield* Accounts.append(id, [event], { expectedVersion: "noStream" })
          ;(event as { text: string }).text = "after"
          const [read] = yield* readAll(id)
          assert.deepStrictEqual(read!.payload, { _tag: "Note", text: "before" })
        })))

      it.live("payloads with Dates, non-finite numbers and bigints survive the round trip", () =>
        run(Effect.gen(function*() {
          const Stamped = Schema.TaggedStruct("Stamped", { at: Schema.Date, n: Schema.Number, big: Schema.BigInt })
          const Typed = EventStore.typed(Stamped)
          const id = streamId()
          const at = new Date("2026-01-02T03:04:05.678Z")
          const appended = yield* Typed.append(id, [
            { _tag: "Stamped", at, n: Number.POSITIVE_INFINITY, big: 12345678901234567890n },
            { _tag: "Stamped", at, n: Number.NaN, big: -1n }
          ], { expectedVersion: "noStream" })
          const read = yield* Stream.runCollect(Typed.read(id))
          for (const events of [appended.events, read]) {
            assert.isTrue(events[0]!.payload.at instanceof Date)
            assert.strictEqual(events[0]!.payload.at.getTime(), at.getTime())
            assert.strictEqual(events[0]!.payload.n, Number.POSITIVE_INFINITY)
            assert.strictEqual(events[0]!.payload.big, 12345678901234567890n)
            assert.isTrue(Number.isNaN(events[1]!.payload.n))
            assert.strictEqual(events[1]!.payload.big, -1n)
          }
        })))

      it.live("uses the caller's event id when given", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [EventStore.withOptions(deposit(1), { eventId: "my-id-1" })], { expectedVersion: "any" })
          const [read] = yield* readAll(id)
          assert.strictEqual(read!.eventId, "my-id-1")
        })))

      it.live("stores unicode and nested payloads through the untyped service", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId("ünï-😀")
          const payload = { text: "héllo 😀 \u0000", nested: { list: [1, 2.5, null, true], deep: { x: "y" } } }
          yield* store.append(id, [{ type: "Anything", payload }], { expectedVersion: "noStream" })
          const read = yield* Stream.runCollect(store.read(id))
          assert.deepStrictEqual(read[0]!.payload, payload)
          assert.strictEqual(read[0]!.streamId, id)
        })))
    })

    describe("expected version", () => {
      const seed = (id: string, n: number) => Accounts.append(id, deposits(n), { expectedVersion: "noStream" })

      it.live("noStream (and 0) succeed on a new stream and conflict on an existing one", () =>
        run(Effect.gen(function*() {
          const a = streamId()
          const b = streamId()
          assert.strictEqual((yield* Accounts.append(a, [deposit(1)], { expectedVersion: "noStream" })).version, 1)
          assert.strictEqual((yield* Accounts.append(b, [deposit(1)], { expectedVersion: 0 })).version, 1)
          const e1 = yield* refusedWithoutWriting(Accounts.append(a, [deposit(2)], { expectedVersion: "noStream" }))
          assert.deepInclude(e1, { _tag: "ConflictError", streamId: a, expectedVersion: "noStream", actualVersion: 1 })
          const e2 = yield* refusedWithoutWriting(Accounts.append(b, deposits(3), { expectedVersion: 0 }))
          assert.deepInclude(e2, { _tag: "ConflictError", streamId: b, expectedVersion: 0, actualVersion: 1 })
          assert.strictEqual(yield* Accounts.version(b), 1)
        })))

      it.live("an exact version succeeds only when it is the current one (behind and ahead conflict)", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* seed(id, 3)
          const behind = yield* refusedWithoutWriting(Accounts.append(id, [deposit(9)], { expectedVersion: 2 }))
          assert.deepInclude(behind, { _tag: "ConflictError", expectedVersion: 2, actualVersion: 3 })
          const ahead = yield* refusedWithoutWriting(Accounts.append(id, [deposit(9)], { expectedVersion: 4 }))
          assert.deepInclude(ahead, { _tag: "ConflictError", expectedVersion: 4, actualVersion: 3 })
          const farAhead = yield* refusedWithoutWriting(Accounts.append(id, deposits(2), { expectedVersion: 10 }))
          assert.deepInclude(farAhead, { _tag: "ConflictError", expectedVersion: 10, actualVersion: 3 })
          const ok = yield* Accounts.append(id, deposits(2, 4), { expectedVersion: 3 })
          assert.strictEqual(ok.version, 5)
          assert.deepStrictEqual(versions(yield* readAll(id)), [1, 2, 3, 4, 5])
        })))

      it.live("an exact version on a missing stream conflicts with actual version 0", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const e = yield* refusedWithoutWriting(Accounts.append(id, [deposit(1)], { expectedVersion: 3 }))
          assert.deepInclude(e, { _tag: "ConflictError", streamId: id, expectedVersion: 3, actualVersion: 0 })
          assert.strictEqual(yield* Accounts.version(id), 0)
        })))

      it.live("a bare version number from elsewhere is checked, not trusted", () =>
        run(Effect.gen(function*() {
          // The store has never seen stream `id` at version 5: it must not create 6 (a gap).
          const id = streamId()
          yield* seed(id, 2)
          const e = yield* refusedWithoutWriting(Accounts.append(id, [deposit(1)], { expectedVersion: 5 }))
          assert.deepInclude(e, { _tag: "ConflictError", actualVersion: 2 })
        })))

      it.live("streamExists needs an existing stream", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const e = yield* refusedWithoutWriting(Accounts.append(id, [deposit(1)], { expectedVersion: "streamExists" }))
          assert.deepInclude(e, { _tag: "ConflictError", expectedVersion: "streamExists", actualVersion: 0 })
          yield* seed(id, 2)
          const ok = yield* Accounts.append(id, deposits(3), { expectedVersion: "streamExists" })
          assert.strictEqual(ok.version, 5)
          assert.deepStrictEqual(versions(ok.events), [3, 4, 5])
        })))

      it.live("any appends at the end, on new and existing streams", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          assert.strictEqual((yield* Accounts.append(id, deposits(2), { expectedVersion: "any" })).version, 2)
          assert.strictEqual((yield* Accounts.append(id, deposits(1), { expectedVersion: "any" })).version, 3)
          assert.deepStrictEqual((yield* readAll(id)).map((e) => e.payload), [deposit(1), deposit(2), deposit(1)])
        })))

      it.live("a failed multi-event append writes none of its events", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* seed(id, 1)
          const other = streamId()
          yield* Accounts.append(other, deposits(1), { expectedVersion: "noStream" })
          // Another writer appended in between: the 10-event append must leave nothing behind.
          yield* Accounts.append(id, deposits(1), { expectedVersion: 1 })
          yield* refusedWithoutWriting(Accounts.append(id, deposits(10), { expectedVersion: 1 }))
          assert.deepStrictEqual(versions(yield* readAll(id)), [1, 2])
        })))
    })

    describe("reads", () => {
      it.live("reads forward, backward, in a range and with a limit", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(20), { expectedVersion: "noStream" })
          assert.deepStrictEqual(versions(yield* readAll(id)), range(1, 20))
          assert.deepStrictEqual(versions(yield* readAll(id, { direction: "backward" })), range(1, 20).reverse())
          assert.deepStrictEqual(versions(yield* readAll(id, { from: 5, to: 9 })), [5, 6, 7, 8, 9])
          assert.deepStrictEqual(versions(yield* readAll(id, { from: 5, to: 9, direction: "backward" })), [9, 8, 7, 6, 5])
          assert.deepStrictEqual(versions(yield* readAll(id, { from: 15 })), range(15, 20))
          assert.deepStrictEqual(versions(yield* readAll(id, { to: 3, direction: "backward" })), [3, 2, 1])
          assert.deepStrictEqual(versions(yield* readAll(id, { limit: 4 })), [1, 2, 3, 4])
          assert.deepStrictEqual(versions(yield* readAll(id, { limit: 4, direction: "backward" })), [20, 19, 18, 17])
          assert.deepStrictEqual(versions(yield* readAll(id, { from: 18, limit: 10 })), [18, 19, 20])
          assert.deepStrictEqual(versions(yield* readAll(id, { to: 500 })), range(1, 20))
          assert.deepStrictEqual(versions(yield* readAll(id, { consistentRead: false })), range(1, 20))
        })))

      it.live("pages through long streams in order (small pages, both directions)", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          for (let i = 0; i < 3; i++) yield* Accounts.append(id, deposits(50, i * 50 + 1), { expectedVersion: i * 50 })
          const forward = yield* readAll(id, { pageSize: 7 })
          assert.deepStrictEqual(versions(forward), range(1, 150))
          assert.deepStrictEqual(forward.map((e) => (e.payload as { amount: number }).amount), range(1, 150))
          assert.deepStrictEqual(versions(yield* readAll(id, { pageSize: 7, direction: "backward" })), range(1, 150).reverse())
          assert.deepStrictEqual(versions(yield* readAll(id, { pageSize: 7, from: 10, to: 30, limit: 15 })), range(10, 24))
        })))

      it.live("a read stream is lazy and can be run twice", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(30), { expectedVersion: "noStream" })
          const stream = Accounts.read(id, { pageSize: 10 })
          const first = yield* Stream.runCollect(stream.pipe(Stream.take(5)))
          assert.deepStrictEqual(versions(first), [1, 2, 3, 4, 5])
          assert.deepStrictEqual(versions(yield* Stream.runCollect(stream)), range(1, 30))
          assert.deepStrictEqual(versions(yield* Stream.runCollect(stream)), range(1, 30))
        })))

      it.live("readLast returns the last n events in version order", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(12), { expectedVersion: "noStream" })
          assert.deepStrictEqual(versions(yield* Accounts.readLast(id, 3)), [10, 11, 12])
          assert.deepStrictEqual(versions(yield* Accounts.readLast(id, 1)), [12])
          assert.deepStrictEqual(versions(yield* Accounts.readLast(id, 50)), range(1, 12))
        })))

      it.live("an unknown stream: read and readLast fail with NotFoundError, version is 0", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const e1 = failure(yield* Effect.exit(readAll(id)))
          assert.deepInclude(e1, { _tag: "NotFoundError", resource: "stream", id })
          const e2 = failure(yield* Effect.exit(readAll(id, { direction: "backward", from: 3 })))
          assert.strictEqual(e2._tag, "NotFoundError")
          const e3 = failure(yield* Effect.exit(Accounts.readLast(id, 5)))
          assert.deepInclude(e3, { _tag: "NotFoundError", resource: "stream", id })
          assert.strictEqual(yield* Accounts.version(id), 0)
          assert.isTrue((yield* EventStore.versionOption(id))._tag === "None")
        })))

      it.live("ifMissing: \"empty\" reads a missing stream as empty instead of failing", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          assert.deepStrictEqual(yield* readAll(id, { ifMissing: "empty" }), [])
          assert.deepStrictEqual(yield* readAll(id, { ifMissing: "empty", from: 5, direction: "backward" }), [])
          yield* Accounts.append(id, deposits(3), { expectedVersion: "noStream" })
          assert.deepStrictEqual(versions(yield* readAll(id, { ifMissing: "empty", from: 2 })), [2, 3])
          assert.deepStrictEqual(yield* readAll(id, { ifMissing: "empty", from: 4 }), [])
          const err = failure(yield* Effect.exit(readAll(id, { ifMissing: "never" as "fail" })))
          assert.deepInclude(err, { _tag: "InvalidInputError", field: "options.ifMissing" })
        })))

      it.live("an existing stream read past its end is empty, not an error", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(3), { expectedVersion: "noStream" })
          assert.deepStrictEqual(yield* readAll(id, { from: 4 }), [])
          assert.deepStrictEqual(yield* readAll(id, { from: 10, to: 20, direction: "backward" }), [])
          assert.strictEqual(yield* Accounts.version(id), 3)
          const option = yield* EventStore.versionOption(id)
          assert.isTrue(option._tag === "Some" && option.value === 3)
        })))

      it.live("a stored payload that no longer matches the Schema is a CorruptedEventError naming stream and version", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          yield* Accounts.append(id, deposits(2), { expectedVersion: "noStream" })
          // An old shape: `amount` was a string in an earlier version of the domain.
          yield* store.append(id, [{ type: "Deposited", payload: { _tag: "Deposited", amount: "12" } }], { expectedVersion: 2 })
          const e = failure(yield* Effect.exit(readAll(id)))
          assert.deepInclude(e, { _tag: "CorruptedEventError", streamId: id, version: 3 })
          assert.match((e as Errors.CorruptedEventError).message, /event 3 of stream/)
          const last = failure(yield* Effect.exit(Accounts.readLast(id, 1)))
          assert.deepInclude(last, { _tag: "CorruptedEventError", version: 3 })
          // The untyped service still reads it, for repair tooling.
          const raw = yield* Stream.runCollect(store.read(id, { from: 3 }))
          assert.deepStrictEqual(raw[0]!.payload, { _tag: "Deposited", amount: "12" })
        })))
    })

    describe("TTL", () => {
      it.live("an event's own TTL beats the store default; zero disables it", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [
            deposit(1),
            EventStore.withOptions(deposit(2), { ttl: "1 hour" }),
            EventStore.withOptions(deposit(3), { ttl: 0 })
          ], { expectedVersion: "noStream" })
          const [a, b, c] = yield* readAll(id)
          const expires = (e: EventStore.EventEnvelope<unknown>) =>
            e.expiresAt === undefined ? undefined : DateTime.toEpochMillis(e.expiresAt) - DateTime.toEpochMillis(e.recordedAt)
          const near = (actual: number | undefined, expected: number) =>
            assert.isTrue(actual !== undefined && Math.abs(actual - expected) <= 1000, `${actual} is not about ${expected}`)
          near(expires(a!), 24 * 3600_000)
          near(expires(b!), 3600_000)
          assert.strictEqual(c!.expiresAt, undefined)
        }), { defaultTtl: "1 day" }))
    })

    describe("bad input is refused and writes nothing", () => {
      it.live("empty, over-long and non-string stream ids", () =>
        run(Effect.gen(function*() {
          const e1 = yield* refusedWithoutWriting(Accounts.append("", [deposit(1)], { expectedVersion: "any" }))
          assert.deepInclude(e1, { _tag: "InvalidInputError", field: "streamId" })
          const e2 = yield* refusedWithoutWriting(Accounts.append("x".repeat(1025), [deposit(1)], { expectedVersion: "any" }))
          assert.deepInclude(e2, { _tag: "InvalidInputError", field: "streamId" })
          const e3 = yield* refusedWithoutWriting(Accounts.append("é".repeat(600), [deposit(1)], { expectedVersion: "any" }))
          assert.deepInclude(e3, { _tag: "InvalidInputError", field: "streamId" }, "the limit is in UTF-8 bytes")
          const e4 = failure(yield* Effect.exit(readAll("")))
          assert.deepInclude(e4, { _tag: "InvalidInputError", field: "streamId" })
          const e5 = failure(yield* Effect.exit(Accounts.version(undefined as unknown as string)))
          assert.deepInclude(e5, { _tag: "InvalidInputError", field: "streamId" })
          // The longest allowed id works.
          const longest = "y".repeat(1024)
          yield* Accounts.append(longest, [deposit(1)], { expectedVersion: "any" })
          assert.strictEqual(yield* Accounts.version(longest), 1)
        })))

      it.live("payloads that fail the Schema or are not JSON", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(1), { expectedVersion: "noStream" })
          const bad = { _tag: "Deposited", amount: "ten" } as unknown as TestEvent
          const e1 = yield* refusedWithoutWriting(Accounts.append(id, [deposit(2), bad], { expectedVersion: 1 }))
          assert.deepInclude(e1, { _tag: "EventEncodeError", streamId: id, index: 1, eventType: "Deposited" })
          const store = yield* EventStore.EventStore
          const e2 = yield* refusedWithoutWriting(store.append(id, [{ type: "Big", payload: { n: 10n } }], { expectedVersion: 1 }))
          assert.deepInclude(e2, { _tag: "EventEncodeError", index: 0 })
          const cyclic: Record<string, unknown> = {}
          cyclic.self = cyclic
          const e3 = yield* refusedWithoutWriting(store.append(id, [{ type: "Cyclic", payload: cyclic }], { expectedVersion: 1 }))
          assert.deepInclude(e3, { _tag: "EventEncodeError" })
          const e4 = yield* refusedWithoutWriting(
            store.append(id, [{ type: "T", payload: 1, metadata: { custom: { n: 1n } } }], { expectedVersion: 1 })
          )
          assert.deepInclude(e4, { _tag: "EventEncodeError" })
          const e5 = yield* refusedWithoutWriting(store.append(id, [{ type: "", payload: 1 }], { expectedVersion: 1 }))
          assert.deepInclude(e5, { _tag: "InvalidInputError", field: "events[0].type" })
          assert.deepStrictEqual(versions(yield* readAll(id)), [1])
        })))

      it.live("an event over DynamoDB's 400 KB item limit", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(1), { expectedVersion: "noStream" })
          const huge: TestEvent = { _tag: "Note", text: "x".repeat(410_000) }
          const e = yield* refusedWithoutWriting(Accounts.append(id, [deposit(2), huge], { expectedVersion: 1 }))
          assert.deepInclude(e, { _tag: "EventTooLargeError", streamId: id, index: 1, maxBytes: 409_600 })
          assert.isTrue((e as Errors.EventTooLargeError).sizeBytes > 409_600)
          // Just under the limit is accepted (a payload of ~400 KB).
          const large: TestEvent = { _tag: "Note", text: "x".repeat(400_000) }
          assert.strictEqual((yield* Accounts.append(id, [large], { expectedVersion: 1 })).version, 2)
          const [read] = yield* Accounts.readLast(id, 1)
          assert.strictEqual((read!.payload as { text: string }).text.length, 400_000)
        })))

      it.live("appends over one transaction (100 events or 4 MB)", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const e1 = yield* refusedWithoutWriting(Accounts.append(id, deposits(101), { expectedVersion: "noStream" }))
          assert.deepInclude(e1, { _tag: "AppendTooLargeError", eventCount: 101, maxEvents: 100 })
          const fat = Array.from({ length: 12 }, (): TestEvent => ({ _tag: "Note", text: "z".repeat(380_000) }))
          const e2 = yield* refusedWithoutWriting(Accounts.append(id, fat, { expectedVersion: "noStream" }))
          assert.deepInclude(e2, { _tag: "AppendTooLargeError", eventCount: 12 })
          assert.isTrue((e2 as Errors.AppendTooLargeError).totalBytes > 4 * 1024 * 1024)
          // Exactly 100 events is one transaction and is accepted.
          assert.strictEqual((yield* Accounts.append(id, deposits(100), { expectedVersion: "noStream" })).version, 100)
        })))

      it.live("invalid expected versions, empty appends, invalid read options", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          for (const expectedVersion of [-1, 1.5, Number.NaN, "latest"]) {
            const e = yield* refusedWithoutWriting(
              Accounts.append(id, [deposit(1)], { expectedVersion: expectedVersion as EventStore.ExpectedVersion })
            )
            assert.deepInclude(e, { _tag: "InvalidInputError", field: "options.expectedVersion" })
          }
          const e = yield* refusedWithoutWriting(Accounts.append(id, [], { expectedVersion: "any" }))
          assert.deepInclude(e, { _tag: "InvalidInputError", field: "events" })
          yield* Accounts.append(id, deposits(2), { expectedVersion: "noStream" })
          for (const [options, field] of [
            [{ from: 0 }, "options.from"],
            [{ to: 0 }, "options.to"],
            [{ from: 5, to: 4 }, "options.to"],
            [{ limit: 0 }, "options.limit"],
            [{ pageSize: 1.5 }, "options.pageSize"],
            [{ direction: "sideways" }, "options.direction"]
          ] as const) {
            const err = failure(yield* Effect.exit(readAll(id, options as EventStore.ReadOptions)))
            assert.deepInclude(err, { _tag: "InvalidInputError", field })
          }
          const last = failure(yield* Effect.exit(Accounts.readLast(id, 0)))
          assert.deepInclude(last, { _tag: "InvalidInputError", field: "n" })
          const ttl = yield* refusedWithoutWriting(
            Accounts.append(id, [EventStore.withOptions(deposit(1), { ttl: -5 })], { expectedVersion: 2 })
          )
          assert.deepInclude(ttl, { _tag: "InvalidInputError", field: "events[0].ttl" })
        })))
    })

    describe("appendBulk (not atomic as a whole)", () => {
      it.live("imports any number of events as consecutive transactions, split by count and by size", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const result = yield* Accounts.appendBulk(id, deposits(250), { expectedVersion: "noStream" })
          assert.strictEqual(result.version, 250)
          assert.deepStrictEqual(versions(result.events), range(1, 250))
          const read = yield* readAll(id)
          assert.deepStrictEqual(read.map((e) => (e.payload as { amount: number }).amount), range(1, 250))
          assert.deepStrictEqual(read.map((e) => e.eventId), result.events.map((e) => e.eventId))
          // 12 events of 380 KB do not fit one 4 MB transaction: split by size.
          const fat = Array.from({ length: 12 }, (_, i): TestEvent => ({ _tag: "Note", text: `${i}`.padEnd(380_000, "z") }))
          const big = yield* Accounts.appendBulk(id, fat, { expectedVersion: 250 })
          assert.strictEqual(big.version, 262)
          const last = yield* Accounts.readLast(id, 12)
          assert.deepStrictEqual(last.map((e) => (e.payload as { text: string }).text.slice(0, 2).replace(/z/g, "")), range(0, 11).map(String))
        })))

      it.live("validates every event before writing, and a first failed transaction writes nothing", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const events = deposits(250)
          events[180] = { _tag: "Deposited", amount: "x" } as unknown as TestEvent
          const e1 = yield* refusedWithoutWriting(Accounts.appendBulk(id, events, { expectedVersion: "noStream" }))
          assert.deepInclude(e1, { _tag: "EventEncodeError", index: 180 })
          yield* Accounts.append(id, deposits(1), { expectedVersion: "noStream" })
          const e2 = yield* refusedWithoutWriting(Accounts.appendBulk(id, deposits(250), { expectedVersion: "noStream" }))
          assert.deepInclude(e2, { _tag: "ConflictError", actualVersion: 1 })
          const huge: TestEvent = { _tag: "Note", text: "x".repeat(410_000) }
          const e3 = yield* refusedWithoutWriting(Accounts.appendBulk(id, [...deposits(120), huge], { expectedVersion: 1 }))
          assert.deepInclude(e3, { _tag: "EventTooLargeError", index: 120 })
        })))

      it.live("an import interrupted between transactions says how far it got, and resumes from there", () =>
        Effect.gen(function*() {
          const inner = yield* EventStore.EventStore
          const id = streamId()
          let calls = 0
          // The storage fails on the second transaction of the import.
          const failing = EventStore.EventStore.of({
            ...inner,
            append: (s, events, options) =>
              ++calls === 2
                ? Effect.fail(new Errors.StorageError({ operation: "TransactWriteItems", reason: "Unavailable", detail: "injected" }))
                : inner.append(s, events, options)
          })
          const all = deposits(250)
          const e = failure(yield* Effect.exit(
            Accounts.appendBulk(id, all, { expectedVersion: "noStream" }).pipe(Effect.provideService(EventStore.EventStore, failing))
          ))
          assert.deepInclude(e, { _tag: "AppendBulkInterrupted", streamId: id, appended: 100, version: 100, total: 250 })
          assert.match(e.message, /Resume/)
          assert.strictEqual(((e as Errors.AppendBulkInterrupted).cause as { _tag: string })._tag, "StorageError")
          assert.strictEqual(yield* Accounts.version(id), 100)
          const { appended, version } = e as Errors.AppendBulkInterrupted
          const resumed = yield* Accounts.appendBulk(id, all.slice(appended), { expectedVersion: version })
          assert.strictEqual(resumed.version, 250)
          const read = yield* readAll(id)
          assert.deepStrictEqual(read.map((e) => (e.payload as { amount: number }).amount), range(1, 250))
        }).pipe(Effect.provide(makeStore()))
      )
    })

    describe("concurrency", () => {
      const race = (eventsPerAppend: number, rounds: number) =>
        run(Effect.gen(function*() {
          const id = streamId()
          for (let round = 0; round < rounds; round++) {
            const expected = yield* Accounts.version(id)
            assert.strictEqual(expected, round * eventsPerAppend)
            const exits = yield* Effect.all(
              range(1, 20).map((fiber) =>
                Effect.exit(Accounts.append(id, deposits(eventsPerAppend, fiber * 1000), { expectedVersion: expected }))
              ),
              { concurrency: "unbounded" }
            )
            assert.strictEqual(exits.filter(Exit.isSuccess).length, 1, `round ${round}: exactly one append wins`)
            for (const exit of exits.filter(Exit.isFailure)) {
              const error = failure(exit)
              assert.deepInclude(error, { _tag: "ConflictError", streamId: id, expectedVersion: expected })
              assert.isTrue((error as Errors.ConflictError).actualVersion > expected)
            }
          }
          const all = yield* readAll(id)
          assert.deepStrictEqual(versions(all), range(1, rounds * eventsPerAppend))
          assert.strictEqual(new Set(all.map((e) => e.eventId)).size, rounds * eventsPerAppend)
          // Each round's events come from one single winner.
          for (let round = 0; round < rounds; round++) {
            const amounts = all.slice(round * eventsPerAppend, (round + 1) * eventsPerAppend)
              .map((e) => (e.payload as { amount: number }).amount)
            const base = amounts[0]!
            assert.deepStrictEqual(amounts, range(base, base + eventsPerAppend - 1))
          }
        }))

      it.live("20 fibers race single-event appends with the same expected version: one wins each round", () =>
        race(1, 5))

      it.live("20 fibers race 3-event appends with the same expected version: one wins each round", () =>
        race(3, 3))

      it.live("20 fibers appending with \"any\" all land, gap-free and without duplicates", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          const results = yield* Effect.forEach(
            range(1, 20),
            (n) => Accounts.append(id, [deposit(n)], { expectedVersion: "any" }),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(results.map((r) => r.version).sort((a, b) => a - b), range(1, 20))
          const all = yield* readAll(id)
          assert.deepStrictEqual(versions(all), range(1, 20))
          assert.deepStrictEqual(all.map((e) => (e.payload as { amount: number }).amount).sort((a, b) => a - b), range(1, 20))
        })))

      it.live("10 fibers appending 3 events each with \"any\": all land, each append contiguous", () =>
        run(Effect.gen(function*() {
          const id = streamId()
          yield* Effect.forEach(
            range(1, 10),
            (n) => Accounts.append(id, deposits(3, n * 100), { expectedVersion: "any" }),
            { concurrency: "unbounded", discard: true }
          )
          const all = yield* readAll(id)
          assert.deepStrictEqual(versions(all), range(1, 30))
          const amounts = all.map((e) => (e.payload as { amount: number }).amount)
          for (let i = 0; i < 30; i += 3) {
            assert.deepStrictEqual(amounts.slice(i, i + 3), range(amounts[i]!, amounts[i]! + 2))
          }
          assert.deepStrictEqual(amounts.filter((a) => a % 100 === 0).sort((a, b) => a - b), range(1, 10).map((n) => n * 100))
        })))

      it.live("concurrent appends to different streams do not interfere", () =>
        run(Effect.gen(function*() {
          const ids = range(1, 10).map(() => streamId())
          yield* Effect.forEach(ids, (id) =>
            Effect.forEach(range(0, 4), (v) => Accounts.append(id, [deposit(v)], { expectedVersion: v }), { discard: true }), {
            concurrency: "unbounded",
            discard: true
          })
          for (const id of ids) assert.deepStrictEqual(versions(yield* readAll(id)), range(1, 5))
        })))
    })

    describe("event ids: a retried append is applied once", () => {
      const ev = (payload: unknown, eventId?: string, extra: Omit<EventStore.NewEvent, "type" | "payload" | "eventId"> = {}) =>
        ({ type: "T", payload, ...(eventId === undefined ? {} : { eventId }), ...extra }) as EventStore.NewEvent
      const millis = (events: ReadonlyArray<EventStore.EventEnvelope>) => events.map((e) => DateTime.toEpochMillis(e.recordedAt))
      const expiries = (events: ReadonlyArray<EventStore.EventEnvelope>) =>
        events.map((e) => (e.expiresAt === undefined ? undefined : DateTime.toEpochMillis(e.expiresAt)))
      const ids = (events: ReadonlyArray<{ readonly eventId: string }>) => events.map((e) => e.eventId)
      const readRaw = (id: string) => EventStore.EventStore.use((s) => Stream.runCollect(s.read(id)))
      /** Runs `effect`, expects it to succeed, and proves that it stored nothing. */
      const succeedsWithoutWriting = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.gen(function*() {
          const probe = yield* StoreProbe
          const before = yield* probe.countItems
          const result = yield* effect
          assert.strictEqual(yield* probe.countItems, before, "a repeat of a stored append wrote again")
          return result
        })

      it.live("an append reusing a stored event id next to a new event is refused (partiallyStored) and leaves no gap", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          yield* store.append(id, [ev(1, "cmd-42")], { expectedVersion: 0 })
          const e = yield* refusedWithoutWriting(store.append(id, [ev(1, "cmd-42"), ev(2)], { expectedVersion: 0 }))
          assert.deepInclude(e, {
            _tag: "EventIdConflictError",
            streamId: id,
            eventId: "cmd-42",
            version: 1,
            index: 0,
            reason: "partiallyStored"
          })
          assert.match(e.message, /cmd-42/)
          assert.strictEqual(yield* store.version(id), 1, "the refused append moved the stream")
          const next = yield* store.append(id, [ev(3)], { expectedVersion: 1 })
          assert.strictEqual(next.version, 2)
          assert.deepStrictEqual(next.events.map((e) => e.version), [2])
          const read = yield* readRaw(id)
          assert.deepStrictEqual(versions(read), [1, 2])
          assert.deepStrictEqual(read.map((e) => e.payload), [1, 3])
          assert.strictEqual(read[0]!.eventId, "cmd-42")
        })))

      it.live("partiallyStored names the first stored event of the retry, wherever the retry starts", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          yield* store.append(id, [ev("a", "a"), ev("b", "b"), ev("c", "c")], { expectedVersion: "noStream" })
          // A retry of [b, c] + a new event, from version 1: b and c are where they would go.
          const e1 = yield* refusedWithoutWriting(store.append(id, [ev("b", "b"), ev("c", "c"), ev("d", "d")], { expectedVersion: 1 }))
          assert.deepInclude(e1, { _tag: "EventIdConflictError", eventId: "b", version: 2, index: 0, reason: "partiallyStored" })
          // The stored id is the second event of the retry.
          const e2 = yield* refusedWithoutWriting(store.append(id, [ev("x", "x"), ev("c", "c")], { expectedVersion: 1 }))
          assert.deepInclude(e2, { _tag: "EventIdConflictError", eventId: "c", version: 3, index: 1, reason: "partiallyStored" })
          // None of the ids at the versions they would take: an ordinary conflict.
          const e3 = yield* refusedWithoutWriting(store.append(id, [ev("new", "new"), ev("a", "a")], { expectedVersion: 0 }))
          assert.deepInclude(e3, { _tag: "ConflictError", expectedVersion: 0, actualVersion: 3 })
          assert.deepStrictEqual(ids(yield* readRaw(id)), ["a", "b", "c"])
        })))

      it.live("an event id stored with another payload, type or metadata is refused (differentContent) and writes nothing", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          const original = ev({ n: 1 }, "cmd-42", { metadata: { actor: "ada" } })
          yield* store.append(id, [original], { expectedVersion: 0 })
          for (
            const [label, event, options] of [
              ["payload", ev({ n: 999 }, "cmd-42", { metadata: { actor: "ada" } }), {}],
              ["payload (spec example)", ev(999, "cmd-42"), {}],
              ["type", { ...original, type: "U" }, {}],
              ["metadata", ev({ n: 1 }, "cmd-42", { metadata: { actor: "bob" } }), {}],
              ["no metadata", ev({ n: 1 }, "cmd-42"), {}],
              ["custom metadata", ev({ n: 1 }, "cmd-42", { metadata: { actor: "ada", custom: { k: 1 } } }), {}],
              ["metadata of the append", original, { metadata: { correlationId: "corr-1" } }]
            ] as const
          ) {
            for (const expectedVersion of [0, "noStream"] as const) {
              const e = yield* refusedWithoutWriting(store.append(id, [event], { expectedVersion, ...options }))
              assert.deepInclude(e, {
                _tag: "EventIdConflictError",
                streamId: id,
                eventId: "cmd-42",
                version: 1,
                index: 0,
                reason: "differentContent"
              }, `${label}, expected version ${expectedVersion}`)
            }
          }
          // Other content wins over a partial match: that is the caller's bug to see.
          const e = yield* refusedWithoutWriting(store.append(id, [ev({ n: 2 }, "cmd-42"), ev(3)], { expectedVersion: 0 }))
          assert.deepInclude(e, { _tag: "EventIdConflictError", reason: "differentContent", index: 0 })
          // The second event of a retry differs.
          yield* store.append(id, [ev("b", "b")], { expectedVersion: 1 })
          const e2 = yield* refusedWithoutWriting(
            store.append(id, [original, ev("B", "b")], { expectedVersion: 0 })
          )
          assert.deepInclude(e2, { _tag: "EventIdConflictError", eventId: "b", version: 2, index: 1, reason: "differentContent" })
          const read = yield* readRaw(id)
          assert.deepStrictEqual(read.map((e) => e.payload), [{ n: 1 }, "b"])
          assert.deepStrictEqual(read[0]!.metadata, { actor: "ada" })
        })))

      it.live("an exact repeat reports the original result (versions, event ids, recordedAt, expiresAt) and writes nothing", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          const event = ev({ n: 1, text: "é😀" }, "cmd-42", { ttl: "1 day", metadata: { actor: "ada", custom: { k: [1, 2] } } })
          const first = yield* store.append(id, [event], { expectedVersion: 0, metadata: { correlationId: "corr" } })
          yield* Effect.sleep("1100 millis") // a second append would get another recordedAt and expiresAt
          for (const expectedVersion of [0, "noStream"] as const) {
            const again = yield* succeedsWithoutWriting(
              store.append(id, [event], { expectedVersion, metadata: { correlationId: "corr" } })
            )
            assert.strictEqual(again.version, 1)
            assert.strictEqual(again.streamId, id)
            assert.deepStrictEqual(versions(again.events), [1])
            assert.deepStrictEqual(ids(again.events), ["cmd-42"])
            assert.deepStrictEqual(millis(again.events), millis(first.events), "the original recordedAt")
            assert.deepStrictEqual(expiries(again.events), expiries(first.events), "the original expiresAt")
            assert.deepStrictEqual(again.events[0]!.payload, { n: 1, text: "é😀" })
            assert.deepStrictEqual(again.events[0]!.metadata, first.events[0]!.metadata)
            assert.strictEqual(again.events[0]!.type, "T")
          }
          // Through the typed API too.
          const typedId = streamId()
          const input = [EventStore.withOptions(deposit(5), { eventId: "cmd-7" })]
          const t1 = yield* Accounts.append(typedId, input, { expectedVersion: "noStream" })
          const t2 = yield* succeedsWithoutWriting(Accounts.append(typedId, input, { expectedVersion: "noStream" }))
          assert.deepStrictEqual(ids(t2.events), ids(t1.events))
          assert.deepStrictEqual(t2.events[0]!.payload, deposit(5))
          assert.strictEqual(yield* store.version(id), 1)
        })))

      it.live("an exact repeat after another writer appended more events still reports the original result", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          const mine = [ev(1, "cmd-1-0"), ev(2, "cmd-1-1")]
          const first = yield* store.append(id, mine, { expectedVersion: 0 })
          const theirs = yield* store.append(id, [ev(3, "cmd-2-0")], { expectedVersion: 2 })
          yield* store.append(id, [ev(4)], { expectedVersion: 3 })
          const again = yield* succeedsWithoutWriting(store.append(id, mine, { expectedVersion: 0 }))
          assert.strictEqual(again.version, 2)
          assert.deepStrictEqual(versions(again.events), [1, 2])
          assert.deepStrictEqual(ids(again.events), ["cmd-1-0", "cmd-1-1"])
          assert.deepStrictEqual(millis(again.events), millis(first.events))
          // The same for an append in the middle of the stream.
          const middle = yield* succeedsWithoutWriting(store.append(id, [ev(3, "cmd-2-0")], { expectedVersion: 2 }))
          assert.deepStrictEqual(ids(middle.events), ["cmd-2-0"])
          assert.deepStrictEqual(millis(middle.events), millis(theirs.events))
          assert.strictEqual(middle.version, 3)
          assert.strictEqual(yield* store.version(id), 4)
          // With "any" or "streamExists" nothing is promised; an exact version of the wrong place is a conflict.
          const e = yield* refusedWithoutWriting(store.append(id, mine, { expectedVersion: 1 }))
          assert.strictEqual(e._tag, "ConflictError")
        })))

      it.live("a multi-event exact repeat reports the original result; without caller ids a repeat is a ConflictError", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          const events = [ev({ i: 0 }, "m-0"), ev({ i: 1 }, "m-1", { ttl: 0 }), ev({ i: 2 }, "m-2", { metadata: { causationId: "c" } })]
          const first = yield* store.append(id, events, { expectedVersion: "noStream" })
          for (const expectedVersion of ["noStream", 0] as const) {
            const again = yield* succeedsWithoutWriting(store.append(id, events, { expectedVersion }))
            assert.strictEqual(again.version, 3)
            assert.deepStrictEqual(versions(again.events), [1, 2, 3])
            assert.deepStrictEqual(ids(again.events), ["m-0", "m-1", "m-2"])
            assert.deepStrictEqual(millis(again.events), millis(first.events))
            assert.deepStrictEqual(again.events.map((e) => e.payload), [{ i: 0 }, { i: 1 }, { i: 2 }])
          }
          // Generated ids are new on every call: nothing to recognise.
          const anonymous = streamId()
          yield* store.append(anonymous, [ev(1), ev(2)], { expectedVersion: "noStream" })
          const e = yield* refusedWithoutWriting(store.append(anonymous, [ev(1), ev(2)], { expectedVersion: "noStream" }))
          assert.deepInclude(e, { _tag: "ConflictError", actualVersion: 2 })
          assert.strictEqual(yield* store.version(id), 3)
        })))

      it.live("the same event id twice in one append is refused before anything is written", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          const e1 = yield* refusedWithoutWriting(store.append(id, [ev(1, "x"), ev(2, "x")], { expectedVersion: "noStream" }))
          assert.deepInclude(e1, { _tag: "InvalidInputError", operation: "append", field: "events[1].eventId" })
          const e2 = yield* refusedWithoutWriting(store.append(id, [ev(1, "a"), ev(2, "b"), ev(3), ev(4, "a")], { expectedVersion: "any" }))
          assert.deepInclude(e2, { _tag: "InvalidInputError", field: "events[3].eventId" })
          const e3 = yield* refusedWithoutWriting(
            EventStore.appendBulk(id, [...range(1, 150).map((n) => ev(n, `bulk-${n}`)), ev(0, "bulk-7")], { expectedVersion: "noStream" })
          )
          assert.deepInclude(e3, { _tag: "InvalidInputError", operation: "appendBulk", field: "events[150].eventId" })
          const e4 = yield* refusedWithoutWriting(
            Accounts.append(id, [EventStore.withOptions(deposit(1), { eventId: "t" }), EventStore.withOptions(deposit(2), { eventId: "t" })], {
              expectedVersion: "noStream"
            })
          )
          assert.deepInclude(e4, { _tag: "InvalidInputError", field: "events[1].eventId" })
          assert.strictEqual(yield* store.version(id), 0)
        })))

      for (const applied of [true, false]) {
        it.live(`an import whose transaction ${applied ? "was applied although it" : "did not apply and"} reported an unknown outcome resumes from error.remaining, writing each event once`, () =>
          Effect.gen(function*() {
            const inner = yield* EventStore.EventStore
            const probe = yield* StoreProbe
            const id = streamId()
            let calls = 0
            const lost = new Errors.StorageError({ operation: "TransactWriteItems", reason: "Unavailable", detail: "response lost", unknownOutcome: true })
            const lossy = EventStore.EventStore.of({
              ...inner,
              append: (s, events, options) =>
                ++calls !== 2
                  ? inner.append(s, events, options)
                  : applied
                  ? inner.append(s, events, options).pipe(Effect.andThen(Effect.fail(lost)))
                  : Effect.fail(lost)
            })
            const all = range(1, 250).map((n) => ev({ amount: n }))
            const e = failure(yield* Effect.exit(
              EventStore.appendBulk(id, all, { expectedVersion: "noStream" }).pipe(Effect.provideService(EventStore.EventStore, lossy))
            ))
            assert.deepInclude(e, { _tag: "AppendBulkInterrupted", streamId: id, appended: 100, version: 100, total: 250, unknownOutcome: true })
            const interrupted = e as Errors.AppendBulkInterrupted
            const remaining = interrupted.remaining as ReadonlyArray<EventStore.NewEvent>
            assert.strictEqual(remaining.length, 150)
            assert.deepStrictEqual(remaining.map((r) => (r.payload as { amount: number }).amount), range(101, 250))
            assert.isTrue(remaining.every((r) => typeof r.eventId === "string" && r.eventId.length > 0), "remaining events carry their ids")
            assert.strictEqual(yield* inner.version(id), applied ? 200 : 100)
            const resumed = yield* EventStore.appendBulk(id, remaining, { expectedVersion: interrupted.version })
            assert.strictEqual(resumed.version, 250)
            assert.deepStrictEqual(versions(resumed.events), range(101, 250))
            const read = yield* readRaw(id)
            assert.deepStrictEqual(read.map((e) => (e.payload as { amount: number }).amount), range(1, 250))
            assert.deepStrictEqual(ids(read.slice(100)), remaining.map((r) => r.eventId))
            assert.strictEqual(new Set(ids(read)).size, 250)
            assert.strictEqual(yield* probe.countItems, 250)
            // Resuming twice is harmless too.
            const twice = yield* succeedsWithoutWriting(EventStore.appendBulk(id, remaining, { expectedVersion: interrupted.version }))
            assert.deepStrictEqual(ids(twice.events), ids(resumed.events))
          }).pipe(Effect.provide(makeStore())))
      }
    })

    describe("TTL: a duration from 0 to 100 years", () => {
      const HUNDRED_YEARS = 100 * 365 * 24 * 3600_000

      it.live("a TTL that is not one is refused, writes nothing, and the stream stays usable", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          yield* store.append(id, [{ type: "T", payload: 0 }], { expectedVersion: "noStream" })
          const refused: ReadonlyArray<unknown> = [
            1e20,
            1e308,
            {},
            Number.NaN,
            -1,
            "Infinity",
            { foo: 1 },
            { days: 40_000 },
            { days: 36_501 },
            "36501 days",
            "101 years",
            Number.POSITIVE_INFINITY,
            null,
            true,
            { days: 1, foo: 1 },
            { days: -1 },
            { days: Number.NaN },
            [1e20, 0],
            [1, 2, 3],
            "5 dayz",
            "",
            Duration.infinity
          ]
          for (const ttl of refused) {
            const e = yield* refusedWithoutWriting(
              store.append(id, [{ type: "T", payload: 1, ttl: ttl as Duration.Input }], { expectedVersion: 1 })
            )
            assert.deepInclude(e, { _tag: "InvalidInputError", operation: "append", field: "events[0].ttl" }, `ttl ${show(ttl)}`)
          }
          const e1 = yield* refusedWithoutWriting(
            store.append(id, [{ type: "T", payload: 1, ttl: "1 hour" }, { type: "T", payload: 2, ttl: 1e20 }], { expectedVersion: 1 })
          )
          assert.deepInclude(e1, { _tag: "InvalidInputError", field: "events[1].ttl" })
          const e2 = yield* refusedWithoutWriting(
            Accounts.append(id, [EventStore.withOptions(deposit(1), { ttl: {} as Duration.Input })], { expectedVersion: 1 })
          )
          assert.deepInclude(e2, { _tag: "InvalidInputError", field: "events[0].ttl" })
          const e3 = yield* refusedWithoutWriting(
            EventStore.appendBulk(id, [{ type: "T", payload: 1 }, { type: "T", payload: 2, ttl: Number.NaN }], { expectedVersion: 1 })
          )
          assert.deepInclude(e3, { _tag: "InvalidInputError", operation: "appendBulk", field: "events[1].ttl" })
          // Nothing was broken on the way: the stream takes and gives back events as before.
          const ok = yield* store.append(id, [{ type: "T", payload: 2, ttl: "30 days" }], { expectedVersion: 1 })
          assert.strictEqual(ok.version, 2)
          const read = yield* Stream.runCollect(store.read(id))
          assert.deepStrictEqual(versions(read), [1, 2])
          assert.deepStrictEqual(read.map((e) => e.payload), [0, 2])
          assert.isDefined(read[1]!.expiresAt)
        })))

      it.live("TTLs from 0 to 100 years are accepted in every form; zero means none", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          const accepted: ReadonlyArray<readonly [Duration.Input, number | undefined]> = [
            ["30 days", 30 * 24 * 3600_000],
            [{ days: 1 }, 24 * 3600_000],
            [{ hours: 1, minutes: 30 }, 90 * 60_000],
            [86_400_000, 86_400_000],
            [[3600, 0], 3600_000],
            [Duration.hours(2), 2 * 3600_000],
            [{ days: 36_500 }, HUNDRED_YEARS],
            [HUNDRED_YEARS, HUNDRED_YEARS],
            [0, undefined],
            ["0 millis", undefined],
            [Duration.zero, undefined]
          ]
          for (const [ttl, ms] of accepted) {
            const result = yield* store.append(id, [{ type: "T", payload: show(ttl), ttl }], { expectedVersion: "any" })
            const [read] = yield* store.readLast(id, 1)
            for (const e of [result.events[0]!, read!]) {
              if (ms === undefined) {
                assert.strictEqual(e.expiresAt, undefined, `ttl ${show(ttl)} means no TTL`)
              } else {
                const actual = DateTime.toEpochMillis(e.expiresAt!) - DateTime.toEpochMillis(e.recordedAt)
                assert.isTrue(actual >= ms && actual <= ms + 1000, `ttl ${show(ttl)}: expires ${actual} ms after, expected ${ms}`)
              }
            }
          }
          assert.strictEqual(yield* store.version(id), accepted.length)
        })))

      it.live("a store whose defaultTtl is not one does not build", () =>
        Effect.gen(function*() {
          for (const defaultTtl of [{}, 1e20, Number.NaN, -1, "forever", { weeks: 6000 }]) {
            const exit = yield* Effect.exit(
              EventStore.EventStore.use((s) => s.version("x")).pipe(
                Effect.provide(makeStore({ defaultTtl: defaultTtl as Duration.Input }))
              )
            )
            assert.isTrue(Exit.isFailure(exit), `a store with defaultTtl ${show(defaultTtl)} was built`)
            if (Exit.isFailure(exit)) assert.match(Cause.pretty(exit.cause), /defaultTtl/, "the failure names the option")
          }
          // A valid default still builds.
          const ok = yield* EventStore.EventStore.use((s) => s.version("x")).pipe(Effect.provide(makeStore({ defaultTtl: { days: 30 } })))
          assert.strictEqual(ok, 0)
        }))
    })

    describe("keys are well-formed Unicode", () => {
      /** Lone surrogates: DynamoDB stores UTF-8 and would replace each with U+FFFD. */
      const loneSurrogateIds = (base: string) =>
        ["acct-\uD800", "acct-\uDC00", "acct-\uDFFF", `${base}-\uD800`, `\uDBFF${base}`, `${base}-\uDC00\uD800`, `${base}-\uD83D`]

      it.live("a stream id with a lone surrogate is refused by append, appendBulk, read, readLast and version", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const base = streamId("acct")
          for (const id of loneSurrogateIds(base)) {
            const label = show(id)
            const e1 = yield* refusedWithoutWriting(store.append(id, [{ type: "T", payload: 1 }], { expectedVersion: "any" }))
            assert.deepInclude(e1, { _tag: "InvalidInputError", operation: "append", field: "streamId" }, label)
            assert.match((e1 as Errors.InvalidInputError).reason, /surrogate/)
            const e2 = yield* refusedWithoutWriting(EventStore.appendBulk(id, [{ type: "T", payload: 1 }], { expectedVersion: "any" }))
            assert.deepInclude(e2, { _tag: "InvalidInputError", operation: "appendBulk", field: "streamId" }, label)
            const e3 = yield* refusedWithoutWriting(Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" }))
            assert.deepInclude(e3, { _tag: "InvalidInputError", field: "streamId" }, label)
            const e4 = failure(yield* Effect.exit(Stream.runCollect(store.read(id, { ifMissing: "empty" }))))
            assert.deepInclude(e4, { _tag: "InvalidInputError", operation: "read", field: "streamId" }, label)
            const e5 = failure(yield* Effect.exit(store.readLast(id, 1)))
            assert.deepInclude(e5, { _tag: "InvalidInputError", operation: "readLast", field: "streamId" }, label)
            const e6 = failure(yield* Effect.exit(store.version(id)))
            assert.deepInclude(e6, { _tag: "InvalidInputError", operation: "version", field: "streamId" }, label)
            // What storage would have made of the id is untouched.
            assert.strictEqual(yield* store.version(id.toWellFormed()), 0, label)
          }
        })))

      it.live("an event id or an event type with a lone surrogate is refused", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          yield* store.append(id, [{ type: "T", payload: 0, eventId: "cmd-\uFFFD" }], { expectedVersion: "noStream" })
          for (const bad of ["cmd-\uD800", "cmd-\uDC00", "\uDFFF"]) {
            const e1 = yield* refusedWithoutWriting(store.append(id, [{ type: "T", payload: 0, eventId: bad }], { expectedVersion: 0 }))
            assert.deepInclude(e1, { _tag: "InvalidInputError", field: "events[0].eventId" }, show(bad))
            const e2 = yield* refusedWithoutWriting(
              store.append(id, [{ type: "T", payload: 1 }, { type: "T", payload: 2, eventId: bad }], { expectedVersion: 1 })
            )
            assert.deepInclude(e2, { _tag: "InvalidInputError", field: "events[1].eventId" }, show(bad))
            const e3 = yield* refusedWithoutWriting(store.append(id, [{ type: `T${bad}`, payload: 1 }], { expectedVersion: 1 }))
            assert.deepInclude(e3, { _tag: "InvalidInputError", field: "events[0].type" }, show(bad))
          }
          assert.strictEqual(yield* store.version(id), 1)
        })))

      it.live("well-formed astral ids, event ids and types are accepted and kept apart", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const base = streamId("acct")
          // U+1F600 and U+1F601 share their high surrogate: only the low one tells them apart.
          const faces = ["😀", "😁", "\u{1F600}\u{1F600}", "𝒜", "\uFFFD"]
          for (const [i, face] of faces.entries()) {
            const result = yield* store.append(`${base}-${face}`, [{ type: `T-${face}`, payload: { i }, eventId: `evt-${face}` }], {
              expectedVersion: "noStream"
            })
            assert.strictEqual(result.version, 1, face)
          }
          for (const [i, face] of faces.entries()) {
            const id = `${base}-${face}`
            const read = yield* Stream.runCollect(store.read(id))
            assert.strictEqual(read.length, 1, face)
            assert.deepInclude(read[0]!, { streamId: id, type: `T-${face}`, eventId: `evt-${face}`, version: 1 })
            assert.deepStrictEqual(read[0]!.payload, { i })
            assert.strictEqual(yield* store.version(id), 1)
            // An exact repeat is recognised with astral ids too.
            const again = yield* store.append(id, [{ type: `T-${face}`, payload: { i }, eventId: `evt-${face}` }], { expectedVersion: "noStream" })
            assert.deepStrictEqual(again.events.map((e) => e.eventId), [`evt-${face}`])
          }
        })))

      it.live("payloads and metadata with lone surrogates are stored exactly (JSON escapes them)", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          const payload = { text: "a\uD800b", list: ["\uDC00", "\uDFFF\uD800"], "\uD800key": 1 }
          const metadata = { actor: "\uD800", custom: { k: "\uDFFF" } }
          const first = yield* store.append(id, [{ type: "T", payload, metadata, eventId: "lone" }], { expectedVersion: "noStream" })
          const [read] = yield* Stream.runCollect(store.read(id))
          assert.deepStrictEqual(read!.payload, payload)
          assert.deepStrictEqual(read!.metadata, metadata)
          const again = yield* store.append(id, [{ type: "T", payload, metadata, eventId: "lone" }], { expectedVersion: "noStream" })
          assert.deepStrictEqual(again.events.map((e) => e.eventId), first.events.map((e) => e.eventId))
          const other = yield* refusedWithoutWriting(
            store.append(id, [{ type: "T", payload: { ...payload, text: "a\uDBFFb" }, metadata, eventId: "lone" }], { expectedVersion: "noStream" })
          )
          assert.deepInclude(other, { _tag: "EventIdConflictError", reason: "differentContent" })
        })))
    })

    describe("malformed metadata and options are typed errors", () => {
      it.live("malformed metadata is refused naming the field, writes nothing, never a defect", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          yield* store.append(id, [{ type: "T", payload: 0 }], { expectedVersion: "noStream" })
          const T = { type: "T", payload: 1 }
          const cases: ReadonlyArray<readonly [ReadonlyArray<unknown>, unknown, string]> = [
            [[{ ...T, metadata: null }], undefined, "events[0].metadata"],
            [[{ ...T, metadata: { custom: null } }], undefined, "events[0].metadata.custom"],
            [[T], null, "options.metadata"],
            [[{ ...T, metadata: { tenant: "x" } }], undefined, "events[0].metadata.tenant"],
            [[{ ...T, metadata: { actor: 5 } }], undefined, "events[0].metadata.actor"],
            [[{ ...T, metadata: [] }], undefined, "events[0].metadata"],
            [[{ ...T, metadata: "ada" }], undefined, "events[0].metadata"],
            [[{ ...T, metadata: new Date(0) }], undefined, "events[0].metadata"],
            [[{ ...T, metadata: { custom: [] } }], undefined, "events[0].metadata.custom"],
            [[{ ...T, metadata: { custom: "x" } }], undefined, "events[0].metadata.custom"],
            [[{ ...T, metadata: { custom: new Map() } }], undefined, "events[0].metadata.custom"],
            [[{ ...T, metadata: { causationId: null } }], undefined, "events[0].metadata.causationId"],
            [[T, { ...T, metadata: { correlationId: 1 } }], undefined, "events[1].metadata.correlationId"],
            [[T], { tenant: "x" }, "options.metadata.tenant"],
            [[T], { custom: null }, "options.metadata.custom"],
            [[T], "ada", "options.metadata"]
          ]
          for (const [events, metadata, field] of cases) {
            const options = { expectedVersion: 1, metadata } as EventStore.AppendOptions
            const e = yield* refusedWithoutWriting(store.append(id, events as ReadonlyArray<EventStore.NewEvent>, options))
            assert.deepInclude(e, { _tag: "InvalidInputError", operation: "append", field }, show({ events, metadata }))
            const bulk = yield* refusedWithoutWriting(EventStore.appendBulk(id, events as ReadonlyArray<EventStore.NewEvent>, options))
            assert.deepInclude(bulk, { _tag: "InvalidInputError", operation: "appendBulk", field }, show({ events, metadata }))
          }
          const typed = yield* refusedWithoutWriting(
            Accounts.append(id, [EventStore.withOptions(deposit(1), { metadata: null as unknown as EventStore.EventMetadata })], {
              expectedVersion: 1
            })
          )
          assert.deepInclude(typed, { _tag: "InvalidInputError", field: "events[0].metadata" })
          // Undefined fields are left out, not refused.
          const ok = yield* store.append(id, [{ ...T, metadata: { actor: undefined, custom: undefined } }], {
            expectedVersion: 1,
            metadata: { correlationId: undefined }
          })
          assert.deepStrictEqual(ok.events[0]!.metadata, {})
          const [read] = yield* store.readLast(id, 1)
          assert.deepStrictEqual(read!.metadata, {})
        })))

      it.live("read, readLast and version refuse malformed options, before looking for the stream", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          const missing = streamId()
          yield* store.append(id, range(1, 3).map((n) => ({ type: "T", payload: n })), { expectedVersion: "noStream" })
          const readCases: ReadonlyArray<readonly [unknown, string]> = [
            [{ pageSize: Number.MAX_SAFE_INTEGER }, "options.pageSize"],
            [{ pageSize: 10_001 }, "options.pageSize"],
            [{ pageSize: 0 }, "options.pageSize"],
            [{ pageSize: Number.NaN }, "options.pageSize"],
            [{ consistentRead: "yes" }, "options.consistentRead"],
            [{ consistentRead: 1 }, "options.consistentRead"],
            [{ direction: "sideways" }, "options.direction"],
            [{ limit: 0 }, "options.limit"],
            [{ limit: 1.5 }, "options.limit"],
            [{ limit: Number.POSITIVE_INFINITY }, "options.limit"],
            [{ from: 1.5 }, "options.from"],
            [{ from: Number.NaN }, "options.from"],
            [{ from: "1" }, "options.from"],
            [{ to: Number.MAX_SAFE_INTEGER + 2 }, "options.to"],
            [{ from: 3, to: 2 }, "options.to"],
            [{ ifMissing: "maybe" }, "options.ifMissing"],
            [null, "options"],
            ["fast", "options"],
            [5, "options"]
          ]
          for (const [options, field] of readCases) {
            for (const stream of [id, missing]) {
              const e = failure(yield* Effect.exit(Stream.runCollect(store.read(stream, options as EventStore.ReadOptions))))
              assert.deepInclude(e, { _tag: "InvalidInputError", operation: "read", field }, `${show(options)} on ${stream === id ? "an existing" : "a missing"} stream`)
            }
          }
          const consistency: ReadonlyArray<readonly [unknown, string]> = [
            [{ consistentRead: "yes" }, "options.consistentRead"],
            [{ consistentRead: 1 }, "options.consistentRead"],
            [{ consistentRead: null }, "options.consistentRead"],
            [null, "options"],
            ["x", "options"]
          ]
          for (const [options, field] of consistency) {
            for (const stream of [id, missing]) {
              const o = options as { readonly consistentRead?: boolean }
              const e1 = failure(yield* Effect.exit(store.readLast(stream, 2, o)))
              assert.deepInclude(e1, { _tag: "InvalidInputError", operation: "readLast", field }, show(options))
              const e2 = failure(yield* Effect.exit(store.version(stream, o)))
              assert.deepInclude(e2, { _tag: "InvalidInputError", operation: "version", field }, show(options))
            }
          }
          for (const n of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "2", null]) {
            const e = failure(yield* Effect.exit(store.readLast(missing, n as number)))
            assert.deepInclude(e, { _tag: "InvalidInputError", operation: "readLast", field: "n" }, show(n))
          }
          // The largest values allowed are accepted.
          assert.deepStrictEqual(versions(yield* Stream.runCollect(store.read(id, { pageSize: 10_000 }))), [1, 2, 3])
          assert.deepStrictEqual(
            versions(yield* Stream.runCollect(store.read(id, { from: 1, to: Number.MAX_SAFE_INTEGER, limit: Number.MAX_SAFE_INTEGER }))),
            [1, 2, 3]
          )
          assert.deepStrictEqual(yield* Stream.runCollect(store.read(id, { from: Number.MAX_SAFE_INTEGER })), [])
          assert.deepStrictEqual(versions(yield* store.readLast(id, Number.MAX_SAFE_INTEGER)), [1, 2, 3])
          assert.deepStrictEqual(versions(yield* store.readLast(id, 2, { consistentRead: false })), [2, 3])
          assert.strictEqual(yield* store.version(id, { consistentRead: false }), 3)
          assert.strictEqual(yield* store.version(id, {}), 3)
        })))
    })

    describe("properties: any input gives a result or a typed error, never a defect, and a refusal writes nothing", () => {
      const APPEND_ERRORS = [
        "ConflictError",
        "EventIdConflictError",
        "InvalidInputError",
        "EventEncodeError",
        "EventTooLargeError",
        "AppendTooLargeError",
        "StorageError"
      ]
      const READ_ERRORS = ["NotFoundError", "InvalidInputError", "StorageError"]
      /** Valid stream ids of a property run are these, behind a prefix unique to the run. */
      const SLOTS = ["A", "B", "😀"] as const

      const streamIdArb = weighted<unknown>([6, oneOf(SLOTS)], [2, Arbitrary.schema(Schema.String)], [1, hostile])
      const validEvent = Arbitrary.all({
        type: oneOf(["Opened", "Deposited", "Tÿpe-😀"]),
        payload: Arbitrary.schema(Schema.Unknown),
        metadata: validMetadata,
        ttl: weighted<unknown>([4, Arbitrary.Constant(undefined)], [1, oneOf(["30 days", "1 hour", 0, 86_400_000, { days: 1 }, [60, 0]])]),
        eventId: weighted<unknown>([3, Arbitrary.Constant(undefined)], [2, oneOf(["e-1", "e-2", "e-😀"])])
      })
      const EVENT_FIELDS = ["event", "type", "payload", "metadata", "ttl", "eventId"] as const
      const INPUT_FIELDS = ["streamId", "events", "options", "expectedVersion", "options.metadata", ...EVENT_FIELDS] as const
      /**
       * A valid append (any expected version, so some conflict), or one with a single field
       * replaced by a hostile value (a Schema-generated string or JSON value, or a curiosity).
       */
      const appendArb = Arbitrary.map(
        Arbitrary.all({
          streamId: weighted<unknown>([3, oneOf(SLOTS)], [1, Arbitrary.schema(Schema.String)]),
          events: Arbitrary.array(validEvent, { minLength: 1, maxLength: 4 }),
          options: Arbitrary.all({
            expectedVersion: oneOf(["any", "any", "any", "noStream", "streamExists", 0, 1, 2, 3]),
            metadata: weighted<unknown>([3, Arbitrary.Constant(undefined)], [1, validMetadata])
          }),
          corruption: weighted<{ readonly field: typeof INPUT_FIELDS[number]; readonly index: number; readonly value: unknown } | undefined>(
            [3, Arbitrary.Constant(undefined)],
            [2, Arbitrary.all({ field: oneOf(INPUT_FIELDS), index: oneOf([0, 1, 2, 3]), value: hostile })]
          )
        }),
        ({ corruption, ...input }): { streamId: unknown; events: unknown; options: unknown } => {
          if (corruption === undefined) return input
          const { field, value } = corruption
          switch (field) {
            case "streamId":
              return { ...input, streamId: value }
            case "events":
              return { ...input, events: value }
            case "options":
              return { ...input, options: value }
            case "expectedVersion":
              return { ...input, options: { ...input.options, expectedVersion: value } }
            case "options.metadata":
              return { ...input, options: { ...input.options, metadata: value } }
            default: {
              const events: Array<unknown> = [...input.events]
              const index = corruption.index % events.length
              events[index] = field === "event" ? value : { ...input.events[index], [field]: value }
              return { ...input, events }
            }
          }
        }
      )

      /**
       * The append property, for `append` and `appendBulk`: a typed outcome; a refusal stores
       * nothing; a success stores its events (or nothing for a recognised repeat) where the
       * result says, as a read shows them.
       */
      const appendProperty = (operation: "append" | "appendBulk", runs: number) =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const probe = yield* StoreProbe
          const prefix = streamId("prop")
          const keyOf = (s: unknown) => (typeof s === "string" && (SLOTS as ReadonlyArray<string>).includes(s) ? `${prefix}-${s}` : s)
          const touched = new Set<string>()
          const tally = new Tally()
          yield* holds(appendArb, (input) =>
            Effect.gen(function*() {
              const id = keyOf(input.streamId) as string
              const events = input.events as ReadonlyArray<EventStore.NewEvent>
              const options = input.options as EventStore.AppendOptions
              const before = yield* probe.countItems
              const exit = yield* Effect.exit(
                operation === "append" ? store.append(id, events, options) : EventStore.appendBulk(id, events, options)
              )
              const outcome = yield* expectTyped(operation, exit, operation === "append" ? APPEND_ERRORS : [...APPEND_ERRORS, "AppendBulkInterrupted"])
              tally.record(outcome)
              const after = yield* probe.countItems
              if (outcome._tag === "Refused") {
                return yield* check(after === before, () => `refused with ${outcome.error._tag}, but storage went from ${before} to ${after} items`)
              }
              touched.add(id)
              const result = outcome.value
              const n = events.length
              yield* check(result.events.length === n, () => `${n} events appended, ${result.events.length} in the result`)
              yield* check(
                after === before + n || (after === before && events.every((e) => typeof e.eventId === "string")),
                () => `${n} events appended, but storage went from ${before} to ${after} items`
              )
              const expectedVersions = range(result.version - n + 1, result.version)
              yield* check(show(result.events.map((e) => e.version)) === show(expectedVersions), () => `result versions ${show(result.events.map((e) => e.version))}`)
              const readExit = yield* Effect.exit(Stream.runCollect(store.read(id, { from: result.version - n + 1, to: result.version })))
              const read = yield* expectTyped("read after append", readExit, [])
              if (read._tag !== "Success") return
              yield* check(
                show(read.value.map((e) => [e.version, e.eventId, e.type])) === show(result.events.map((e) => [e.version, e.eventId, e.type])),
                () => `the result ${show(result.events)} is not what is stored: ${show(read.value)}`
              )
            }), { runs })
          // Whatever happened, every stream is gap-free and storage holds exactly the streams' events.
          let total = 0
          for (const id of touched) {
            const all = yield* Stream.runCollect(store.read(id))
            assert.deepStrictEqual(versions(all), range(1, all.length), `stream ${show(id)} has gaps`)
            assert.strictEqual(yield* store.version(id), all.length)
            total += all.length
          }
          assert.strictEqual(yield* probe.countItems, total, "storage holds events outside the streams appended to")
          tally.assertMixed(5)
        }))

      it.live("append (60 generated cases)", () => appendProperty("append", 60))

      it.live("EventStore.appendBulk (40 generated cases)", () => appendProperty("appendBulk", 40))

      it.live("read, readLast and version (60 generated cases): typed outcomes that match the stored streams", () =>
        run(Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const probe = yield* StoreProbe
          const prefix = streamId("prop")
          const lengths = new Map<string, number>([[`${prefix}-A`, 5], [`${prefix}-B`, 1]])
          for (const [id, n] of lengths) yield* store.append(id, range(1, n).map((i) => ({ type: "T", payload: i })), { expectedVersion: "noStream" })
          const stored = yield* probe.countItems
          const keyOf = (s: unknown) => (typeof s === "string" && (SLOTS as ReadonlyArray<string>).includes(s) ? `${prefix}-${s}` : s)

          // An oracle written independently of the library's Schemas.
          const isKey = (u: unknown): u is string =>
            typeof u === "string" && u.length > 0 && u.isWellFormed() && Buffer.byteLength(u, "utf8") <= 1024
          const isPositive = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 1
          const optional = (u: unknown, valid: (v: unknown) => boolean) => u === undefined || valid(u)
          const isPlain = (u: unknown): u is Record<string, unknown> =>
            typeof u === "object" && u !== null && !Array.isArray(u) && Object.getPrototypeOf(u) === Object.prototype
          const validReadOptions = (o: unknown) =>
            o === undefined || (isPlain(o) &&
              optional(o.from, isPositive) && optional(o.to, isPositive) && optional(o.limit, isPositive) &&
              optional(o.pageSize, (v) => isPositive(v) && v <= 10_000) &&
              optional(o.direction, (v) => v === "forward" || v === "backward") &&
              optional(o.consistentRead, (v) => typeof v === "boolean") &&
              optional(o.ifMissing, (v) => v === "fail" || v === "empty") &&
              (o.from === undefined || o.to === undefined || (o.to as number) >= (o.from as number)))
          const validConsistency = (o: unknown) =>
            o === undefined || (isPlain(o) && optional(o.consistentRead, (v) => typeof v === "boolean"))
          const sorts = (o: unknown) => isPlain(o) && Object.keys(o).every((k) => ["from", "to", "limit", "pageSize", "direction", "consistentRead", "ifMissing"].includes(k))

          const positive = weighted<unknown>(
            [4, Arbitrary.Constant(undefined)],
            [4, oneOf([1, 2, 3, 5, 6, 10_000, Number.MAX_SAFE_INTEGER])],
            [1, Arbitrary.schema(Schema.Number)],
            [1, hostile]
          )
          const choice = (values: ReadonlyArray<unknown>) => weighted<unknown>([5, oneOf(values)], [1, hostile])
          const readOptions = weighted<unknown>(
            [2, Arbitrary.Constant(undefined)],
            [8, Arbitrary.all({
              from: positive,
              to: positive,
              limit: positive,
              pageSize: positive,
              direction: choice([undefined, "forward", "backward"]),
              consistentRead: choice([undefined, true, false]),
              ifMissing: choice([undefined, "fail", "empty"])
            })],
            [1, hostile]
          )
          const consistency = weighted<unknown>(
            [3, Arbitrary.Constant(undefined)],
            [4, Arbitrary.all({ consistentRead: choice([undefined, true, false]) })],
            [1, hostile]
          )
          const arb = Arbitrary.all({
            operation: oneOf(["read", "readLast", "version"] as const),
            streamId: streamIdArb,
            n: positive,
            readOptions,
            consistency
          })
          const tally = new Tally()
          yield* holds(arb, (input) =>
            Effect.gen(function*() {
              const id = keyOf(input.streamId)
              const length = typeof id === "string" ? lengths.get(id) ?? 0 : 0
              let outcome:
                | { readonly _tag: "Success"; readonly value: unknown }
                | { readonly _tag: "Refused"; readonly error: { readonly _tag: string; readonly message: string } }
              let valid: boolean
              // Computed only once the store accepted the input (then its fields are sane).
              let expected: () => ReadonlyArray<number> | number | "NotFound"
              if (input.operation === "read") {
                const o = input.readOptions as EventStore.ReadOptions | undefined
                valid = isKey(id) && validReadOptions(o) && (o === undefined || sorts(o))
                expected = () => {
                  if (length === 0 && o?.ifMissing !== "empty") return "NotFound"
                  const selected = range(o?.from ?? 1, Math.min(o?.to ?? length, length))
                  const ordered = o?.direction === "backward" ? selected.reverse() : selected
                  return ordered.slice(0, o?.limit ?? ordered.length)
                }
                const r = yield* expectTyped("read", yield* Effect.exit(Stream.runCollect(store.read(id as string, o))), READ_ERRORS)
                outcome = r._tag === "Success" ? { _tag: "Success", value: versions(r.value) } : r
              } else if (input.operation === "readLast") {
                const o = input.consistency as { readonly consistentRead?: boolean } | undefined
                valid = isKey(id) && isPositive(input.n) && validConsistency(o) && (o === undefined || Object.keys(o).every((k) => k === "consistentRead"))
                expected = () => (length === 0 ? "NotFound" : range(Math.max(1, length - (input.n as number) + 1), length))
                const r = yield* expectTyped("readLast", yield* Effect.exit(store.readLast(id as string, input.n as number, o)), READ_ERRORS)
                outcome = r._tag === "Success" ? { _tag: "Success", value: versions(r.value) } : r
              } else {
                const o = input.consistency as { readonly consistentRead?: boolean } | undefined
                valid = isKey(id) && validConsistency(o) && (o === undefined || Object.keys(o).every((k) => k === "consistentRead"))
                expected = () => length
                outcome = yield* expectTyped("version", yield* Effect.exit(store.version(id as string, o)), ["InvalidInputError", "StorageError"])
              }
              tally.record(outcome)
              yield* check((yield* probe.countItems) === stored, () => "a read changed storage")
              if (outcome._tag === "Refused") {
                if (outcome.error._tag === "NotFoundError") {
                  return yield* check(isKey(id) && expected() === "NotFound", () => `NotFoundError, but the stream has ${length} events`)
                }
                // Objects with unknown extra keys may be refused or accepted; anything the oracle calls valid must not be refused.
                return yield* check(!valid, () => `valid input refused: ${outcome.error.message}`)
              }
              const value = outcome.value
              yield* check(show(value) === show(expected()), () => `got ${show(value)}, expected ${show(expected())}`)
            }), { runs: 60 })
          tally.assertMixed(5)
        })))
    })
  })

/** Convenience for implementations whose probe is derived from the store itself. */
export const layerWithProbe = <E>(
  store: Layer.Layer<EventStore.EventStore, E>,
  probe: Layer.Layer<StoreProbe, E, EventStore.EventStore>
): Layer.Layer<EventStore.EventStore | StoreProbe, E> => Layer.provideMerge(probe, store)

/**
 * The EventStore contract, written once and run against every implementation (the
 * in-memory store here, the DynamoDB store in @dynamo-es/dynamodb). An implementation
 * passes when all of it passes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, DateTime, Effect, Exit, Layer, Schema, Stream } from "effect"
import { Errors, EventStore } from "../../src/index.js"
import { failure, range } from "../utils.js"

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
  })

/** Convenience for implementations whose probe is derived from the store itself. */
export const layerWithProbe = <E>(
  store: Layer.Layer<EventStore.EventStore, E>,
  probe: Layer.Layer<StoreProbe, E, EventStore.EventStore>
): Layer.Layer<EventStore.EventStore | StoreProbe, E> => Layer.provideMerge(probe, store)

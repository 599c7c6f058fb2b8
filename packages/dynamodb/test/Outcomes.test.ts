/**
 * What a call reports is what is stored: writes whose response is lost, that fail after or
 * before reaching DynamoDB, whose read-back fails too; bulk imports interrupted half-way;
 * and stored items that do not decode (typed CorruptedEventError, never a defect).
 */
import { DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Aggregate, type Errors, EventStore } from "@dynamo-es/core"
import { TestEvent } from "@dynamo-es/core/testing/EventStoreConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Arbitrary, DateTime, Effect, Layer, Option, Schema, Stream } from "effect"
import { DynamoEventStore, DynamoSnapshotStore } from "../src/index.js"
import {
  Accounts,
  assertGapFree,
  checkProperty,
  connectionReset,
  deposit,
  failure,
  freshId,
  type Item,
  local,
  newEvents,
  putRaw,
  range,
  rawItems,
  sendThenThrow,
  serverError,
  storedIds,
  throttled,
  weirdError,
  withEventStore
} from "./faultHelpers.js"
import type { Fault } from "./helpers.js"

const WRITES = new Set(["PutItem", "TransactWriteItems"])

/** An aggregate over the test events: the sum of the deposits. */
const Balance = Aggregate.make({
  events: TestEvent,
  initialState: 0,
  evolve: (balance: number, e: TestEvent) => (e._tag === "Deposited" ? balance + e.amount : balance),
  decide: () => []
})

/** Every write is applied by DynamoDB, but its response never comes back. */
const lostWrites: Fault = (command, _input, proceed) => (WRITES.has(command) ? sendThenThrow(proceed, connectionReset) : proceed())
/** ... and every Query (the read-back) fails as well. */
const lostWritesAndReads: Fault = (command, input, proceed) =>
  command === "Query" ? Promise.reject(serverError()) : lostWrites(command, input, proceed)

/** The items of a snapshot stream, header first. */
const rawSnapshotItems = (raw: DynamoDBClient, tableName: string, id: string) =>
  Effect.promise(() =>
    raw.send(new QueryCommand({
      TableName: tableName,
      KeyConditionExpression: "s = :s",
      ExpressionAttributeValues: { ":s": { S: id } },
      ConsistentRead: true
    }))
  ).pipe(Effect.map((r) => r.Items ?? []))

const ids = (prefix: string, n: number) => range(1, n).map((i) => `${prefix}-${i}`)

const storageError = (e: unknown): Errors.StorageError => {
  assert.strictEqual((e as { _tag: string })._tag, "StorageError", `expected a StorageError, got ${String((e as Error).message)}`)
  return e as Errors.StorageError
}

describe("Outcomes", { timeout: 120_000 }, () => {
  describe("a write applied by DynamoDB whose response is lost", () => {
    it.live("a single-event PutItem lost on every attempt is read back: success at the right version, stored once", () =>
      withEventStore(({ raw, recorder, setFault, tableName }) =>
        Effect.gen(function*() {
          const id = freshId()
          yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
          setFault(lostWrites)
          recorder.clear()
          const result = yield* Accounts.append(id, [deposit(2)], { expectedVersion: 1 })
          setFault(undefined)
          assert.strictEqual(result.version, 2)
          assert.deepStrictEqual(result.events.map((e) => e.version), [2])
          assert.isAbove(recorder.count("PutItem"), 1, "the lost write was retried")
          assert.isAtLeast(recorder.count("Query"), 1, "the outcome was read back")
          const stored = yield* storedIds(raw, tableName, id)
          assertGapFree(stored)
          assert.strictEqual(stored.length, 2)
          assert.strictEqual(stored[1]!.eventId, result.events[0]!.eventId)
          // The reported envelope is the stored one.
          const [read] = yield* Accounts.readLast(id, 1)
          assert.deepStrictEqual(read, result.events[0])
        })
      ))

    it.live("a 3-event TransactWriteItems lost on every attempt is read back: success, stored once", () =>
      withEventStore(({ raw, recorder, setFault, tableName }) =>
        Effect.gen(function*() {
          const id = freshId()
          setFault(lostWrites)
          const result = yield* Accounts.append(id, [deposit(1), deposit(2), deposit(3)], { expectedVersion: "noStream" })
          setFault(undefined)
          assert.strictEqual(result.version, 3)
          assert.isAbove(recorder.count("TransactWriteItems"), 1, "the lost transaction was retried")
          const stored = yield* storedIds(raw, tableName, id)
          assert.deepStrictEqual(assertGapFree(stored), result.events.map((e) => e.eventId))
          assert.deepStrictEqual(yield* Stream.runCollect(Accounts.read(id)), result.events)
        })
      ))

    for (const n of [1, 3]) {
      it.live(`an unrecognised error after the ${n}-event write was applied ends as success (read back)`, () =>
        withEventStore(({ raw, setFault, tableName }) =>
          Effect.gen(function*() {
            const id = freshId()
            yield* Accounts.append(id, [deposit(0)], { expectedVersion: "noStream" })
            setFault((command, _input, proceed) => (WRITES.has(command) ? sendThenThrow(proceed, weirdError) : proceed()))
            const result = yield* EventStore.EventStore.use((store) => store.append(id, newEvents(ids(id, n)), { expectedVersion: 1 }))
            setFault(undefined)
            assert.strictEqual(result.version, 1 + n)
            assert.deepStrictEqual(result.events.map((e) => e.eventId), ids(id, n))
            const stored = yield* storedIds(raw, tableName, id)
            assert.deepStrictEqual(assertGapFree(stored).slice(1), ids(id, n))
          })
        ))
    }
  })

  describe("a write that never reached DynamoDB", () => {
    for (const [label, error] of [["a 5xx on every attempt", serverError], ["an unrecognised error", weirdError]] as const) {
      for (const n of [1, 3]) {
        it.live(`${label} (${n} event(s)): StorageError with unknownOutcome, nothing stored; the same retry succeeds once`, () =>
          withEventStore(({ raw, setFault, tableName }) =>
            Effect.gen(function*() {
              const id = freshId()
              const store = yield* EventStore.EventStore
              yield* store.append(id, newEvents(["a", "b"]), { expectedVersion: "noStream" })
              setFault((command, _input, proceed) => (WRITES.has(command) ? Promise.reject(error()) : proceed()))
              const events = newEvents(ids(id, n), 3)
              const e = storageError(failure(yield* Effect.exit(store.append(id, events, { expectedVersion: 2 }))))
              assert.isTrue(e.unknownOutcome, "a request that may have been applied says so")
              assert.match(e.message, /may have been applied/)
              setFault(undefined)
              assert.strictEqual((yield* storedIds(raw, tableName, id)).length, 2, "nothing was stored")
              const retried = yield* store.append(id, events, { expectedVersion: 2 })
              assert.strictEqual(retried.version, 2 + n)
              const stored = yield* storedIds(raw, tableName, id)
              assert.deepStrictEqual(assertGapFree(stored), ["a", "b", ...ids(id, n)])
            })
          ))
      }
    }

    for (const n of [1, 3]) {
      it.live(`a ${n}-event write throttled on every attempt fails without unknownOutcome and stores nothing`, () =>
        withEventStore(({ raw, recorder, setFault, tableName }) =>
          Effect.gen(function*() {
            const id = freshId()
            setFault((command, _input, proceed) => (WRITES.has(command) ? Promise.reject(throttled()) : proceed()))
            const e = storageError(failure(yield* Effect.exit(Accounts.append(id, range(1, n).map(deposit), { expectedVersion: "noStream" }))))
            assert.strictEqual(e.reason, "Throttled")
            assert.notStrictEqual(e.unknownOutcome, true)
            assert.notMatch(e.message, /may have been applied/)
            assert.isAbove(recorder.count(n === 1 ? "PutItem" : "TransactWriteItems"), 1, "throttling was retried")
            setFault(undefined)
            assert.deepStrictEqual(yield* rawItems(raw, tableName, id), [])
            assert.strictEqual(yield* Accounts.version(id), 0)
          })
        ))
    }

    it.live("an attempt that may have been applied marks the final error unknownOutcome, also when the last attempt was throttled", () =>
      withEventStore(({ setFault }) =>
        Effect.gen(function*() {
          const id = freshId()
          let attempts = 0
          setFault((command, _input, proceed) =>
            command === "PutItem" ? Promise.reject(attempts++ === 0 ? serverError() : throttled()) : proceed()
          )
          const e = storageError(failure(yield* Effect.exit(Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" }))))
          assert.strictEqual(e.reason, "Throttled")
          assert.isTrue(e.unknownOutcome)
        })
      ))
  })

  describe("a lost write whose read-back fails too", () => {
    for (const [n, expected] of [[1, 1], [3, 1], [1, "noStream"], [3, "noStream"]] as const) {
      it.live(`${n} event(s), expectedVersion ${expected}: StorageError unknownOutcome, not a conflict; the retry returns the original result`, () =>
        withEventStore(({ raw, setFault, tableName }) =>
          Effect.gen(function*() {
            const id = freshId()
            const store = yield* EventStore.EventStore
            const base = expected === "noStream" ? 0 : expected
            if (base > 0) yield* store.append(id, newEvents(["first"]), { expectedVersion: "noStream" })
            const events = newEvents(ids(id, n), 2)
            setFault(lostWritesAndReads)
            const e = storageError(failure(yield* Effect.exit(store.append(id, events, { expectedVersion: expected }))))
            assert.isTrue(e.unknownOutcome)
            setFault(undefined)
            // It was applied although nobody could tell.
            const applied = yield* rawItems(raw, tableName, id)
            assert.strictEqual(applied.length, base + n)
            const retried = yield* store.append(id, events, { expectedVersion: expected })
            assert.strictEqual(retried.version, base + n)
            assert.deepStrictEqual(retried.events.map((e) => e.version), range(base + 1, base + n))
            assert.deepStrictEqual(retried.events.map((e) => e.eventId), ids(id, n))
            // The original result: the stored times, not the retry's.
            const read = yield* Stream.runCollect(store.read(id, { from: base + 1 }))
            assert.deepStrictEqual(retried.events, read)
            assert.deepStrictEqual(
              retried.events.map((e) => DateTime.toEpochMillis(e.recordedAt)),
              applied.slice(base).map((item) => Number(item.t!.N))
            )
            const stored = yield* storedIds(raw, tableName, id)
            assert.strictEqual(stored.length, base + n, "not appended twice")
            assertGapFree(stored)
          })
        ))
    }

    it.live("a retry from another process (a new store, nothing cached) after an unknown outcome also returns the original result", () =>
      withEventStore(({ raw, setFault, tableName }) =>
        Effect.gen(function*() {
          const id = freshId()
          const store = yield* EventStore.EventStore
          yield* store.append(id, newEvents(["first"]), { expectedVersion: "noStream" })
          const events = newEvents(ids(id, 3), 2)
          setFault(lostWritesAndReads)
          const e = storageError(failure(yield* Effect.exit(store.append(id, events, { expectedVersion: 1 }))))
          assert.isTrue(e.unknownOutcome)
          setFault(undefined)
          const other = yield* DynamoEventStore.make({ tableName })
          const retried = yield* other.append(id, events, { expectedVersion: 1 })
          assert.strictEqual(retried.version, 4)
          assert.deepStrictEqual(retried.events, yield* Stream.runCollect(other.read(id, { from: 2 })))
          assert.deepStrictEqual(assertGapFree(yield* storedIds(raw, tableName, id)), ["first", ...ids(id, 3)])
          // A repeat with one event changed is not the same append.
          const changed = [events[0]!, events[1]!, { ...events[2]!, payload: { _tag: "Deposited", amount: 99 } }]
          const conflict = failure(yield* Effect.exit(other.append(id, changed, { expectedVersion: 1 })))
          assert.deepInclude(conflict, { _tag: "EventIdConflictError", reason: "differentContent", version: 4, index: 2 })
        })
      ))

    for (const expected of ["any", "streamExists"] as const) {
      it.live(`an "${expected}" append whose outcome stays unknown is a StorageError with unknownOutcome (not a conflict), stored once`, () =>
        withEventStore(({ raw, setFault, tableName }) =>
          Effect.gen(function*() {
            const id = freshId()
            const store = yield* EventStore.EventStore
            yield* store.append(id, newEvents(["first"]), { expectedVersion: "noStream" })
            const events = newEvents(["x-1", "x-2"], 2)
            let queries = 0
            // The version read before the write works; the write and the read-back do not.
            setFault((command, input, proceed) =>
              command === "Query" && queries++ === 0 ? proceed() : lostWritesAndReads(command, input, proceed)
            )
            const e = storageError(failure(yield* Effect.exit(store.append(id, events, { expectedVersion: expected }))))
            assert.isTrue(e.unknownOutcome)
            assert.match(e.message, /may have been applied/)
            setFault(undefined)
            assert.deepStrictEqual(assertGapFree(yield* storedIds(raw, tableName, id)), ["first", "x-1", "x-2"])
            // "any"/"streamExists" promise no idempotency across calls (README): the caller who
            // knows the version the append would have taken retries with it, and is recognised.
            const retried = yield* store.append(id, events, { expectedVersion: 1 })
            assert.deepStrictEqual(retried.events.map((e) => [e.version, e.eventId]), [[2, "x-1"], [3, "x-2"]])
            assert.strictEqual((yield* storedIds(raw, tableName, id)).length, 3)
          })
        ))
    }
  })

  describe("appendBulk", () => {
    const bulkEvents = (prefix: string) => newEvents(ids(prefix, 250))
    /** Applies the transaction starting at version `from`, losing every response to it. */
    const loseTransactionAt = (from: number, alsoReads: boolean): Fault => (command, input, proceed) => {
      if (command === "TransactWriteItems" && input.TransactItems?.[0]?.Put?.Item?.v?.N === String(from)) {
        return sendThenThrow(proceed, connectionReset)
      }
      if (alsoReads && command === "Query") return Promise.reject(serverError())
      return proceed()
    }

    it.live("250 events whose 2nd transaction is applied but loses every response: success at version 250 (read back)", () =>
      withEventStore(({ raw, setFault, tableName }) =>
        Effect.gen(function*() {
          const id = freshId()
          setFault(loseTransactionAt(101, false))
          const result = yield* EventStore.appendBulk(id, bulkEvents(id), { expectedVersion: "noStream" })
          setFault(undefined)
          assert.strictEqual(result.version, 250)
          assert.deepStrictEqual(result.events.map((e) => e.version), range(1, 250))
          const stored = assertGapFree(yield* storedIds(raw, tableName, id))
          assert.deepStrictEqual(stored, ids(id, 250))
          assert.deepStrictEqual(result.events.map((e) => e.eventId), stored)
        })
      ))

    it.live("...and when the read-back fails too: AppendBulkInterrupted (100 appended, unknownOutcome) that resumes to 250", () =>
      withEventStore(({ raw, setFault, tableName }) =>
        Effect.gen(function*() {
          const id = freshId()
          // Without caller ids: appendBulk gives the events ids, and `remaining` carries them.
          const events = range(1, 250).map((n): EventStore.NewEvent => ({ type: "Deposited", payload: deposit(n) }))
          setFault(loseTransactionAt(101, true))
          const e = failure(yield* Effect.exit(EventStore.appendBulk(id, events, { expectedVersion: "noStream" })))
          setFault(undefined)
          assert.strictEqual(e._tag, "AppendBulkInterrupted")
          if (e._tag !== "AppendBulkInterrupted") return
          assert.deepInclude(e, { appended: 100, version: 100, total: 250, unknownOutcome: true })
          assert.strictEqual(e.remaining.length, 150)
          const remaining = e.remaining as ReadonlyArray<EventStore.NewEvent>
          const landed = yield* storedIds(raw, tableName, id)
          assert.strictEqual(landed.length, 200, "the 2nd transaction was applied")
          assert.deepStrictEqual(landed.slice(100).map((s) => s.eventId), remaining.slice(0, 100).map((r) => r.eventId))
          const resumed = yield* EventStore.appendBulk(id, remaining, { expectedVersion: e.version })
          assert.strictEqual(resumed.version, 250)
          const read = yield* Stream.runCollect(Accounts.read(id))
          assert.deepStrictEqual(read.map((r) => r.version), range(1, 250))
          assert.strictEqual(new Set(read.map((r) => r.eventId)).size, 250)
          assert.deepStrictEqual(read.map((r) => r.payload), events.map((ev) => ev.payload))
          assertGapFree(yield* storedIds(raw, tableName, id))
        })
      ))

    for (const [label, fault] of [
      ["applied, read-back failed", loseTransactionAt(101, true)],
      ["not applied", ((command, input, proceed) =>
        command === "TransactWriteItems" && input.TransactItems?.[0]?.Put?.Item?.v?.N === "101"
          ? Promise.reject(serverError())
          : proceed()) as Fault]
    ] as const) {
      it.live(`resuming as documented keeps the import's metadata (options.metadata) on every event (2nd transaction ${label})`, () =>
        withEventStore(({ raw, setFault, tableName }) =>
          Effect.gen(function*() {
            const id = freshId()
            const metadata = { correlationId: "import-1", actor: "importer" }
            setFault(fault)
            const e = failure(yield* Effect.exit(EventStore.appendBulk(id, bulkEvents(id), { expectedVersion: "noStream", metadata })))
            setFault(undefined)
            assert.strictEqual(e._tag, "AppendBulkInterrupted")
            if (e._tag !== "AppendBulkInterrupted") return
            assert.deepInclude(e, { appended: 100, version: 100, unknownOutcome: true })
            // The documented recipe: EventStore.appendBulk(streamId, error.remaining, { expectedVersion: error.version }).
            const resumed = yield* Effect.exit(
              EventStore.appendBulk(id, e.remaining as ReadonlyArray<EventStore.NewEvent>, { expectedVersion: e.version })
            )
            assert.isTrue(
              resumed._tag === "Success",
              `resuming with error.remaining failed: ${resumed._tag === "Failure" ? String((failure(resumed) as Error).message) : ""}`
            )
            assert.deepStrictEqual(assertGapFree(yield* storedIds(raw, tableName, id)), ids(id, 250))
            const read = yield* Stream.runCollect(Accounts.read(id))
            assert.deepStrictEqual(
              read.filter((r) => r.metadata.correlationId !== "import-1").map((r) => r.version),
              [],
              "every imported event carries the import's metadata"
            )
          })
        ))
    }

    it.live("a first transaction whose outcome stays unknown: the error that is returned as is means nothing was written", () =>
      withEventStore(({ raw, setFault, tableName }) =>
        Effect.gen(function*() {
          const id = freshId()
          // No caller ids: only appendBulk knows the ids of the events it wrote.
          const events = range(1, 150).map((n): EventStore.NewEvent => ({ type: "Deposited", payload: deposit(n) }))
          setFault(loseTransactionAt(1, true))
          const e = failure(yield* Effect.exit(EventStore.appendBulk(id, events, { expectedVersion: "noStream" })))
          setFault(undefined)
          const stored = yield* storedIds(raw, tableName, id)
          assert.strictEqual(stored.length, 100, "the first transaction was applied")
          // Documented: "a failure of the first transaction writes nothing (its error is returned
          // as is)"; what was written must be resumable: AppendBulkInterrupted with the ids.
          assert.strictEqual(
            e._tag,
            "AppendBulkInterrupted",
            `100 events are stored, but appendBulk returned its first transaction's ${e._tag} as is, without the ids it gave them: ${
              (e as Error).message
            }`
          )
          if (e._tag !== "AppendBulkInterrupted") return
          const resumed = yield* EventStore.appendBulk(id, e.remaining as ReadonlyArray<EventStore.NewEvent>, {
            expectedVersion: e.version
          })
          assert.strictEqual(resumed.version, 150)
          assertGapFree(yield* storedIds(raw, tableName, id))
        })
      ))

    it.live("a 2nd transaction that never reached DynamoDB: AppendBulkInterrupted with unknownOutcome; resuming gives 250", () =>
      withEventStore(({ raw, setFault, tableName }) =>
        Effect.gen(function*() {
          const id = freshId()
          setFault((command, input, proceed) =>
            command === "TransactWriteItems" && input.TransactItems?.[0]?.Put?.Item?.v?.N === "101"
              ? Promise.reject(serverError())
              : proceed()
          )
          const e = failure(yield* Effect.exit(EventStore.appendBulk(id, bulkEvents(id), { expectedVersion: "noStream" })))
          setFault(undefined)
          assert.strictEqual(e._tag, "AppendBulkInterrupted")
          if (e._tag !== "AppendBulkInterrupted") return
          assert.deepInclude(e, { appended: 100, version: 100, unknownOutcome: true })
          assert.strictEqual((yield* storedIds(raw, tableName, id)).length, 100)
          const resumed = yield* EventStore.appendBulk(id, e.remaining as ReadonlyArray<EventStore.NewEvent>, {
            expectedVersion: e.version
          })
          assert.strictEqual(resumed.version, 250)
          assert.deepStrictEqual(assertGapFree(yield* storedIds(raw, tableName, id)), ids(id, 250))
        })
      ))
  })

  describe("stored items that do not decode", () => {
    const good = (id: string, version: number): Item => ({
      s: { S: id },
      v: { N: String(version) },
      i: { S: `${id}-e${version}` },
      y: { S: "Deposited" },
      d: { S: JSON.stringify(deposit(version)) },
      t: { N: String(Date.now()) }
    })
    const without = (key: string) => (item: Item): Item => {
      const { [key]: _, ...rest } = item
      return rest
    }
    const set = (key: string, value: Item[string]) => (item: Item): Item => ({ ...item, [key]: value })

    const cases: ReadonlyArray<readonly [string, (item: Item) => Item]> = [
      ["TTL x = 1e20", set("x", { N: "1e20" })],
      ["TTL x = 100000000000000000000", set("x", { N: "100000000000000000000" })],
      ["TTL x = -1e20", set("x", { N: "-1e20" })],
      ["TTL x as a string", set("x", { S: "tomorrow" })],
      ["TTL x as a boolean", set("x", { BOOL: true })],
      ["recorded time t = 1e20", set("t", { N: "1e20" })],
      ["recorded time t just past the Date range", set("t", { N: "8640000000000001" })],
      ["recorded time t = 9.99e125", set("t", { N: "9.9999999999999999999999999999999999999E+125" })],
      ["recorded time t missing", without("t")],
      ["recorded time t as a string", set("t", { S: "yesterday" })],
      ["metadata {\"actor\":5}", set("m", { S: "{\"actor\":5}" })],
      ["metadata null", set("m", { S: "null" })],
      ["metadata an array", set("m", { S: "[]" })],
      ["metadata a string", set("m", { S: "\"actor\"" })],
      ["metadata custom not an object", set("m", { S: "{\"custom\":5}" })],
      ["metadata not JSON", set("m", { S: "{actor" })],
      ["metadata as a number", set("m", { N: "5" })],
      ["payload not JSON", set("d", { S: "not json" })],
      ["payload missing", without("d")],
      ["payload as a number", set("d", { N: "5" })],
      ["payload that the event Schema refuses", set("d", { S: "{\"_tag\":\"Deposited\",\"amount\":\"five\"}" })],
      ["event id missing", without("i")],
      ["event id as a number", set("i", { N: "7" })],
      ["type missing", without("y")],
      ["type as a number", set("y", { N: "1" })],
      ["type as a boolean", set("y", { BOOL: false })],
      ["type as a list", set("y", { L: [{ S: "Deposited" }] })]
    ]

    for (const [label, corrupt] of cases) {
      it.live(`${label}: read, readLast and typed reads fail with CorruptedEventError (stream, version 2); reading around it works`, () =>
        withEventStore(({ raw, tableName }) =>
          Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const id = freshId("corrupt")
            yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
            yield* putRaw(raw, tableName, corrupt(good(id, 2)))
            yield* Accounts.append(id, [deposit(3)], { expectedVersion: 2 })
            const typedOnly = label.startsWith("payload that")
            const expectCorrupted = (effect: Effect.Effect<unknown, unknown, EventStore.EventStore>, what: string) =>
              Effect.gen(function*() {
                const e = failure(yield* Effect.exit(effect)) as { _tag: string; streamId: string; version: number }
                assert.deepInclude(e, { _tag: "CorruptedEventError", streamId: id, version: 2 }, what)
              })
            if (!typedOnly) {
              yield* expectCorrupted(Stream.runCollect(store.read(id)), "read")
              yield* expectCorrupted(Stream.runCollect(store.read(id, { direction: "backward" })), "read backward")
              yield* expectCorrupted(store.readLast(id, 2), "readLast")
              yield* expectCorrupted(Stream.runCollect(store.read(id, { from: 2, to: 2 })), "read of version 2 alone")
            }
            yield* expectCorrupted(Stream.runCollect(Accounts.read(id)), "typed read")
            yield* expectCorrupted(Accounts.readLast(id, 5), "typed readLast")
            // An aggregate load reads through the store's page fold; over a store whose `read`
            // is wrapped, through `read`: the same error either way.
            yield* expectCorrupted(Balance.load(id), "aggregate load")
            yield* expectCorrupted(
              Balance.load(id).pipe(Effect.provideService(EventStore.EventStore, { ...store, read: (...args) => store.read(...args) })),
              "aggregate load through read"
            )
            // The reader skips it: on from version + 1, or backwards to version - 1.
            const after = yield* Stream.runCollect(Accounts.read(id, { from: 3 }))
            assert.deepStrictEqual(after.map((e) => [e.version, e.payload]), [[3, deposit(3)]])
            const before = yield* Stream.runCollect(Accounts.read(id, { direction: "backward", to: 1 }))
            assert.deepStrictEqual(before.map((e) => [e.version, e.payload]), [[1, deposit(1)]])
            assert.deepStrictEqual((yield* Accounts.readLast(id, 1)).map((e) => e.version), [3])
            assert.strictEqual(yield* store.version(id), 3)
          })
        ))
    }

    it.live("a non-integer version is a CorruptedEventError naming the stream (never a defect); the integers around it read", () =>
      withEventStore(({ raw, tableName }) =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = freshId("corrupt")
          yield* Accounts.append(id, [deposit(1), deposit(2)], { expectedVersion: "noStream" })
          yield* putRaw(raw, tableName, { ...good(id, 2), v: { N: "1.5" } })
          const e = failure(yield* Effect.exit(Stream.runCollect(store.read(id))))
          assert.deepInclude(e, { _tag: "CorruptedEventError", streamId: id })
          const e2 = failure(yield* Effect.exit(Accounts.readLast(id, 2)))
          assert.deepInclude(e2, { _tag: "CorruptedEventError", streamId: id })
          assert.deepStrictEqual((yield* Stream.runCollect(Accounts.read(id, { from: 2 }))).map((x) => x.version), [2])
          assert.deepStrictEqual((yield* Accounts.readLast(id, 1)).map((x) => x.version), [2])
        })
      ))

    // Items outside 1..N (by hand, a buggy tool): the stream is 1..2 plus one stray item.
    const strays = ["0", "-3", "1.5", "1e20", "9007199254740993"]
    const withStray = (raw: Parameters<typeof putRaw>[0], tableName: string, v: string) =>
      Effect.gen(function*() {
        const id = freshId("stray")
        yield* Accounts.append(id, [deposit(1), deposit(2)], { expectedVersion: "noStream" })
        yield* putRaw(raw, tableName, { ...good(id, 2), v: { N: v }, i: { S: "stray" } })
        return id
      })

    for (const v of strays) {
      it.live(`a stray item at version ${v}: a read fails with a CorruptedEventError that the documented recipe skips, or does not see it`, () =>
        withEventStore(({ raw, tableName }) =>
          Effect.gen(function*() {
            const store = yield* EventStore.EventStore
            const id = yield* withStray(raw, tableName, v)
            // Reads forward, skipping corrupted events as the README says: from error.version + 1.
            const versions: Array<number> = []
            let from = 1
            for (let attempt = 0; ; attempt++) {
              if (attempt === 4) assert.fail(`reading on from error.version + 1 never got past the stray item at version ${v}`)
              // A reader that processes events as they come (what the recipe is for): the
              // events before the damaged one are seen, then the error.
              const exit = yield* Effect.exit(Stream.runForEach(store.read(id, { from }), (e) => Effect.sync(() => versions.push(e.version))))
              if (exit._tag === "Success") break
              const e = failure(exit) as { _tag: string; streamId?: string; version?: number; message: string }
              assert.deepInclude(e, { _tag: "CorruptedEventError", streamId: id }, e.message)
              from = e.version! + 1
            }
            assert.deepStrictEqual(versions.filter((n) => n >= 1 && Number.isSafeInteger(n)), [1, 2])
          })
        ))

      it.live(`a stray item at version ${v}: version() is a safe integer and appends never die nor write outside 1..N+1`, () =>
        withEventStore(({ raw, tableName }) =>
          Effect.gen(function*() {
            const id = yield* withStray(raw, tableName, v)
            // A store that has not seen the stream (another process); few attempts for "any".
            const fresh = yield* DynamoEventStore.make({ tableName, maxAppendAttempts: 3 })
            for (const expectedVersion of [2, "any"] as const) {
              const exit = yield* Effect.exit(fresh.append(id, [{ type: "Note", payload: { _tag: "Note", text: "x" } }], { expectedVersion }))
              if (exit._tag === "Success") {
                assert.strictEqual(exit.value.version, 3, `expectedVersion ${expectedVersion}`)
                break
              }
              failure(exit) // a typed error, not a defect
            }
            const stored = (yield* storedIds(raw, tableName, id)).map((s) => s.version)
            assert.deepStrictEqual(
              stored.filter((n) => n >= 1 && Number.isSafeInteger(n) && String(n) !== v),
              range(1, stored.filter((n) => n >= 1 && Number.isSafeInteger(n) && String(n) !== v).length),
              `no event written at a garbage version: ${JSON.stringify(stored)}`
            )
            const version = yield* Effect.exit(fresh.version(id))
            if (version._tag === "Success") assert.isTrue(Number.isSafeInteger(version.value), `version() returned ${version.value}`)
            else failure(version)
          })
        ))
    }

    // -------------------------------------------------------------------------
    // property: any attribute map at version 2
    // -------------------------------------------------------------------------

    /** A DynamoDB number: integers, decimals, huge and tiny exponents (all within DynamoDB's range). */
    const NumberText = Schema.Union([
      Schema.Int,
      Schema.Struct({ mantissa: Schema.Int, exponent: Schema.Int.check(Schema.isBetween({ minimum: -120, maximum: 120 })) }),
      Schema.Literals([
        "1e20",
        "100000000000000000000",
        "-1e20",
        "8640000000000001",
        "8640000000000000",
        "9.9999999999999999999999999999999999999E+125",
        "1E-130",
        "0",
        "-0",
        "0.5",
        "-1"
      ])
    ])
    const numberText = (n: typeof NumberText.Type): string =>
      typeof n === "string" ? n : typeof n === "number" ? String(n) : `${n.mantissa}e${n.exponent}`

    const AttributeChoice = Schema.Union([
      Schema.Struct({ _tag: Schema.Literal("absent") }),
      Schema.Struct({ _tag: Schema.Literal("S"), value: Schema.String }),
      Schema.Struct({ _tag: Schema.Literal("N"), value: NumberText }),
      Schema.Struct({ _tag: Schema.Literal("BOOL"), value: Schema.Boolean }),
      Schema.Struct({ _tag: Schema.Literal("NULL") }),
      Schema.Struct({ _tag: Schema.Literal("JSON"), value: Schema.Json }),
      Schema.Struct({ _tag: Schema.Literal("badJSON"), value: Schema.String }),
      Schema.Struct({
        _tag: Schema.Literal("metadata"),
        value: Schema.Struct({
          actor: Schema.optional(Schema.Union([Schema.String, Schema.Json])),
          correlationId: Schema.optional(Schema.String),
          causationId: Schema.optional(Schema.Union([Schema.String, Schema.Json])),
          custom: Schema.optional(Schema.Json),
          other: Schema.optional(Schema.Json)
        })
      })
    ])
    type AttributeChoice = typeof AttributeChoice.Type
    const attributeValue = (c: AttributeChoice): Item[string] | undefined => {
      switch (c._tag) {
        case "absent":
          return undefined
        case "S":
          return { S: c.value }
        case "N":
          return { N: numberText(c.value) }
        case "BOOL":
          return { BOOL: c.value }
        case "NULL":
          return { NULL: true }
        case "JSON":
          return { S: JSON.stringify(c.value) }
        case "badJSON":
          return { S: `{${c.value}` }
        case "metadata":
          return { S: JSON.stringify(c.value) }
      }
    }
    const Mutation = Schema.Struct({ attribute: Schema.Literals(["i", "y", "d", "m", "t", "x", "z"]), value: AttributeChoice })
    const Mutations = Schema.Array(Mutation).check(Schema.isMaxLength(4))

    it.live("property: any attribute map at version 2 reads as 3 envelopes or fails with CorruptedEventError (version 2), never a defect", () =>
      withEventStore(({ raw, tableName }) =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          let valid = 0
          let corrupted = 0
          yield* checkProperty("attribute maps", Arbitrary.schema(Mutations), (mutations) =>
            Effect.gen(function*() {
              const id = freshId("prop")
              let item = good(id, 2)
              for (const m of mutations) {
                const value = attributeValue(m.value)
                const { [m.attribute]: _, ...rest } = item
                item = value === undefined ? rest : { ...rest, [m.attribute]: value }
              }
              yield* putRaw(raw, tableName, good(id, 1))
              yield* putRaw(raw, tableName, item)
              yield* putRaw(raw, tableName, good(id, 3))
              for (const read of [
                Stream.runCollect(store.read(id)),
                Stream.runCollect(store.read(id, { direction: "backward" })),
                store.readLast(id, 3)
              ]) {
                const exit = yield* Effect.exit(read)
                if (exit._tag === "Success") {
                  assert.strictEqual(exit.value.length, 3)
                  assert.deepStrictEqual(exit.value.map((e) => e.version).sort(), [1, 2, 3])
                  valid++
                } else {
                  assert.deepInclude(failure(exit), { _tag: "CorruptedEventError", streamId: id, version: 2 })
                  corrupted++
                }
              }
              // The typed read decodes the payload too: the same two outcomes.
              const typed = yield* Effect.exit(Stream.runCollect(Accounts.read(id)))
              if (typed._tag === "Failure") assert.deepInclude(failure(typed), { _tag: "CorruptedEventError", streamId: id, version: 2 })
              const after = yield* Stream.runCollect(Accounts.read(id, { from: 3 }))
              assert.deepStrictEqual(after.map((e) => [e.version, e.payload]), [[3, deposit(3)]])
              const before = yield* Stream.runCollect(Accounts.read(id, { to: 1 }))
              assert.deepStrictEqual(before.map((e) => [e.version, e.payload]), [[1, deposit(1)]])
            }), { runs: 60, seed: 424242 })
          assert.isAbove(valid, 0, "some generated items were valid")
          assert.isAbove(corrupted, 0, "some generated items were corrupted")
        })
      ))
  })
  describe("stored snapshot headers that do not decode", () => {
    const cases: ReadonlyArray<readonly [string, (item: Item) => Item]> = [
      ["schema version w missing", ({ w: _, ...rest }) => rest],
      ["schema version w = 1.5", (item) => ({ ...item, w: { N: "1.5" } })],
      ["schema version w = 1e20", (item) => ({ ...item, w: { N: "1e20" } })],
      ["schema version w as a string", (item) => ({ ...item, w: { S: "one" } })],
      ["saved-at t = 1e20", (item) => ({ ...item, t: { N: "1e20" } })],
      ["inline data b missing", ({ b: _, ...rest }) => rest],
      ["checksum h missing", ({ h: _, ...rest }) => rest]
    ]
    for (const [label, corrupt] of cases) {
      it.live(`${label}: load fails with CorruptedSnapshotError (version 3) or returns a well-formed snapshot`, () =>
        Effect.gen(function*() {
          const tableName = Fixtures.uniqueTableName("snapcorrupt")
          yield* Fixtures.scopedTable(DynamoSnapshotStore.snapshotsTable(tableName))
          const store = yield* DynamoSnapshotStore.make({ tableName })
          const raw = new DynamoDBClient(Fixtures.sdkConfig(yield* DynamoDBLocal.DynamoDBLocal))
          yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
          const id = freshId("snap")
          yield* store.save(id, { version: 3, state: { a: 1 }, schemaVersion: 2 })
          const [header] = yield* rawSnapshotItems(raw, tableName, id)
          yield* putRaw(raw, tableName, corrupt(header!))
          const exit = yield* Effect.exit(store.load(id))
          if (exit._tag === "Failure") {
            assert.deepInclude(failure(exit), { _tag: "CorruptedSnapshotError", streamId: id, version: 3 })
          } else {
            const snapshot = Option.getOrThrow(exit.value)
            assert.isTrue(Number.isSafeInteger(snapshot.schemaVersion) && snapshot.schemaVersion >= 0, `schemaVersion ${snapshot.schemaVersion}`)
            assert.deepStrictEqual(snapshot.state, { a: 1 })
          }
        }).pipe(Effect.scoped, Effect.provide(Fixtures.layerClientFor().pipe(Layer.provideMerge(local)))))
    }
  })
})

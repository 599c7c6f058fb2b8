/**
 * Fault injection, property style: random short programs of appends, bulk imports,
 * read-model flushes and snapshot saves, each request with a random fault (lost response,
 * throttling, 5xx, unrecognised error), against the real DynamoDB Local. After every call,
 * with faults off, what the call reported must be what is stored:
 *
 * - success: every reported event is stored at its reported version with its reported id;
 * - failure without `unknownOutcome`: storage unchanged;
 * - `unknownOutcome`: either nothing or exactly the call's events are stored, and the same
 *   call (same ids, same expected version) converges to success without a duplicate;
 * - at the end every stream is exactly 1..N without a duplicate event id.
 */
import { assert, describe, it } from "@effect/vitest"
import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { type Errors, EventStore } from "@dynamo-es/core"
import { Item, item } from "@dynamo-es/core/testing/ReadModelConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Arbitrary, Effect, Exit, Option, References, Schedule, Schema, Stream } from "effect"
import { DynamoClient, DynamoEventStore, DynamoSnapshotStore, Tables } from "../src/index.js"
import {
  assertGapFree,
  checkProperty,
  connectionReset,
  failure,
  freshId,
  local,
  quickRetries,
  range,
  sendThenThrow,
  serverError,
  storedIds,
  throttled,
  weirdError
} from "./faultHelpers.js"
import { type Fault, instrumentedClient } from "./helpers.js"
import { makeReadModelEnv, partialBatches } from "./readModelHelpers.js"

// -----------------------------------------------------------------------------
// fault plans
// -----------------------------------------------------------------------------

/**
 * - `lost`: DynamoDB applies the request, the response is lost (ECONNRESET);
 * - `unknownAfter`: applied, then an unrecognised error (not retryable);
 * - `unknownBefore`: an unrecognised error before sending (not retryable, outcome unknown to the client);
 * - `throttle`, `server`: throttling, a 5xx, before sending (retryable).
 */
const FaultKind = Schema.Literals(["none", "lost", "throttle", "server", "unknownAfter", "unknownBefore"])
type FaultKind = typeof FaultKind.Type
/**
 * Faults by request, in request order: each entry lets `skip` requests through, then
 * injects its fault into the next `times` ones (a burst exhausts the client's retries);
 * requests after the plan run without fault.
 */
const Plan = Schema.Array(
  Schema.Struct({
    skip: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 })),
    kind: FaultKind,
    times: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 5 }))
  })
).check(Schema.isMaxLength(5))
type Plan = typeof Plan.Type
const flatten = (plan: Plan): Array<FaultKind> =>
  plan.flatMap((p) => [...Array<FaultKind>(p.skip).fill("none"), ...Array<FaultKind>(p.times).fill(p.kind)])

/** What one fault does around a real request. */
const inject = (kind: FaultKind | "partial" | undefined, proceed: () => Promise<any>): Promise<any> => {
  switch (kind) {
    case "lost":
      return sendThenThrow(proceed, connectionReset)
    case "unknownAfter":
      return sendThenThrow(proceed, weirdError)
    case "unknownBefore":
      return Promise.reject(weirdError())
    case "throttle":
      return Promise.reject(throttled())
    case "server":
      return Promise.reject(serverError())
    default:
      return proceed()
  }
}

/** A fault hook that consumes `plan` one request at a time, for the given commands. */
const planned = (plan: Plan, commands: ReadonlySet<string>): Fault => {
  const kinds = flatten(plan)
  let next = 0
  return (command, _input, proceed) => (commands.has(command) ? inject(kinds[next++], proceed) : proceed())
}

const EVENT_COMMANDS = new Set(["PutItem", "TransactWriteItems", "Query"])

// -----------------------------------------------------------------------------
// event store programs
// -----------------------------------------------------------------------------

const StreamIndex = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 }))
const AppendOp = Schema.Struct({
  _tag: Schema.Literal("Append"),
  stream: StreamIndex,
  count: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 })),
  expected: Schema.Literals(["exact", "any"]),
  ownIds: Schema.Boolean,
  plan: Plan
})
const BulkOp = Schema.Struct({
  _tag: Schema.Literal("Bulk"),
  stream: StreamIndex,
  count: Schema.Int.check(Schema.isBetween({ minimum: 101, maximum: 220 })),
  ownIds: Schema.Boolean,
  plan: Plan
})
const EventProgram = Schema.Array(Schema.Union([AppendOp, AppendOp, BulkOp])).check(
  Schema.isMinLength(2),
  Schema.isMaxLength(6)
)
type EventOp = typeof AppendOp.Type | typeof BulkOp.Type

const eventsOf = (n: number, ids: ReadonlyArray<string> | undefined): Array<EventStore.NewEvent> =>
  range(1, n).map((i) => ({
    type: "Deposited",
    payload: { _tag: "Deposited", amount: i },
    ...(ids !== undefined ? { eventId: ids[i - 1]! } : {})
  }))

const describeError = (e: unknown) => `${(e as { _tag?: string })._tag}: ${(e as Error).message}`

// -----------------------------------------------------------------------------
// read-model programs
// -----------------------------------------------------------------------------

const FlushFault = Schema.Struct({
  skip: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 })),
  kind: Schema.Literals(["lost", "throttle", "server", "unknownAfter", "unknownBefore", "partial"]),
  times: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 5 }))
})
const Staged = Schema.Struct({
  id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 39 })),
  action: Schema.Literals(["save", "save", "remove"]),
  count: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))
})
const Round = Schema.Struct({
  staged: Schema.Array(Staged).check(Schema.isMinLength(1), Schema.isMaxLength(40)),
  plan: Schema.Array(FlushFault).check(Schema.isMaxLength(6))
})
const FlushProgram = Schema.Array(Round).check(Schema.isMinLength(1), Schema.isMaxLength(3))

const modelId = (n: number) => `m-${String(n).padStart(3, "0")}`

// -----------------------------------------------------------------------------
// snapshot programs
// -----------------------------------------------------------------------------

const SnapshotSave = Schema.Struct({
  size: Schema.Literals(["small", "large"]),
  bytes: Schema.Int.check(Schema.isBetween({ minimum: 5_000, maximum: 20_000 })),
  plan: Plan
})
const SnapshotProgram = Schema.Array(SnapshotSave).check(Schema.isMinLength(1), Schema.isMaxLength(5))

const SNAPSHOT_COMMANDS = new Set(["PutItem", "BatchWriteItem", "Query"])

describe("fault injection (property)", { timeout: 120_000 }, () => {
  it.live("appends and bulk imports under random faults report exactly what is stored", () =>
    Effect.gen(function*() {
      const connection = yield* DynamoDBLocal.DynamoDBLocal
      const tools = instrumentedClient(connection)
      const rawSdk = new DynamoDBClient(Fixtures.sdkConfig(connection))
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          tools.sdk.destroy()
          rawSdk.destroy()
        })
      )
      const tableName = Fixtures.uniqueTableName("faults")
      const clientLayer = DynamoClient.layer({ client: tools.sdk, retrySchedule: quickRetries })
      yield* Fixtures.scopedTable(Tables.eventsTable(tableName)).pipe(Effect.provide(clientLayer))
      const stats = { calls: 0, failures: 0, unknown: 0, interrupted: 0 }

      const runProgram = (program: ReadonlyArray<EventOp>) =>
        Effect.gen(function*() {
          // A new store (empty version cache) and new streams for every program.
          const store = yield* DynamoEventStore.make({ tableName }).pipe(Effect.provide(clientLayer))
          const streams = range(0, 2).map(() => freshId("fi"))
          const model = new Map<string, ReadonlyArray<string>>(streams.map((s) => [s, []]))
          let nextId = 0
          const stored = (streamId: string) => storedIds(rawSdk, tableName, streamId)
          const provide = <A, E>(effect: Effect.Effect<A, E, EventStore.EventStore>) =>
            Effect.provideService(effect, EventStore.EventStore, store)

          for (const [step, op] of program.entries()) {
            const streamId = streams[op.stream]!
            const before = model.get(streamId)!
            const where = `step ${step} (${op._tag} of ${op.count} on stream ${op.stream})`
            const ids = op.ownIds ? range(1, op.count).map(() => `${streamId}-${nextId++}`) : undefined
            const events = eventsOf(op.count, ids)
            const expectedVersion: EventStore.ExpectedVersion = op._tag === "Append" && op.expected === "any" ? "any" : before.length
            const call = op._tag === "Append"
              ? provide(EventStore.EventStore.use((s) => s.append(streamId, events, { expectedVersion })))
              : provide(EventStore.appendBulk(streamId, events, { expectedVersion }))
            tools.setFault(planned(op.plan, EVENT_COMMANDS))
            const exit = yield* Effect.exit(call)
            tools.setFault(undefined)
            stats.calls++

            const after = yield* stored(streamId)
            assertGapFree(after, where)
            const afterIds = after.map((s) => s.eventId!)
            assert.deepStrictEqual(afterIds.slice(0, before.length), [...before], `${where}: earlier events unchanged`)

            /** After an unknown outcome: nothing or exactly the first `k` events of the call are stored. */
            const nothingOrFirst = (base: number, k: number) => {
              assert.include([base, base + k], afterIds.length, `${where}: nothing or the whole transaction`)
              if (ids !== undefined && afterIds.length > base) {
                assert.deepStrictEqual(afterIds.slice(base), ids.slice(base - before.length, base - before.length + k), where)
              }
            }
            /** A retry of the same call with faults off must converge: exactly the call's events, once. */
            const converged = (result: EventStore.AppendResult, from: number) =>
              Effect.gen(function*() {
                assert.strictEqual(result.version, before.length + op.count, `${where}: version after the retry`)
                const final = (yield* stored(streamId)).map((s) => s.eventId!)
                assert.strictEqual(final.length, before.length + op.count, `${where}: no duplicate after the retry`)
                if (ids !== undefined) assert.deepStrictEqual(final.slice(before.length), ids, `${where}: the call's own ids`)
                for (const e of result.events) assert.strictEqual(final[e.version - 1], e.eventId, `${where}: reported id stored`)
                assert.strictEqual(result.events.length, op.count - from)
                return final
              })

            if (Exit.isSuccess(exit)) {
              const result = exit.value
              assert.strictEqual(result.version, before.length + op.count, `${where}: reported version`)
              assert.deepStrictEqual(result.events.map((e) => e.version), range(before.length + 1, before.length + op.count))
              assert.strictEqual(afterIds.length, before.length + op.count, `${where}: stored exactly once`)
              for (const e of result.events) assert.strictEqual(afterIds[e.version - 1], e.eventId, `${where}: reported id stored`)
              if (ids !== undefined) assert.deepStrictEqual(result.events.map((e) => e.eventId), ids)
              model.set(streamId, afterIds)
              continue
            }
            stats.failures++
            const error = failure(exit) as Errors.StorageError | Errors.AppendBulkInterrupted | { _tag: string }
            if (error._tag === "AppendBulkInterrupted") {
              stats.interrupted++
              const e = error as Errors.AppendBulkInterrupted
              assert.strictEqual(e.version, before.length + e.appended, `${where}: the version after the known events`)
              assert.strictEqual(e.total, op.count)
              // Whole transactions; none only when the first one's outcome is unknown (else
              // its own error comes back as is).
              assert.isTrue(e.appended % 100 === 0 && (e.appended > 0 || e.unknownOutcome), `${where}: whole transactions appended (${e.appended})`)
              const remaining = e.remaining as ReadonlyArray<EventStore.NewEvent>
              assert.strictEqual(remaining.length, op.count - e.appended)
              if (ids !== undefined) assert.deepStrictEqual(remaining.map((r) => r.eventId), ids.slice(e.appended))
              if (e.unknownOutcome) {
                stats.unknown++
                nothingOrFirst(e.version, Math.min(100, remaining.length))
              } else {
                assert.strictEqual(afterIds.length, e.version, `${where}: nothing beyond the known events (${describeError(e.cause)})`)
              }
              if (ids !== undefined) assert.deepStrictEqual(afterIds.slice(before.length, e.version), ids.slice(0, e.appended))
              const resumed = yield* provide(EventStore.appendBulk(streamId, remaining, { expectedVersion: e.version }))
              model.set(streamId, yield* converged(resumed, e.appended))
              if (ids === undefined) {
                assert.deepStrictEqual(model.get(streamId)!.slice(e.version), remaining.map((r) => r.eventId))
              }
              continue
            }
            assert.strictEqual(error._tag, "StorageError", `${where}: only storage failures are expected, got ${describeError(error)}`)
            const e = error as Errors.StorageError
            if (e.unknownOutcome !== true) {
              assert.strictEqual(afterIds.length, before.length, `${where}: a failure without unknownOutcome stored nothing (${e.message})`)
              model.set(streamId, afterIds)
              continue
            }
            stats.unknown++
            nothingOrFirst(before.length, Math.min(100, op.count))
            if (ids === undefined) {
              // Without its own ids a caller cannot retry safely; it reads back instead.
              model.set(streamId, afterIds)
              continue
            }
            // The same call again (an "any" append is retried at the version it would have
            // taken: see Outcomes.test.ts for "any" retried as "any").
            const retried = yield* provide(
              op._tag === "Append"
                ? EventStore.EventStore.use((s) => s.append(streamId, events, { expectedVersion: before.length }))
                : EventStore.appendBulk(streamId, events, { expectedVersion: before.length })
            )
            model.set(streamId, yield* converged(retried, 0))
          }

          // Every stream reads exactly 1..N, no duplicate id, as believed.
          for (const streamId of streams) {
            const read = yield* provide(
              Stream.runCollect(EventStore.EventStore.use((s) => Effect.succeed(s.read(streamId, { ifMissing: "empty" }))).pipe(Stream.unwrap))
            )
            assert.deepStrictEqual(read.map((e) => e.version), range(1, read.length))
            assert.strictEqual(new Set(read.map((e) => e.eventId)).size, read.length)
            assert.deepStrictEqual(read.map((e) => e.eventId), [...model.get(streamId)!])
          }
        })

      yield* checkProperty("event store under faults", Arbitrary.schema(EventProgram), runProgram, {
        runs: 30,
        seed: 7_001,
        maxShrinks: 15
      })
      assert.isAbove(stats.failures, 0, "some calls failed")
      assert.isAbove(stats.unknown, 0, "some outcomes were unknown")
      assert.isAbove(stats.interrupted, 0, "some bulk imports were interrupted")
    }).pipe(Effect.scoped, Effect.provide(local)))

  it.live("deferred read-model flushes under random faults: written rows are stored, a re-flush converges", () =>
    Effect.gen(function*() {
      const env = yield* makeReadModelEnv({ writeConcurrency: 1, unprocessedRetrySchedule: Schedule.spaced("2 millis").pipe(Schedule.upTo({ times: 3 })) })
      let failures = 0

      const rowsOf = (name: string) =>
        Effect.map(env.probe.rows(name), (rows) => new Map(rows.map((r) => [r.id, JSON.parse(r.data ?? "null")])))

      const runProgram = (program: typeof FlushProgram.Type) =>
        Effect.gen(function*() {
          const name = freshId("rm")
          const uow = yield* env.store.createDeferred(name, Item)
          const expected = new Map<string, Item>()
          for (const [index, round] of program.entries()) {
            const where = `round ${index}`
            const staged = new Map<string, Item | undefined>()
            for (const s of round.staged) {
              const id = modelId(s.id)
              if (s.action === "save") {
                const model = item(id, { count: s.count, tags: [`t${s.count}`] })
                yield* uow.save(model)
                staged.set(id, model)
              } else {
                yield* uow.remove(id)
                staged.set(id, undefined)
              }
            }
            for (const [id, model] of staged) model === undefined ? expected.delete(id) : expected.set(id, model)

            // One planned fault per BatchWriteItem request; "partial" leaves half of it unprocessed.
            const kinds = round.plan.flatMap((p) => [...Array<string>(p.skip).fill("none"), ...Array<string>(p.times).fill(p.kind)])
            let next = 0
            let current: string | undefined
            // The kind is chosen per storage request (the wrapper's hook), and applied to its
            // first SDK attempt: "partial" at the SDK level, so that the driver reads the
            // UnprocessedItems DynamoDB would return.
            yield* env.probe.setFault((operation) => {
              if (operation === "BatchWriteItem") current = kinds[next++]
              return undefined
            })
            const half = partialBatches(env.tableName, (_command, ids) => ids.slice(0, Math.ceil(ids.length / 2)))
            env.setExtraFault((command, input, proceed) => {
              if (command !== "BatchWriteItem") return proceed()
              const kind = current
              current = undefined
              return kind === "partial" ? half(command, input, proceed) : inject(kind as FaultKind | undefined, proceed)
            })
            const exit = yield* Effect.exit(uow.flush)
            yield* env.probe.setFault(undefined)
            env.setExtraFault(undefined)

            const rows = yield* rowsOf(name)
            if (Exit.isFailure(exit)) {
              failures++
              const e = failure(exit)
              assert.strictEqual(e._tag, "DeferredFlushFailed")
              const pending = yield* uow.pendingOperations
              assert.strictEqual(e.pending, pending.length, where)
              const stillPending = new Set(pending.map((p) => p.id))
              // What is no longer pending is stored as staged.
              for (const [id, model] of staged) {
                if (stillPending.has(id)) continue
                assert.deepStrictEqual(rows.get(id), model, `${where}: ${id} is not pending, so it is stored as staged`)
              }
              assert.isAtMost(e.written, staged.size - pending.length, where)
              const again = yield* uow.flush
              assert.strictEqual(again.saved + again.removed + again.unchanged, pending.length, `${where}: the re-flush writes what was pending`)
              assert.deepStrictEqual(yield* uow.pendingOperations, [])
            } else {
              assert.deepStrictEqual(yield* uow.pendingOperations, [])
            }
            const final = yield* rowsOf(name)
            assert.deepStrictEqual(
              [...final.entries()].sort(([a], [b]) => a.localeCompare(b)),
              [...expected.entries()].sort(([a], [b]) => a.localeCompare(b)),
              `${where}: the stored rows are the model state`
            )
          }
        })

      yield* checkProperty("deferred flushes under faults", Arbitrary.schema(FlushProgram), runProgram, {
        runs: 25,
        seed: 7_002,
        maxShrinks: 15
      })
      assert.isAbove(failures, 0, "some flushes failed")
    }).pipe(Effect.scoped, Effect.provide(local)))

  it.live("snapshot saves under random faults: a load returns the previous or the new snapshot, never a broken one", () =>
    Effect.gen(function*() {
      const connection = yield* DynamoDBLocal.DynamoDBLocal
      const tools = instrumentedClient(connection)
      yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
      const tableName = Fixtures.uniqueTableName("snapfaults")
      const clientLayer = DynamoClient.layer({ client: tools.sdk, retrySchedule: quickRetries })
      yield* Fixtures.scopedTable(DynamoSnapshotStore.snapshotsTable(tableName)).pipe(Effect.provide(clientLayer))
      const store = yield* DynamoSnapshotStore.make({ tableName, partBytes: 2_000, keepLast: 2 }).pipe(Effect.provide(clientLayer))
      let failures = 0

      const runProgram = (program: typeof SnapshotProgram.Type) =>
        Effect.gen(function*() {
          const id = freshId("snap")
          const saved = new Map<number, unknown>()
          let current: Option.Option<{ version: number; state: unknown }> = Option.none()
          for (const [index, save] of program.entries()) {
            const version = (index + 1) * 10
            const where = `save ${index} (version ${version}, ${save.size})`
            const state = save.size === "small"
              ? { version, text: "s".repeat(save.bytes % 100) }
              : { version, text: String.fromCharCode(97 + (index % 26)).repeat(save.bytes) }
            saved.set(version, state)
            tools.setFault(planned(save.plan, SNAPSHOT_COMMANDS))
            const exit = yield* Effect.exit(store.save(id, { version, state }))
            tools.setFault(undefined)
            const loaded = yield* store.load(id) // never a CorruptedSnapshotError
            const got = Option.map(loaded, (s) => ({ version: s.version, state: s.state }))
            if (Exit.isSuccess(exit)) {
              assert.deepStrictEqual(got, Option.some({ version, state }), `${where}: a saved snapshot loads`)
            } else {
              failures++
              assert.strictEqual(failure(exit)._tag, "StorageError", where)
              const same = (a: typeof got, b: typeof got) => JSON.stringify(Option.getOrNull(a)) === JSON.stringify(Option.getOrNull(b))
              assert.isTrue(
                same(got, current) || same(got, Option.some({ version, state })),
                `${where}: the previous or the new snapshot, got version ${Option.getOrNull(got)?.version}`
              )
            }
            current = got
            // Older snapshots still load whole, or not at all.
            for (const v of saved.keys()) {
              const older = yield* store.load(id, { atOrBefore: v })
              if (Option.isSome(older)) assert.deepStrictEqual(older.value.state, saved.get(older.value.version), `${where}: atOrBefore ${v}`)
            }
          }
        })

      yield* checkProperty("snapshot saves under faults", Arbitrary.schema(SnapshotProgram), runProgram, {
        runs: 25,
        seed: 7_003,
        maxShrinks: 15
      })
      assert.isAbove(failures, 0, "some saves failed")
    }).pipe(
      // Retention failures under faults are logged as warnings (the save itself succeeded).
      Effect.provideService(References.MinimumLogLevel, "Error"),
      Effect.scoped,
      Effect.provide(local)
    ))
})

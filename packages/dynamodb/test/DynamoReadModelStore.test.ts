import { DescribeTableCommand, GetItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { ReadModel } from "@dynamo-es/core"
import { Item, item, readModelConformance, repoName } from "@dynamo-es/core/testing/ReadModelConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Exit, Layer, Option, Schedule, Stream } from "effect"
import { DynamoReadModelStore, Tables } from "../src/index.js"
import { sdkError } from "./helpers.js"
import { makeReadModelEnv, partialBatches, readModelStoreLayer } from "./readModelHelpers.js"
import { failure as fail, range } from "@dynamo-es/core/testing/utils"

const local = DynamoDBLocal.layer()
const client = Fixtures.layerClientFor().pipe(Layer.provide(local))

readModelConformance("DynamoDB", (options) => readModelStoreLayer(options).pipe(Layer.provide(local)), { timeout: 120_000 })


const pad = (n: number) => String(n).padStart(4, "0")
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A store on a fresh table with an instrumented client; see readModelHelpers. */
const withEnv = <A, E>(
  body: (env: Effect.Success<ReturnType<typeof makeReadModelEnv>>) => Effect.Effect<A, E>,
  options: Partial<DynamoReadModelStore.DynamoReadModelStoreOptions> = {},
  clientOptions: Parameters<typeof makeReadModelEnv>[1] = {}
) =>
  Effect.gen(function*() {
    const env = yield* makeReadModelEnv(
      { unprocessedRetrySchedule: Schedule.spaced("2 millis").pipe(Schedule.upTo({ times: 5 })), ...options },
      clientOptions
    )
    return yield* body(env)
  }).pipe(Effect.scoped, Effect.provide(local))

describe("DynamoReadModelStore", { timeout: 120_000 }, () => {
  describe("table layout", () => {
    it.live("rows are Name / Id / Data; the table is Name HASH, Id RANGE, on-demand, without index", () =>
      withEnv(({ raw, store, tableName }) =>
        Effect.gen(function*() {
          const users = yield* store.create("users", Item)
          yield* users.save(item("u-1", { tags: ["a"] }))
          const got = yield* Effect.promise(() =>
            raw.send(new GetItemCommand({ TableName: tableName, Key: { Name: { S: "users" }, Id: { S: "u-1" } }, ConsistentRead: true }))
          )
          assert.deepStrictEqual(got.Item, {
            Name: { S: "users" },
            Id: { S: "u-1" },
            Data: { S: JSON.stringify(item("u-1", { tags: ["a"] })) }
          })
          const described = yield* Effect.promise(() => raw.send(new DescribeTableCommand({ TableName: tableName })))
          assert.deepStrictEqual(described.Table?.KeySchema, [
            { AttributeName: "Name", KeyType: "HASH" },
            { AttributeName: "Id", KeyType: "RANGE" }
          ])
          assert.isUndefined(described.Table?.GlobalSecondaryIndexes)
          assert.isUndefined(described.Table?.LocalSecondaryIndexes)
          assert.strictEqual(described.Table?.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST")
        })
      ))

    it.live("layer creates the table when missing; layerConfig reads DYNAMO_ES_READ_MODELS_TABLE", () =>
      Effect.gen(function*() {
        const name = Fixtures.uniqueTableName("rmlayer")
        const run = Effect.gen(function*() {
          const users = yield* ReadModel.repository("users", Item)
          yield* users.save(item("a"))
          return yield* users.find("a")
        })
        assert.isTrue(Option.isSome(yield* run.pipe(Effect.provide(DynamoReadModelStore.layer({ tableName: name })))))
        assert.isTrue(
          Option.isSome(yield* run.pipe(Effect.provide(DynamoReadModelStore.layerExisting({ tableName: name }))))
        )
        yield* Tables.deleteTables([name])
        const missing = fail(
          yield* Effect.exit(run.pipe(Effect.provide(DynamoReadModelStore.layerExisting({ tableName: name }))))
        )
        assert.deepInclude(missing, { _tag: "StorageError", reason: "ResourceNotFound", resource: name })
        const printed = Tables.cloudFormation([DynamoReadModelStore.readModelsTable("rm")]) as Record<string, any>
        assert.deepStrictEqual(printed["rmTable"].Properties.AttributeDefinitions, [
          { AttributeName: "Name", AttributeType: "S" },
          { AttributeName: "Id", AttributeType: "S" }
        ])
      }).pipe(Effect.provide(client)))

    it.live("an invalid table name is refused at construction", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(DynamoReadModelStore.make({ tableName: "no" }))
        assert.isTrue(Exit.isFailure(exit) && exit.cause.reasons.some((r) => r._tag === "Die"))
      }).pipe(Effect.provide(client)))
  })

  describe("requests and capacity", () => {
    it.live("a flush of 25 small models is one BatchWriteItem of 25 WCU; 100 ids are one BatchGetItem of 100 RCU", () =>
      withEnv(({ recorder, store }) =>
        Effect.gen(function*() {
          const name = repoName()
          const uow = yield* store.createDeferred(name, Item)
          for (const n of range(1, 25)) yield* uow.save(item(`c-${pad(n)}`))
          recorder.clear()
          yield* uow.flush
          assert.deepStrictEqual(recorder.commands, ["BatchWriteItem"])
          assert.deepStrictEqual(recorder.capacity, [{ command: "BatchWriteItem", read: 0, write: 25 }])
          yield* store.clearSnapshots
          const reader = yield* store.create(name, Item)
          const eventual = yield* store.create(name, Item, { consistentRead: false })
          for (const n of range(26, 100)) yield* reader.save(item(`c-${pad(n)}`))
          recorder.clear()
          assert.strictEqual((yield* reader.findBy({ id: range(1, 100).map((n) => `c-${pad(n)}`) })).length, 100)
          assert.deepStrictEqual(recorder.capacity, [{ command: "BatchGetItem", read: 100, write: 0 }])
          recorder.clear()
          assert.strictEqual((yield* eventual.findBy({ id: range(1, 100).map((n) => `c-${pad(n)}`) })).length, 100)
          assert.deepStrictEqual(recorder.capacity, [{ command: "BatchGetItem", read: 50, write: 0 }], "eventual reads cost half")
        })
      ))

    it.live("a flush keeps at most writeConcurrency batch requests in flight, and uses them", () =>
      withEnv(({ setExtraFault, store }) =>
        Effect.gen(function*() {
          const uow = yield* store.createDeferred(repoName(), Item)
          for (const n of range(1, 500)) yield* uow.save(item(`p-${pad(n)}`))
          let inFlight = 0
          let peak = 0
          setExtraFault(async (command, _input, proceed) => {
            if (command !== "BatchWriteItem") return proceed()
            inFlight++
            peak = Math.max(peak, inFlight)
            try {
              await sleep(5)
              return await proceed()
            } finally {
              inFlight--
            }
          })
          const result = yield* uow.flush
          assert.deepInclude(result, { saved: 500, requests: 20 })
          assert.strictEqual(peak, 3)
        }), { writeConcurrency: 3 }))
  })

  describe("failures and retries (fault injection around the real client)", () => {
    it.live("throttled batch writes and lookups are retried by the client", () =>
      withEnv(({ recorder, setExtraFault, store }) =>
        Effect.gen(function*() {
          const uow = yield* store.createDeferred(repoName(), Item)
          for (const n of range(1, 30)) yield* uow.save(item(`t-${pad(n)}`))
          let throttles = 0
          setExtraFault(async (command, _input, proceed) => {
            if ((command === "BatchWriteItem" || command === "BatchGetItem") && throttles % 3 !== 2) {
              throttles++
              throw sdkError("ProvisionedThroughputExceededException", "slow down")
            }
            throttles++
            return proceed()
          })
          recorder.clear()
          yield* uow.flush
          setExtraFault(undefined)
          assert.isAtLeast(recorder.count("BatchWriteItem"), 4)
          const reader = yield* store.create(uow.name, Item)
          assert.strictEqual((yield* reader.findBy({ id: range(1, 30).map((n) => `t-${pad(n)}`) })).length, 30)
          yield* store.clearSnapshots
          throttles = 0
          setExtraFault(async (command, _input, proceed) => {
            if (command === "BatchGetItem" && throttles++ < 2) throw sdkError("ThrottlingException")
            return proceed()
          })
          recorder.clear()
          assert.strictEqual((yield* reader.findBy({ id: range(1, 30).map((n) => `t-${pad(n)}`) })).length, 30)
          assert.strictEqual(recorder.count("BatchGetItem"), 3)
        })
      ))

    it.live("UnprocessedItems and UnprocessedKeys that DynamoDB returns are read by the driver and retried by the store", () =>
      withEnv(({ probe, recorder, setExtraFault, store, tableName }) =>
        Effect.gen(function*() {
          const name = repoName()
          const uow = yield* store.createDeferred(name, Item)
          for (const n of range(1, 25)) yield* uow.save(item(`x-${pad(n)}`))
          // DynamoDB processes at most 10 items of each batch request and returns the rest.
          setExtraFault(partialBatches(tableName, (_command, ids) => ids.slice(0, 10)))
          recorder.clear()
          const result = yield* uow.flush
          assert.deepInclude(result, { saved: 25, requests: 3 }, "25, then 15, then 5 items sent")
          assert.strictEqual(recorder.count("BatchWriteItem"), 3)
          assert.strictEqual((yield* probe.rows(name)).length, 25)
          yield* store.clearSnapshots
          recorder.clear()
          const found = yield* (yield* store.create(name, Item)).findBy({ id: range(1, 25).map((n) => `x-${pad(n)}`) })
          assert.deepStrictEqual(found.map((m) => m.id), range(1, 25).map((n) => `x-${pad(n)}`))
          assert.strictEqual(recorder.count("BatchGetItem"), 3)
          setExtraFault(undefined)
        }), { unprocessedRetrySchedule: Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 5 })) }))

    it.live("a batch whose response was lost is retried by the client; the table is as if nothing had happened", () =>
      withEnv(({ probe, setExtraFault, store }) =>
        Effect.gen(function*() {
          const name = repoName()
          const uow = yield* store.createDeferred(name, Item)
          for (const n of range(1, 40)) yield* uow.save(item(`l-${pad(n)}`, { count: n }))
          let lost = 0
          setExtraFault(async (command, _input, proceed) => {
            if (command === "BatchWriteItem" && lost++ === 0) {
              await proceed() // DynamoDB applied the batch...
              throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }) // ...the response was lost
            }
            return proceed()
          })
          const result = yield* uow.flush
          assert.deepInclude(result, { saved: 40, requests: 2 }, "the SDK-level retry is one request of the flush")
          const stored = yield* probe.rows(name)
          assert.deepStrictEqual(stored.map((r) => JSON.parse(r.data!).count), range(1, 40))
        })
      ))

    it.live("retries that run out: DeferredFlushFailed with a retryable cause; the next flush finishes", () =>
      withEnv(({ probe, setExtraFault, store }) =>
        Effect.gen(function*() {
          const name = repoName()
          const uow = yield* store.createDeferred(name, Item)
          for (const n of range(1, 60)) yield* uow.save(item(`r-${pad(n)}`))
          let calls = 0
          setExtraFault(async (command, _input, proceed) => {
            // The second batch is throttled on every attempt; the others go through.
            if (command === "BatchWriteItem" && calls++ >= 1) {
              if (calls <= 6) throw sdkError("ProvisionedThroughputExceededException")
            }
            return proceed()
          })
          const e = fail(yield* Effect.exit(uow.flushWithContext({ tenant: "t-1" })))
          assert.strictEqual(e._tag, "DeferredFlushFailed")
          const error = e as ReadModel.DeferredFlushFailed
          assert.deepInclude(error.cause, { _tag: "StorageError", operation: "BatchWriteItem", reason: "Throttled" })
          assert.isTrue(error.cause.isRetryable)
          assert.deepStrictEqual(error.context, { tenant: "t-1" })
          assert.strictEqual(error.ids.length, 25)
          assert.strictEqual(error.pending, 60 - error.written)
          setExtraFault(undefined)
          yield* uow.flush
          assert.strictEqual((yield* probe.rows(name)).length, 60)
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
        }), { writeConcurrency: 1 }, { retrySchedule: Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 4 })) }))

    it.live("an interrupted flush keeps every unconfirmed operation pending", () =>
      withEnv(({ probe, setExtraFault, store }) =>
        Effect.gen(function*() {
          const name = repoName()
          const uow = yield* store.createDeferred(name, Item)
          for (const n of range(1, 100)) yield* uow.save(item(`i-${pad(n)}`))
          let sent = 0
          const held: Array<() => void> = []
          setExtraFault(async (command, _input, proceed) => {
            if (command === "BatchWriteItem" && ++sent > 2) {
              await new Promise<void>((resolve) => held.push(resolve)) // hangs until released
              throw sdkError("AccessDeniedException", "released after the test")
            }
            return proceed()
          })
          const exit = yield* Effect.exit(uow.flush.pipe(Effect.timeout("300 millis")))
          assert.isTrue(Exit.isFailure(exit))
          setExtraFault(undefined)
          for (const release of held) release()
          const pending = yield* uow.pendingOperations
          assert.strictEqual(pending.length, 50, "two batches confirmed, two interrupted")
          const stored = new Set((yield* probe.rows(name)).map((r) => r.id))
          for (const op of pending) assert.isFalse(stored.has(op.id))
          yield* uow.flush
          assert.strictEqual((yield* probe.rows(name)).length, 100)
        }), { writeConcurrency: 1 }))
  })

  describe("skip-unchanged memory", () => {
    it.live("belongs to one store: another store on the same table writes", () =>
      withEnv(({ clientContext, recorder, store, tableName }) =>
        Effect.gen(function*() {
          const name = repoName()
          yield* (yield* store.create(name, Item)).save(item("a"))
          const other = yield* DynamoReadModelStore.make({ tableName }).pipe(Effect.provide(clientContext))
          recorder.clear()
          yield* (yield* other.create(name, Item)).save(item("a"))
          assert.deepStrictEqual(recorder.commands, ["PutItem"])
        })
      ))

    it.live("reads without strong consistency do not feed it", () =>
      withEnv(({ recorder, store }) =>
        Effect.gen(function*() {
          const name = repoName()
          const writer = yield* store.create(name, Item)
          yield* writer.save(item("a"))
          yield* store.clearSnapshots
          const eventual = yield* store.create(name, Item, { consistentRead: false })
          const loaded = Option.getOrThrow(yield* eventual.find("a"))
          recorder.clear()
          yield* eventual.save(loaded)
          assert.deepStrictEqual(recorder.commands, ["PutItem"])
          const all = yield* Stream.runCollect(eventual.findAll())
          assert.strictEqual(all.length, 1)
        })
      ))
  })
})

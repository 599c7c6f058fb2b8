/**
 * The drivers' one batch writer and one query paginator (`src/internal/`), on DynamoDB Local
 * through a fault-injecting wrapper around the real client: DynamoDB Local never returns
 * `UnprocessedItems`, so the wrapper sends only part of a batch and hands back the rest, as
 * DynamoDB does under throttling.
 */
import type { WriteRequest } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Errors } from "@dynamo-es/core"
import { Cause, Chunk, Effect, Exit, Layer, Schedule, Stream } from "effect"
import { writeAll, writeBatch } from "../src/internal/batchWrite.js"
import { queryItems } from "../src/internal/query.js"
import { DynamoClient, Tables } from "../src/index.js"
import { failure } from "./faultHelpers.js"
import { countItems, type Fault, instrumentedClient } from "./helpers.js"

const local = DynamoDBLocal.layer()

const put = (i: number): WriteRequest => ({
  PutRequest: { Item: { s: { S: "stream" }, k: { S: `k#${String(i).padStart(4, "0")}` }, b: { B: new Uint8Array([i % 256]) } } }
})

/** DynamoDB processes only the first `take` writes of a batch and returns the others as unprocessed. */
const partialBatches = (take: number, times: number): Fault => {
  let left = times
  return async (command, input, proceed) => {
    if (command !== "BatchWriteItem" || left-- <= 0) return proceed()
    const table = Object.keys(input.RequestItems)[0]!
    const all = input.RequestItems[table]
    input.RequestItems = { [table]: all.slice(0, take) }
    const result = take === 0 ? { output: { $metadata: {} } } : await proceed()
    input.RequestItems = { [table]: all }
    result.output.UnprocessedItems = { [table]: all.slice(take) }
    return result
  }
}

const withTable = <A, E>(
  body: (tools: ReturnType<typeof instrumentedClient> & { readonly table: string }) => Effect.Effect<A, E, DynamoClient.DynamoClient>
) =>
  Effect.gen(function*() {
    const tools = instrumentedClient(yield* DynamoDBLocal.DynamoDBLocal)
    yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
    const table = Fixtures.uniqueTableName("batch")
    return yield* Effect.gen(function*() {
      yield* Fixtures.scopedTable(Tables.snapshotsTable(table))
      tools.recorder.clear()
      return yield* body({ ...tools, table })
    }).pipe(Effect.provide(Layer.fresh(DynamoClient.layer({ client: tools.sdk }))))
  }).pipe(Effect.scoped, Effect.provide(local))

const quick = Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 5 }))

describe("internal batch writer and query paginator", { timeout: 60_000 }, () => {
  it.live("writeBatch is one request and returns what DynamoDB left unprocessed", () =>
    withTable(({ table, setFault, recorder }) =>
      Effect.gen(function*() {
        const client = yield* DynamoClient.DynamoClient
        setFault(partialBatches(10, 1))
        const requests = Array.from({ length: 25 }, (_, i) => put(i))
        const left = yield* writeBatch(client, table, requests)
        assert.deepStrictEqual(left, requests.slice(10))
        assert.strictEqual(recorder.count("BatchWriteItem"), 1)
        assert.strictEqual(yield* countItems(table), 10)
      })))

  it.live("writeAll writes every item in batches of 25, resending unprocessed items until none is left", () =>
    withTable(({ table, setFault, recorder }) =>
      Effect.gen(function*() {
        const client = yield* DynamoClient.DynamoClient
        // The first 4 requests process 10 items each and hand back the rest.
        setFault(partialBatches(10, 4))
        yield* writeAll(client, table, Array.from({ length: 60 }, (_, i) => put(i)), { schedule: quick, concurrency: 1 })
        assert.strictEqual(yield* countItems(table), 60)
        // 3 batches (25, 25, 10), one after the other: the first takes 3 requests (25 -> 15 -> 5
        // left), the second 2 (the 4th fault, then 15 -> done), the third 1.
        assert.strictEqual(recorder.count("BatchWriteItem"), 3 + 2 + 1)
      })))

  it.live("writeAll fails with a Throttled StorageError when items stay unprocessed after the schedule", () =>
    withTable(({ table, setFault, recorder }) =>
      Effect.gen(function*() {
        const client = yield* DynamoClient.DynamoClient
        setFault(partialBatches(0, 1_000))
        const e = failure(yield* Effect.exit(writeAll(client, table, [put(1), put(2), put(3)], { schedule: Schedule.recurs(2) })))
        assert.deepInclude(e, { _tag: "StorageError", operation: "BatchWriteItem", reason: "Throttled", resource: table })
        assert.match(e.message, /3 items stayed unprocessed/)
        assert.strictEqual(recorder.count("BatchWriteItem"), 3, "the first request and 2 retries")
        assert.strictEqual(yield* countItems(table), 0)
      })))

  it.live("queryItems follows every page lazily, in order, and can run twice", () =>
    withTable(({ table, recorder }) =>
      Effect.gen(function*() {
        const client = yield* DynamoClient.DynamoClient
        yield* writeAll(client, table, Array.from({ length: 30 }, (_, i) => put(i)), { schedule: quick })
        const items = queryItems(client, table, {
          KeyConditionExpression: "s = :s",
          ExpressionAttributeValues: { ":s": { S: "stream" } },
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: 7
        })
        recorder.clear()
        const keys = (yield* Stream.runCollect(items)).map((item) => item.k?.S)
        assert.deepStrictEqual(keys, Array.from({ length: 30 }, (_, i) => `k#${String(29 - i).padStart(4, "0")}`))
        assert.strictEqual(recorder.count("Query"), 5, "30 items in pages of 7")
        recorder.clear()
        const firstThree = Chunk.toReadonlyArray(Chunk.fromIterable(yield* Stream.runCollect(Stream.take(items, 3))))
        assert.strictEqual(firstThree.length, 3)
        assert.strictEqual(recorder.count("Query"), 1, "taking 3 items reads one page")
        assert.strictEqual((yield* Stream.runCollect(items)).length, 30, "the same stream runs again")
      })))
})

describe("DynamoClient.unconditional", () => {
  it.effect("turns ConditionFailed and TransactionCanceled into defects and lets other failures through", () =>
    Effect.gen(function*() {
      const condition = yield* Effect.exit(DynamoClient.unconditional(Effect.fail(new DynamoClient.ConditionFailed({ operation: "PutItem" }))))
      assert.isTrue(Exit.isFailure(condition) && Cause.hasDies(condition.cause) && !Cause.hasFails(condition.cause))
      const canceled = yield* Effect.exit(DynamoClient.unconditional(Effect.fail(new DynamoClient.TransactionCanceled({ reasons: [] }))))
      assert.isTrue(Exit.isFailure(canceled) && Cause.hasDies(canceled.cause))
      const storage = new Errors.StorageError({ operation: "Query", reason: "Throttled", detail: "x" })
      assert.strictEqual(failure(yield* Effect.exit(DynamoClient.unconditional(Effect.fail(storage)))), storage)
      // Any other tagged failure passes through unchanged.
      assert.deepStrictEqual(failure(yield* Effect.exit(DynamoClient.unconditional(Effect.fail({ _tag: "Other" })))), { _tag: "Other" })
    }))
})

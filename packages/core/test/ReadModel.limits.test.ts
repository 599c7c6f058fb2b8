import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Schema } from "effect"
import { ReadModel } from "../src/index.js"
import * as ReadModelStorageTest from "../testing/ReadModelStorageTest.js"

const Item = Schema.Struct({ id: Schema.String, text: Schema.String })

/** The memory storage with its limits replaced. */
const limited = (limits: Partial<ReadModel.StorageLimits>) => {
  const memory = ReadModel.makeMemoryStorage()
  const instrumented = ReadModelStorageTest.instrument({ ...memory, limits })
  return { memory, instrumented }
}

describe("ReadModel.Storage.limits", () => {
  it("the memory storage declares DynamoDB's limits", () => {
    assert.deepStrictEqual(ReadModel.makeMemoryStorage().limits, ReadModel.defaultStorageLimits)
    assert.strictEqual(ReadModel.defaultStorageLimits.maxRowBytes, 409_600)
    assert.strictEqual(ReadModel.defaultStorageLimits.maxBatchGet, 100)
    assert.strictEqual(ReadModel.defaultStorageLimits.maxBatchWrite, 25)
    assert.strictEqual(ReadModel.defaultStorageLimits.rowSize("n", "id", "{}"), 4 + 1 + 2 + 2 + 4 + 2)
  })

  it.effect("core follows the batch sizes a storage declares", () =>
    Effect.gen(function*() {
      const { instrumented } = limited({ maxBatchGet: 3, maxBatchWrite: 2 })
      const store = yield* ReadModel.make(instrumented.storage)
      const items = yield* store.createDeferred("items", Item)
      for (const id of ["a", "b", "c", "d", "e"]) yield* items.save({ id, text: "" })
      yield* items.flush
      const writes = (yield* instrumented.requests).filter((r) => r.operation === "BatchWriteItem")
      assert.deepStrictEqual(writes.map((r) => r.ids.length), [2, 2, 1])

      yield* instrumented.reset
      const plain = yield* store.create("items", Item)
      const found = yield* plain.findBy({ id: ["a", "b", "c", "d", "e"] })
      assert.strictEqual(found.length, 5)
      const gets = (yield* instrumented.requests).filter((r) => r.operation === "BatchGetItem")
      assert.deepStrictEqual(gets.map((r) => r.ids.length).sort(), [2, 3])
    }))

  it.effect("core refuses rows larger than the storage's maxRowBytes, counted by its rowSize", () =>
    Effect.gen(function*() {
      // One byte per character of data: a row of 10 bytes at most.
      const { instrumented, memory } = limited({ maxRowBytes: 10, rowSize: (_name, _id, data) => data.length })
      const store = yield* ReadModel.make(instrumented.storage)
      const items = yield* store.create("items", Item)
      const exit = yield* Effect.exit(items.save({ id: "a", text: "more than ten bytes" }))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.isTrue(error instanceof ReadModel.ReadModelTooLargeError)
      assert.strictEqual((error as ReadModel.ReadModelTooLargeError).maxBytes, 10)
      assert.deepStrictEqual(yield* memory.rows("items"), [])
      assert.deepStrictEqual(yield* instrumented.operations, [])
    }))

  it.effect("a limit that is not a positive integer is a defect naming the store's table", () =>
    Effect.gen(function*() {
      const { instrumented } = limited({ maxBatchWrite: 0 })
      const exit = yield* Effect.exit(ReadModel.make(instrumented.storage))
      assert.isTrue(Exit.hasDies(exit))
      assert.match(String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : ""), /limits\.maxBatchWrite = 0.*positive integer/)
    }))
})

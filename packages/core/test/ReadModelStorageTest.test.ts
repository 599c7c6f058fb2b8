import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema, Stream } from "effect"
import { ReadModel } from "../src/index.js"
import * as ReadModelStorageTest from "../testing/ReadModelStorageTest.js"

const Item = Schema.Struct({ id: Schema.String })

describe("ReadModelStorageTest.instrument", () => {
  it.effect("records each Query page as one request, and what the store sent", () =>
    Effect.gen(function*() {
      const memory = ReadModel.makeMemoryStorage()
      const instrumented = ReadModelStorageTest.instrument(memory)
      const store = yield* ReadModel.make(instrumented.storage)
      const items = yield* store.create("items", Item, { pageSize: 2 })
      for (const id of ["a", "b", "c", "d", "e"]) yield* items.save({ id })
      yield* instrumented.reset
      assert.strictEqual((yield* Stream.runCollect(items.findAll())).length, 5)
      assert.deepStrictEqual(yield* instrumented.operations, ["Query", "Query", "Query"])
      assert.strictEqual(yield* instrumented.itemWrites, 0)
    }))

  it.effect("Partial forwards only the processed ids, and nothing when none is; Fail with applied writes, then fails", () =>
    Effect.gen(function*() {
      const memory = ReadModel.makeMemoryStorage()
      const instrumented = ReadModelStorageTest.instrument(memory)
      const put = (id: string) => ({ _tag: "Put" as const, id, data: JSON.stringify({ id }) })

      yield* instrumented.setFault(() => ({ _tag: "Partial", processed: ["b"] }))
      const first = yield* instrumented.storage.writeBatch("items", [put("a"), put("b")])
      assert.deepStrictEqual(first.unprocessed, ["a"])
      assert.deepStrictEqual((yield* memory.rows("items")).map((r) => r.id), ["b"])

      yield* instrumented.setFault(() => ({ _tag: "Partial", processed: [] }))
      const none = yield* instrumented.storage.getBatch("items", ["a", "b"], true)
      assert.deepStrictEqual(none, { rows: [], unprocessed: ["a", "b"] })

      yield* instrumented.setFault(() => ({ _tag: "Fail", applied: true }))
      const exit = yield* Effect.exit(instrumented.storage.put("items", "c", JSON.stringify({ id: "c" })))
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual((yield* memory.rows("items")).map((r) => r.id), ["b", "c"])

      yield* instrumented.setFault(() => ({ _tag: "Fail" }))
      yield* Effect.exit(instrumented.storage.delete("items", "b"))
      assert.deepStrictEqual((yield* memory.rows("items")).map((r) => r.id), ["b", "c"], "a failed request changes nothing")

      const requests = yield* instrumented.requests
      assert.deepStrictEqual(requests.map((r) => [r.operation, r.forwarded]), [
        ["BatchWriteItem", true],
        ["BatchGetItem", false],
        ["PutItem", true],
        ["DeleteItem", false]
      ])
      assert.strictEqual(yield* instrumented.itemWrites, 2, "b by the batch, c by the applied put")
    }))
})

/**
 * The read-model repository contract, written once and run against every implementation
 * (the in-memory store here, the DynamoDB store in @dynamo-es/dynamodb). An
 * implementation passes when all of it passes.
 */
import { assert, describe, it } from "./vitest.js"
import { Arbitrary, Context, Effect, Exit, Fiber, Layer, Option, Schedule, Schema, Stream } from "effect"
import { ReadModel } from "../src/index.js"
import * as ReadModelStorageTest from "./ReadModelStorageTest.js"
import { failure, range } from "./utils.js"
import { check, expectTyped, holds, hostile, oneOf, show, Tally, weighted } from "./properties.js"

/**
 * A fault to inject into one storage request: see `ReadModelStorageTest.Fault` (`Fail`,
 * optionally after applying it; `Partial` for batches).
 */
export type Fault = ReadModelStorageTest.FaultHook

/**
 * What the suite needs besides the store: what reached storage, the raw rows, and fault
 * injection around the real storage. Build it with {@link makeProbe} from the storage
 * wrapped by `ReadModelStorageTest.instrument`, plus raw access to your storage.
 */
export class ReadModelProbe extends Context.Service<ReadModelProbe, {
  /** Storage requests since the last `reset`, by DynamoDB operation name. */
  readonly operations: Effect.Effect<ReadonlyArray<ReadModelStorageTest.Operation>>
  /** Items written or deleted since the last `reset` (batch items count one each). */
  readonly itemWrites: Effect.Effect<number>
  readonly reset: Effect.Effect<void>
  /** The raw rows of a partition, in id order (not counted as operations). */
  readonly rows: (name: string) => Effect.Effect<ReadonlyArray<ReadModel.StoredRow>, unknown>
  /** Writes a raw row bypassing the store (`undefined`: no Data attribute). */
  readonly putRaw: (name: string, id: string, data: string | undefined) => Effect.Effect<void, unknown>
  /** Deletes every row, as if the table had been recreated. */
  readonly dropAll: Effect.Effect<void, unknown>
  readonly setFault: (fault: Fault | undefined) => Effect.Effect<void>
}>()("@dynamo-es/core/test/ReadModelProbe") {}

/**
 * The probe of a store built on `instrumented.storage`: requests, item writes and faults
 * come from the wrapper; `raw` reads and writes your storage around the store.
 */
export const makeProbe = (
  instrumented: ReadModelStorageTest.InstrumentedStorage,
  raw: Pick<ReadModelProbe["Service"], "rows" | "putRaw" | "dropAll">
): ReadModelProbe["Service"] => ({
  operations: instrumented.operations,
  itemWrites: instrumented.itemWrites,
  reset: instrumented.reset,
  setFault: instrumented.setFault,
  ...raw
})

export type MakeStore = (
  options: ReadModel.ReadModelStoreOptions
) => Layer.Layer<ReadModel.ReadModelStore | ReadModelProbe, unknown>

export const Item = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  tags: Schema.Array(Schema.String),
  count: Schema.Number,
  since: Schema.optional(Schema.Date)
}).annotate({ identifier: "Item" })
export type Item = typeof Item.Type

export const item = (id: string, overrides: Partial<Item> = {}): Item => ({ id, name: `name of ${id}`, tags: [], count: 0, ...overrides })

let counter = 0
/** A repository name unique within the run. */
export const repoName = (prefix = "r") => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`


const pad = (n: number) => String(n).padStart(4, "0")
/** DynamoDB's order of string keys: UTF-8 bytes. */
const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))

const fast = Schedule.spaced("2 millis").pipe(Schedule.upTo({ times: 5 }))

export const readModelConformance = (name: string, makeStore: MakeStore, options: { readonly timeout?: number } = {}) =>
  describe(`ReadModel conformance: ${name}`, { timeout: options.timeout ?? 60_000 }, () => {
    const run = <A, E>(
      effect: Effect.Effect<A, E, ReadModel.ReadModelStore | ReadModelProbe>,
      storeOptions: ReadModel.ReadModelStoreOptions = {}
    ) => effect.pipe(Effect.provide(makeStore({ unprocessedRetrySchedule: fast, ...storeOptions })))

    const ops = ReadModelProbe.use((p) => p.operations)
    const reset = ReadModelProbe.use((p) => p.reset)
    const itemWrites = ReadModelProbe.use((p) => p.itemWrites)
    const rows = (repo: string) => ReadModelProbe.use((p) => p.rows(repo))
    const setFault = (fault: Fault | undefined) => ReadModelProbe.use((p) => p.setFault(fault))
    const repo = (prefix?: string, o?: ReadModel.RepositoryOptions<Item>) => ReadModel.repository(repoName(prefix), Item, o)
    const deferredRepo = (prefix?: string, o?: ReadModel.RepositoryOptions<Item>) => ReadModel.deferred(repoName(prefix), Item, o)
    const ids = (models: ReadonlyArray<{ readonly id: string }>) => models.map((m) => m.id)

    /** Runs `effect`, expects a typed failure, and proves that nothing reached storage. */
    const refusedWithoutRequest = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        yield* reset
        const error = failure(yield* Effect.exit(effect))
        assert.deepStrictEqual(yield* ops, [], "a refused input must not reach storage")
        return error
      })

    describe("immediate repositories", () => {
      it.live("save then find round-trips the model; a missing id is None, and get fails with NotFoundError", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const model = item("ü-1 😀", { name: "Ada \u0000 \"quoted\"", tags: ["a", "b"], count: 2.5, since: new Date(1_700_000_000_123) })
          yield* users.save(model)
          const found = yield* users.find("ü-1 😀")
          assert.isTrue(Option.isSome(found))
          assert.deepStrictEqual(Option.getOrThrow(found), model)
          assert.deepStrictEqual(yield* users.get("ü-1 😀"), model)
          assert.isTrue(Option.isNone(yield* users.find("missing")))
          const e = failure(yield* Effect.exit(users.get("missing")))
          assert.deepInclude(e, { _tag: "NotFoundError", resource: "readModel", id: "missing" })
        })))

      it.live("find is one GetItem, save one PutItem, remove one DeleteItem", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          yield* reset
          yield* users.save(item("a"))
          assert.deepStrictEqual(yield* ops, ["PutItem"])
          yield* reset
          yield* users.find("a")
          yield* users.find("b")
          assert.deepStrictEqual(yield* ops, ["GetItem", "GetItem"])
          yield* reset
          yield* users.remove("a")
          assert.deepStrictEqual(yield* ops, ["DeleteItem"])
        })))

      it.live("save overwrites, remove deletes, removing a missing id is fine", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          yield* users.save(item("a", { count: 1 }))
          yield* users.save(item("a", { count: 2 }))
          assert.strictEqual(Option.getOrThrow(yield* users.find("a")).count, 2)
          yield* users.remove("a")
          assert.isTrue(Option.isNone(yield* users.find("a")))
          yield* users.remove("a")
          yield* users.remove("never-existed")
        })))

      it.live("each repository name is its own partition", () =>
        run(Effect.gen(function*() {
          const a = yield* repo("a")
          const b = yield* repo("b")
          yield* a.save(item("x", { count: 1 }))
          yield* b.save(item("x", { count: 2 }))
          yield* b.save(item("y"))
          assert.strictEqual(Option.getOrThrow(yield* a.find("x")).count, 1)
          assert.strictEqual(Option.getOrThrow(yield* b.find("x")).count, 2)
          assert.deepStrictEqual(ids(yield* Stream.runCollect(a.findAll())), ["x"])
          yield* b.remove("x")
          assert.isTrue(Option.isSome(yield* a.find("x")))
          assert.deepStrictEqual(ids(yield* Stream.runCollect(b.findAll())), ["y"])
          assert.deepStrictEqual(ids(yield* rows(a.name)), ["x"])
        })))

      it.live("findAll streams the whole partition lazily, in id order (UTF-8 byte order), page by page", () =>
        run(Effect.gen(function*() {
          const users = yield* repo("all", { pageSize: 10 })
          const unicode = ["z", "é", "😀", "\uffff", "a", "A", "a0", "ab"]
          const all = [...range(1, 49).map((n) => `u-${pad(n)}`), ...unicode]
          yield* Effect.forEach(all, (id) => users.save(item(id)), { concurrency: 8, discard: true })
          yield* reset
          const listed = ids(yield* Stream.runCollect(users.findAll()))
          assert.deepStrictEqual(listed, [...all].sort(byUtf8))
          assert.isAtLeast((yield* ops).filter((o) => o === "Query").length, 6, "57 rows in pages of 10")
          assert.deepStrictEqual(new Set(yield* ops), new Set(["Query"]))
          yield* reset
          const firstFive = yield* Stream.runCollect(users.findAll().pipe(Stream.take(5)))
          assert.deepStrictEqual(ids(firstFive), listed.slice(0, 5))
          assert.deepStrictEqual(yield* ops, ["Query"], "taking 5 reads one page only")
          assert.deepStrictEqual(ids(yield* Stream.runCollect(users.findAll())), listed, "the stream can run again")
          const empty = yield* repo("empty")
          assert.deepStrictEqual(yield* Stream.runCollect(empty.findAll()), [])
        })))

      it.live("findBy: a field equals, an array field contains, several fields must all match", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          yield* users.save(item("1", { name: "Ada", tags: ["admin", "dev"], count: 1 }))
          yield* users.save(item("2", { name: "Bob", tags: ["dev"], count: 1, since: new Date(5) }))
          yield* users.save(item("3", { name: "Ada", tags: [], count: 2, since: new Date(5) }))
          assert.deepStrictEqual(ids(yield* users.findBy({ name: "Ada" })), ["1", "3"])
          assert.deepStrictEqual(ids(yield* users.findBy({ tags: "dev" })), ["1", "2"])
          assert.deepStrictEqual(ids(yield* users.findBy({ tags: "admin" })), ["1"])
          assert.deepStrictEqual(ids(yield* users.findBy({ name: "Ada", count: 2 })), ["3"])
          assert.deepStrictEqual(ids(yield* users.findBy({ name: "Ada", tags: "dev", count: 1 })), ["1"])
          assert.deepStrictEqual(ids(yield* users.findBy({ name: "Bob", count: 2 })), [])
          assert.deepStrictEqual(ids(yield* users.findBy({ since: new Date(5) })), ["2", "3"], "dates compare by value")
          assert.deepStrictEqual(ids(yield* users.findBy({ name: "Nobody" })), [])
          yield* reset
          assert.deepStrictEqual(yield* users.findBy({}), [])
          assert.deepStrictEqual(yield* ops, [], "empty criteria make no request")
        })))

      it.live("findBy on id: one GetItem for one id, one BatchGetItem per 100 ids, requested order, missing dropped", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const stored = range(1, 230).map((n) => `u-${pad(n)}`)
          yield* Effect.forEach(stored, (id) => users.save(item(id, { count: Number(id.slice(2)) % 2 })), {
            concurrency: 16,
            discard: true
          })
          yield* reset
          assert.deepStrictEqual(ids(yield* users.findBy({ id: "u-0007" })), ["u-0007"])
          assert.deepStrictEqual(yield* ops, ["GetItem"])
          assert.deepStrictEqual(yield* users.findBy({ id: "nope" }), [])
          yield* reset
          // 250 distinct ids (20 missing), shuffled, with duplicates.
          const wanted = [...stored, ...range(1, 20).map((n) => `missing-${n}`)]
            .map((id, i) => ({ id, key: (i * 7919) % 250 }))
            .sort((a, b) => a.key - b.key)
            .map((x) => x.id)
          const found = yield* users.findBy({ id: [...wanted, wanted[0]!, wanted[100]!] })
          assert.deepStrictEqual(ids(found), wanted.filter((id) => !id.startsWith("missing")), "requested order, missing dropped, duplicates once")
          assert.deepStrictEqual(yield* ops, ["BatchGetItem", "BatchGetItem", "BatchGetItem"])
          assert.deepStrictEqual(ids(yield* users.findBy({ id: ["u-0003", "u-0004", "u-0005"], count: 1 })), ["u-0003", "u-0005"])
          yield* reset
          assert.deepStrictEqual(yield* users.findBy({ id: [] }), [])
          assert.deepStrictEqual(yield* ops, [])
        })))

      it.live("unprocessed keys of a BatchGetItem are retried with backoff", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const stored = range(1, 150).map((n) => `u-${pad(n)}`)
          yield* Effect.forEach(stored, (id) => users.save(item(id)), { concurrency: 16, discard: true })
          let partials = 0
          yield* setFault((operation, _name, requested) => {
            if (operation !== "BatchGetItem" || partials >= 3) return undefined
            partials++
            return { _tag: "Partial", processed: requested.slice(0, Math.floor(requested.length / 2)) }
          })
          yield* reset
          const found = yield* users.findBy({ id: stored })
          assert.deepStrictEqual(ids(found), stored)
          assert.strictEqual(partials, 3)
          assert.isAtLeast((yield* ops).length, 4)
        })))

      it.live("keys that stay unprocessed fail with UnresolvedIdsError naming them", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          yield* Effect.forEach(range(1, 12), (n) => users.save(item(`u-${n}`)), { discard: true })
          yield* setFault((operation, _name, requested) =>
            operation === "BatchGetItem" ? { _tag: "Partial", processed: requested.filter((id) => id !== "u-7" && id !== "u-9") } : undefined
          )
          const e = failure(yield* Effect.exit(users.findBy({ id: range(1, 12).map((n) => `u-${n}`) })))
          assert.strictEqual(e._tag, "UnresolvedIdsError")
          const unresolved = e as ReadModel.UnresolvedIdsError
          assert.deepStrictEqual([...unresolved.ids].sort(), ["u-7", "u-9"])
          assert.strictEqual(unresolved.repository, users.name)
          assert.strictEqual(unresolved.attempts, 6, "1 attempt + 5 retries of the schedule")
          assert.match(unresolved.message, /"u-7"/)
        })))

      it.live("a row whose Id differs from its payload's id is refused everywhere and left as it is", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const p = yield* ReadModelProbe
          yield* users.save(item("a"))
          const wrong = JSON.stringify({ ...item("b"), tags: [] })
          yield* p.putRaw(users.name, "c", wrong)
          const table = (yield* ReadModel.ReadModelStore).table
          const e1 = failure(yield* Effect.exit(users.find("c")))
          assert.deepInclude(e1, { _tag: "ReadModelIdMismatchError", table, repository: users.name, storedId: "c", payloadId: "b" })
          const e2 = failure(yield* Effect.exit(Stream.runCollect(users.findAll())))
          assert.deepInclude(e2, { _tag: "ReadModelIdMismatchError", storedId: "c" })
          const e3 = failure(yield* Effect.exit(users.findBy({ name: "x" })))
          assert.deepInclude(e3, { _tag: "ReadModelIdMismatchError", storedId: "c" })
          const e4 = failure(yield* Effect.exit(users.findBy({ id: ["a", "c"] })))
          assert.deepInclude(e4, { _tag: "ReadModelIdMismatchError", storedId: "c" })
          assert.deepStrictEqual(yield* rows(users.name), [
            { id: "a", data: JSON.stringify(item("a")) },
            { id: "c", data: wrong }
          ], "never normalized")
        })))

      it.live("a row whose Data is missing, not JSON or not the Schema is a CorruptedReadModelError naming it", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const p = yield* ReadModelProbe
          yield* p.putRaw(users.name, "no-data", undefined)
          yield* p.putRaw(users.name, "not-json", "{oops")
          yield* p.putRaw(users.name, "old-shape", JSON.stringify({ id: "old-shape", name: 42 }))
          for (const [id, reason] of [["no-data", /missing/], ["not-json", /not valid JSON/], ["old-shape", /Schema/]] as const) {
            const e = failure(yield* Effect.exit(users.find(id)))
            assert.deepInclude(e, { _tag: "CorruptedReadModelError", repository: users.name, id })
            assert.match((e as ReadModel.CorruptedReadModelError).reason, reason)
          }
          const e = failure(yield* Effect.exit(Stream.runCollect(users.findAll())))
          assert.deepInclude(e, { _tag: "CorruptedReadModelError", id: "no-data" })
        })))

      it.live("bad input is a typed error and sends nothing: ids, Schema, size, names", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          for (const id of ["", "x".repeat(1025), "é".repeat(513), 7 as unknown as string, undefined as unknown as string]) {
            const e1 = yield* refusedWithoutRequest(users.save(item(id)))
            assert.deepInclude(e1, { _tag: "InvalidInputError", operation: "save", field: "id" })
            const e2 = yield* refusedWithoutRequest(users.find(id))
            assert.deepInclude(e2, { _tag: "InvalidInputError", field: "id" })
            yield* refusedWithoutRequest(users.remove(id))
            const e3 = yield* refusedWithoutRequest(users.findBy({ id: ["ok", id] }))
            assert.deepInclude(e3, { _tag: "InvalidInputError", field: "criteria.id[1]" })
          }
          const e4 = yield* refusedWithoutRequest(users.save({ ...item("a"), count: "many" } as unknown as Item))
          assert.deepInclude(e4, { _tag: "ReadModelEncodeError", repository: users.name, id: "a" })
          const e5 = yield* refusedWithoutRequest(users.save(item("big", { name: "x".repeat(409_600) })))
          assert.deepInclude(e5, { _tag: "ReadModelTooLargeError", repository: users.name, id: "big", maxBytes: 409_600 })
          assert.isAbove((e5 as ReadModel.ReadModelTooLargeError).sizeBytes, 409_600)
          const e6 = yield* refusedWithoutRequest(users.findBy(null as unknown as ReadModel.Criteria<Item>))
          assert.deepInclude(e6, { _tag: "InvalidInputError", field: "criteria" })
          assert.deepStrictEqual(yield* rows(users.name), [])
          // The longest id and the largest item are accepted.
          const longest = "y".repeat(1024)
          yield* users.save(item(longest))
          assert.isTrue(Option.isSome(yield* users.find(longest)))
          const fixed = ReadModel.rowSize(users.name, "large", JSON.stringify(item("large", { name: "" })))
          const large = item("large", { name: "z".repeat(409_600 - fixed) })
          assert.strictEqual(ReadModel.rowSize(users.name, "large", JSON.stringify(large)), 409_600)
          yield* users.save(large)
          assert.strictEqual(Option.getOrThrow(yield* users.find("large")).name.length, 409_600 - fixed)
          // Repository names.
          for (const bad of ["", "n".repeat(1025)]) {
            const e = failure(yield* Effect.exit(ReadModel.repository(bad, Item)))
            assert.deepInclude(e, { _tag: "InvalidInputError", operation: "create", field: "name" })
            const d = failure(yield* Effect.exit(ReadModel.deferred(bad, Item)))
            assert.deepInclude(d, { _tag: "InvalidInputError", field: "name" })
          }
        })))

      it.live("idOf gives the id of models without an id field (and of classes)", () =>
        run(Effect.gen(function*() {
          class Account extends Schema.Class<Account>("Account")({ accountNo: Schema.String, balance: Schema.Number }) {}
          const accounts = yield* ReadModel.repository(repoName("acc"), Account, { idOf: (a) => a.accountNo })
          yield* accounts.save(new Account({ accountNo: "NL-1", balance: 10 }))
          const found = Option.getOrThrow(yield* accounts.find("NL-1"))
          assert.instanceOf(found, Account)
          assert.strictEqual(found.balance, 10)
          assert.deepStrictEqual((yield* accounts.findBy({ id: ["NL-1", "NL-2"] })).map((a) => a.accountNo), ["NL-1"])
          assert.deepStrictEqual((yield* accounts.findBy({ balance: 10 })).map((a) => a.accountNo), ["NL-1"])
          assert.deepStrictEqual(yield* rows(accounts.name), [{ id: "NL-1", data: "{\"accountNo\":\"NL-1\",\"balance\":10}" }])
        })))

      it.live("concurrent saves of different ids all land", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          yield* Effect.forEach(range(1, 100), (n) => users.save(item(`c-${pad(n)}`, { count: n })), { concurrency: "unbounded", discard: true })
          const all = yield* Stream.runCollect(users.findAll())
          assert.deepStrictEqual(all.map((m) => m.count), range(1, 100))
        })))
    })

    describe("skipping unchanged writes", () => {
      it.live("a save of the state last written sends nothing; a changed state is written", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          yield* users.save(item("a", { count: 1 }))
          yield* reset
          yield* users.save(item("a", { count: 1 }))
          assert.deepStrictEqual(yield* ops, [])
          yield* users.save(item("a", { count: 2 }))
          assert.deepStrictEqual(yield* ops, ["PutItem"])
          yield* users.save(item("a", { count: 1 }))
          assert.deepStrictEqual(yield* ops, ["PutItem", "PutItem"])
          assert.strictEqual(Option.getOrThrow(yield* users.find("a")).count, 1)
        })))

      it.live("a save of the state last read (find, findBy on ids) sends nothing", () =>
        run(Effect.gen(function*() {
          const writer = yield* repo()
          const p = yield* ReadModelProbe
          // Rows written by someone else: the store has not seen them.
          for (const n of range(1, 5)) yield* p.putRaw(writer.name, `r-${n}`, JSON.stringify(item(`r-${n}`)))
          yield* reset
          yield* writer.save(item("r-1"))
          assert.deepStrictEqual(yield* ops, ["PutItem"], "unknown state: written")
          const one = Option.getOrThrow(yield* writer.find("r-2"))
          const many = yield* writer.findBy({ id: ["r-3", "r-4"] })
          yield* reset
          yield* writer.save(one)
          for (const m of many) yield* writer.save(m)
          assert.deepStrictEqual(yield* ops, [])
          yield* writer.save({ ...one, count: 9 })
          assert.deepStrictEqual(yield* ops, ["PutItem"])
        })))

      it.live("remove forgets the state; repositories of one store share the memory", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const a = yield* ReadModel.repository(name, Item)
          const b = yield* ReadModel.repository(name, Item)
          yield* a.save(item("x"))
          yield* reset
          yield* b.save(item("x"))
          assert.deepStrictEqual(yield* ops, [], "shared by the repositories of one store")
          yield* a.remove("x")
          yield* b.save(item("x"))
          assert.deepStrictEqual(yield* ops, ["DeleteItem", "PutItem"])
          assert.isTrue(Option.isSome(yield* a.find("x")))
        })))

      it.live("after the table was recreated, clearSnapshots makes saves write again", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const p = yield* ReadModelProbe
          const store = yield* ReadModel.ReadModelStore
          yield* users.save(item("a"))
          yield* p.dropAll
          yield* users.save(item("a"))
          assert.deepStrictEqual(yield* rows(users.name), [], "the store still believes the row is there")
          yield* store.clearSnapshots
          yield* users.save(item("a"))
          assert.deepStrictEqual(ids(yield* rows(users.name)), ["a"])
        })))

      it.live("only a successful write updates the memory; a failed one makes it forget", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          yield* setFault((operation) => (operation === "PutItem" ? { _tag: "Fail" } : undefined))
          const e = failure(yield* Effect.exit(users.save(item("a", { count: 1 }))))
          assert.deepInclude(e, { _tag: "StorageError", operation: "PutItem", reason: "AccessDenied" })
          yield* setFault(undefined)
          yield* reset
          yield* users.save(item("a", { count: 1 }))
          assert.deepStrictEqual(yield* ops, ["PutItem"], "the failed write was not remembered")
          // A write whose outcome is unknown (applied, then the response was lost).
          yield* setFault((operation) => (operation === "PutItem" ? { _tag: "Fail", applied: true } : undefined))
          failure(yield* Effect.exit(users.save(item("a", { count: 2 }))))
          yield* setFault(undefined)
          yield* reset
          yield* users.save(item("a", { count: 1 }))
          assert.deepStrictEqual(yield* ops, ["PutItem"], "count 1 is no longer known to be stored")
          assert.strictEqual(Option.getOrThrow(yield* users.find("a")).count, 1)
        })))

      it.live("concurrent saves of one id never leave a wrong memory behind", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const states = [item("a", { count: 1 }), item("a", { count: 2 })]
          for (let round = 0; round < 5; round++) {
            yield* Effect.forEach(range(0, 19), (n) => users.save(states[n % 2]!), { concurrency: "unbounded", discard: true })
            for (const state of [states[0]!, states[1]!, states[0]!]) {
              yield* users.save(state)
              assert.deepStrictEqual(yield* users.find("a"), Option.some(state), `round ${round}`)
            }
          }
        })))

      it.live("skipUnchanged: false writes every time", () =>
        run(
          Effect.gen(function*() {
            const users = yield* repo()
            yield* users.save(item("a"))
            yield* users.find("a")
            yield* reset
            yield* users.save(item("a"))
            assert.deepStrictEqual(yield* ops, ["PutItem"])
          }),
          { skipUnchanged: false }
        ))
    })

    describe("deferred repositories (unit of work)", () => {
      it.live("identity map: a loaded model is the same object on every find, without another request", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          yield* immediate.save(item("a"))
          const uow = yield* ReadModel.deferred(name, Item)
          yield* reset
          const first = Option.getOrThrow(yield* uow.find("a"))
          const second = Option.getOrThrow(yield* uow.find("a"))
          assert.strictEqual(second, first)
          assert.strictEqual(yield* uow.get("a"), first)
          assert.strictEqual((yield* uow.findBy({ id: "a" }))[0], first)
          assert.deepStrictEqual(yield* ops, ["GetItem"])
          assert.isTrue(Option.isNone(yield* uow.find("missing")))
          assert.isTrue(Option.isNone(yield* uow.find("missing")))
          assert.deepStrictEqual(yield* ops, ["GetItem", "GetItem", "GetItem"], "absence is not cached")
        })))

      it.live("a staged save is found as the same object, a staged remove is not found; neither sends anything", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          yield* immediate.save(item("gone"))
          const uow = yield* ReadModel.deferred(name, Item)
          yield* reset
          const model = item("new")
          yield* uow.save(model)
          assert.strictEqual(Option.getOrThrow(yield* uow.find("new")), model)
          yield* uow.remove("gone")
          assert.isTrue(Option.isNone(yield* uow.find("gone")))
          const e = failure(yield* Effect.exit(uow.get("gone")))
          assert.deepInclude(e, { _tag: "NotFoundError", id: "gone" })
          assert.deepStrictEqual(yield* ops, [])
          assert.deepStrictEqual(ids(yield* rows(name)), ["gone"])
        })))

      it.live("save captures the encoded state at the time of the call", () =>
        run(Effect.gen(function*() {
          const uow = yield* deferredRepo()
          const model = item("a", { name: "before", tags: ["x"] }) as { -readonly [K in keyof Item]: Item[K] }
          yield* uow.save(model)
          model.name = "after"
          ;(model.tags as Array<string>).push("y")
          const [op] = yield* uow.pendingOperations
          assert.deepInclude(op, { _tag: "Save", id: "a", data: JSON.stringify(item("a", { name: "before", tags: ["x"] })) })
          yield* uow.flush
          assert.deepStrictEqual(yield* rows(uow.name), [{ id: "a", data: JSON.stringify(item("a", { name: "before", tags: ["x"] })) }])
        })))

      it.live("repeated saves of one id collapse into one write of the last state", () =>
        run(Effect.gen(function*() {
          const uow = yield* deferredRepo()
          for (const n of range(1, 10)) yield* uow.save(item("a", { count: n }))
          assert.strictEqual((yield* uow.pendingOperations).length, 1)
          yield* reset
          const result = yield* uow.flush
          assert.deepInclude(result, { saved: 1, removed: 0, requests: 1 })
          assert.strictEqual(yield* itemWrites, 1)
          assert.strictEqual(Option.getOrThrow(yield* (yield* ReadModel.repository(uow.name, Item)).find("a")).count, 10)
        })))

      it.live("save after remove cancels the delete; remove after save leaves only the delete", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          yield* immediate.save(item("kept", { count: 1 }))
          yield* immediate.save(item("deleted", { count: 1 }))
          const uow = yield* ReadModel.deferred(name, Item)
          yield* uow.remove("kept")
          yield* uow.save(item("kept", { count: 2 }))
          yield* uow.save(item("deleted", { count: 2 }))
          yield* uow.remove("deleted")
          yield* uow.save(item("fresh"))
          yield* uow.remove("fresh")
          const pending = yield* uow.pendingOperations
          assert.deepStrictEqual(pending.map((op) => [op._tag, op.id]), [["Save", "kept"], ["Remove", "deleted"], ["Remove", "fresh"]])
          assert.strictEqual(Option.getOrThrow(yield* uow.find("kept")).count, 2)
          assert.isTrue(Option.isNone(yield* uow.find("deleted")))
          const result = yield* uow.flush
          assert.deepInclude(result, { saved: 1, removed: 2 })
          assert.deepStrictEqual(yield* rows(name), [{ id: "kept", data: JSON.stringify(item("kept", { count: 2 })) }])
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
        })))

      it.live("a deferred save is invisible to an immediate repository until flush", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          const uow = yield* ReadModel.deferred(name, Item)
          yield* uow.save(item("a"))
          assert.isTrue(Option.isNone(yield* immediate.find("a")))
          assert.deepStrictEqual(yield* Stream.runCollect(immediate.findAll()), [])
          assert.deepStrictEqual(yield* immediate.findBy({ id: ["a", "b"] }), [])
          yield* uow.flush
          assert.deepStrictEqual(yield* immediate.find("a"), Option.some(item("a")))
        })))

      it.live("findAll and findBy overlay staged saves and removes on storage, in id order, across pages", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          for (const n of range(1, 30)) yield* immediate.save(item(`m-${pad(n * 2)}`, { tags: n % 3 === 0 ? ["three"] : [] }))
          const uow = yield* ReadModel.deferred(name, Item, { pageSize: 4 })
          yield* uow.save(item("m-0000", { tags: ["three"] })) // before every stored row
          yield* uow.save(item("m-0031", { tags: ["three"] })) // between rows
          yield* uow.save(item("m-0012", { name: "changed" })) // replaces a stored row (was "three")
          yield* uow.save(item("m-9999")) // after every stored row
          yield* uow.remove("m-0002")
          yield* uow.remove("m-0006")
          yield* uow.remove("m-0007") // not stored: nothing to hide
          const loaded = Option.getOrThrow(yield* uow.find("m-0020"))
          const expectedIds = [
            "m-0000",
            ...range(2, 30).map((n) => `m-${pad(n * 2)}`).filter((id) => id !== "m-0006"),
            "m-9999"
          ]
          expectedIds.splice(expectedIds.indexOf("m-0032"), 0, "m-0031")
          const all = yield* Stream.runCollect(uow.findAll())
          assert.deepStrictEqual(ids(all), expectedIds)
          assert.strictEqual(all.find((m) => m.id === "m-0012")!.name, "changed")
          assert.strictEqual(all.find((m) => m.id === "m-0020"), loaded, "managed models keep their identity")
          const threes = yield* uow.findBy({ tags: "three" })
          assert.deepStrictEqual(ids(threes), ["m-0000", "m-0018", "m-0024", "m-0030", "m-0031", "m-0036", "m-0042", "m-0048", "m-0054", "m-0060"])
          assert.deepStrictEqual(ids(yield* uow.findBy({ name: "changed" })), ["m-0012"])
          // Lookups by id: staged and loaded ones need no request, the rest is fetched.
          yield* reset
          const byId = yield* uow.findBy({ id: ["m-9999", "m-0002", "m-0020", "m-0004", "m-0008", "m-0003"] })
          assert.deepStrictEqual(ids(byId), ["m-9999", "m-0020", "m-0004", "m-0008"])
          assert.strictEqual(byId[1], loaded)
          assert.deepStrictEqual(yield* ops, ["BatchGetItem"])
          const again = yield* uow.findBy({ id: ["m-0004", "m-0008"] })
          assert.strictEqual(again[0], byId[2])
          assert.deepStrictEqual(yield* ops, ["BatchGetItem"], "fetched models joined the identity map")
        })))

      it.live("flush writes removes and saves with BatchWriteItem, 25 per request, and empties the pending set", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          yield* Effect.forEach(range(1, 10), (n) => immediate.save(item(`old-${pad(n)}`)), { discard: true })
          const uow = yield* ReadModel.deferred(name, Item)
          for (const n of range(1, 60)) yield* uow.save(item(`new-${pad(n)}`, { count: n }))
          for (const n of range(1, 10)) yield* uow.remove(`old-${pad(n)}`)
          yield* reset
          const result = yield* uow.flush
          assert.deepStrictEqual(result, { saved: 60, removed: 10, unchanged: 0, requests: 4 })
          assert.deepStrictEqual(yield* ops, ["BatchWriteItem", "BatchWriteItem", "BatchWriteItem", "BatchWriteItem"])
          assert.strictEqual(yield* itemWrites, 70)
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
          const stored = yield* rows(name)
          assert.deepStrictEqual(ids(stored), range(1, 60).map((n) => `new-${pad(n)}`))
          assert.deepStrictEqual(stored.map((r) => JSON.parse(r.data!).count), range(1, 60))
          yield* reset
          assert.deepStrictEqual(yield* uow.flush, { saved: 0, removed: 0, unchanged: 0, requests: 0 })
          assert.deepStrictEqual(yield* ops, [], "an empty flush sends nothing")
          // The flushed states are remembered: saving them again (here or immediately) sends nothing.
          yield* uow.save(item("new-0001", { count: 1 }))
          assert.deepInclude(yield* uow.flush, { unchanged: 1, requests: 0 })
          yield* immediate.save(item("new-0002", { count: 2 }))
          assert.deepStrictEqual(yield* ops, [])
        })))

      it.live("flush drops staged saves whose state is already stored", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          yield* Effect.forEach(range(1, 5), (n) => immediate.save(item(`a-${n}`)), { discard: true })
          const uow = yield* ReadModel.deferred(name, Item)
          const loaded = yield* uow.findBy({ id: range(1, 5).map((n) => `a-${n}`) })
          for (const model of loaded) yield* uow.save(model)
          yield* uow.save({ ...loaded[0]!, count: 42 })
          yield* reset
          const result = yield* uow.flush
          assert.deepStrictEqual(result, { saved: 1, removed: 0, unchanged: 4, requests: 1 })
          assert.strictEqual(yield* itemWrites, 1)
        })))

      it.live("unprocessed items are retried with backoff until everything is written", () =>
        run(Effect.gen(function*() {
          const uow = yield* deferredRepo()
          for (const n of range(1, 80)) yield* uow.save(item(`u-${pad(n)}`))
          let partials = 0
          yield* setFault((operation, _name, requested) => {
            if (operation !== "BatchWriteItem" || partials >= 6) return undefined
            partials++
            return { _tag: "Partial", processed: requested.filter((_, i) => i % 3 === 0) }
          })
          yield* reset
          const result = yield* uow.flush
          assert.strictEqual(result.saved, 80)
          assert.isAbove(result.requests, 4)
          assert.strictEqual(yield* itemWrites, 80, "each item written exactly once")
          assert.strictEqual((yield* rows(uow.name)).length, 80)
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
        })))

      it.live("a flush broken by failures keeps exactly the unwritten operations pending; flushing again completes it exactly once", () =>
        run(Effect.gen(function*() {
          const store = yield* ReadModel.ReadModelStore
          const refName = repoName("ref")
          const name = repoName("faulty")
          const seed = (partition: string) =>
            Effect.gen(function*() {
              const immediate = yield* ReadModel.repository(partition, Item)
              yield* Effect.forEach(range(1, 40), (n) => immediate.save(item(`k-${pad(n)}`, { count: -n })), {
                concurrency: 8,
                discard: true
              })
              const uow = yield* ReadModel.deferred(partition, Item, { modelName: "TestItem" })
              for (const n of range(1, 40)) if (n % 4 === 0) yield* uow.remove(`k-${pad(n)}`)
              for (const n of range(1, 130)) if (n % 4 !== 0) yield* uow.save(item(`k-${pad(n)}`, { count: n, tags: [`t${n % 5}`] }))
              return uow
            })
          const reference = yield* seed(refName)
          yield* reference.flush
          const uow = yield* seed(name)
          const staged = yield* uow.pendingOperations
          // Batches 2 and 5 fail outright; every batch processes only part of its items, and
          // the items of batch 3 never get processed at all.
          let batch = 0
          const starved = new Set<string>()
          yield* setFault((operation, repo, requested) => {
            if (operation !== "BatchWriteItem" || repo !== name) return undefined
            batch++
            if (batch === 2 || batch === 5) return { _tag: "Fail" }
            if (batch === 3) for (const id of requested) starved.add(id)
            return { _tag: "Partial", processed: requested.filter((id, i) => !starved.has(id) && i % 2 === 0) }
          })
          const e = failure(yield* Effect.exit(uow.flushWithContext({ projector: "Users", sourceEventId: "evt-42" })))
          assert.strictEqual(e._tag, "DeferredFlushFailed")
          const flushError = e as ReadModel.DeferredFlushFailed
          assert.deepInclude(flushError, { table: store.table, repository: name, model: "TestItem" })
          assert.deepStrictEqual(flushError.context, { projector: "Users", sourceEventId: "evt-42" })
          assert.isTrue(flushError.operation === "save" || flushError.operation === "remove")
          assert.isAbove(flushError.ids.length, 0)
          assert.strictEqual(flushError.cause._tag, "StorageError")
          assert.match(flushError.message, /evt-42/)

          // Pending = exactly what storage does not have yet.
          const pending = yield* uow.pendingOperations
          assert.strictEqual(flushError.pending, pending.length)
          assert.strictEqual(flushError.written + pending.length, staged.length)
          for (const id of flushError.ids) assert.isTrue(pending.some((op) => op.id === id), `${id} of the error is pending`)
          const stored = new Map((yield* rows(name)).map((r) => [r.id, r.data]))
          const pendingIds = new Set(pending.map((op) => op.id))
          for (const op of staged) {
            const done = op._tag === "Save" ? stored.get(op.id) === op.data : !stored.has(op.id)
            assert.strictEqual(!pendingIds.has(op.id), done, `${op._tag} ${op.id}: pending exactly when not written`)
          }
          assert.isAbove(pending.length, 0)
          assert.isBelow(pending.length, staged.length)

          yield* setFault(undefined)
          yield* reset
          const result = yield* uow.flush
          assert.strictEqual(result.saved + result.removed + result.unchanged, pending.length)
          assert.strictEqual(yield* itemWrites, pending.length - result.unchanged, "nothing is written twice")
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
          assert.deepStrictEqual(yield* rows(name), yield* rows(refName), "the table is as if nothing had failed")
        })))

      it.live("clear drops staged changes and the identity map, and writes nothing", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          yield* immediate.save(item("a", { count: 1 }))
          const uow = yield* ReadModel.deferred(name, Item)
          const loaded = Option.getOrThrow(yield* uow.find("a"))
          yield* uow.save(item("b"))
          yield* uow.remove("a")
          yield* reset
          yield* uow.clear
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
          assert.deepStrictEqual(yield* ops, [])
          const reloaded = Option.getOrThrow(yield* uow.find("a"))
          assert.notStrictEqual(reloaded, loaded, "the identity map was cleared")
          assert.deepStrictEqual(yield* uow.flush, { saved: 0, removed: 0, unchanged: 0, requests: 0 })
          assert.deepStrictEqual(ids(yield* rows(name)), ["a"])
        })))

      it.live("bad input is refused at save time and stages nothing", () =>
        run(Effect.gen(function*() {
          const uow = yield* deferredRepo()
          const e1 = yield* refusedWithoutRequest(uow.save(item("")))
          assert.deepInclude(e1, { _tag: "InvalidInputError", field: "id" })
          const e2 = yield* refusedWithoutRequest(uow.save({ ...item("a"), tags: "nope" } as unknown as Item))
          assert.deepInclude(e2, { _tag: "ReadModelEncodeError", id: "a" })
          const e3 = yield* refusedWithoutRequest(uow.save(item("b", { name: "x".repeat(410_000) })))
          assert.deepInclude(e3, { _tag: "ReadModelTooLargeError", id: "b" })
          const e4 = yield* refusedWithoutRequest(uow.remove("x".repeat(1025)))
          assert.deepInclude(e4, { _tag: "InvalidInputError", operation: "remove" })
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
          assert.isTrue(Option.isNone(yield* uow.find("a")))
        })))

      it.live("saves staged while a flush runs stay pending for the next flush", () =>
        run(Effect.gen(function*() {
          const uow = yield* deferredRepo()
          for (const n of range(1, 50)) yield* uow.save(item(`s-${pad(n)}`, { count: 1 }))
          let signal = () => {}
          const started = new Promise<void>((resolve) => {
            signal = resolve
          })
          yield* setFault((operation) => {
            if (operation === "BatchWriteItem") signal()
            return undefined
          })
          const flushing = yield* Effect.forkChild(uow.flush)
          yield* Effect.promise(() => started)
          // The first batch is on its way (DynamoDB) or done (in memory): stage new states.
          for (const n of range(1, 50)) yield* uow.save(item(`s-${pad(n)}`, { count: 2 }))
          const first = yield* Fiber.await(flushing)
          assert.isTrue(Exit.isSuccess(first))
          assert.strictEqual((yield* uow.pendingOperations).length, 50, "the new states are still pending")
          yield* uow.flush
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
          const stored = yield* rows(uow.name)
          assert.deepStrictEqual(stored.map((r) => JSON.parse(r.data!).count), range(1, 50).map(() => 2))
        })))
    })

    describe("keys are well-formed Unicode; options and properties", () => {
      const loneSurrogates = ["u-\uD800", "u-\uDC00", "\uDFFF", "u-\uDC00\uD800", "u-\uD83D"]

      it.live("model ids with a lone surrogate are refused by every operation and send nothing", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const uow = yield* deferredRepo()
          const byKey = yield* ReadModel.repository(repoName(), Schema.Struct({ key: Schema.String }), { idOf: (m) => m.key })
          for (const id of loneSurrogates) {
            const label = JSON.stringify(id)
            const e1 = yield* refusedWithoutRequest(users.save(item(id)))
            assert.deepInclude(e1, { _tag: "InvalidInputError", operation: "save", field: "id" }, label)
            assert.match((e1 as { readonly reason: string }).reason, /surrogate/)
            const e2 = yield* refusedWithoutRequest(users.find(id))
            assert.deepInclude(e2, { _tag: "InvalidInputError", operation: "find", field: "id" }, label)
            const e3 = yield* refusedWithoutRequest(users.get(id))
            assert.deepInclude(e3, { _tag: "InvalidInputError", field: "id" }, label)
            const e4 = yield* refusedWithoutRequest(users.remove(id))
            assert.deepInclude(e4, { _tag: "InvalidInputError", operation: "remove", field: "id" }, label)
            const e5 = yield* refusedWithoutRequest(users.findBy({ id }))
            assert.deepInclude(e5, { _tag: "InvalidInputError", operation: "findBy", field: "criteria.id" }, label)
            const e6 = yield* refusedWithoutRequest(users.findBy({ id: ["ok", id] }))
            assert.deepInclude(e6, { _tag: "InvalidInputError", field: "criteria.id[1]" }, label)
            const e7 = yield* refusedWithoutRequest(uow.save(item(id)))
            assert.deepInclude(e7, { _tag: "InvalidInputError", field: "id" }, label)
            const e8 = yield* refusedWithoutRequest(uow.remove(id))
            assert.deepInclude(e8, { _tag: "InvalidInputError", field: "id" }, label)
            const e9 = yield* refusedWithoutRequest(uow.find(id))
            assert.deepInclude(e9, { _tag: "InvalidInputError", field: "id" }, label)
            const e10 = yield* refusedWithoutRequest(byKey.save({ key: id }))
            assert.deepInclude(e10, { _tag: "InvalidInputError", operation: "save", field: "id" }, label)
            // What storage would have made of the id holds nothing.
            assert.isTrue(Option.isNone(yield* users.find(id.toWellFormed())), label)
          }
          assert.deepStrictEqual(yield* uow.pendingOperations, [])
          yield* reset
          assert.deepStrictEqual(yield* uow.flush, { saved: 0, removed: 0, unchanged: 0, requests: 0 })
          assert.deepStrictEqual(yield* rows(users.name), [])
          assert.deepStrictEqual(yield* rows(uow.name), [])
          // Well-formed astral ids that differ only in their low surrogate are kept apart.
          yield* users.save(item("u-😀", { count: 1 }))
          yield* users.save(item("u-😁", { count: 2 }))
          assert.strictEqual(Option.getOrThrow(yield* users.find("u-😀")).count, 1)
          assert.strictEqual(Option.getOrThrow(yield* users.find("u-😁")).count, 2)
          assert.deepStrictEqual(ids(yield* users.findBy({ id: ["u-😁", "u-😀"] })), ["u-😁", "u-😀"])
          assert.deepStrictEqual(ids(yield* rows(users.name)).sort(), ["u-😀", "u-😁"])
        })))

      it.live("repository names with a lone surrogate are refused; well-formed astral names are kept apart", () =>
        run(Effect.gen(function*() {
          const base = repoName()
          for (const name of [`${base}-\uD800`, `${base}-\uDC00`, `\uDFFF${base}`, `${base}-\uDC00\uD800`]) {
            const e1 = failure(yield* Effect.exit(ReadModel.repository(name, Item)))
            assert.deepInclude(e1, { _tag: "InvalidInputError", operation: "create", field: "name" }, JSON.stringify(name))
            assert.match((e1 as { readonly reason: string }).reason, /surrogate/)
            const e2 = failure(yield* Effect.exit(ReadModel.deferred(name, Item)))
            assert.deepInclude(e2, { _tag: "InvalidInputError", operation: "create", field: "name" }, JSON.stringify(name))
          }
          const a = yield* ReadModel.repository(`${base}-😀`, Item)
          const b = yield* ReadModel.repository(`${base}-😁`, Item)
          yield* a.save(item("x", { count: 1 }))
          yield* b.save(item("x", { count: 2 }))
          assert.strictEqual(Option.getOrThrow(yield* a.find("x")).count, 1)
          assert.strictEqual(Option.getOrThrow(yield* b.find("x")).count, 2)
          assert.deepStrictEqual(ids(yield* Stream.runCollect(a.findAll())), ["x"])
        })))

      it.live("malformed repository options and findBy criteria are typed errors naming the field", () =>
        run(Effect.gen(function*() {
          const cases: ReadonlyArray<readonly [unknown, string]> = [
            [{ pageSize: 0 }, "options.pageSize"],
            [{ pageSize: 10_001 }, "options.pageSize"],
            [{ pageSize: Number.MAX_SAFE_INTEGER }, "options.pageSize"],
            [{ pageSize: 1.5 }, "options.pageSize"],
            [{ pageSize: "10" }, "options.pageSize"],
            [{ consistentRead: "yes" }, "options.consistentRead"],
            [{ idOf: "id" }, "options.idOf"],
            [{ modelName: 5 }, "options.modelName"],
            [null, "options"],
            ["x", "options"]
          ]
          for (const [options, field] of cases) {
            const o = options as ReadModel.RepositoryOptions<Item>
            const e1 = failure(yield* Effect.exit(ReadModel.repository(repoName(), Item, o)))
            assert.deepInclude(e1, { _tag: "InvalidInputError", operation: "create", field }, JSON.stringify(options))
            const e2 = failure(yield* Effect.exit(ReadModel.deferred(repoName(), Item, o)))
            assert.deepInclude(e2, { _tag: "InvalidInputError", operation: "create", field }, JSON.stringify(options))
          }
          const users = yield* repo("pages", { pageSize: 10_000, consistentRead: true })
          yield* users.save(item("a"))
          assert.deepStrictEqual(ids(yield* Stream.runCollect(users.findAll())), ["a"])
          for (
            const [criteria, field] of [
              ["x", "criteria"],
              [{ id: 5 }, "criteria.id"],
              [{ id: null }, "criteria.id"],
              [{ id: [1] }, "criteria.id[0]"],
              [{ id: ["a", ""] }, "criteria.id[1]"]
            ] as const
          ) {
            const e = yield* refusedWithoutRequest(users.findBy(criteria as unknown as ReadModel.Criteria<Item>))
            assert.deepInclude(e, { _tag: "InvalidInputError", operation: "findBy", field }, JSON.stringify(criteria))
          }
        })))

      const SLOTS = ["a", "b", "😀", "😁"] as const
      const idArb = weighted<unknown>([4, oneOf(SLOTS)], [1, Arbitrary.schema(Schema.String)])
      const validItem = Arbitrary.all({
        id: idArb,
        name: Arbitrary.schema(Schema.String),
        tags: Arbitrary.schema(Schema.Array(Schema.String)),
        count: Arbitrary.schema(Schema.Number),
        since: weighted<Date | undefined>([3, Arbitrary.Constant(undefined)], [1, Arbitrary.Constant(new Date(1_700_000_000_000))])
      })
      const ITEM_FIELDS = ["model", "id", "name", "tags", "count", "since"] as const
      /** A model that matches the Schema, or one with a single field replaced by a hostile value. */
      const modelArb = Arbitrary.map(
        Arbitrary.all({
          model: validItem,
          corruption: weighted<{ readonly field: typeof ITEM_FIELDS[number]; readonly value: unknown } | undefined>(
            [3, Arbitrary.Constant(undefined)],
            [1, Arbitrary.all({ field: oneOf(ITEM_FIELDS), value: hostile })]
          )
        }),
        ({ corruption, model }): unknown =>
          corruption === undefined ? model : corruption.field === "model" ? corruption.value : { ...model, [corruption.field]: corruption.value }
      )
      const anyId = weighted<unknown>([5, idArb], [1, hostile])
      const criteriaArb = weighted<unknown>(
        [3, Arbitrary.all({ id: anyId })],
        [2, Arbitrary.all({ id: Arbitrary.array(anyId, { maxLength: 4 }) })],
        [1, Arbitrary.all({ name: Arbitrary.schema(Schema.String) })],
        [1, Arbitrary.all({ tags: Arbitrary.schema(Schema.String), count: Arbitrary.schema(Schema.Number) })],
        [1, hostile]
      )
      const isKey = (u: unknown): u is string =>
        typeof u === "string" && u.length > 0 && u.isWellFormed() && Buffer.byteLength(u, "utf8") <= 1024
      const storedIds = (name: string) => rows(name).pipe(Effect.map((stored) => stored.map((r) => r.id).sort()))
      const sorted = (set: ReadonlySet<string>) => [...set].sort()

      it.live("property (50 generated cases): save, find, get, findBy and remove give a result or a typed error, never a defect; a refusal sends nothing", () =>
        run(Effect.gen(function*() {
          const users = yield* repo()
          const arb = Arbitrary.all({
            operation: oneOf(["save", "save", "find", "get", "findBy", "remove"] as const),
            model: modelArb,
            id: anyId,
            criteria: criteriaArb
          })
          // What the partition holds, as the successful operations say.
          const model = new Set<string>()
          const tally = new Tally()
          const SAVE = ["InvalidInputError", "ReadModelEncodeError", "ReadModelTooLargeError", "StorageError"]
          const READ = ["InvalidInputError", "StorageError"]
          yield* holds(arb, (input) =>
            Effect.gen(function*() {
              yield* reset
              let outcome
              switch (input.operation) {
                case "save": {
                  outcome = yield* expectTyped("save", yield* Effect.exit(users.save(input.model as Item)), SAVE)
                  if (outcome._tag === "Success") model.add((input.model as Item).id)
                  break
                }
                case "find": {
                  const found = yield* expectTyped("find", yield* Effect.exit(users.find(input.id as string)), READ)
                  if (found._tag === "Success") {
                    const id = input.id as string
                    yield* check(Option.isSome(found.value) === model.has(id), () => `find(${show(id)}) gave ${show(found.value)}`)
                    if (Option.isSome(found.value)) yield* check(found.value.value.id === id, () => `find(${show(id)}) gave ${show(found.value)}`)
                  }
                  outcome = found
                  break
                }
                case "get": {
                  const got = yield* expectTyped("get", yield* Effect.exit(users.get(input.id as string)), [...READ, "NotFoundError"])
                  const id = input.id as string
                  if (got._tag === "Success") yield* check(model.has(id) && got.value.id === id, () => `get(${show(id)}) gave ${show(got.value)}`)
                  else if (got.error._tag === "NotFoundError") yield* check(isKey(id) && !model.has(id), () => `get(${show(id)}): NotFoundError`)
                  outcome = got
                  break
                }
                case "findBy": {
                  const criteria = input.criteria as ReadModel.Criteria<Item>
                  const found = yield* expectTyped("findBy", yield* Effect.exit(users.findBy(criteria)), [...READ, "UnresolvedIdsError"])
                  if (found._tag === "Success" && typeof criteria === "object" && criteria !== null && Object.keys(criteria).length === 1 && "id" in criteria) {
                    const wanted = [...new Set(Array.isArray(criteria.id) ? criteria.id : [criteria.id])] as Array<string>
                    yield* check(
                      show(ids(found.value)) === show(wanted.filter((id) => model.has(id))),
                      () => `findBy(${show(criteria)}) gave ${show(ids(found.value))}`
                    )
                  }
                  outcome = found
                  break
                }
                case "remove": {
                  outcome = yield* expectTyped("remove", yield* Effect.exit(users.remove(input.id as string)), ["InvalidInputError", "StorageError"])
                  if (outcome._tag === "Success") model.delete(input.id as string)
                  break
                }
              }
              tally.record(outcome)
              if (outcome._tag === "Refused" && outcome.error._tag === "InvalidInputError" || outcome._tag === "Refused" && outcome.error._tag.endsWith("EncodeError") ||
                outcome._tag === "Refused" && outcome.error._tag === "ReadModelTooLargeError") {
                const sent = yield* ops
                yield* check(sent.length === 0, () => `refused with ${outcome.error._tag}, but ${show(sent)} reached storage`)
              }
              const stored = yield* storedIds(users.name)
              yield* check(show(stored) === show(sorted(model)), () => `storage holds ${show(stored)}, the operations say ${show(sorted(model))}`)
            }), { runs: 50 })
          tally.assertMixed(5)
        })))

      it.live("property (40 generated units of work): deferred save and remove stage without a request or are refused without staging; flush writes exactly what was staged", () =>
        run(Effect.gen(function*() {
          const name = repoName()
          const immediate = yield* ReadModel.repository(name, Item)
          const step = weighted<{ readonly _tag: "save"; readonly model: unknown } | { readonly _tag: "remove"; readonly id: unknown }>(
            [3, Arbitrary.map(modelArb, (model) => ({ _tag: "save" as const, model }))],
            [1, Arbitrary.map(anyId, (id) => ({ _tag: "remove" as const, id }))]
          )
          const arb = Arbitrary.all({
            steps: Arbitrary.array(step, { minLength: 1, maxLength: 6 }),
            options: weighted<unknown>(
              [6, Arbitrary.Constant(undefined)],
              [1, Arbitrary.all({ pageSize: oneOf([1, 2, 10_000]) })],
              [1, hostile]
            )
          })
          const model = new Set<string>()
          const tally = new Tally()
          yield* holds(arb, (input) =>
            Effect.gen(function*() {
              const created = yield* expectTyped(
                "deferred",
                yield* Effect.exit(ReadModel.deferred(name, Item, input.options as ReadModel.RepositoryOptions<Item>)),
                ["InvalidInputError"]
              )
              if (created._tag === "Refused") return tally.record(created)
              const uow = created.value
              const expected = new Set(model)
              yield* reset
              for (const s of input.steps) {
                const before = show(yield* uow.pendingOperations)
                const outcome = s._tag === "save"
                  ? yield* expectTyped("deferred save", yield* Effect.exit(uow.save(s.model as Item)), ["InvalidInputError", "ReadModelEncodeError", "ReadModelTooLargeError"])
                  : yield* expectTyped("deferred remove", yield* Effect.exit(uow.remove(s.id as string)), ["InvalidInputError"])
                tally.record(outcome)
                if (outcome._tag === "Refused") {
                  const after = show(yield* uow.pendingOperations)
                  yield* check(after === before, () => `refused with ${outcome.error._tag}, but the pending operations changed`)
                } else if (s._tag === "save") expected.add((s.model as Item).id)
                else expected.delete(s.id as string)
              }
              const sent = yield* ops
              yield* check(sent.length === 0, () => `staging sent ${show(sent)}`)
              const flushed = yield* expectTyped("flush", yield* Effect.exit(uow.flush), [])
              if (flushed._tag !== "Success") return
              yield* check((yield* uow.pendingOperations).length === 0, () => "operations still pending after a successful flush")
              model.clear()
              for (const id of expected) model.add(id)
              const stored = yield* storedIds(name)
              yield* check(show(stored) === show(sorted(model)), () => `storage holds ${show(stored)}, the unit of work staged ${show(sorted(model))}`)
              for (const id of model) {
                const found = yield* immediate.find(id)
                yield* check(Option.isSome(found), () => `${show(id)} was flushed but is not found`)
              }
            }), { runs: 40 })
          tally.assertMixed(5)
        })))
    })
  })

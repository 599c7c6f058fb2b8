import { DescribeTimeToLiveCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@dynamo-es/core"
import { Accounts, eventStoreConformance, streamId, type TestEvent } from "@dynamo-es/core/testing/EventStoreConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Exit, Fiber, Layer, Schedule, Stream } from "effect"
import { DynamoClient, DynamoEventStore, Tables } from "../src/index.js"
import { instrumentedClient, makeStoreLayer, sdkError } from "./helpers.js"
import { failure as fail, range } from "@dynamo-es/core/testing/utils"

const local = DynamoDBLocal.layer()
const client = Fixtures.layerClientFor().pipe(Layer.provide(local))

eventStoreConformance("DynamoDB", (options) => makeStoreLayer(options).pipe(Layer.provide(client)), { timeout: 120_000 })

const deposit = (amount: number): TestEvent => ({ _tag: "Deposited", amount })
const deposits = (n: number, start = 1) => Array.from({ length: n }, (_, i) => deposit(start + i))


/**
 * A store on a fresh table whose SDK client records requests and can inject faults.
 * Retries are quick (5 ms) so fault tests stay fast.
 */
const instrumented = <A, E>(
  body: (
    tools: ReturnType<typeof instrumentedClient> & { readonly tableName: string }
  ) => Effect.Effect<A, E, EventStore.EventStore | DynamoClient.DynamoClient>,
  options: Partial<DynamoEventStore.DynamoEventStoreOptions> = {}
) =>
  Effect.gen(function*() {
    const connection = yield* DynamoDBLocal.DynamoDBLocal
    const tools = instrumentedClient(connection)
    const tableName = Fixtures.uniqueTableName("events")
    const clientLayer = DynamoClient.layer({
      client: tools.sdk,
      retrySchedule: Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 4 }))
    })
    const storeLayer = Layer.unwrap(
      Fixtures.scopedTable(Tables.eventsTable(tableName)).pipe(
        Effect.as(DynamoEventStore.layerExisting({ ...options, tableName }))
      )
    )
    return yield* Effect.gen(function*() {
      tools.recorder.clear()
      return yield* body({ ...tools, tableName })
    }).pipe(Effect.provide(Layer.provideMerge(storeLayer, clientLayer)))
  }).pipe(Effect.provide(local))

describe("DynamoEventStore", { timeout: 120_000 }, () => {
  describe("requests and capacity", () => {
    it.live("an append right after the store's own read or write is exactly one PutItem of 1 WCU", () =>
      instrumented(({ recorder }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
          assert.deepStrictEqual(recorder.commands, ["PutItem"], "noStream needs no read")
          recorder.clear()
          yield* Accounts.append(id, [deposit(2)], { expectedVersion: 1 })
          assert.deepStrictEqual(recorder.commands, ["PutItem"], "a version this store wrote is proven")
          assert.deepStrictEqual(recorder.capacity, [{ command: "PutItem", read: 0, write: 1 }])
          recorder.clear()
          const events = yield* Accounts.readLast(id, 1)
          assert.deepStrictEqual(recorder.commands, ["Query"])
          recorder.clear()
          yield* Accounts.append(id, [deposit(3)], { expectedVersion: events[0]!.version })
          assert.deepStrictEqual(recorder.commands, ["PutItem"], "a version read from the store is proven")
        })
      ))

    it.live("a bare version number costs one Query (1 RCU) before the PutItem", () =>
      instrumented(({ recorder, tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(3), { expectedVersion: "noStream" })
          assert.deepStrictEqual(recorder.commands, ["TransactWriteItems"])
          // A second store on the same table has never seen the stream: it must check.
          const fresh = yield* DynamoEventStore.make({ tableName })
          recorder.clear()
          yield* fresh.append(id, [{ type: "Deposited", payload: deposit(4) }], { expectedVersion: 3 })
          assert.deepStrictEqual(recorder.commands, ["Query", "PutItem"])
          assert.deepStrictEqual(recorder.capacity, [
            { command: "Query", read: 1, write: 0 },
            { command: "PutItem", read: 0, write: 1 }
          ])
        })
      ))

    it.live("a version cache of size 0 always checks, and still never writes a gap", () =>
      instrumented(({ recorder }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(1), { expectedVersion: "noStream" })
          recorder.clear()
          yield* Accounts.append(id, deposits(1), { expectedVersion: 1 })
          assert.deepStrictEqual(recorder.commands, ["Query", "PutItem"])
          const e = fail(yield* Effect.exit(Accounts.append(id, deposits(1), { expectedVersion: 7 })))
          assert.deepInclude(e, { _tag: "ConflictError", actualVersion: 2 })
        }), { versionCacheSize: 0 }))

    it.live("a range read past the end costs one extra Query only when a missing stream must fail", () =>
      instrumented(({ recorder }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(3), { expectedVersion: "noStream" })
          recorder.clear()
          assert.deepStrictEqual(yield* Stream.runCollect(Accounts.read(id, { from: 4 })), [])
          assert.deepStrictEqual(recorder.commands, ["Query", "Query"], "the range query, then the existence check")
          recorder.clear()
          assert.deepStrictEqual(yield* Stream.runCollect(Accounts.read(id, { from: 4, ifMissing: "empty" })), [])
          assert.deepStrictEqual(recorder.commands, ["Query"])
        })
      ))

    it.live("a multi-event append is one TransactWriteItems", () =>
      instrumented(({ recorder }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(10), { expectedVersion: "noStream" })
          assert.deepStrictEqual(recorder.commands, ["TransactWriteItems"])
        })
      ))
  })

  describe("paging", () => {
    it.live("reads thousands of multi-KB events across DynamoDB's 1 MB pages in order, both ways", () =>
      instrumented(({ recorder }) =>
        Effect.gen(function*() {
          const id = streamId()
          const text = "k".repeat(2_000)
          const total = 2_500
          for (let v = 0; v < total; v += 100) {
            yield* Accounts.append(
              id,
              range(v + 1, v + 100).map((n): TestEvent => ({ _tag: "Note", text: `${n}:${text}` })),
              { expectedVersion: v }
            )
          }
          recorder.clear()
          let expected = 1
          let count = 0
          yield* Stream.runForEach(Accounts.read(id), (e) =>
            Effect.sync(() => {
              assert.strictEqual(e.version, expected++)
              assert.isTrue((e.payload as { text: string }).text.startsWith(`${e.version}:`))
              count++
            }))
          assert.strictEqual(count, total)
          assert.isAtLeast(recorder.count("Query"), 5, "about 5 MB of events span several 1 MB pages")
          const backward = yield* Stream.runCollect(Accounts.read(id, { direction: "backward" }).pipe(Stream.map((e) => e.version)))
          assert.deepStrictEqual(backward, range(1, total).reverse())
          const last = yield* Accounts.readLast(id, 600)
          assert.deepStrictEqual(last.map((e) => e.version), range(total - 599, total))
        })
      ))
  })

  describe("stored data that does not decode", () => {
    it.live("items with missing attributes or bad JSON are CorruptedEventErrors naming stream and version", () =>
      instrumented(({ sdk, tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(1), { expectedVersion: "noStream" })
          const put = (item: Record<string, any>) => Effect.promise(() => sdk.send(new PutItemCommand({ TableName: tableName, Item: item })))
          yield* put({ s: { S: id }, v: { N: "2" }, i: { S: "x" }, y: { S: "Deposited" }, d: { S: "{not json" }, t: { N: "1" } })
          const e1 = fail(yield* Effect.exit(Stream.runCollect(Accounts.read(id))))
          assert.deepInclude(e1, { _tag: "CorruptedEventError", streamId: id, version: 2 })
          assert.match(e1.message, /not valid JSON/)
          // The first event is still readable on its own.
          assert.strictEqual((yield* Stream.runCollect(Accounts.read(id, { to: 1 }))).length, 1)

          const other = streamId()
          yield* put({ s: { S: other }, v: { N: "1" }, i: { S: "x" }, y: { S: "Deposited" }, t: { N: "1" } })
          const e2 = fail(yield* Effect.exit(Accounts.readLast(other, 1)))
          assert.deepInclude(e2, { _tag: "CorruptedEventError", streamId: other, version: 1 })
          assert.match(e2.message, /payload is missing/)

          const third = streamId()
          yield* put({ s: { S: third }, v: { N: "1" }, i: { S: "x" }, y: { S: "Deposited" }, d: { S: "{}" }, t: { S: "yesterday" } })
          const e3 = fail(yield* Effect.exit(Stream.runCollect(Accounts.read(third))))
          assert.deepInclude(e3, { _tag: "CorruptedEventError", version: 1 })
        })
      ))
  })

  describe("failures and retries (fault injection around the real client)", () => {
    it.live("a PutItem whose response was lost is retried and not appended twice", () =>
      instrumented(({ recorder, setFault, sdk, tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, deposits(1), { expectedVersion: "noStream" })
          let lost = 0
          setFault(async (command, _input, proceed) => {
            if (command === "PutItem" && lost++ === 0) {
              await proceed() // DynamoDB applied the write...
              throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }) // ...but the response was lost
            }
            return proceed()
          })
          const result = yield* Accounts.append(id, [deposit(2)], { expectedVersion: 1 })
          assert.strictEqual(result.version, 2)
          assert.strictEqual(recorder.count("PutItem"), 3, "the first append, the lost one, the retry")
          setFault(undefined)
          const all = yield* Stream.runCollect(Accounts.read(id))
          assert.deepStrictEqual(all.map((e) => e.version), [1, 2])
          const item = yield* Effect.promise(() =>
            sdk.send(new GetItemCommand({ TableName: tableName, Key: { s: { S: id }, v: { N: "3" } }, ConsistentRead: true }))
          )
          assert.isUndefined(item.Item, "no second copy at version 3")
        })
      ))

    it.live("a TransactWriteItems whose response was lost is retried and not appended twice", () =>
      instrumented(({ setFault }) =>
        Effect.gen(function*() {
          const id = streamId()
          let lost = 0
          setFault(async (command, _input, proceed) => {
            if (command === "TransactWriteItems" && lost++ === 0) {
              await proceed()
              throw Object.assign(new Error("timed out"), { name: "TimeoutError" })
            }
            return proceed()
          })
          const result = yield* Accounts.append(id, deposits(5), { expectedVersion: "noStream" })
          assert.strictEqual(result.version, 5)
          assert.strictEqual(lost, 2)
          setFault(undefined)
          assert.deepStrictEqual((yield* Stream.runCollect(Accounts.read(id))).map((e) => e.version), range(1, 5))
        })
      ))

    it.live("a ClientRequestToken is reused only by retries of the very same transaction", () =>
      instrumented(({ setFault }) =>
        Effect.gen(function*() {
          const id = streamId()
          const seen = new Map<string, string>()
          let reused = 0
          let lost = false
          setFault(async (command, input, proceed) => {
            if (command !== "TransactWriteItems") return proceed()
            const body = JSON.stringify(input.TransactItems.map((t: any) => [t.Put.Item.v.N, t.Put.Item.i.S]))
            const previous = seen.get(input.ClientRequestToken)
            if (previous !== undefined) {
              reused++
              assert.strictEqual(previous, body, "a token was reused for a different request")
            }
            seen.set(input.ClientRequestToken, body)
            if (!lost) {
              // The first transaction that DynamoDB accepts loses its response.
              await proceed()
              lost = true
              throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })
            }
            return proceed()
          })
          // Contention: every "any" append that loses retries at another version.
          yield* Effect.forEach(range(1, 8), (n) => Accounts.append(id, deposits(2, n * 10), { expectedVersion: "any" }), {
            concurrency: "unbounded",
            discard: true
          })
          // Reuse is right only for a retry of the identical request (checked on every reuse above);
          // under load a retry may itself be retried, so at least the one after the lost response.
          assert.isAtLeast(reused, 1, "the retry after the lost response reuses its token")
          assert.isAbove(seen.size, 8, "losers retried with new tokens")
          assert.deepStrictEqual((yield* Stream.runCollect(Accounts.read(id))).map((e) => e.version), range(1, 16))
        })
      ))

    it.live("throttling and transaction conflicts are retried with backoff", () =>
      instrumented(({ recorder, setFault }) =>
        Effect.gen(function*() {
          const id = streamId()
          let throttles = 0
          setFault(async (command, _input, proceed) => {
            if (command === "PutItem" && throttles < 2) {
              throttles++
              throw sdkError("ProvisionedThroughputExceededException")
            }
            if (command === "TransactWriteItems" && throttles < 3) {
              throttles++
              throw sdkError("TransactionCanceledException", "Transaction cancelled", {
                CancellationReasons: [{ Code: "TransactionConflict" }, { Code: "None" }]
              })
            }
            return proceed()
          })
          yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
          assert.strictEqual(recorder.count("PutItem"), 3)
          yield* Accounts.append(id, deposits(2), { expectedVersion: 1 })
          assert.strictEqual(recorder.count("TransactWriteItems"), 2)
          assert.deepStrictEqual((yield* Stream.runCollect(Accounts.read(id))).map((e) => e.version), [1, 2, 3])
        })
      ))

    it.live("non-retryable failures are classified, not retried, and write nothing", () =>
      instrumented(({ recorder, setFault }) =>
        Effect.gen(function*() {
          const id = streamId()
          setFault(async (command, _input, proceed) =>
            command === "PutItem" ? Promise.reject(sdkError("AccessDeniedException", "not authorized")) : proceed()
          )
          const e = fail(yield* Effect.exit(Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })))
          assert.deepInclude(e, { _tag: "StorageError", operation: "PutItem", reason: "AccessDenied" })
          assert.isFalse((e as { isRetryable: boolean }).isRetryable)
          assert.match(e.message, /IAM/)
          assert.strictEqual(recorder.count("PutItem"), 1)
          setFault(undefined)
          assert.strictEqual(yield* Accounts.version(id), 0)
        })
      ))

    it.live("an interrupted read ends at once, whatever its request is doing, and the store reads on", () =>
      instrumented(({ recorder, setFault }) =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const id = streamId()
          yield* Accounts.append(id, deposits(3), { expectedVersion: "noStream" })
          // The Query is held in flight until the test releases it, after the interruption.
          const inFlight = Promise.withResolvers<void>()
          const release = Promise.withResolvers<void>()
          setFault(async (command, _input, proceed) => {
            if (command !== "Query") return proceed()
            inFlight.resolve()
            await release.promise
            return proceed()
          })
          const reader = yield* Effect.forkChild(Stream.runCollect(store.read(id)))
          yield* Effect.promise(() => inFlight.promise)
          // Returns once the reader has ended: it does not wait for the held request.
          yield* Fiber.interrupt(reader)
          assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(reader)))
          setFault(undefined)
          release.resolve()
          assert.deepStrictEqual((yield* Stream.runCollect(Accounts.read(id))).map((e) => e.version), [1, 2, 3])
          assert.deepStrictEqual(recorder.commands.filter((c) => c === "Query").length, 2)
        })
      ))

    it.live("retries give up after the schedule and report the last failure", () =>
      instrumented(({ recorder, setFault }) =>
        Effect.gen(function*() {
          setFault(async () => Promise.reject(sdkError("ThrottlingException", "slow down")))
          const e = fail(yield* Effect.exit(Accounts.version(streamId())))
          assert.deepInclude(e, { _tag: "StorageError", operation: "Query", reason: "Throttled" })
          assert.strictEqual(recorder.count("Query"), 5, "1 attempt + 4 retries")
        })
      ))

    it.live("a missing table is a ResourceNotFound StorageError that says what to do", () =>
      Effect.gen(function*() {
        const store = yield* DynamoEventStore.make({ tableName: "no_such_table_here" })
        const e = fail(yield* Effect.exit(store.version("x")))
        assert.deepInclude(e, { _tag: "StorageError", reason: "ResourceNotFound", resource: "no_such_table_here" })
        assert.match(e.message, /ensureTables/)
      }).pipe(Effect.provide(client)))
  })

  describe("TTL", () => {
    it.live("events carry their expiry in attribute x (epoch seconds) and the table has TTL enabled", () =>
      instrumented(({ sdk, tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          const [event] = (yield* Accounts.append(id, [EventStore.withOptions(deposit(1), { ttl: "2 hours" })], {
            expectedVersion: "noStream"
          })).events
          const item = yield* Effect.promise(() =>
            sdk.send(new GetItemCommand({ TableName: tableName, Key: { s: { S: id }, v: { N: "1" } }, ConsistentRead: true }))
          )
          const x = Number(item.Item?.x?.N)
          assert.isTrue(Number.isInteger(x))
          assert.approximately(x - Math.floor(Date.now() / 1000), 7_200, 60)
          assert.isDefined(event!.expiresAt)
          const ttl = yield* Effect.promise(() => sdk.send(new DescribeTimeToLiveCommand({ TableName: tableName })))
          assert.deepInclude(ttl.TimeToLiveDescription, { AttributeName: "x", TimeToLiveStatus: "ENABLED" })
        })
      ))
  })

  describe("tables", () => {
    it.live("ensureTables creates once, leaves existing tables alone and refuses a mismatching key schema", () =>
      Effect.gen(function*() {
        const name = Fixtures.uniqueTableName("ensure")
        const created = yield* Tables.ensureTables([Tables.eventsTable(name)])
        assert.deepStrictEqual(created, [name])
        assert.deepStrictEqual(yield* Tables.ensureTables([Tables.eventsTable(name)]), [])
        const wrong: Tables.TableDefinition = {
          create: {
            ...Tables.eventsTable(name).create,
            AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
            KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }]
          }
        }
        const e = fail(yield* Effect.exit(Tables.ensureTables([wrong])))
        assert.deepInclude(e, { _tag: "TableMismatchError", tableName: name })
        yield* Tables.deleteTables([name])
        assert.deepStrictEqual(yield* Tables.ensureTables([Tables.eventsTable(name)]), [name])
        yield* Tables.deleteTables([name, name])
      }).pipe(Effect.provide(client)))

    it.live("ensureTables waits until a new table is ACTIVE", () =>
      Effect.gen(function*() {
        const tools = instrumentedClient(yield* DynamoDBLocal.DynamoDBLocal)
        let creating = 0
        tools.setFault(async (command, _input, proceed) => {
          const result = await proceed()
          // AWS answers CREATING for a while after CreateTable; DynamoDB Local never does.
          if (command === "DescribeTable" && creating < 3 && result.output.Table) {
            creating++
            result.output.Table.TableStatus = "CREATING"
          }
          return result
        })
        const name = Fixtures.uniqueTableName("wait")
        yield* Tables.ensureTables([Tables.eventsTable(name)]).pipe(Effect.provide(DynamoClient.layer({ client: tools.sdk })))
        assert.strictEqual(creating, 3)
        assert.strictEqual(tools.recorder.count("DescribeTable"), 5, "one before creating, then until ACTIVE")
        yield* Tables.deleteTables([name]).pipe(Effect.provide(client))
      }).pipe(Effect.provide(local)))

    it.live("the layer creates its table when it does not exist", () =>
      Effect.gen(function*() {
        const name = Fixtures.uniqueTableName("layer")
        yield* Accounts.append("s", [deposit(1)], { expectedVersion: "noStream" }).pipe(
          Effect.provide(DynamoEventStore.layer({ tableName: name }))
        )
        yield* Accounts.append("s", [deposit(2)], { expectedVersion: 1 }).pipe(
          Effect.provide(DynamoEventStore.layer({ tableName: name }))
        )
        yield* Tables.deleteTables([name])
      }).pipe(Effect.provide(client)))

    it("prints CloudFormation for the tables", () => {
      const cfn = Tables.cloudFormation([Tables.eventsTable("my-events")]) as Record<string, any>
      const table = cfn["myeventsTable"]
      assert.strictEqual(table.Type, "AWS::DynamoDB::Table")
      assert.deepStrictEqual(table.Properties.KeySchema, [
        { AttributeName: "s", KeyType: "HASH" },
        { AttributeName: "v", KeyType: "RANGE" }
      ])
      assert.deepStrictEqual(table.Properties.TimeToLiveSpecification, { AttributeName: "x", Enabled: true })
      assert.strictEqual(table.Properties.BillingMode, "PAY_PER_REQUEST")
    })
  })
})


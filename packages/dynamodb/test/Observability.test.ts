/**
 * Every request observable: each DynamoDB request is a span under the event store
 * operation's span, and the metrics of `Metrics` (core) say what it cost. Each test runs
 * with a fresh `Metric.MetricRegistry`, so its counts are exact whatever else runs.
 */
import { DynamoDBClient, ListTablesCommand, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Aggregate, EventStore, Metrics, ReadModel } from "@dynamo-es/core"
import { Accounts, streamId, TestEvent } from "@dynamo-es/core/testing/EventStoreConformance"
import { failure } from "@dynamo-es/core/testing/utils"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Context, Effect, Exit, Layer, Metric, Option, Schedule, Schema, Stream, Tracer } from "effect"
import { DynamoClient, DynamoEventStore, DynamoReadModelStore, Tables } from "../src/index.js"
import { instrumentedClient, sdkError } from "./helpers.js"

const local = DynamoDBLocal.layer()

const deposit = (amount: number): TestEvent => ({ _tag: "Deposited", amount })

/** An aggregate over the test events: the sum of the deposits; a command deposits its amount. */
const Balance = Aggregate.make({
  events: TestEvent,
  initialState: 0,
  evolve: (balance: number, e: TestEvent) => (e._tag === "Deposited" ? balance + e.amount : balance),
  decide: (amount: number): ReadonlyArray<TestEvent> => [deposit(amount)]
})

/** Retries 4 times, 5 ms apart: fault tests stay fast. */
const quickRetries = Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 4 }))

/**
 * A store on a fresh table, through an SDK client that records requests and injects
 * faults, with a fresh metric registry (and `tracer`, when given) around the body.
 */
const observed = <A, E>(
  body: (
    tools: ReturnType<typeof instrumentedClient> & { readonly tableName: string }
  ) => Effect.Effect<A, E, EventStore.EventStore | DynamoClient.DynamoClient>,
  tracer?: Tracer.Tracer
) =>
  Effect.gen(function*() {
    const connection = yield* DynamoDBLocal.DynamoDBLocal
    const tools = instrumentedClient(connection)
    const tableName = Fixtures.uniqueTableName("observed")
    const clientLayer = DynamoClient.layer({ client: tools.sdk, retrySchedule: quickRetries })
    const storeLayer = Layer.unwrap(
      Fixtures.scopedTable(Tables.eventsTable(tableName)).pipe(
        Effect.as(DynamoEventStore.layerExisting({ tableName }))
      )
    )
    return yield* Effect.gen(function*() {
      tools.recorder.clear()
      const run = body({ ...tools, tableName }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
      return yield* (tracer === undefined ? run : Effect.withTracer(run, tracer))
    }).pipe(Effect.provide(Layer.provideMerge(storeLayer, clientLayer)))
  }).pipe(Effect.provide(local))

/** A tracer that keeps every span it makes. */
const collectingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { tracer, spans, named: (name: string) => spans.filter((s) => s.name === name) }
}

const parentOf = (span: Tracer.Span) => Option.getOrUndefined(span.parent)

describe("Observability", { timeout: 120_000 }, () => {
  describe("metrics", () => {
    it.live("an append and a read, read from the metrics: requests by command, WCU and RCU by table", () =>
      observed(({ recorder, tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
          yield* Accounts.append(id, [deposit(2)], { expectedVersion: 1 })
          // A single-event append with a proven version: one PutItem of 1 WCU, nothing else.
          assert.strictEqual(yield* Metrics.total(Metrics.requests, { command: "PutItem", table: tableName }), 2)
          assert.strictEqual(yield* Metrics.total(Metrics.consumedWriteUnits, { table: tableName }), 2)
          assert.strictEqual(yield* Metrics.total(Metrics.consumedReadUnits, { table: tableName }), 0)

          const events = yield* Stream.runCollect(Accounts.read(id))
          assert.strictEqual(events.length, 2)
          assert.strictEqual(yield* Metrics.total(Metrics.requests, { command: "Query", table: tableName }), 1)
          // What DynamoDB reported for the Query (the SDK middleware saw it too).
          const queryRcu = recorder.capacity.filter((c) => c.command === "Query").reduce((sum, c) => sum + c.read, 0)
          assert.isAbove(queryRcu, 0)
          assert.strictEqual(yield* Metrics.total(Metrics.consumedReadUnits, { table: tableName }), queryRcu)

          // Every request the SDK sent is counted, once, under its command.
          assert.strictEqual(yield* Metrics.total(Metrics.requests, { table: tableName }), recorder.commands.length)
          assert.strictEqual(yield* Metrics.total(Metrics.retries), 0)
          assert.strictEqual(yield* Metrics.total(Metrics.throttles), 0)
          // The same series through Effect's own API.
          const puts = yield* Metric.value(Metric.withAttributes(Metrics.requests, { command: "PutItem", table: tableName }))
          assert.strictEqual(puts.count, 2)
          const duration = yield* Metric.value(
            Metric.withAttributes(Metrics.requestDuration, { command: "PutItem", table: tableName })
          )
          assert.strictEqual(duration.count, 2)
          // Metrics.snapshot: every dynamo-es series, e.g. to print what the work cost.
          const ids = new Set((yield* Metrics.snapshot).map((s) => s.id))
          assert.includeMembers([...ids], [
            "dynamo_es_requests_total",
            "dynamo_es_consumed_write_units_total",
            "dynamo_es_consumed_read_units_total",
            "dynamo_es_request_duration_ms"
          ])
        })
      ))

    it.live("a multi-event append and a bare expected version: one TransactWriteItems, one Query then one PutItem", () =>
      observed(({ recorder, tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [deposit(1), deposit(2), deposit(3)], { expectedVersion: "noStream" })
          const fresh = yield* DynamoEventStore.make({ tableName })
          yield* fresh.append(id, [{ type: "Deposited", payload: deposit(4) }], { expectedVersion: 3 })
          const count = (command: string) => Metrics.total(Metrics.requests, { command, table: tableName })
          assert.deepStrictEqual(
            [yield* count("TransactWriteItems"), yield* count("Query"), yield* count("PutItem")],
            [1, 1, 1]
          )
          const reportedWrite = recorder.capacity.reduce((sum, c) => sum + c.write, 0)
          assert.strictEqual(yield* Metrics.total(Metrics.consumedWriteUnits, { table: tableName }), reportedWrite)
          assert.strictEqual(yield* Metrics.total(Metrics.consumedReadUnits, { table: tableName }), 1, "the Query: 1 RCU")
        })
      ))

    it.live("a throttled request that then succeeds counts its retries and throttles", () =>
      observed(({ recorder, setFault, tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          let throttled = 0
          setFault(async (command, _input, proceed) => {
            if (command === "PutItem" && throttled < 2) {
              throttled++
              throw sdkError("ProvisionedThroughputExceededException", "Rate exceeded")
            }
            return proceed()
          })
          const result = yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
          assert.strictEqual(result.version, 1)
          assert.deepStrictEqual(recorder.commands, ["PutItem", "PutItem", "PutItem"])
          const attributes = { command: "PutItem", table: tableName }
          assert.strictEqual(yield* Metrics.total(Metrics.requests, attributes), 3)
          assert.strictEqual(yield* Metrics.total(Metrics.retries, attributes), 2)
          assert.strictEqual(yield* Metrics.total(Metrics.throttles, attributes), 2)
          // Only the attempt that reached DynamoDB consumed capacity.
          assert.strictEqual(yield* Metrics.total(Metrics.consumedWriteUnits, { table: tableName }), 1)
        })
      ))

    it.live("a throttled request that keeps failing counts every attempt, and fails with StorageError Throttled", () =>
      observed(({ setFault, tableName }) =>
        Effect.gen(function*() {
          setFault(async (command, _input, proceed) => {
            if (command === "PutItem") throw sdkError("ThrottlingException")
            return proceed()
          })
          const e = failure(yield* Effect.exit(Accounts.append(streamId(), [deposit(1)], { expectedVersion: "noStream" })))
          assert.deepInclude(e, { _tag: "StorageError", reason: "Throttled" })
          const attributes = { command: "PutItem", table: tableName }
          assert.strictEqual(yield* Metrics.total(Metrics.requests, attributes), 5, "the first attempt and 4 retries")
          assert.strictEqual(yield* Metrics.total(Metrics.retries, attributes), 4)
          assert.strictEqual(yield* Metrics.total(Metrics.throttles, attributes), 5)
        })
      ))

    it.live("a ConflictError from append counts as a conflict of the append operation", () =>
      observed(() =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
          const e = failure(yield* Effect.exit(Accounts.append(id, [deposit(2)], { expectedVersion: "noStream" })))
          assert.deepInclude(e, { _tag: "ConflictError", actualVersion: 1 })
          failure(yield* Effect.exit(Accounts.append(id, [deposit(2)], { expectedVersion: 5 })))
          assert.strictEqual(yield* Metrics.total(Metrics.conflicts, { operation: "append" }), 2)
          // Successful appends are not conflicts.
          yield* Accounts.append(id, [deposit(2)], { expectedVersion: 1 })
          assert.strictEqual(yield* Metrics.total(Metrics.conflicts), 2)
        })
      ))
  })

  describe("spans", () => {
    it.live("each request is a client span under the event store operation's span, with command, table, capacity and attempt", () => {
      const { named, tracer } = collectingTracer()
      return observed(({ tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
          // A second store has not seen the stream: a bare expected version costs a Query first.
          const fresh = yield* DynamoEventStore.make({ tableName })
          yield* fresh.append(id, [{ type: "Deposited", payload: deposit(2) }], { expectedVersion: 1 }).pipe(
            Effect.withSpan("handler")
          )

          const [, append] = named("EventStore.append")
          assert.isDefined(append)
          assert.strictEqual(append!.attributes.get("dynamo_es.stream_id"), id)
          assert.strictEqual(append!.attributes.get("dynamo_es.event_count"), 1)
          assert.strictEqual(append!.attributes.get("dynamo_es.expected_version"), 1)
          assert.strictEqual(parentOf(append!)?.spanId, named("handler")[0]!.spanId, "the operation nests under the caller's span")
          assert.strictEqual(append!.status._tag, "Ended")

          const [, put] = named("DynamoDB.PutItem")
          const [query] = named("DynamoDB.Query")
          for (const request of [query!, put!]) {
            assert.strictEqual(parentOf(request)?.spanId, append!.spanId, `${request.name} is a child of EventStore.append`)
            assert.strictEqual(request.traceId, append!.traceId)
            assert.strictEqual(request.kind, "client")
            assert.strictEqual(request.status._tag, "Ended")
            assert.strictEqual(request.attributes.get("db.system"), "dynamodb")
            assert.deepStrictEqual(request.attributes.get("aws.dynamodb.table_names"), [tableName])
            assert.strictEqual(request.attributes.get("dynamo_es.attempt"), 1)
          }
          assert.strictEqual(query!.attributes.get("db.operation"), "Query")
          assert.strictEqual(query!.attributes.get("dynamo_es.consumed_read_units"), 1)
          assert.strictEqual(query!.attributes.get("dynamo_es.consumed_write_units"), 0)
          assert.strictEqual(put!.attributes.get("db.operation"), "PutItem")
          assert.strictEqual(put!.attributes.get("dynamo_es.consumed_write_units"), 1)
          assert.strictEqual(put!.attributes.get("dynamo_es.consumed_read_units"), 0)
        }), tracer)
    })

    it.live("read, readLast and version are spans too, with their requests under them", () => {
      const { named, tracer } = collectingTracer()
      return observed(() =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [deposit(1), deposit(2)], { expectedVersion: "noStream" })
          yield* Stream.runCollect(Accounts.read(id))
          yield* Accounts.readLast(id, 1)
          const store = yield* EventStore.EventStore
          yield* store.version(id)

          const write = named("DynamoDB.TransactWriteItems")[0]!
          assert.strictEqual(parentOf(write)?.spanId, named("EventStore.append")[0]!.spanId)
          const [read, readInReadLast] = named("EventStore.read")
          const readLast = named("EventStore.readLast")[0]!
          const version = named("EventStore.version")[0]!
          assert.strictEqual(read!.attributes.get("dynamo_es.stream_id"), id)
          assert.strictEqual(readLast.attributes.get("dynamo_es.count"), 1)
          assert.strictEqual(parentOf(readInReadLast!)?.spanId, readLast.spanId)
          const queries = named("DynamoDB.Query")
          assert.strictEqual(queries.length, 3)
          assert.deepStrictEqual(
            queries.map((q) => parentOf(q)?.spanId),
            [read!.spanId, readInReadLast!.spanId, version.spanId]
          )
        }), tracer)
    })

    it.live("a command: Aggregate.handle over Aggregate.load (EventStore.read, its Query) and EventStore.append (its PutItem)", () => {
      const { named, spans, tracer } = collectingTracer()
      return observed(() =>
        Effect.gen(function*() {
          const id = streamId()
          yield* Accounts.append(id, [deposit(1), deposit(2)], { expectedVersion: "noStream" })
          spans.length = 0
          const handled = yield* Balance.handle(id, 5)
          assert.strictEqual(handled.version, 3)
          assert.strictEqual(handled.state, 8)

          const handle = named("Aggregate.handle")[0]!
          const load = named("Aggregate.load")[0]!
          const read = named("EventStore.read")[0]!
          const append = named("EventStore.append")[0]!
          const [query] = named("DynamoDB.Query")
          const [put] = named("DynamoDB.PutItem")
          assert.deepStrictEqual(spans.map((s) => s.name).sort(), [
            "Aggregate.handle",
            "Aggregate.load",
            "DynamoDB.PutItem",
            "DynamoDB.Query",
            "EventStore.append",
            "EventStore.read"
          ])
          assert.strictEqual(handle.attributes.get("streamId"), id)
          assert.strictEqual(parentOf(load)?.spanId, handle.spanId)
          assert.strictEqual(parentOf(read)?.spanId, load.spanId)
          assert.strictEqual(read.attributes.get("dynamo_es.stream_id"), id)
          assert.strictEqual(parentOf(query!)?.spanId, read.spanId)
          assert.strictEqual(parentOf(append)?.spanId, handle.spanId)
          assert.strictEqual(parentOf(put!)?.spanId, append.spanId)
          for (const span of spans) assert.strictEqual(span.status._tag, "Ended", span.name)
        }), tracer)
    })

    it.live("ReadModel.findAll is a span covering the whole stream, with its Query under it", () => {
      const { named, tracer } = collectingTracer()
      const Thing = Schema.Struct({ id: Schema.String, n: Schema.Number })
      return observed(() =>
        Effect.scoped(Effect.gen(function*() {
          const tableName = Fixtures.uniqueTableName("observedrm")
          yield* Fixtures.scopedTable(Tables.readModelsTable(tableName))
          const store = yield* DynamoReadModelStore.make({ tableName })
          const things = yield* ReadModel.repository("things", Thing).pipe(Effect.provideService(ReadModel.ReadModelStore, store))
          yield* things.save({ id: "a", n: 1 })
          yield* things.save({ id: "b", n: 2 })
          const before = named("DynamoDB.Query").length

          /** The one span `spanName` of the repository, ended, with the one Query since `queriesBefore` under it. */
          const oneSpanOverOneQuery = (spanName: string, queriesBefore: number) => {
            const spans = named(spanName)
            assert.strictEqual(spans.length, 1, spanName)
            const span = spans[0]!
            assert.strictEqual(span.attributes.get("repository"), "things")
            assert.strictEqual(span.status._tag, "Ended")
            const queries = named("DynamoDB.Query").slice(queriesBefore)
            assert.strictEqual(queries.length, 1)
            assert.strictEqual(parentOf(queries[0]!)?.spanId, span.spanId)
            return queries[0]!
          }

          const all = yield* Stream.runCollect(things.findAll())
          assert.deepStrictEqual(all.map((t) => t.id), ["a", "b"])
          const query = oneSpanOverOneQuery("ReadModel.findAll", before)
          assert.deepStrictEqual(query.attributes.get("aws.dynamodb.table_names"), [tableName])

          // findBy on a field reads the partition under its own span, not a findAll one.
          assert.deepStrictEqual((yield* things.findBy({ n: 2 })).map((t) => t.id), ["b"])
          assert.strictEqual(named("ReadModel.findAll").length, 1)
          const findBy = named("ReadModel.findBy")[0]!
          assert.strictEqual(parentOf(named("DynamoDB.Query").at(-1)!)?.spanId, findBy.spanId)

          // The deferred repository's findAll is a span too, with its Query under it.
          const deferred = yield* ReadModel.deferred("things", Thing).pipe(Effect.provideService(ReadModel.ReadModelStore, store))
          yield* deferred.save({ id: "c", n: 3 })
          const beforeDeferred = named("DynamoDB.Query").length
          assert.deepStrictEqual((yield* Stream.runCollect(deferred.findAll())).map((t) => t.id), ["a", "b", "c"])
          oneSpanOverOneQuery("ReadModel.deferred.findAll", beforeDeferred)
        })), tracer)
    })

    it.live("without a tracer no span is made, and the metrics are recorded all the same", () =>
      observed(({ tableName }) =>
        Effect.gen(function*() {
          const id = streamId()
          let current: Option.Option<Tracer.AnySpan> = Option.none()
          const Spy = Aggregate.make({
            ...Balance.definition,
            decide: () => Effect.map(Effect.option(Effect.currentSpan), (span) => {
              current = span
              return [] as ReadonlyArray<TestEvent>
            })
          })
          yield* Spy.handle(id, 1)
          assert.isTrue(Option.isNone(current), "no Aggregate.handle or Aggregate.load span around decide")
          yield* Balance.handle(id, 5)
          assert.strictEqual(yield* Metrics.total(Metrics.requests, { command: "Query", table: tableName }), 2)
          assert.strictEqual(yield* Metrics.total(Metrics.requests, { command: "PutItem", table: tableName }), 1)
        })
      ))

    it.live("a throttled-then-successful request is one span per attempt under the operation's span; a failed one says why", () => {
      const { named, tracer } = collectingTracer()
      return observed(({ setFault, tableName }) =>
        Effect.gen(function*() {
          let throttled = 0
          setFault(async (command, _input, proceed) => {
            if (command === "PutItem" && throttled < 2) {
              throttled++
              throw sdkError("ProvisionedThroughputExceededException")
            }
            return proceed()
          })
          const id = streamId()
          yield* Accounts.append(id, [deposit(1)], { expectedVersion: "noStream" })
          const append = named("EventStore.append")[0]!
          const puts = named("DynamoDB.PutItem")
          assert.deepStrictEqual(puts.map((s) => s.attributes.get("dynamo_es.attempt")), [1, 2, 3])
          for (const put of puts) {
            assert.strictEqual(parentOf(put)?.spanId, append.spanId, "every attempt is a child of EventStore.append")
            assert.strictEqual(put.kind, "client")
            assert.strictEqual(put.attributes.get("db.operation"), "PutItem")
            assert.deepStrictEqual(put.attributes.get("aws.dynamodb.table_names"), [tableName])
            assert.strictEqual(put.status._tag, "Ended")
          }
          const [first, second, third] = puts
          for (const failed of [first!, second!]) {
            assert.strictEqual(failed.attributes.get("error.type"), "ProvisionedThroughputExceededException")
            assert.isTrue(failed.status._tag === "Ended" && Exit.isFailure(failed.status.exit))
            assert.isFalse(failed.attributes.has("dynamo_es.consumed_write_units"), "a throttled attempt reports no capacity")
          }
          assert.isFalse(third!.attributes.has("error.type"))
          assert.isTrue(third!.status._tag === "Ended" && Exit.isSuccess(third!.status.exit))
          assert.strictEqual(third!.attributes.get("dynamo_es.consumed_write_units"), 1)
          assert.strictEqual(third!.attributes.get("dynamo_es.consumed_read_units"), 0)
          // The attempts follow each other: each one starts after the previous one ended (the backoff is between them).
          for (let i = 1; i < puts.length; i++) {
            const previous = puts[i - 1]!.status
            assert.isTrue(previous._tag === "Ended" && previous.endTime <= puts[i]!.status.startTime)
          }
          assert.isTrue(append.status._tag === "Ended" && Exit.isSuccess(append.status.exit))

          // A conditional write that finds the version taken: one attempt, its span ends failed, with the cause.
          yield* Effect.exit(Accounts.append(id, [deposit(2)], { expectedVersion: 0 }))
          const taken = named("DynamoDB.PutItem")[3]!
          assert.strictEqual(named("DynamoDB.PutItem").length, 4, "a failed condition is never retried")
          assert.strictEqual(taken.attributes.get("dynamo_es.attempt"), 1)
          assert.strictEqual(taken.attributes.get("error.type"), "ConditionalCheckFailedException")
          assert.isTrue(taken.status._tag === "Ended" && Exit.isFailure(taken.status.exit))
        }), tracer)
    })
  })

  describe("the SDK client's logger", () => {
    it.live("the client the layer builds skips the SDK's no-op logging; a logger of yours still gets every response", () =>
      Effect.gen(function*() {
        const clientOf = (options: Parameters<typeof Fixtures.layerClientFor>[0]) =>
          Layer.build(Fixtures.layerClientFor(options)).pipe(Effect.map(Context.get(DynamoClient.DynamoClient)))
        const logged: Array<{ readonly commandName?: string; readonly output?: { readonly TableNames?: unknown } }> = []
        const logger = {
          trace: () => {},
          debug: () => {},
          info: (entry: (typeof logged)[number]) => void logged.push(entry),
          warn: () => {},
          error: () => {}
        }
        const middlewareOf = (client: DynamoClient.DynamoClientShape) =>
          client.sdk.middlewareStack.identify().map((m) => m.split(" ")[0])

        const own = yield* clientOf({})
        assert.notInclude(middlewareOf(own), "loggerMiddleware")
        // Requests work as before without it.
        const tables = yield* DynamoClient.unconditional(own.call("ListTables", undefined, (c) => c.send(new ListTablesCommand({ Limit: 1 }))))
        assert.isArray(tables.TableNames)

        const withLogger = yield* clientOf({ sdkConfig: { logger } })
        assert.include(middlewareOf(withLogger), "loggerMiddleware")
        yield* DynamoClient.unconditional(withLogger.call("ListTables", undefined, (c) => c.send(new ListTablesCommand({ Limit: 1 }))))
        assert.strictEqual(logged.length, 1)
        assert.strictEqual(logged[0]!.commandName, "ListTablesCommand")
        assert.isArray(logged[0]!.output?.TableNames)
      }).pipe(Effect.scoped, Effect.provide(local), Effect.provideService(Metric.MetricRegistry, new Map())))

    it.live("a client you pass in is left as it is", () =>
      Effect.gen(function*() {
        const connection = yield* DynamoDBLocal.DynamoDBLocal
        const sdk = new DynamoDBClient(Fixtures.sdkConfig(connection))
        yield* Layer.build(DynamoClient.layer({ client: sdk }))
        assert.include(sdk.middlewareStack.identify().map((m) => m.split(" ")[0]), "loggerMiddleware")
        sdk.destroy()
      }).pipe(Effect.scoped, Effect.provide(local)))
  })

  describe("the SDK client's own retries", () => {
    /** Counts the SDK's HTTP attempts (below its retry middleware) and throttles each of them. */
    const throttleEveryHttpAttempt = (sdk: DynamoDBClient) => {
      const sent = { count: 0 }
      sdk.middlewareStack.add(
        () => async () => {
          sent.count++
          throw sdkError("ThrottlingException", "Rate exceeded", { $retryable: { throttling: true } })
        },
        { step: "deserialize", name: "dynamo-es-test-throttle-every-attempt" }
      )
      return sent
    }

    const defect = (exit: Exit.Exit<unknown, unknown>): string => {
      assert.isTrue(Exit.isFailure(exit), "expected the client to be refused")
      const die = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Die") : undefined
      assert.isDefined(die, `expected a defect, got ${Exit.isFailure(exit) ? String(exit.cause) : "success"}`)
      return die !== undefined && die._tag === "Die" ? String((die.defect as Error).message) : ""
    }

    it.live("a client with the SDK's own retries (its default, or maxAttempts 3) is refused, with what to do", () =>
      Effect.gen(function*() {
        const connection = yield* DynamoDBLocal.DynamoDBLocal
        const { maxAttempts: _, ...withDefaults } = Fixtures.sdkConfig(connection)
        for (const explicit of [undefined, 3]) {
          const sdk = new DynamoDBClient(explicit === undefined ? withDefaults : { ...withDefaults, maxAttempts: explicit })
          const sent = throttleEveryHttpAttempt(sdk)
          // What the refusal prevents: this client alone sends a throttled request several
          // times (DynamoDB's default: 4), and would do so under every attempt of the schedule.
          yield* Effect.exit(Effect.tryPromise(() => sdk.send(new PutItemCommand({ TableName: "t", Item: { s: { S: "x" } } }))))
          const perCall = sent.count
          assert.isAtLeast(perCall, 3)
          if (explicit !== undefined) assert.strictEqual(perCall, explicit)
          const message = defect(yield* Effect.exit(Effect.scoped(Layer.build(DynamoClient.layer({ client: sdk })))))
          assert.include(message, `maxAttempts ${perCall}`)
          assert.include(message, "maxAttempts: 1")
          assert.strictEqual(sent.count, perCall, "nothing is sent through a refused client")
          sdk.destroy()
        }
        // Our own client with sdkConfig that turns SDK retries back on is refused the same way.
        const message = defect(
          yield* Effect.exit(Effect.scoped(Layer.build(Fixtures.layerClientFor({ sdkConfig: { maxAttempts: 2 } }))))
        )
        assert.include(message, "sdkConfig")
        assert.include(message, "maxAttempts 2")
      }).pipe(Effect.provide(local)))

    it.live("with maxAttempts 1 every attempt of the retry schedule is exactly one request", () =>
      Effect.gen(function*() {
        const connection = yield* DynamoDBLocal.DynamoDBLocal
        const sdk = new DynamoDBClient(Fixtures.sdkConfig(connection))
        const sent = throttleEveryHttpAttempt(sdk)
        const exit = yield* Effect.gen(function*() {
          const client = yield* DynamoClient.DynamoClient
          return yield* Effect.exit(
            client.call("PutItem", "t", (c) => c.send(new PutItemCommand({ TableName: "t", Item: { s: { S: "x" } } })))
          )
        }).pipe(
          Effect.provide(DynamoClient.layer({ client: sdk, retrySchedule: quickRetries })),
          Effect.provideService(Metric.MetricRegistry, new Map())
        )
        assert.deepInclude(failure(exit), { _tag: "StorageError", reason: "Throttled" })
        assert.strictEqual(sent.count, 5, "the first attempt and 4 retries, one HTTP request each")
        sdk.destroy()
      }).pipe(Effect.provide(local)))
  })
})

/**
 * Projections straight from the events table's stream (real records from DynamoDB Local's
 * stream, in the Lambda event format), onto a DynamoDB read-models table.
 */
import { PutItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, layer } from "@effect/vitest"
import { EventStore, Projection, ReadModel } from "@dynamo-es/core"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer, Option, Schema, Stream } from "effect"
import { DynamoEventStore, DynamoProjection, DynamoReadModelStore, type DynamoStreams, Tables } from "../src/index.js"
import { readWholeStream, streamClients } from "./streamHelpers.js"

const setup = Layer.provideMerge(Fixtures.layerClientFor(), DynamoDBLocal.layer())

const asLambda = (records: ReadonlyArray<unknown>, arn: string): DynamoStreams.LambdaStreamEvent => ({
  Records: JSON.parse(JSON.stringify(records)).map((r: object) => ({ ...r, eventSourceARN: arn, awsRegion: "us-east-1" }))
})

const Deposited = Schema.Struct({ amount: Schema.Number })
const Balance = Schema.Struct({ id: Schema.String, balance: Schema.Number, versions: Schema.Array(Schema.Number) })

/** A row per stream; not idempotent (a second application adds again). */
const balances = (poison?: (streamId: string, version: number) => boolean) =>
  Projection.make({
    name: "balances",
    events: Deposited,
    readModels: { balances: Projection.readModel("balances", Balance) },
    handle: (event, { balances }) =>
      Effect.gen(function*() {
        if (poison?.(event.streamId, event.version) === true) return yield* Effect.fail(new Error("poison"))
        const current = Option.getOrElse(yield* balances.find(event.streamId), () => ({ id: event.streamId, balance: 0, versions: [] }))
        yield* balances.save({ id: event.streamId, balance: current.balance + event.payload.amount, versions: [...current.versions, event.version] })
      })
  })

describe("DynamoProjection", () => {
  layer(setup, { timeout: 60_000, excludeTestServices: true })((it) => {
    /** Events in two streams, their Lambda event, and a read-model store on a fresh table. */
    const fixture = Effect.gen(function*() {
      const eventsTable = yield* Fixtures.scopedTable(Tables.eventsTable(Fixtures.uniqueTableName("events")))
      const { raw, streams } = yield* streamClients
      const readModelsTable = yield* Fixtures.scopedTable(DynamoReadModelStore.readModelsTable(Fixtures.uniqueTableName("rm")))
      const store = yield* DynamoReadModelStore.make({ tableName: readModelsTable })
      yield* Effect.gen(function*() {
        const events = yield* EventStore.EventStore
        yield* events.append("acc-1", [1, 2, 3].map((n) => ({ type: "Deposited", payload: { amount: n } })), { expectedVersion: "noStream" })
        yield* events.append("acc-2", [10, 20].map((n) => ({ type: "Deposited", payload: { amount: n } })), { expectedVersion: "noStream" })
        yield* events.append("acc-1", [{ type: "Deposited", payload: { amount: 4 } }], { expectedVersion: 3 })
      }).pipe(Effect.provide(DynamoEventStore.layerExisting({ tableName: eventsTable })))
      const { arn, records } = yield* readWholeStream(streams, raw, eventsTable)
      const rows = Effect.flatMap(store.create("balances", Balance), (repo) => Stream.runCollect(repo.findAll()))
      return { event: asLambda(records, arn), records, store, rows, raw, eventsTable }
    })

    it.effect("applies the records in order, and a redelivered batch changes nothing (guarded by stream version)", () =>
      Effect.gen(function*() {
        const f = yield* fixture
        const handle = DynamoProjection.handleStreamEvent(balances(), f.event).pipe(Effect.provideService(ReadModel.ReadModelStore, f.store))
        assert.deepStrictEqual(yield* handle, { batchItemFailures: [] })
        const expected = [
          { id: "acc-1", balance: 10, versions: [1, 2, 3, 4] },
          { id: "acc-2", balance: 30, versions: [1, 2] }
        ]
        assert.deepStrictEqual(yield* f.rows, expected)
        assert.deepStrictEqual(yield* handle, { batchItemFailures: [] })
        assert.deepStrictEqual(yield* f.rows, expected, "a redelivery is not applied twice")
      }))

    it.effect("a handler failure reports that record and every one after it; what came before is written; the retry completes", () =>
      Effect.gen(function*() {
        const f = yield* fixture
        const provide = Effect.provideService(ReadModel.ReadModelStore, f.store)
        const seq = f.event.Records.map((r) => r.dynamodb!.SequenceNumber!)
        // Records: acc-1 v1..3, acc-2 v1..2, acc-1 v4. Fail on acc-2 v2 (the fifth).
        const failed = yield* DynamoProjection.handleStreamEvent(balances((s, v) => s === "acc-2" && v === 2), f.event).pipe(provide)
        assert.deepStrictEqual(failed.batchItemFailures.map((x) => x.itemIdentifier), seq.slice(4))
        assert.deepStrictEqual(yield* f.rows, [
          { id: "acc-1", balance: 6, versions: [1, 2, 3] },
          { id: "acc-2", balance: 10, versions: [1] }
        ])
        // Lambda retries from the first reported record (with the bug fixed).
        const retried = yield* DynamoProjection.handleStreamEvent(balances(), { Records: f.event.Records.slice(4) }).pipe(provide)
        assert.deepStrictEqual(retried, { batchItemFailures: [] })
        assert.deepStrictEqual(yield* f.rows, [
          { id: "acc-1", balance: 10, versions: [1, 2, 3, 4] },
          { id: "acc-2", balance: 30, versions: [1, 2] }
        ])
      }))

    it.effect("transactional: a row fed by several streams gets every record once, across redeliveries of the batch and of its tail", () =>
      Effect.gen(function*() {
        const f = yield* fixture
        const Total = Schema.Struct({ id: Schema.String, sum: Schema.Number, records: Schema.Number })
        // Not idempotent, and one row for every stream: the stream version cannot guard it.
        const total = Projection.make({
          name: "total",
          events: Deposited,
          readModels: { totals: Projection.readModel("totals", Total) },
          handle: (event, { totals }) =>
            Effect.gen(function*() {
              const t = Option.getOrElse(yield* totals.find("all"), () => ({ id: "all", sum: 0, records: 0 }))
              yield* totals.save({ id: "all", sum: t.sum + event.payload.amount, records: t.records + 1 })
            })
        })
        const handle = (records: DynamoStreams.LambdaStreamEvent["Records"]) =>
          DynamoProjection.handleStreamEvent(total, { Records: records }, { mode: "transactional" }).pipe(
            Effect.provideService(ReadModel.ReadModelStore, f.store)
          )
        const rows = Effect.flatMap(f.store.create("totals", Total), (repo) => Stream.runCollect(repo.findAll()))
        assert.deepStrictEqual(yield* handle(f.event.Records.slice(0, 4)), { batchItemFailures: [] })
        assert.deepStrictEqual(yield* handle(f.event.Records), { batchItemFailures: [] })
        assert.deepStrictEqual(yield* handle(f.event.Records.slice(2)), { batchItemFailures: [] })
        assert.deepStrictEqual(yield* rows, [{ id: "all", sum: 40, records: 6 }])
      }))

    it.effect("a record that does not decode stops the batch there, naming stream and version in the log", () =>
      Effect.gen(function*() {
        const f = yield* fixture
        yield* Effect.promise(() =>
          f.raw.send(new PutItemCommand({
            TableName: f.eventsTable,
            Item: { s: { S: "acc-3" }, v: { N: "1" }, i: { S: "x" }, y: { S: "Deposited" }, d: { S: "{not json" }, t: { N: "1" } }
          }))
        )
        const { streams } = yield* streamClients
        const { arn, records } = yield* readWholeStream(streams, f.raw, f.eventsTable)
        const event = asLambda(records, arn)
        const response = yield* DynamoProjection.handleStreamEvent(balances(), event).pipe(
          Effect.provideService(ReadModel.ReadModelStore, f.store)
        )
        assert.deepStrictEqual(response.batchItemFailures.map((x) => x.itemIdentifier), [event.Records[6]!.dynamodb!.SequenceNumber])
        assert.strictEqual((yield* f.rows).length, 2, "the six events before it are written")
      }))
  })
})

/**
 * Decoding the events table's DynamoDB Stream (real records from DynamoDB Local), in the
 * GetRecords format and the Lambda event format.
 */
import { DeleteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, layer } from "@effect/vitest"
import { EventStore } from "@dynamo-es/core"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Exit, Layer, Result } from "effect"
import { DynamoStreams } from "../src/index.js"
import { readWholeStream, streamClients } from "./streamHelpers.js"

const setup = Layer.provideMerge(
  Fixtures.layerClientFor(),
  DynamoDBLocal.layer()
)

/** The Lambda event format: the same record with base64 binaries and an eventSourceARN. */
const asLambda = (records: ReadonlyArray<unknown>, arn: string): DynamoStreams.LambdaStreamEvent => ({
  Records: JSON.parse(JSON.stringify(records)).map((r: object) => ({ ...r, eventSourceARN: arn, awsRegion: "us-east-1" }))
})

describe("DynamoStreams", () => {
  layer(setup, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("decodes appended events as the event store reads them, skips what is not an event", () =>
      Effect.gen(function*() {
        const tableName = Fixtures.uniqueTableName("streams")
        const { streams, raw } = yield* streamClients
        yield* Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          yield* store.append("acc-1", [
            { type: "Opened", payload: { owner: "Ada" }, metadata: { actor: "me" } },
            { type: "Deposited", payload: { amount: 5 }, ttl: "1 day" }
          ], { expectedVersion: "noStream" })
          yield* store.append("acc-2", [{ type: "Opened", payload: { owner: "Bob" } }], { expectedVersion: "noStream" })
          // Not events: an item with other keys' shape cannot be put (key schema), but a
          // removal (what TTL does) and an edit by hand are records too.
          yield* Effect.promise(() => raw.send(new DeleteItemCommand({ TableName: tableName, Key: { s: { S: "acc-2" }, v: { N: "1" } } })))
          const read = yield* Effect.forEach(["acc-1"], (id) => store.readLast(id, 10))
          const { arn, records } = yield* readWholeStream(streams, raw, tableName)
          assert.strictEqual(records.length, 4)

          for (const batch of [records, asLambda(records, arn).Records]) {
            const decoded = yield* DynamoStreams.decodeRecords(batch)
            assert.deepStrictEqual(decoded.map((d) => d._tag), ["Event", "Event", "Event", "Skipped"])
            const events = decoded.flatMap((d) => (d._tag === "Event" ? [d.envelope] : []))
            assert.deepStrictEqual(events.slice(0, 2), read[0])
            assert.deepStrictEqual(events.map((e) => [e.streamId, e.version, e.type]), [["acc-1", 1, "Opened"], ["acc-1", 2, "Deposited"], ["acc-2", 1, "Opened"]])
            assert.ok(decoded.every((d) => d.sequenceNumber.length > 0), "every record keeps its sequence number")
            const skipped = decoded[3]!
            assert.strictEqual(skipped._tag === "Skipped" && skipped.reason, "REMOVE")
          }
        }).pipe(Effect.provide(Fixtures.layerEventStore({ tableName })))
      }))

    it.effect("a damaged event is a CorruptedEventError naming stream and version; no image too", () =>
      Effect.gen(function*() {
        const tableName = Fixtures.uniqueTableName("streams")
        const { streams, raw } = yield* streamClients
        yield* Effect.gen(function*() {
          yield* Effect.promise(() =>
            raw.send(new PutItemCommand({
              TableName: tableName,
              Item: { s: { S: "bad-1" }, v: { N: "1" }, i: { S: "x" }, y: { S: "T" }, d: { S: "{not json" }, t: { N: "1" } }
            }))
          )
          const { records } = yield* readWholeStream(streams, raw, tableName)
          const exit = yield* Effect.exit(DynamoStreams.decodeRecords(records))
          assert.ok(Exit.isFailure(exit))
          const error = exit.cause.reasons[0]
          assert.ok(error?._tag === "Fail")
          assert.strictEqual(error.error._tag, "CorruptedEventError")
          assert.strictEqual(error.error.streamId, "bad-1")
          assert.strictEqual(error.error.version, 1)

          const noImage = DynamoStreams.decodeRecord({ ...records[0]!, dynamodb: { ...records[0]!.dynamodb, NewImage: undefined } })
          assert.ok(Result.isFailure(noImage))
          assert.match(noImage.failure.reason, /NEW_IMAGE/)
          assert.strictEqual(noImage.failure.streamId, "bad-1")
        }).pipe(Effect.provide(Fixtures.layerEventStore({ tableName })))
      }))
  })
})

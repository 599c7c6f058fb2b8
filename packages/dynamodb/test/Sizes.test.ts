/**
 * The sizes the DynamoDB event store declares to core (`EventStore.Storage.limits`): they are
 * DynamoDB's own (the item size formula agrees with DynamoDB Local at the 400 KB boundary),
 * and the memory store declares the same, so both refuse exactly the same appends.
 */
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@dynamo-es/core"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Exit, Layer } from "effect"
import { DynamoEventStore, Tables } from "../src/index.js"
import { eventItemSize, eventStoreLimits } from "../src/internal/sizes.js"

const local = DynamoDBLocal.layer()
const client = Fixtures.layerClientFor().pipe(Layer.provide(local))

/** A small deterministic generator, so that a failure can be replayed. */
const randomOf = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
  return seed / 2 ** 31
}
const alphabet = ["a", "Z", "0", " ", "\"", "é", "ß", "€", "中", "😀", "\u{10FFFF}", "\uD800"]

describe("event sizes", () => {
  it("DynamoDB's storage declares DynamoDB's limits, and the memory storage the same", () => {
    const memory = EventStore.defaultStorageLimits
    assert.deepInclude(eventStoreLimits, { maxEventBytes: 409_600, maxEventsPerWrite: 100, maxWriteBytes: 4 * 1024 * 1024 })
    assert.deepInclude(memory, {
      maxEventBytes: eventStoreLimits.maxEventBytes,
      maxEventsPerWrite: eventStoreLimits.maxEventsPerWrite,
      maxWriteBytes: eventStoreLimits.maxWriteBytes
    })
    const random = randomOf(42)
    const text = (max: number) =>
      Array.from({ length: Math.floor(random() * max) }, () => alphabet[Math.floor(random() * alphabet.length)]).join("")
    const int = (max: number) => Math.floor(random() * max)
    for (let i = 0; i < 2_000; i++) {
      const record: EventStore.EventRecord = {
        eventId: text(30),
        type: text(20),
        payloadJson: text(200),
        metadataJson: random() < 0.5 ? undefined : text(50),
        recordedAtMillis: int(2 ** 45),
        expiresAtSeconds: random() < 0.5 ? undefined : int(2 ** 33)
      }
      const streamId = text(40)
      for (const version of [1, int(1_000_000), Number.MAX_SAFE_INTEGER]) {
        assert.strictEqual(memory.eventSize(streamId, version, record), eventStoreLimits.eventSize(streamId, version, record))
      }
    }
  })

  it.live("the item size formula is DynamoDB's own count at the 400 KB limit", () =>
    Effect.gen(function*() {
      const connection = yield* DynamoDBLocal.DynamoDBLocal
      const sdk = new DynamoDBClient(Fixtures.sdkConfig(connection))
      const tableName = Fixtures.uniqueTableName("sizes")
      yield* Fixtures.scopedTable(Tables.eventsTable(tableName))
      const put = (record: EventStore.EventRecord, version: number) =>
        Effect.exit(Effect.tryPromise(() =>
          sdk.send(new PutItemCommand({
            TableName: tableName,
            Item: {
              s: { S: "s-1" },
              v: { N: String(version) },
              i: { S: record.eventId },
              y: { S: record.type },
              d: { S: record.payloadJson },
              m: { S: record.metadataJson! },
              t: { N: String(record.recordedAtMillis) },
              x: { N: String(record.expiresAtSeconds!) }
            }
          }))
        ))
      const sized = (bytes: number): EventStore.EventRecord => {
        const base: EventStore.EventRecord = {
          eventId: "01J0000000000000000000000",
          type: "Noted",
          payloadJson: "",
          metadataJson: "{\"actor\":\"é\"}",
          recordedAtMillis: 1_733_300_000_123,
          expiresAtSeconds: 1_733_300_000
        }
        const payloadJson = "x".repeat(bytes - eventItemSize("s-1", 12_345, base))
        return { ...base, payloadJson }
      }
      const atLimit = sized(409_600)
      assert.strictEqual(eventItemSize("s-1", 12_345, atLimit), 409_600)
      assert.isTrue(Exit.isSuccess(yield* put(atLimit, 12_345)), "an item of exactly 409,600 bytes is stored")
      // Numbers count their significant digits: the trailing zeros of 1,733,300,000 do not.
      const over = sized(409_601)
      assert.isTrue(Exit.isFailure(yield* put(over, 12_346)), "one byte more is refused by DynamoDB")
      sdk.destroy()
    }).pipe(Effect.provide(Layer.merge(local, client))))

  it.live("the DynamoDB store refuses what its declared limits refuse, before any request", () =>
    Effect.gen(function*() {
      const tableName = Fixtures.uniqueTableName("sizes")
      yield* Fixtures.scopedTable(Tables.eventsTable(tableName))
      const storage = yield* DynamoEventStore.makeStorage(tableName)
      assert.strictEqual(storage.limits, eventStoreLimits)
      const store = yield* DynamoEventStore.make({ tableName })
      const error = yield* Effect.flip(store.append("s-1", [{ type: "T", payload: "x".repeat(409_600) }], { expectedVersion: "noStream" }))
      assert.deepInclude(error, { _tag: "EventTooLargeError", maxBytes: 409_600 })
      assert.strictEqual(yield* store.version("s-1"), 0)
    }).pipe(Effect.provide(client)))
})

import { assert, describe, layer } from "@effect/vitest"
import { EventLog } from "@dynamo-es/core"
import { eventLogConformance } from "@dynamo-es/core/testing/EventLogConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Fiber, Layer, Stream } from "effect"
import { DynamoClient, DynamoEventLog, DynamoEventStore, DynamoSequencer } from "../src/index.js"
import { instrumentedClient } from "./helpers.js"
import { freshTables, layerLog } from "./logHelpers.js"

const local = DynamoDBLocal.layer()

eventLogConformance(
  "DynamoDB (sequencer on the table's stream)",
  () => layerLog().pipe(Layer.provideMerge(Layer.provideMerge(Fixtures.layerClientFor(), local))),
  { timeout: 60_000 }
)

// Tiny epochs and entries: reads cross epochs, resume inside entries that straddle an epoch
// boundary, and find the head through the epoch markers.
eventLogConformance(
  "DynamoDB with epochs of 7 positions and entries of at most 3 events",
  () => layerLog({ epochSize: 7, maxEntryEvents: 3 }).pipe(Layer.provideMerge(Layer.provideMerge(Fixtures.layerClientFor(), local))),
  { timeout: 60_000 }
)

describe("DynamoEventLog: shared looks at the head", () => {
  layer(Layer.provideMerge(Fixtures.layerClientFor(), local), { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("subscriptions at the same position share one Query; a read that knows of a later position does not take a stale shared look", () =>
      Effect.gen(function*() {
        const tables = yield* freshTables
        const tools = instrumentedClient(yield* DynamoDBLocal.DynamoDBLocal)
        yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
        const client = DynamoClient.layer({ client: tools.sdk })
        // A long time to live, so that what is shared does not depend on timing.
        const storage = yield* DynamoEventLog.makeStorage({ ...tables, headCacheTtl: "1 hour" }).pipe(Effect.provide(client))
        const log = EventLog.make(storage)
        const queries = () => tools.recorder.count("Query")

        // Ten subscriptions from the start of an empty log: one look between them.
        const subscribers = yield* Effect.forEach(Array.from({ length: 10 }), () =>
          log.subscribeAll({ from: "start", pollInterval: "20 millis" }).pipe(
            Stream.filter((i) => i._tag === "Event"),
            Stream.take(3),
            Stream.runCollect,
            Effect.provide(client),
            Effect.forkScoped
          ))
        yield* Effect.sleep("300 millis")
        assert.strictEqual(queries(), 1, "ten idle subscriptions, many polls each: one Query")

        // Three events indexed (the sequencer's core, from a scan of the events table).
        const store = yield* DynamoEventStore.make({ tableName: tables.eventsTable })
        yield* store.append("shared-1", [1, 2, 3].map((n) => ({ type: "T", payload: { n } })), { expectedVersion: 0 })
        const core = yield* DynamoSequencer.makeCore(tables)
        yield* core.load
        yield* DynamoSequencer.repairScan(core)

        // The shared look is a past state of the log: the subscriptions wait with it ...
        tools.recorder.clear()
        assert.deepStrictEqual(yield* Stream.runCollect(log.readAll()).pipe(Effect.provide(client)), [])
        assert.strictEqual(queries(), 0)
        // ... until a read knows of a later position: then the look is taken again.
        assert.strictEqual(yield* log.head.pipe(Effect.provide(client)), 3)
        const all = yield* Stream.runCollect(log.readAll()).pipe(Effect.provide(client))
        assert.deepStrictEqual(all.map((e) => e.position), [1, 2, 3])
        for (const fiber of subscribers) {
          assert.deepStrictEqual((yield* Fiber.join(fiber)).map((i) => i._tag === "Event" && i.event.version), [1, 2, 3])
        }
      }))

    it.effect("headCacheTtl 0: every look is a Query", () =>
      Effect.gen(function*() {
        const tables = yield* freshTables
        const tools = instrumentedClient(yield* DynamoDBLocal.DynamoDBLocal)
        yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
        const storage = yield* DynamoEventLog.makeStorage({ ...tables, headCacheTtl: 0 }).pipe(Effect.provide(DynamoClient.layer({ client: tools.sdk })))
        for (let i = 0; i < 3; i++) yield* storage.readEntries(0, undefined, true)
        assert.strictEqual(tools.recorder.count("Query"), 3)
      }))
  })
})

/**
 * The sequencer against DynamoDB Local's real stream: concurrent writers, redelivery, holes,
 * restarts at random points (also between an entry and its stream items), two sequencers
 * at once, expired iterators, trimmed data and backfill.
 */
import { DeleteItemCommand, DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it, layer } from "@effect/vitest"
import { type EventLog, EventStore } from "@dynamo-es/core"
import { assertLogShape } from "@dynamo-es/core/testing/EventLogConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Duration, Effect, Exit, Fiber, Layer, Random, Schedule, Stream } from "effect"
import { DynamoClient, DynamoEventLog, DynamoEventStore, DynamoSequencer, Tables } from "../src/index.js"
import { instrumentedClient, sdkError } from "./helpers.js"
import { fast, freshTables, streamsClient } from "./logHelpers.js"
import { readWholeStream } from "./streamHelpers.js"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const setup = Layer.provideMerge(Fixtures.layerClientFor(), DynamoDBLocal.layer())

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)
const key = (e: { readonly streamId: string; readonly version: number }) => `${e.streamId}@${e.version}`

/** Tables, a store and a log reader on them. */
const world = Effect.gen(function*() {
  const tables = yield* freshTables
  const store = yield* DynamoEventStore.make({ tableName: tables.eventsTable })
  const log = yield* DynamoEventLog.make({ ...tables, pollInterval: "20 millis" })
  const streams = yield* streamsClient
  return { ...tables, store, log, streams }
})

/** The events table's stream as it stands: its records in order, and its ARN. */
const wholeStream = (w: { readonly streams: { readonly client: Parameters<typeof readWholeStream>[0] }; readonly eventsTable: string }) =>
  Effect.gen(function*() {
    const raw = new DynamoDBClient(Fixtures.sdkConfig(yield* DynamoDBLocal.DynamoDBLocal))
    return yield* readWholeStream(w.streams.client, raw, w.eventsTable).pipe(Effect.ensuring(Effect.sync(() => raw.destroy())))
  })

/** `writers` fibers each appending `appends` times to its own stream and to shared ones. */
const write = (store: EventStore.EventStoreShape, prefix: string, writers: number, appends: number) =>
  Effect.forEach(range(1, writers), (w) =>
    Effect.gen(function*() {
      for (const n of range(1, appends)) {
        yield* store.append(`${prefix}${w}-own`, [{ type: "Own", payload: { n } }], { expectedVersion: n - 1 })
        yield* store.append(`${prefix}-shared-${(w + n) % 4}`, [{ type: "Shared", payload: { w, n } }, { type: "Shared", payload: { w, n, second: true } }], {
          expectedVersion: "any"
        })
      }
    }), { concurrency: "unbounded", discard: true }).pipe(Effect.as(writers * appends * 3))

/** Waits until the log has `n` events (the sequencer lags), then reads it all. */
const awaitLog = (log: EventLog.EventLogShape, n: number) =>
  log.head.pipe(
    Effect.filterOrFail((h) => h >= n),
    Effect.retry({ times: 1500, schedule: Schedule.spaced("20 millis") }),
    Effect.flatMap(() => Stream.runCollect(log.readAll()))
  )

/** Every event of the store, as stream@version keys. */
const storedKeys = (store: EventStore.EventStoreShape, ids: ReadonlyArray<string>) =>
  Effect.forEach(ids, (id) => Stream.runCollect(store.read(id, { ifMissing: "empty" }))).pipe(
    Effect.map((all) => all.flat().map(key).sort())
  )

const streamIds = (prefix: string, writers: number) => [...range(1, writers).map((w) => `${prefix}${w}-own`), ...range(0, 3).map((i) => `${prefix}-shared-${i}`)]

describe("DynamoSequencer", () => {
  layer(setup, { timeout: 120_000, excludeTestServices: true })((it) => {
    it.effect("20 writers, a live sequencer and a subscriber: every event once, in per-stream order; resume from every k-th position", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast }).pipe(Effect.forkScoped)
        const subscriber = yield* w.log.subscribeAll({ from: "start" }).pipe(
          Stream.filter((i) => i._tag === "Event"),
          Stream.map((i) => (i as { event: EventLog.LoggedEvent }).event),
          Stream.take(20 * 4 * 3),
          Stream.runCollect,
          Effect.forkScoped
        )
        const total = yield* write(w.store, "acc", 20, 4)
        const seen = yield* Fiber.join(subscriber)
        assert.strictEqual(seen.length, total)
        assertLogShape(seen)
        assert.deepStrictEqual(seen.map(key).sort(), yield* storedKeys(w.store, streamIds("acc", 20)), "exactly the stored events")
        for (let from = 0; from <= total; from += 7) {
          const rest = yield* Stream.runCollect(w.log.readAll({ from }))
          assert.deepStrictEqual(rest.map(key), seen.slice(from).map(key), `resume from ${from}`)
        }
      }))

    it.effect("a redelivered batch is ignored; a lost record is repaired from the table, in version order", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* write(w.store, "re", 3, 3)
        const { records } = yield* wholeStream(w)
        const shard = (r: (typeof records)[number]) => ({ shardId: "shard-0", record: r })
        // Lose the first record of a shared stream: its successor arrives first.
        const lostIndex = records.findIndex((r) => r.dynamodb?.Keys?.s?.S === "re-shared-1")
        const core = yield* DynamoSequencer.makeCore(w)
        yield* core.load
        const first = yield* core.index(records.filter((_, i) => i !== lostIndex).map(shard))
        assert.strictEqual(first, 27, "the lost record was repaired")
        assert.strictEqual(yield* core.index(records.map(shard)), 0, "the same batch again: nothing")
        // A fresh sequencer: dropped by sequence number (checkpoint) ...
        const again = yield* DynamoSequencer.makeCore(w)
        yield* again.load
        assert.strictEqual(yield* again.index(records.map(shard)), 0)
        // ... and by version when the sequence numbers look new (another shard's name).
        assert.strictEqual(yield* again.index(records.map((r) => ({ shardId: "other", record: r }))), 0)
        const logged = yield* Stream.runCollect(w.log.readAll())
        assert.strictEqual(logged.length, 27)
        assertLogShape(logged)
      }))

    it.effect("killed at random points (also between an entry and its stream items) and restarted: nothing lost, nothing twice", () =>
      Effect.gen(function*() {
        const w = yield* world
        const local = yield* DynamoDBLocal.DynamoDBLocal
        const tools = instrumentedClient(local)
        yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
        // A crash right after an entry is stored: the request succeeds, the process "dies".
        let crashes = 0
        tools.setFault(async (command, input, proceed) => {
          const result = await proceed()
          if (command === "PutItem" && input.TableName === w.logTable && input.Item?.c !== undefined && Math.random() < 0.5) {
            crashes++
            throw new Error("crash after the entry was written")
          }
          return result
        })
        const faulty = DynamoClient.layer({ client: tools.sdk, retrySchedule: Schedule.recurs(0) })
        const writers = yield* write(w.store, "kill", 6, 5).pipe(Effect.forkScoped)
        // Runs of random length until the writers are done and at least one run crashed.
        let ticks = 0
        for (let run = 0; run < 12 || ((writers.pollUnsafe() === undefined || crashes === 0) && run < 100); run++) {
          // Something new for every run to index, also once the writers are done.
          yield* w.store.append("kill-tick", [{ type: "Tick", payload: { run } }], { expectedVersion: ticks++ })
          const fiber = yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast, lease: false }).pipe(
            Effect.scoped,
            Effect.provide(faulty),
            Effect.forkChild
          )
          yield* Effect.sleep(Duration.millis(yield* Random.nextBetween(0, 150)))
          yield* Fiber.interrupt(fiber)
        }
        const total = (yield* Fiber.join(writers)) + ticks
        tools.setFault(undefined)
        assert.ok(crashes > 0, "some runs crashed between an entry and its stream items")
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast }).pipe(Effect.forkScoped)
        const logged = yield* awaitLog(w.log, total)
        assert.strictEqual(logged.length, total)
        assertLogShape(logged)
        assert.deepStrictEqual(logged.map(key).sort(), yield* storedKeys(w.store, [...streamIds("kill", 6), "kill-tick"]))
      }))

    it.effect("the head is found when an entry straddles an epoch boundary (epoch markers)", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* write(w.store, "epoch", 3, 3)
        const { records } = yield* wholeStream(w)
        // Entries of 3 from position 1 (1, 4, 7, ...) in epochs of 7: the entry at 13 ends in
        // epoch 2, so the first entry of epoch 2's partition starts at 16, not at 14.
        const layout = { epochSize: 7, maxEntryEvents: 3 }
        const core = yield* DynamoSequencer.makeCore({ ...w, ...layout })
        yield* core.load
        assert.strictEqual(yield* core.index(records.map((record) => ({ shardId: "s", record }))), 27)
        const log = yield* DynamoEventLog.make({ ...w, ...layout })
        assert.strictEqual(yield* log.head, 27)
        const fromEnd = yield* log.subscribeAll({ from: "end" }).pipe(Stream.take(1), Stream.runCollect)
        assert.deepStrictEqual(fromEnd, [{ _tag: "CaughtUp", position: 27 }])
        // A restarted sequencer finds the head too.
        const again = yield* DynamoSequencer.makeCore({ ...w, ...layout })
        yield* again.load
        assert.strictEqual(again.next, 28)
      }))

    it.effect("a sequencer that lost the race for an entry cannot write a wrong one: it folds the winner's entries and plans again", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* write(w.store, "race", 3, 3)
        const { records } = yield* wholeStream(w)
        // Two instances that both loaded the empty log, fed different (overlapping) batches,
        // as two sequencers reading different shards or at different speeds would be.
        const a = yield* DynamoSequencer.makeCore(w)
        const b = yield* DynamoSequencer.makeCore(w)
        yield* a.load
        yield* b.load
        assert.strictEqual(yield* a.index(records.slice(0, 10).map((record) => ({ shardId: "s", record }))), 10)
        assert.strictEqual(yield* b.index(records.slice(5).map((record) => ({ shardId: "s", record }))), records.length - 10)
        assert.strictEqual(b.next, records.length + 1)
        const logged = yield* Stream.runCollect(w.log.readAll())
        assert.strictEqual(logged.length, records.length)
        assertLogShape(logged)
      }))

    it.effect("an entry write whose response was lost is retried: the retry's failed condition is the sequencer's own entry, folded, not indexed again", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* write(w.store, "lost", 3, 3)
        const local = yield* DynamoDBLocal.DynamoDBLocal
        const { records } = yield* wholeStream(w)
        const tools = instrumentedClient(local)
        yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
        // Every entry write is applied by DynamoDB and its first response is lost.
        const lost = new Set<string>()
        tools.setFault(async (command, input, proceed) => {
          const result = await proceed()
          if (command === "PutItem" && input.Item?.c !== undefined && !lost.has(input.Item.k.S)) {
            lost.add(input.Item.k.S)
            throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })
          }
          return result
        })
        const client = DynamoClient.layer({ client: tools.sdk, retrySchedule: Schedule.recurs(3) })
        const core = yield* DynamoSequencer.makeCore({ ...w, maxEntryEvents: 5 }).pipe(Effect.provide(client))
        yield* core.load.pipe(Effect.provide(client))
        yield* core.index(records.slice(0, 12).map((record) => ({ shardId: "s", record }))).pipe(Effect.provide(client))
        yield* core.index(records.map((record) => ({ shardId: "s", record }))).pipe(Effect.provide(client))
        assert.ok(lost.size >= 6, `${lost.size} entry writes lost their response`)
        assert.strictEqual(core.next, records.length + 1)
        const logged = yield* Stream.runCollect(w.log.readAll())
        assert.strictEqual(logged.length, records.length)
        assertLogShape(logged)
      }))

    it.effect("two sequencers at once (no lease): the log stays dense, every event once", () =>
      Effect.gen(function*() {
        const w = yield* world
        const options = { ...w, streams: w.streams.client, ...fast, lease: false, maxEntryEvents: 3 }
        yield* DynamoSequencer.run(options).pipe(Effect.forkScoped)
        yield* DynamoSequencer.run(options).pipe(Effect.forkScoped)
        const total = yield* write(w.store, "two", 8, 4)
        const logged = yield* awaitLog(w.log, total)
        assert.strictEqual(logged.length, total)
        assertLogShape(logged)
        assert.deepStrictEqual(logged.map(key).sort(), yield* storedKeys(w.store, streamIds("two", 8)))
      }))

    it.effect("with the lease, a second instance waits, and takes over when the first stops", () =>
      Effect.gen(function*() {
        const w = yield* world
        const options = { ...w, streams: w.streams.client, pollInterval: "20 millis", leaseDuration: "600 millis" } as const
        const table = yield* DynamoEventLog.makeLogTable(w)
        const tokens = Effect.map(table.readEntries(0, undefined, true, true), ({ entries }) => entries.map((e) => e.token))
        const first = yield* DynamoSequencer.run({ ...options, owner: "one" }).pipe(Effect.scoped, Effect.forkChild)
        yield* write(w.store, "lease", 2, 2)
        yield* awaitLog(w.log, 12)
        const second = yield* DynamoSequencer.run({ ...options, owner: "two" }).pipe(Effect.scoped, Effect.forkChild)
        yield* write(w.store, "leaseb", 2, 2)
        yield* awaitLog(w.log, 24)
        const firstTokens = new Set(yield* tokens)
        assert.strictEqual(firstTokens.size, 1, "one instance wrote every entry while it held the lease")
        yield* Fiber.interrupt(first)
        yield* write(w.store, "leasec", 2, 2)
        const logged = yield* awaitLog(w.log, 36)
        assertLogShape(logged)
        assert.strictEqual(logged.length, 36)
        const after = yield* tokens
        assert.ok(after[after.length - 1]! > [...firstTokens][0]!, "the second took over with a higher fencing token")
        yield* Fiber.interrupt(second)
      }))

    it.effect("expired iterators resume after the checkpoint; trimmed data is repaired from the table", () =>
      Effect.gen(function*() {
        const w = yield* world
        let trimmed = false
        let expired = 0
        let calls = 0
        w.streams.setFault(async (command, _input, proceed) => {
          // Every other read (the first too) finds its iterator expired.
          if (command === "GetRecords" && ++calls % 2 === 1) {
            expired++
            throw sdkError("ExpiredIteratorException", "Iterator expired")
          }
          const result = await proceed()
          if (command === "GetRecords") {
            // The records of "lost-*" were trimmed: no read of the stream gives them again.
            const all = result.output.Records ?? []
            const kept = all.filter((r: any) => !String(r.dynamodb?.Keys?.s?.S).startsWith("lost"))
            result.output.Records = kept
            if (kept.length < all.length && !trimmed) {
              trimmed = true
              throw sdkError("TrimmedDataAccessException", "records trimmed")
            }
          }
          return result
        })
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast }).pipe(Effect.forkScoped)
        const total = yield* write(w.store, "exp", 4, 3)
        yield* w.store.append("lost-1", [{ type: "Lost", payload: {} }, { type: "Lost", payload: {} }], { expectedVersion: 0 })
        const more = yield* write(w.store, "after", 2, 2)
        const logged = yield* awaitLog(w.log, total + 2 + more)
        assertLogShape(logged)
        assert.strictEqual(logged.length, total + 2 + more)
        assert.ok(trimmed, "the trimmed path ran")
        assert.ok(expired > 0, "iterators expired")
        assert.deepStrictEqual(logged.filter((e) => e.streamId === "lost-1").map((e) => e.version), [1, 2])
      }))

    it.effect("shard lineage: a child shard is read only after its parent is read to its end", () =>
      Effect.gen(function*() {
        const w = yield* world
        const before = yield* write(w.store, "split", 3, 3)
        const { records } = yield* wholeStream(w)
        // The records so far live in a (simulated) closed parent shard; the real shard is its
        // child and holds only what comes after.
        const inParent = new Set(records.map((r) => r.dynamodb!.SequenceNumber!))
        const calls: Array<string> = []
        let parentTrimmed = false
        let describes = 0
        w.streams.setFault(async (command, input, proceed) => {
          if (command === "GetShardIterator" && input.ShardId === "parent-0") {
            calls.push("iterator parent")
            return { output: { ShardIterator: "parent-0-iterator", $metadata: {} }, response: {} }
          }
          if (command === "GetRecords" && input.ShardIterator === "parent-0-iterator") {
            calls.push("records parent (closed)")
            return { output: { Records: records, $metadata: {} }, response: {} }
          }
          if (command === "GetShardIterator") calls.push("iterator child")
          const result = await proceed()
          if (command === "DescribeStream") {
            describes++
            const shards = result.output.StreamDescription.Shards
            // Children listed first: only the lineage rule makes the parent go first.
            result.output.StreamDescription.Shards = [
              ...shards.map((shard: object) => ({ ...shard, ParentShardId: "parent-0" })),
              ...(parentTrimmed ? [] : [{ ShardId: "parent-0", SequenceNumberRange: { StartingSequenceNumber: "0", EndingSequenceNumber: "1" } }])
            ]
          }
          if (command === "GetRecords") {
            result.output.Records = (result.output.Records ?? []).filter((r: any) => !inParent.has(r.dynamodb.SequenceNumber))
          }
          return result
        })
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast }).pipe(Effect.forkScoped)
        const after = yield* write(w.store, "split2", 2, 2)
        const logged = yield* awaitLog(w.log, before + after)
        assert.strictEqual(logged.length, before + after)
        assertLogShape(logged)
        assert.deepStrictEqual(calls.slice(0, 3), ["iterator parent", "records parent (closed)", "iterator child"])
        assert.deepStrictEqual(logged.slice(0, before).map(key), records.map((r) => `${r.dynamodb!.Keys!.s!.S}@${r.dynamodb!.Keys!.v!.N}`))
        const table = yield* DynamoEventLog.makeLogTable(w)
        assert.strictEqual((yield* table.lastEntry(true))!.checkpoint["parent-0"], "done")
        // 24 hours later the parent is trimmed from the stream: the checkpoint forgets it.
        parentTrimmed = true
        const seen = describes
        yield* Effect.sync(() => describes).pipe(
          Effect.filterOrFail((n) => n > seen + 1),
          Effect.retry({ times: 500, schedule: Schedule.spaced("20 millis") })
        )
        const later = yield* write(w.store, "split3", 1, 2)
        yield* awaitLog(w.log, before + after + later)
        assert.ok(!("parent-0" in (yield* table.lastEntry(true))!.checkpoint), "a trimmed shard leaves the checkpoint")
      }))

    it.effect("a shard that vanishes before it was read to its end (trimmed): its lost records are repaired from the table", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* w.store.append("ghost-1", [1, 2, 3].map((n) => ({ type: "Ghost", payload: { n } })), { expectedVersion: 0 })
        const { records } = yield* wholeStream(w)
        const isGhost = (r: any) => r.dynamodb?.Keys?.s?.S === "ghost-1"
        let ghostGone = false
        w.streams.setFault(async (command, input, proceed) => {
          if (command === "GetShardIterator" && input.ShardId === "ghost-0") {
            return { output: { ShardIterator: "ghost-it-1", $metadata: {} }, response: {} }
          }
          if (command === "GetRecords" && String(input.ShardIterator).startsWith("ghost-it")) {
            // Version 1 arrives; versions 2 and 3 are never delivered by anyone.
            const first = input.ShardIterator === "ghost-it-1" ? records.filter(isGhost).slice(0, 1) : []
            return { output: { Records: first, NextShardIterator: "ghost-it-2", $metadata: {} }, response: {} }
          }
          const result = await proceed()
          if (command === "DescribeStream" && !ghostGone) {
            result.output.StreamDescription.Shards = [
              ...result.output.StreamDescription.Shards,
              { ShardId: "ghost-0", SequenceNumberRange: { StartingSequenceNumber: "0" } }
            ]
          }
          if (command === "GetRecords") result.output.Records = (result.output.Records ?? []).filter((r: any) => !isGhost(r))
          return result
        })
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast }).pipe(Effect.forkScoped)
        const more = yield* write(w.store, "live", 2, 2)
        yield* awaitLog(w.log, 1 + more)
        ghostGone = true
        const logged = yield* awaitLog(w.log, 3 + more)
        assertLogShape(logged)
        assert.deepStrictEqual(logged.filter((e) => e.streamId === "ghost-1").map((e) => e.version), [1, 2, 3])
      }))

    it.effect("backfill of a table whose history predates the log, then the stream: every event once", () =>
      Effect.gen(function*() {
        const w = yield* world
        const before = yield* write(w.store, "old", 5, 3)
        const core = yield* DynamoSequencer.makeCore(w)
        yield* core.load
        yield* DynamoSequencer.repairScan(core, { segments: 3 })
        assert.strictEqual(yield* w.log.head, before)
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast }).pipe(Effect.forkScoped)
        const after = yield* write(w.store, "new", 3, 2)
        const logged = yield* awaitLog(w.log, before + after)
        assert.strictEqual(logged.length, before + after)
        assertLogShape(logged)
        assert.deepStrictEqual(
          logged.map(key).sort(),
          [...(yield* storedKeys(w.store, streamIds("old", 5))), ...(yield* storedKeys(w.store, streamIds("new", 3)))].sort()
        )
      }))

    it.effect("versions deleted by TTL before they were indexed, while later ones exist: a backfill passes them, then the stream adds nothing twice", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* w.store.append("ttl-1", [1, 2, 3, 4].map((n) => ({ type: "T", payload: { n } })), { expectedVersion: 0 })
        yield* w.store.append("keep-1", [{ type: "T", payload: {} }], { expectedVersion: 0 })
        // What DynamoDB's TTL does to expired versions 1 and 2: deletes them (a REMOVE in the stream).
        const raw = new DynamoDBClient(Fixtures.sdkConfig(yield* DynamoDBLocal.DynamoDBLocal))
        for (const v of [1, 2]) {
          yield* Effect.promise(() => raw.send(new DeleteItemCommand({ TableName: w.eventsTable, Key: { s: { S: "ttl-1" }, v: { N: String(v) } } })))
        }
        raw.destroy()
        const core = yield* DynamoSequencer.makeCore(w)
        yield* core.load
        yield* DynamoSequencer.repairScan(core)
        const backfilled = yield* Stream.runCollect(w.log.readAll())
        assert.deepStrictEqual(backfilled.map(key).sort(), ["keep-1@1", "ttl-1@3", "ttl-1@4"])
        assertLogShape(backfilled)
        // The stream still holds the inserts of versions 1 and 2, and then their removals.
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast }).pipe(Effect.forkScoped)
        yield* w.store.append("ttl-1", [{ type: "T", payload: { n: 5 } }], { expectedVersion: 4 })
        const logged = yield* awaitLog(w.log, 4)
        assert.deepStrictEqual(logged.map(key).sort(), ["keep-1@1", "ttl-1@3", "ttl-1@4", "ttl-1@5"])
        assertLogShape(logged)
      }))

    it.effect("after a quiet spell (only removals), a restarted sequencer resumes after them: the checkpoint is saved without an entry", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* write(w.store, "quiet", 2, 2)
        const options = { ...w, streams: w.streams.client, ...fast, checkpointInterval: 0 }
        const first = yield* DynamoSequencer.run(options).pipe(Effect.scoped, Effect.forkChild)
        yield* awaitLog(w.log, 12)
        // Removals (what TTL does): records, but nothing to index.
        const raw = new DynamoDBClient(Fixtures.sdkConfig(yield* DynamoDBLocal.DynamoDBLocal))
        for (const v of [1, 2]) {
          yield* Effect.promise(() => raw.send(new DeleteItemCommand({ TableName: w.eventsTable, Key: { s: { S: "quiet1-own" }, v: { N: String(v) } } })))
        }
        const { records } = yield* readWholeStream(w.streams.client, raw, w.eventsTable)
        raw.destroy()
        const lastSequence = records[records.length - 1]!.dynamodb!.SequenceNumber!
        assert.strictEqual(records[records.length - 1]!.eventName, "REMOVE")
        // The running sequencer reads the removals and saves its checkpoint.
        const table = yield* DynamoEventLog.makeLogTable(w)
        yield* table.query({
          KeyConditionExpression: "p = :p",
          ExpressionAttributeValues: { ":p": { S: "checkpoint" } },
          ConsistentRead: true
        }).pipe(
          Effect.filterOrFail((r) => (r.Items?.[0]?.q?.S ?? "").includes(lastSequence)),
          Effect.retry({ times: 500, schedule: Schedule.spaced("20 millis") })
        )
        yield* Fiber.interrupt(first)
        const iterators: Array<unknown> = []
        w.streams.setFault((command, input, proceed) => {
          if (command === "GetShardIterator") iterators.push(input.SequenceNumber)
          return proceed()
        })
        const second = yield* DynamoSequencer.run(options).pipe(Effect.scoped, Effect.forkChild)
        yield* Effect.sync(() => iterators.length).pipe(
          Effect.filterOrFail((n) => n > 0),
          Effect.retry({ times: 500, schedule: Schedule.spaced("20 millis") })
        )
        yield* Fiber.interrupt(second)
        assert.strictEqual(iterators[0], lastSequence, "resumes after the last removal")
        assert.strictEqual(yield* w.log.head, 12)
      }))

    it.effect("the Lambda entry point: same core, redeliveries dropped, batchItemFailures from the first record of a failed batch", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* write(w.store, "lambda", 4, 3)
        const local = yield* DynamoDBLocal.DynamoDBLocal
        const { arn, records } = yield* wholeStream(w)
        // The Lambda event format: JSON, with the stream's ARN.
        const lambda = JSON.parse(JSON.stringify(records)).map((r: object) => ({ ...r, eventSourceARN: arn }))
        const tools = instrumentedClient(local)
        yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
        const handler = DynamoSequencer.lambdaHandler(w, DynamoClient.layer({ client: tools.sdk, retrySchedule: Schedule.recurs(0) }))
        const call = (batch: ReadonlyArray<unknown>) => Effect.promise(() => handler({ Records: batch as never }))

        assert.deepStrictEqual(yield* call(lambda.slice(0, 20)), { batchItemFailures: [] })
        // A failing batch: reported from its first record, nothing half-indexed.
        tools.setFault((command, input, proceed) =>
          command === "PutItem" && input.TableName === w.logTable ? Promise.reject(sdkError("ValidationException")) : proceed()
        )
        const failed = yield* call(lambda.slice(20))
        assert.deepStrictEqual(failed, { batchItemFailures: [{ itemIdentifier: lambda[20].dynamodb.SequenceNumber }] })
        tools.setFault(undefined)
        // Lambda retries from there, and redelivers the first part too: each event once.
        assert.deepStrictEqual(yield* call(lambda.slice(10)), { batchItemFailures: [] })
        assert.deepStrictEqual(yield* call(lambda), { batchItemFailures: [] })
        const logged = yield* Stream.runCollect(w.log.readAll())
        assert.strictEqual(logged.length, 36)
        assertLogShape(logged)
      }))

    it.effect("cost: what the log adds per small event when the sequencer batches (consumed capacity, measured)", () =>
      Effect.gen(function*() {
        const w = yield* world
        // 200 events of about 200 bytes over 10 streams, all in the stream before the
        // sequencer reads it: one GetRecords page, so the batching does not depend on timing.
        const payload = { text: "x".repeat(150) }
        for (const s of range(1, 10)) {
          yield* w.store.append(`cost-${s}`, range(1, 20).map((n) => ({ type: "Noted", payload: { ...payload, n } })), { expectedVersion: 0 })
        }
        const tools = instrumentedClient(yield* DynamoDBLocal.DynamoDBLocal)
        yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast, lease: false }).pipe(
          Effect.provide(DynamoClient.layer({ client: tools.sdk })),
          Effect.forkScoped
        )
        yield* awaitLog(w.log, 200)
        // The stream items are written after the entry: wait until all are listed.
        yield* Stream.runCollect(w.log.listStreams({ category: "cost" })).pipe(
          Effect.filterOrFail((ids) => ids.length === 10),
          Effect.retry({ times: 500, schedule: Schedule.spaced("20 millis") })
        )
        const puts = tools.recorder.capacity.filter((c) => c.command === "PutItem").map((c) => c.write)
        const updates = tools.recorder.capacity.filter((c) => c.command === "UpdateItem").map((c) => c.write)
        const entryWcu = puts.reduce((a, b) => a + b, 0)
        const streamWcu = updates.reduce((a, b) => a + b, 0)
        yield* Effect.log(`log write cost for 200 events of ~200 B in 10 streams: entries ${entryWcu} WCU (${(entryWcu / 200).toFixed(3)}/event, marker included), stream items ${streamWcu} WCU`)
        assert.ok(entryWcu / 200 < 0.5, `entries cost ${entryWcu} WCU for 200 events`)
        assert.strictEqual(streamWcu, 10, "one stream item write per stream per entry")
        tools.recorder.clear()
        const replayed = yield* DynamoEventLog.make(w).pipe(
          Effect.flatMap((log) => Stream.runCollect(log.readAll())),
          Effect.provide(DynamoClient.layer({ client: tools.sdk }))
        )
        const rcu = tools.recorder.capacity.reduce((a, c) => a + c.read, 0)
        yield* Effect.log(`replay of ${replayed.length} events: ${tools.recorder.commands.length} requests, ${rcu} RCU (${(rcu / 200).toFixed(3)}/event)`)
        assert.strictEqual(replayed.length, 200)
        assert.ok(rcu / 200 < 0.1, `replay cost ${rcu} RCU for 200 events`)
      }))

    it.effect("stream items raised lazily: killed before the raise, or in the middle of it, a restart replays the entries since and indexes nothing twice", () =>
      Effect.gen(function*() {
        const w = yield* world
        const local = yield* DynamoDBLocal.DynamoDBLocal
        yield* write(w.store, "lazy", 4, 3)
        const { records } = yield* wholeStream(w)
        const as = (shardId: string) => (r: (typeof records)[number]) => ({ shardId, record: r })
        // Categories: "lazy" (the shared streams) and "lazy1" .. "lazy4" (the own ones).
        const ids = () =>
          Effect.map(
            Effect.forEach(["lazy", "lazy1", "lazy2", "lazy3", "lazy4"], (category) => Stream.runCollect(w.log.listStreams({ category }))),
            (all) => all.flat()
          )
        // A small cache: versions must come from the replayed entries, not only from memory.
        const options = { ...w, maxEntryEvents: 4, cacheSize: 1, streamItemsEvery: 1_000, streamItemsInterval: "1 hour" } as const
        const a = yield* DynamoSequencer.makeCore(options)
        yield* a.load
        assert.strictEqual(yield* a.index(records.slice(0, 20).map(as("s"))), 20)
        assert.deepStrictEqual(yield* ids(), [], "no stream item raised yet")
        // a "dies" here. b replays the entries since the last raise: the same records under
        // another shard name (the checkpoint does not drop them) are dropped by version.
        const b = yield* DynamoSequencer.makeCore(options)
        yield* b.load
        assert.strictEqual(b.next, 21)
        assert.strictEqual(yield* b.index(records.slice(0, 20).map(as("other"))), 0)
        assert.strictEqual(yield* b.index(records.map(as("other"))), records.length - 20)
        // b dies in the middle of its raise: some stream items are raised, the others not.
        const tools = instrumentedClient(local)
        yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
        let updates = 0
        tools.setFault((command, _input, proceed) => (command === "UpdateItem" && ++updates > 3 ? Promise.reject(new Error("killed")) : proceed()))
        const c = yield* DynamoSequencer.makeCore(options).pipe(Effect.provide(DynamoClient.layer({ client: tools.sdk, retrySchedule: Schedule.recurs(0) })))
        yield* c.load.pipe(Effect.provide(DynamoClient.layer({ client: tools.sdk, retrySchedule: Schedule.recurs(0) })))
        const killed = yield* Effect.exit(c.flush)
        assert.ok(Exit.isFailure(killed))
        assert.ok((yield* ids()).length < 8, "not all raised")
        // A restart still knows every version: nothing again, and the next versions follow.
        const d = yield* DynamoSequencer.makeCore(options)
        yield* d.load
        assert.strictEqual(yield* d.index(records.map(as("third"))), 0)
        yield* w.store.append("lazy1-own", [{ type: "Own", payload: { n: 4 } }], { expectedVersion: 3 })
        const all = (yield* wholeStream(w)).records
        assert.strictEqual(yield* d.index(all.map(as("fourth"))), 1)
        yield* d.flush
        assert.strictEqual((yield* ids()).length, 8)
        const logged = yield* Stream.runCollect(w.log.readAll())
        assert.strictEqual(logged.length, records.length + 1)
        assertLogShape(logged)
        // The stream items hold the last versions once raised.
        const again = yield* DynamoSequencer.makeCore({ ...options, streamItemsEvery: 1 })
        yield* again.load
        assert.strictEqual(again.next, records.length + 2)
      }))

    it.effect("dynamo-es log backfill: indexes a table's history into the log, once", () =>
      Effect.gen(function*() {
        const w = yield* world
        const local = yield* DynamoDBLocal.DynamoDBLocal
        yield* write(w.store, "cli", 3, 3)
        const bin = fileURLToPath(new URL("../src/bin/dynamo-es.ts", import.meta.url))
        const run = () =>
          Effect.callback<string, Error>((resume) => {
            const child = execFile(process.execPath, ["--import", "tsx", bin, "log", "backfill", "--events", w.eventsTable, "--log", w.logTable], {
              timeout: 60_000,
              env: {
                ...process.env,
                DYNAMODB_ENDPOINT: local.endpoint,
                AWS_REGION: local.region,
                AWS_ACCESS_KEY_ID: local.credentials.accessKeyId,
                AWS_SECRET_ACCESS_KEY: local.credentials.secretAccessKey
              }
            }, (error, stdout, stderr) => resume(error ? Effect.fail(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(stdout)))
            return Effect.sync(() => child.kill())
          })
        assert.match(yield* run(), /Indexed 27 events; the log holds 27/)
        assert.match(yield* run(), /Indexed 0 events; the log holds 27/)
        const logged = yield* Stream.runCollect(w.log.readAll())
        assert.strictEqual(logged.length, 27)
        assertLogShape(logged)
        assert.strictEqual((yield* Stream.runCollect(w.log.listStreams({ category: "cli" }))).length, 4, "stream items raised (the shared streams)")
      }))

    it.effect("cost in steady state: 200 events arriving 10 at a time, in 10 streams, in 200 streams, in 1 stream (WCU per event, measured)", () =>
      Effect.gen(function*() {
        const local = yield* DynamoDBLocal.DynamoDBLocal
        const payload = { text: "x".repeat(150) }
        const measure = (name: string, streamOf: (i: number) => string) =>
          Effect.gen(function*() {
            const w = yield* world
            const versions = new Map<string, number>()
            for (const i of range(0, 199)) {
              const s = streamOf(i)
              const v = (versions.get(s) ?? 0) + 1
              versions.set(s, v)
              yield* w.store.append(s, [{ type: "Noted", payload: { ...payload, i } }], { expectedVersion: v - 1 })
            }
            const { records } = yield* wholeStream(w)
            const tools = instrumentedClient(local)
            yield* Effect.addFinalizer(() => Effect.sync(() => tools.sdk.destroy()))
            // A steady writer: pages of 10 records, one entry each (20 entries).
            const indexed = yield* Effect.gen(function*() {
              const core = yield* DynamoSequencer.makeCore(w)
              yield* core.load
              let n = 0
              for (let i = 0; i < records.length; i += 10) {
                n += yield* core.index(records.slice(i, i + 10).map((record) => ({ shardId: "s", record })))
              }
              yield* core.flush
              return n
            }).pipe(Effect.provide(DynamoClient.layer({ client: tools.sdk })))
            assert.strictEqual(indexed, 200)
            const sum = (command: string) => tools.recorder.capacity.filter((c) => c.command === command).reduce((a, c) => a + c.write, 0)
            const entries = sum("PutItem")
            const streamItems = sum("UpdateItem")
            yield* Effect.log(`steady-state cost, 200 events of ~200 B, ${name}: entries ${entries} WCU, stream items ${streamItems} WCU, ${((entries + streamItems) / 200).toFixed(3)} WCU/event`)
            const ids = yield* Stream.runCollect(w.log.listStreams({ category: "c" }))
            assert.strictEqual(ids.length, versions.size, "every stream listed once the stream items are raised")
            const logged = yield* Stream.runCollect(w.log.readAll())
            assert.strictEqual(logged.length, 200)
            assertLogShape(logged)
            return { entries, streamItems }
          })
        const ten = yield* measure("10 streams", (i) => `c-${i % 10}`)
        const own = yield* measure("200 streams", (i) => `c-${i}`)
        const hot = yield* measure("1 stream", () => "c-hot")
        assert.ok(ten.streamItems <= 20, `10 streams: ${ten.streamItems} WCU of stream items`)
        assert.ok(hot.streamItems <= 2, `1 stream: ${hot.streamItems} WCU of stream items`)
        assert.strictEqual(own.streamItems, 200, "a new stream's item is written once: listStreams needs it")
      }))

    it.effect("a stored event that does not decode is logged at its position as a typed error a reader can pass", () =>
      Effect.gen(function*() {
        const w = yield* world
        yield* w.store.append("good-1", [{ type: "T", payload: { a: 1 } }], { expectedVersion: 0 })
        const raw = new DynamoDBClient(Fixtures.sdkConfig(yield* DynamoDBLocal.DynamoDBLocal))
        yield* Effect.promise(() =>
          raw.send(
            new PutItemCommand({
              TableName: w.eventsTable,
              Item: { s: { S: "bad-1" }, v: { N: "1" }, i: { S: "x" }, y: { S: "T" }, d: { S: "{nope" }, t: { N: "1" } }
            })
          )
        )
        raw.destroy()
        yield* w.store.append("good-2", [{ type: "T", payload: { a: 2 } }], { expectedVersion: 0 })
        yield* DynamoSequencer.run({ ...w, streams: w.streams.client, ...fast }).pipe(Effect.forkScoped)
        yield* w.log.head.pipe(Effect.filterOrFail((h) => h >= 3), Effect.retry({ times: 500, schedule: Schedule.spaced("20 millis") }))
        const exit = yield* Effect.exit(Stream.runCollect(w.log.readAll()))
        assert.ok(Exit.isFailure(exit))
        const error = exit.cause.reasons.find((r) => r._tag === "Fail")
        assert.ok(error?._tag === "Fail" && error.error._tag === "CorruptedEventError")
        assert.deepStrictEqual([error.error.streamId, error.error.version], ["bad-1", 1])
        const rest = yield* Stream.runCollect(w.log.readAll({ from: 2 }))
        assert.deepStrictEqual(rest.map(key), ["good-2@1"])
      }))
  })
})

describe("DynamoSequencer.eventSourceMapping", () => {
  it("is the Lambda mapping on the events table's stream in the printed template: partial failures reported, retried until it succeeds", () => {
    const template = {
      ...Tables.cloudFormation([Tables.eventsTable("my-events"), Tables.logTable("my-log")]),
      ...DynamoSequencer.eventSourceMapping({ eventsTable: "my-events", functionName: { Ref: "Sequencer" } })
    } as Record<string, any>
    const mapping = template["myeventsTableSequencerMapping"]
    assert.strictEqual(mapping.Type, "AWS::Lambda::EventSourceMapping")
    const [table, attribute] = mapping.Properties.EventSourceArn["Fn::GetAtt"]
    assert.strictEqual(template[table].Properties.TableName, "my-events", "the stream of the events table's resource")
    assert.strictEqual(attribute, "StreamArn")
    assert.deepStrictEqual(mapping.Properties.FunctionName, { Ref: "Sequencer" })
    assert.deepStrictEqual(mapping.Properties.FunctionResponseTypes, ["ReportBatchItemFailures"])
    assert.strictEqual(mapping.Properties.StartingPosition, "TRIM_HORIZON")
    assert.strictEqual(mapping.Properties.MaximumRetryAttempts, -1, "a record given up would be a hole")
    assert.strictEqual(mapping.Properties.ParallelizationFactor, 1)
    assert.strictEqual(mapping.Properties.BatchSize, 1000)
  })
})

import { PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { SnapshotStore } from "@dynamo-es/core"
import { snapshotStoreConformance, stringOfJsonBytes } from "@dynamo-es/core/testing/SnapshotStoreConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Cause, ConfigProvider, Effect, Exit, Layer, Option, Schedule } from "effect"
import { DynamoClient, DynamoSnapshotStore, Tables } from "../src/index.js"
import { countItems, instrumentedClient, sdkError } from "./helpers.js"
import { failure as fail } from "@dynamo-es/core/testing/utils"

const local = DynamoDBLocal.layer()
const client = Fixtures.layerClientFor().pipe(Layer.provide(local))

const freshStore = (options: Partial<DynamoSnapshotStore.DynamoSnapshotStoreOptions> = {}) =>
  Layer.unwrap(Effect.gen(function*() {
    const tableName = Fixtures.uniqueTableName("snapshots")
    yield* Fixtures.scopedTable(DynamoSnapshotStore.snapshotsTable(tableName))
    return DynamoSnapshotStore.layerExisting({ ...options, tableName })
  }))

snapshotStoreConformance("DynamoDB", (options) => freshStore(options).pipe(Layer.provide(client)))
snapshotStoreConformance("DynamoDB, gzip", (options) => freshStore({ ...options, compression: "gzip" }).pipe(Layer.provide(client)))


let n = 0
const streamId = () => `snapshot-${Date.now().toString(36)}-${n++}`

const instrumented = <A, E>(
  body: (tools: ReturnType<typeof instrumentedClient> & { readonly tableName: string }) => Effect.Effect<A, E, SnapshotStore.SnapshotStore | DynamoClient.DynamoClient>,
  options: Partial<DynamoSnapshotStore.DynamoSnapshotStoreOptions> = {}
) =>
  Effect.gen(function*() {
    const tools = instrumentedClient(yield* DynamoDBLocal.DynamoDBLocal)
    const tableName = Fixtures.uniqueTableName("snapshots")
    const clientLayer = DynamoClient.layer({ client: tools.sdk, retrySchedule: Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 3 })) })
    const storeLayer = Layer.unwrap(
      Fixtures.scopedTable(DynamoSnapshotStore.snapshotsTable(tableName)).pipe(
        Effect.as(DynamoSnapshotStore.layerExisting({ ...options, tableName }))
      )
    )
    return yield* Effect.suspend(() => {
      tools.recorder.clear()
      return body({ ...tools, tableName })
    }).pipe(Effect.provide(Layer.provideMerge(storeLayer, clientLayer)))
  }).pipe(Effect.provide(local))

describe("DynamoSnapshotStore", { timeout: 120_000 }, () => {
  it.live("a save interrupted before its header is never loaded: the previous complete snapshot is", () =>
    instrumented(({ setFault, tableName }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const id = streamId()
        yield* store.save(id, { version: 10, state: stringOfJsonBytes(50_000, "o") })
        // The next save writes all its parts, then "crashes" on the header.
        setFault(async (command, input, proceed) =>
          command === "PutItem" && String(input.Item?.k?.S).startsWith("h#") ? Promise.reject(sdkError("AccessDeniedException")) : proceed()
        )
        const e = fail(yield* Effect.exit(store.save(id, { version: 20, state: stringOfJsonBytes(50_000, "n") })))
        assert.deepInclude(e, { _tag: "StorageError", operation: "PutItem" })
        setFault(undefined)
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.strictEqual(loaded.version, 10)
        assert.strictEqual(loaded.state, stringOfJsonBytes(50_000, "o"))
        const orphans = yield* countItems(tableName)
        assert.isAbove(orphans, 2, "the interrupted save left parts behind")
        // Later saves push both old snapshots out of retention and sweep the orphans.
        for (const version of [30, 40, 50, 60]) yield* store.save(id, { version, state: stringOfJsonBytes(20_000, "z") })
        assert.strictEqual(yield* countItems(tableName), 3 * (1 + 3), "3 kept snapshots of 1 header + 3 parts each")
      }), { partBytes: 8_000, orphanGracePeriod: 0 }))

  it.live("parts younger than the grace period are not swept (they may belong to a save in flight)", () =>
    instrumented(({ setFault, tableName }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const id = streamId()
        yield* store.save(id, { version: 10, state: stringOfJsonBytes(20_000, "o") })
        setFault(async (command, input, proceed) =>
          command === "PutItem" && String(input.Item?.k?.S).startsWith("h#") ? Promise.reject(sdkError("AccessDeniedException")) : proceed()
        )
        yield* Effect.exit(store.save(id, { version: 20, state: stringOfJsonBytes(20_000, "n") }))
        setFault(undefined)
        for (const version of [30, 40]) yield* store.save(id, { version, state: stringOfJsonBytes(20_000, "z") })
        // keepLast 1: one snapshot of 1 header + 3 parts, plus the 3 young orphan parts.
        assert.strictEqual(yield* countItems(tableName), 4 + 3)
      }), { partBytes: 8_000, keepLast: 1 }))

  it.live("retention deletes dropped snapshots by key, without reading their parts", () =>
    instrumented(({ recorder }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const id = streamId()
        yield* store.save(id, { version: 1, state: stringOfJsonBytes(1_000_000, "d") })
        recorder.clear()
        yield* store.save(id, { version: 2, state: { small: true } })
        const read = recorder.capacity.filter((c) => c.command === "Query").reduce((sum, c) => sum + c.read, 0)
        assert.isAtMost(read, 2, `retention read ${read} RCU; the dropped 1 MB snapshot must not be read`)
        assert.isTrue(Option.isNone(yield* store.load(id, { atOrBefore: 1 })))
      }), { keepLast: 1 }))

  it.live("a load that loses its snapshot to a concurrent save's retention reads the headers again", () =>
    instrumented(({ setFault, sdk, tableName }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const id = streamId()
        yield* store.save(id, { version: 10, state: stringOfJsonBytes(30_000, "a") })
        // Another process (its own client, keepLast 1) saves version 20 right between this
        // load's header query and its parts query.
        const other = yield* DynamoSnapshotStore.make({ tableName, keepLast: 1, partBytes: 10_000 }).pipe(
          Effect.provide(DynamoClient.layer({ client: sdk }))
        )
        let raced = false
        setFault(async (command, input, proceed) => {
          if (!raced && command === "Query" && String(input.ExpressionAttributeValues?.[":from"]?.S).startsWith("p#0")) {
            raced = true
            setFault(undefined)
            await Effect.runPromise(other.save(id, { version: 20, state: stringOfJsonBytes(30_000, "b") }))
          }
          return proceed()
        })
        const loaded = Option.getOrThrow(yield* store.load(id))
        assert.isTrue(raced)
        assert.strictEqual(loaded.version, 20)
        assert.strictEqual(loaded.state, stringOfJsonBytes(30_000, "b"))
      }), { partBytes: 10_000 }))

  it.live("a save interrupted in the middle of its parts is never loaded", () =>
    instrumented(({ setFault }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const id = streamId()
        yield* store.save(id, { version: 1, state: stringOfJsonBytes(10_000, "a") })
        let batches = 0
        setFault(async (command, _input, proceed) => {
          if (command === "BatchWriteItem" && ++batches === 3) throw sdkError("ValidationException", "boom")
          return proceed()
        })
        // 2 MB in 5 KB parts: 400 parts, 16 batches; the third fails.
        const big = stringOfJsonBytes(2_000_000, "b")
        assert.isTrue(Exit.isFailure(yield* Effect.exit(store.save(id, { version: 2, state: big }))))
        setFault(undefined)
        assert.strictEqual(Option.getOrThrow(yield* store.load(id)).version, 1)
        yield* store.save(id, { version: 3, state: big })
        assert.strictEqual(Option.getOrThrow(yield* store.load(id)).state, big)
      }), { partBytes: 5_000 }))

  it.live("UnprocessedItems of a part batch are retried until written", () =>
    instrumented(({ setFault, recorder }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const id = streamId()
        let first = true
        setFault(async (command, input, proceed) => {
          if (command !== "BatchWriteItem" || !first) return proceed()
          first = false
          // DynamoDB takes only the first 10 items and hands back the rest.
          const table = Object.keys(input.RequestItems)[0]!
          const all = input.RequestItems[table]
          input.RequestItems = { [table]: all.slice(0, 10) }
          const result = await proceed()
          input.RequestItems = { [table]: all }
          result.output.UnprocessedItems = { [table]: all.slice(10) }
          return result
        })
        const state = stringOfJsonBytes(100_000, "u")
        yield* store.save(id, { version: 1, state })
        assert.strictEqual(recorder.count("BatchWriteItem"), 2)
        assert.strictEqual(Option.getOrThrow(yield* store.load(id)).state, state)
      }), { partBytes: 5_000 }))

  it.live("a state needing more parts than the key layout can order is refused before anything is written", () =>
    instrumented(({ recorder, tableName }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        // 1-byte parts: at most 99,999 parts, declared to core as maxStateBytes.
        const e = fail(yield* Effect.exit(store.save(streamId(), { version: 1, state: stringOfJsonBytes(100_000) })))
        assert.deepInclude(e, { _tag: "SnapshotEncodeError", version: 1 })
        assert.match(e.message, /99999/)
        assert.deepStrictEqual(recorder.commands, [])
        assert.strictEqual(yield* countItems(tableName), 0)
      }), { partBytes: 1 }))

  it.live("with gzip, the part limit is checked on the compressed bytes, before anything is written", () =>
    instrumented(({ recorder, tableName }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        // Hardly compressible: 6 bits of entropy per character.
        let seed = 1
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        const noise = Array.from({ length: 200_000 }, () => {
          seed ^= seed << 13
          seed ^= seed >>> 17
          seed ^= seed << 5
          return alphabet[(seed >>> 0) % 64]
        }).join("")
        // About 150 KB gzipped: more than 99,999 one-byte parts, less than the 200 KB of JSON.
        const e = fail(yield* Effect.exit(store.save(streamId(), { version: 1, state: noise })))
        assert.deepInclude(e, { _tag: "StorageError", reason: "Validation" })
        assert.match(e.message, /nothing was written/)
        assert.deepStrictEqual(recorder.commands, [])
        assert.strictEqual(yield* countItems(tableName), 0)
      }), { partBytes: 1, compression: "gzip" }))

  it.live("a corrupted part is a CorruptedSnapshotError naming stream and version", () =>
    instrumented(({ sdk, tableName }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const id = streamId()
        yield* store.save(id, { version: 42, state: stringOfJsonBytes(30_000, "c") })
        const parts = yield* Effect.promise(() =>
          sdk.send(new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: "s = :s AND begins_with(k, :p)",
            ExpressionAttributeValues: { ":s": { S: id }, ":p": { S: "p#" } }
          }))
        )
        const part = parts.Items![1]!
        const bytes = new Uint8Array(part.b!.B!)
        // Still valid JSON ("c" -> "d"): without the checksum this would load a wrong state.
        bytes[10] = "d".charCodeAt(0)
        yield* Effect.promise(() => sdk.send(new PutItemCommand({ TableName: tableName, Item: { ...part, b: { B: bytes } } })))
        const e = fail(yield* Effect.exit(store.load(id)))
        assert.deepInclude(e, { _tag: "CorruptedSnapshotError", streamId: id, version: 42 })
        assert.match(e.message, /checksum/)
      }), { partBytes: 10_000 }))

  it.live("loading costs one Query for a small snapshot and two for a large one", () =>
    instrumented(({ recorder }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const small = streamId()
        const large = streamId()
        yield* store.save(small, { version: 1, state: { n: 1 } })
        yield* store.save(large, { version: 1, state: stringOfJsonBytes(1_000_000, "l") })
        recorder.clear()
        yield* store.load(small)
        assert.deepStrictEqual(recorder.commands, ["Query"])
        recorder.clear()
        yield* store.load(large)
        assert.deepStrictEqual(recorder.commands, ["Query", "Query"])
      })))

  it.live("gzip stores fewer bytes and loads the same state", () =>
    instrumented(({ sdk, tableName }) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        const id = streamId()
        const state = Array.from({ length: 5_000 }, (_, i) => ({ id: i, name: `customer ${i}`, active: i % 2 === 0 }))
        yield* store.save(id, { version: 1, state })
        assert.deepStrictEqual(Option.getOrThrow(yield* store.load(id)).state, state)
        const header = yield* Effect.promise(() =>
          sdk.send(new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: "s = :s AND begins_with(k, :h)",
            ExpressionAttributeValues: { ":s": { S: id }, ":h": { S: "h#" } }
          }))
        )
        const stored = Number(header.Items![0]!.z!.N)
        assert.isBelow(stored, JSON.stringify(state).length / 3)
        assert.strictEqual(header.Items![0]!.e!.S, "g")
      }), { compression: "gzip" }))

  it.live("layerConfig reads table, retention and compression from the environment and refuses bad values", () =>
    Effect.gen(function*() {
      const tableName = Fixtures.uniqueTableName("snapcfg")
      const withEnv = (env: Record<string, string>) =>
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
      const env = { DYNAMO_ES_SNAPSHOTS_TABLE: tableName, DYNAMO_ES_SNAPSHOTS_KEEP: "1", DYNAMO_ES_SNAPSHOTS_COMPRESSION: "gzip" }
      yield* Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        yield* store.save("cfg", { version: 1, state: "one" })
        yield* store.save("cfg", { version: 2, state: "two" })
        assert.isTrue(Option.isNone(yield* store.load("cfg", { atOrBefore: 1 })), "keepLast 1 from the environment")
        assert.strictEqual(Option.getOrThrow(yield* store.load("cfg")).state, "two")
      }).pipe(Effect.provide(DynamoSnapshotStore.layerConfig()), withEnv(env))
      for (const bad of [{ DYNAMO_ES_SNAPSHOTS_KEEP: "0" }, { DYNAMO_ES_SNAPSHOTS_COMPRESSION: "zip" }]) {
        const e = fail(yield* Effect.exit(SnapshotStore.SnapshotStore.pipe(
          Effect.provide(DynamoSnapshotStore.layerConfig()),
          withEnv({ ...env, ...bad })
        )))
        assert.strictEqual(e._tag, "ConfigError")
      }
      yield* Tables.deleteTables([tableName])
    }).pipe(Effect.provide(client)))
})

describe("DynamoSnapshotStore options", () => {
  it.live("options are decoded with a Schema: misuse dies with a message naming the option, before any request", () =>
    Effect.gen(function*() {
      const died = (options: Record<string, unknown>) =>
        Effect.exit(DynamoSnapshotStore.makeStorage("snapshots", options as DynamoSnapshotStore.DynamoSnapshotStorageOptions)).pipe(
          Effect.map((exit) => (Exit.isFailure(exit) && Cause.hasDies(exit.cause) ? String(Cause.squash(exit.cause)) : ""))
        )
      const provided = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, client)
      assert.match(yield* provided(died({ partBytes: 0 })), /DynamoSnapshotStore: invalid options: .*integer from 1 to 399000/s)
      assert.match(yield* provided(died({ partBytes: "big" })), /DynamoSnapshotStore: invalid options/)
      assert.match(yield* provided(died({ compression: "zip" })), /DynamoSnapshotStore: invalid options/)
      assert.match(yield* provided(died({ orphanGracePeriod: "soon" })), /DynamoSnapshotStore: invalid options: .*Duration/s)
    }))
})

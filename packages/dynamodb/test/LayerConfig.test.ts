/**
 * `layerConfig` of the client and the three stores: options as Effect `Config`s
 * (`Config.Wrap`, as Effect's own drivers take them), read through the current
 * `ConfigProvider`, here one built from a plain map; and the environment-variable
 * configuration they read when called without an argument.
 */
import { ListTablesCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { EventStore, ReadModel, SnapshotStore } from "@dynamo-es/core"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Config, ConfigProvider, Effect, Layer, Option, Schema } from "effect"
import { hostname } from "node:os"
import { DynamoClient, DynamoEventStore, DynamoReadModelStore, DynamoSnapshotStore, Tables } from "../src/index.js"
import { failure } from "./faultHelpers.js"

const local = DynamoDBLocal.layer()
const client = Fixtures.layerClientFor().pipe(Layer.provide(local))

const withMap = (map: Record<string, unknown>) => Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown(map))
const withEnv = (env: Record<string, string>) => Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

/** The client reaches DynamoDB Local: the tables it lists, as it sees them. */
const listTables = Effect.gen(function*() {
  const c = yield* DynamoClient.DynamoClient
  return yield* DynamoClient.unconditional(c.call("ListTables", undefined, (sdk) => sdk.send(new ListTablesCommand({}))))
})

describe("layerConfig", { timeout: 60_000 }, () => {
  it.live("DynamoClient.layerConfig takes a Config per option (nested credentials included)", () =>
    Effect.gen(function*() {
      const connection = yield* DynamoDBLocal.DynamoDBLocal
      const layer = DynamoClient.layerConfig({
        endpoint: Config.String("endpoint"),
        region: Config.String("region"),
        credentials: { accessKeyId: Config.String("keyId"), secretAccessKey: Config.Redacted("secret") }
      })
      const map = {
        endpoint: connection.endpoint,
        region: connection.region,
        keyId: connection.credentials.accessKeyId,
        secret: connection.credentials.secretAccessKey
      }
      const result = yield* listTables.pipe(Effect.provide(layer), withMap(map))
      assert.isArray(result.TableNames)
      // A missing value fails the layer with a ConfigError that names it.
      const { region: _, ...withoutRegion } = map
      const e = failure(yield* Effect.exit(listTables.pipe(Effect.provide(layer), withMap(withoutRegion))))
      assert.strictEqual(e._tag, "ConfigError")
      assert.match(String(e), /region/)
    }).pipe(Effect.provide(local)))

  it.live("DynamoClient.layerConfig takes one Config of all options, and reads the environment without an argument", () =>
    Effect.gen(function*() {
      const connection = yield* DynamoDBLocal.DynamoDBLocal
      const whole = Config.all({ endpoint: Config.String("DDB"), region: Config.succeed(connection.region) }).pipe(
        Config.map((o) => ({ ...o, credentials: connection.credentials }))
      )
      assert.isArray((yield* listTables.pipe(Effect.provide(DynamoClient.layerConfig(whole)), withMap({ DDB: connection.endpoint }))).TableNames)
      // envConfig: a DYNAMODB_ENDPOINT needs no region or keys.
      const options = yield* DynamoClient.envConfig.pipe(withEnv({ DYNAMODB_ENDPOINT: ` ${connection.endpoint} ` }))
      assert.deepStrictEqual(options, {
        endpoint: connection.endpoint,
        region: DynamoClient.localDefaults.region,
        credentials: { accessKeyId: DynamoClient.localDefaults.accessKeyId, secretAccessKey: DynamoClient.localDefaults.secretAccessKey }
      })
      assert.isArray(
        (yield* listTables.pipe(Effect.provide(DynamoClient.layerConfig()), withEnv({ DYNAMODB_ENDPOINT: connection.endpoint }))).TableNames
      )
    }).pipe(Effect.provide(local)))

  it.live("one rule for every entry point: an endpoint on any host gets the local defaults, in the client and in DynamoDBLocal alike", () =>
    Effect.gen(function*() {
      const connection = yield* DynamoDBLocal.DynamoDBLocal
      // The same DynamoDB Local, reached through this machine's name instead of 127.0.0.1
      // (as from another container): no AWS variables needed either.
      const remote = connection.endpoint.replace("127.0.0.1", hostname())
      assert.notStrictEqual(remote, connection.endpoint)
      const env = { DYNAMODB_ENDPOINT: remote }
      const options = yield* DynamoClient.envConfig.pipe(withEnv(env))
      assert.deepStrictEqual(options, {
        endpoint: remote,
        region: DynamoClient.localDefaults.region,
        credentials: { accessKeyId: DynamoClient.localDefaults.accessKeyId, secretAccessKey: DynamoClient.localDefaults.secretAccessKey }
      })
      assert.isArray((yield* listTables.pipe(Effect.provide(DynamoClient.layerConfig()), withEnv(env))).TableNames)
      // DynamoDBLocal reads the same variables with the same rule: the same connection.
      const viaLocal = yield* DynamoDBLocal.DynamoDBLocal.pipe(Effect.provide(DynamoDBLocal.layer()), withEnv(env))
      assert.deepStrictEqual(viaLocal, {
        endpoint: remote,
        region: options.region!,
        credentials: { accessKeyId: DynamoClient.localDefaults.accessKeyId, secretAccessKey: DynamoClient.localDefaults.secretAccessKey },
        started: false
      })
      // Each variable that is set wins over its default, one by one.
      const some = yield* DynamoClient.envConfig.pipe(withEnv({ ...env, AWS_REGION: "eu-west-1", AWS_ACCESS_KEY_ID: "someone" }))
      assert.strictEqual(some.region, "eu-west-1")
      assert.deepStrictEqual(some.credentials, { accessKeyId: "someone", secretAccessKey: DynamoClient.localDefaults.secretAccessKey })
    }).pipe(Effect.provide(local)))

  it.effect("without DYNAMODB_ENDPOINT nothing is invented, and each config mistake is a ConfigError naming its variable", () =>
    Effect.gen(function*() {
      // AWS itself: unset region and keys are left to the SDK (profile, credential chain).
      assert.deepStrictEqual(yield* DynamoClient.envConfig.pipe(withEnv({})), {
        endpoint: undefined,
        region: undefined,
        credentials: undefined
      })
      const aws = yield* DynamoClient.envConfig.pipe(
        withEnv({ AWS_REGION: "eu-west-1", AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "secret" })
      )
      assert.strictEqual(aws.region, "eu-west-1")
      assert.strictEqual(aws.credentials?.accessKeyId, "AKIDEXAMPLE")

      const configError = (env: Record<string, string>) =>
        DynamoClient.envConfig.pipe(withEnv(env), Effect.flip, Effect.map((e) => {
          assert.strictEqual(e._tag, "ConfigError")
          return e.message
        }))
      for (const endpoint of ["nope", "localhost:8000", "ftp://localhost:8000", "http://"]) {
        assert.match(yield* configError({ DYNAMODB_ENDPOINT: endpoint }), /DYNAMODB_ENDPOINT must be an http\(s\) URL such as http:\/\/localhost:8000/)
      }
      assert.match(yield* configError({ AWS_ACCESS_KEY_ID: "AKIDEXAMPLE" }), /AWS_SECRET_ACCESS_KEY is not set but AWS_ACCESS_KEY_ID is/)
      assert.match(yield* configError({ AWS_SECRET_ACCESS_KEY: "secret" }), /AWS_ACCESS_KEY_ID is not set but AWS_SECRET_ACCESS_KEY is/)
      // A blank endpoint is an unset one.
      assert.strictEqual((yield* DynamoClient.envConfig.pipe(withEnv({ DYNAMODB_ENDPOINT: "  " }))).endpoint, undefined)
    }))

  it.live("the stores' layerConfig take their options as Configs, and read DYNAMO_ES_* without an argument", () =>
    Effect.gen(function*() {
      const events = Fixtures.uniqueTableName("cfgevents")
      const models = Fixtures.uniqueTableName("cfgmodels")
      const snapshots = Fixtures.uniqueTableName("cfgsnaps")
      const map = { events, models, snapshots, keep: 1 }

      const append = EventStore.EventStore.use((s) =>
        s.append("cfg-1", [{ type: "Noted", payload: {} }], { expectedVersion: "noStream" })
      )
      assert.strictEqual(
        (yield* append.pipe(Effect.provide(DynamoEventStore.layerConfig({ tableName: Config.String("events") })), withMap(map))).version,
        1
      )
      // The same table through the environment configuration: the stream is there.
      const version = yield* EventStore.EventStore.use((s) => s.version("cfg-1")).pipe(
        Effect.provide(DynamoEventStore.layerConfig()),
        withEnv({ DYNAMO_ES_EVENTS_TABLE: events })
      )
      assert.strictEqual(version, 1)

      const Model = Schema.Struct({ id: Schema.String })
      const saveAndFind = Effect.gen(function*() {
        const repo = yield* ReadModel.repository("things", Model)
        yield* repo.save({ id: "t-1" })
        return yield* repo.find("t-1")
      })
      assert.isTrue(Option.isSome(
        yield* saveAndFind.pipe(Effect.provide(DynamoReadModelStore.layerConfig({ tableName: Config.String("models") })), withMap(map))
      ))
      assert.isTrue(Option.isSome(
        yield* ReadModel.repository("things", Model).pipe(
          Effect.flatMap((repo) => repo.find("t-1")),
          Effect.provide(DynamoReadModelStore.layerConfig()),
          withEnv({ DYNAMO_ES_READ_MODELS_TABLE: models })
        )
      ))

      const twoSaves = Effect.gen(function*() {
        const store = yield* SnapshotStore.SnapshotStore
        yield* store.save("cfg", { version: 1, state: "one" })
        yield* store.save("cfg", { version: 2, state: "two" })
        return yield* store.load("cfg", { atOrBefore: 1 })
      })
      const snapshotLayer = DynamoSnapshotStore.layerConfig({
        tableName: Config.String("snapshots"),
        keepLast: Config.Int("keep"),
        compression: Config.succeed("gzip" as const)
      })
      assert.isTrue(Option.isNone(yield* twoSaves.pipe(Effect.provide(snapshotLayer), withMap(map))), "keepLast 1 from the map")
      const e = failure(yield* Effect.exit(twoSaves.pipe(Effect.provide(snapshotLayer), withMap({ ...map, keep: "many" }))))
      assert.strictEqual(e._tag, "ConfigError")

      yield* Tables.deleteTables([events, models, snapshots])
    }).pipe(Effect.provide(client)))
})

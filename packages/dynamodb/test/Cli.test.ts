/**
 * The `dynamo-es` command, run as a user runs it (a child process with the environment),
 * against the run's DynamoDB Local.
 */
import { assert, describe, layer } from "@effect/vitest"
import { EventLog, EventStore, Projection } from "@dynamo-es/core"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer, Schema } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { DynamoEventLog, DynamoEventStore, DynamoReadModelStore, DynamoSequencer } from "../src/index.js"
import { fast, freshTables } from "./logHelpers.js"

const bin = fileURLToPath(new URL("../src/bin/dynamo-es.ts", import.meta.url))

const cli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(process.execPath, ["--import", "tsx", bin, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : (child.exitCode ?? 1), stdout, stderr })))
  })

describe("dynamo-es projection status", () => {
  layer(Layer.provideMerge(Fixtures.layerClientFor(), DynamoDBLocal.layer()), { timeout: 90_000, excludeTestServices: true })((it) => {
    it.effect("prints each projection's checkpoint, the log's head, the lag and the lease holder", () =>
      Effect.gen(function*() {
        const local = yield* DynamoDBLocal.DynamoDBLocal
        const { eventsTable, logTable } = yield* freshTables
        const readModelsTable = yield* Fixtures.scopedTable(DynamoReadModelStore.readModelsTable(Fixtures.uniqueTableName("rm")))
        yield* Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const log = yield* EventLog.EventLog
          yield* store.append("acc-1", [1, 2, 3].map((amount) => ({ type: "Deposited", payload: { amount } })), { expectedVersion: "noStream" })
          yield* log.head.pipe(Effect.repeat({ until: (head) => head >= 3 }))
          const counts = Projection.make({
            name: "counts",
            events: Schema.Struct({ amount: Schema.Number }),
            readModels: { counts: Projection.readModel("counts", Schema.Struct({ id: Schema.String, n: Schema.Number })) },
            handle: (event, { counts }) => counts.save({ id: event.streamId, n: event.version })
          })
          yield* Projection.run(counts, { until: "caughtUp" }).pipe(Effect.provide(DynamoReadModelStore.layerExisting({ tableName: readModelsTable })))
          yield* store.append("acc-1", [{ type: "Deposited", payload: { amount: 4 } }], { expectedVersion: 3 })
          yield* log.head.pipe(Effect.repeat({ until: (head) => head >= 4 }))
        }).pipe(
          Effect.provide(Layer.mergeAll(
            DynamoEventStore.layerExisting({ tableName: eventsTable }),
            DynamoEventLog.layer({ eventsTable, logTable, pollInterval: "20 millis" }),
            DynamoSequencer.layer({ eventsTable, logTable, ...fast })
          ))
        )
        const env = {
          DYNAMODB_ENDPOINT: local.endpoint,
          AWS_REGION: local.region,
          AWS_ACCESS_KEY_ID: local.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: local.credentials.secretAccessKey,
          DYNAMO_ES_READ_MODELS_TABLE: readModelsTable,
          DYNAMO_ES_EVENTS_TABLE: eventsTable,
          DYNAMO_ES_LOG_TABLE: logTable
        }
        const all = yield* cli(["projection", "status"], env)
        assert.strictEqual(all.code, 0, all.stderr)
        assert.strictEqual(all.stdout.trim(), "counts: position 3 of 4, lag 1, no runner")
        const missing = yield* cli(["projection", "status", "--name", "other"], env)
        assert.strictEqual(missing.stdout.trim(), "other: position 0 of 4, lag 4, no runner")
      }))
  })
})

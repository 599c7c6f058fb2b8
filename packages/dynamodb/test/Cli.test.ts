/**
 * The `dynamo-es` command, run as a user runs it (a child process with the environment),
 * against the run's DynamoDB Local.
 */
import { assert, describe, layer } from "@effect/vitest"
import { EventLog, EventStore, Projection, ReadModel } from "@dynamo-es/core"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer, Stream } from "effect"
import { execFile, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { DynamoEventLog, DynamoEventStore, DynamoReadModelStore, DynamoSequencer } from "../src/index.js"
import { counts, Count } from "./fixtures/cliProjections.js"
import { fast, freshTables } from "./logHelpers.js"

const bin = fileURLToPath(new URL("../src/bin/dynamo-es.ts", import.meta.url))
const module = fileURLToPath(new URL("./fixtures/cliProjections.ts", import.meta.url))

const cli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(process.execPath, ["--import", "tsx", bin, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : (child.exitCode ?? 1), stdout, stderr })))
  })

/** Fresh events, log and read-model tables, and the environment the bin reads to use them on DynamoDB Local. */
const cliTables = Effect.gen(function*() {
  const local = yield* DynamoDBLocal.DynamoDBLocal
  const { eventsTable, logTable } = yield* freshTables
  const readModelsTable = yield* Fixtures.scopedTable(DynamoReadModelStore.readModelsTable(Fixtures.uniqueTableName("rm")))
  const env = {
    DYNAMODB_ENDPOINT: local.endpoint,
    AWS_REGION: local.region,
    AWS_ACCESS_KEY_ID: local.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: local.credentials.secretAccessKey,
    DYNAMO_ES_READ_MODELS_TABLE: readModelsTable,
    DYNAMO_ES_EVENTS_TABLE: eventsTable,
    DYNAMO_ES_LOG_TABLE: logTable
  }
  return { env, eventsTable, logTable, readModelsTable }
})

describe("dynamo-es projection status", () => {
  layer(Layer.provideMerge(Fixtures.layerClientFor(), DynamoDBLocal.layer()), { timeout: 90_000, excludeTestServices: true })((it) => {
    it.effect("prints each projection's checkpoint, the log's head, the lag and the lease holder", () =>
      Effect.gen(function*() {
        const { env, eventsTable, logTable, readModelsTable } = yield* cliTables
        yield* Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const log = yield* EventLog.EventLog
          yield* store.append("acc-1", [1, 2, 3].map((amount) => ({ type: "Deposited", payload: { amount } })), { expectedVersion: "noStream" })
          yield* log.head.pipe(Effect.repeat({ until: (head) => head >= 3 }))
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
        const all = yield* cli(["projection", "status"], env)
        assert.strictEqual(all.code, 0, all.stderr)
        assert.strictEqual(all.stdout.trim(), "counts: position 3 of 4, lag 1, no runner")
        const missing = yield* cli(["projection", "status", "--name", "other"], env)
        assert.strictEqual(missing.stdout.trim(), "other: position 0 of 4, lag 4, no runner")
      }))
  })
})

/** The bin in the background: its stdout as it comes, and a way to stop it. */
const background = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, ["--import", "tsx", bin, ...args], { env: { ...process.env, ...env } })
      let stdout = ""
      child.stdout.on("data", (chunk) => (stdout += String(chunk)))
      return { child, stdout: () => stdout }
    }),
    ({ child }) => Effect.sync(() => child.kill())
  )

const lines = (text: string) => text.trim().split("\n").filter((l) => l !== "")

describe("dynamo-es log tail, stream read, projection rebuild", () => {
  layer(Layer.provideMerge(Fixtures.layerClientFor(), DynamoDBLocal.layer()), { timeout: 120_000, excludeTestServices: true })((it) => {
    it.effect("tail the log (then follow it), read a stream, rebuild a projection from a module into version 2 and drop version 1", () =>
      Effect.gen(function*() {
        const { env, eventsTable, logTable, readModelsTable } = yield* cliTables
        const readModels = DynamoReadModelStore.layerExisting({ tableName: readModelsTable })
        yield* Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const log = yield* EventLog.EventLog
          yield* store.append("acc-1", [1, 2, 3].map((amount) => ({ type: "Deposited", payload: { amount } })), { expectedVersion: "noStream" })
          yield* store.append("acc-2", [4, 5].map((amount) => ({ type: "Deposited", payload: { amount } })), { expectedVersion: "noStream" })
          yield* log.head.pipe(Effect.repeat({ until: (head) => head >= 5 }))
          yield* Projection.run(counts, { until: "caughtUp" }).pipe(Effect.provide(readModels))

          const tail = yield* cli(["log", "tail", "--last", "2"], env)
          assert.strictEqual(tail.code, 0, tail.stderr)
          const tailed = lines(tail.stdout)
          assert.strictEqual(tailed.length, 2)
          assert.deepStrictEqual(tailed.map((l) => Number(l.split(" ")[0])), [4, 5])
          assert.match(tailed[1]!, /^5 acc-2@2 Deposited \{"amount":5\}$/)

          const read = yield* cli(["stream", "read", "acc-1"], env)
          assert.strictEqual(read.code, 0, read.stderr)
          assert.deepStrictEqual(lines(read.stdout), [1, 2, 3].map((v) => `acc-1@${v} Deposited {"amount":${v}}`))
          assert.deepStrictEqual(lines((yield* cli(["stream", "read", "acc-1", "--from", "3"], env)).stdout), [`acc-1@3 Deposited {"amount":3}`])
          assert.deepStrictEqual(lines((yield* cli(["stream", "read", "acc-1", "--last", "1"], env)).stdout), [`acc-1@3 Deposited {"amount":3}`])

          // --follow prints what is appended after it started.
          const follower = yield* background(["log", "tail", "--last", "1", "--follow"], env)
          while (lines(follower.stdout()).length < 1) yield* Effect.sleep("50 millis")
          yield* store.append("acc-2", [{ type: "Deposited", payload: { amount: 6 } }], { expectedVersion: 2 })
          while (lines(follower.stdout()).length < 2) yield* Effect.sleep("50 millis")
          assert.deepStrictEqual(lines(follower.stdout()), [`5 acc-2@2 Deposited {"amount":5}`, `6 acc-2@3 Deposited {"amount":6}`])

          // The rebuild: progress lines (stdout is not a terminal), the switch, the drop.
          const rebuild = yield* cli(["projection", "rebuild", "counts", "--module", module, "--drop-after", "0"], env)
          assert.strictEqual(rebuild.code, 0, rebuild.stderr)
          const out = lines(rebuild.stdout)
          assert.match(out[0]!, /^counts@2: position \d+ of 6, lag \d+, \d+ events applied, \d+ events\/s$/)
          assert.include(out, "counts: version 2 is active (was 1); 6 events applied.")
          assert.match(out.at(-1)!, /^Dropped version 1: 2 rows deleted\.$/)
          const after = yield* Effect.gen(function*() {
            const readers = yield* Projection.readers(counts, { cacheTtl: "0 millis" })
            const v1 = yield* ReadModel.repository("counts", Count)
            return {
              version: yield* Projection.activeVersion("counts"),
              rows: yield* Stream.runCollect(readers.counts.findAll()),
              v1: yield* Stream.runCollect(v1.findAll())
            }
          }).pipe(Effect.provide(readModels))
          assert.deepStrictEqual(after, { version: 2, rows: [{ id: "acc-1", n: 3 }, { id: "acc-2", n: 3 }], v1: [] })
          // projection status: the active version, then each checkpoint (not the lock row that
          // applyEvents' transactional mode keeps in the same partition).
          yield* Projection.applyEvents({ ...counts, name: "lambda" }, yield* Stream.runCollect(log.readAll()), { mode: "transactional" }).pipe(
            Effect.provide(readModels)
          )
          const status = yield* cli(["projection", "status"], env)
          assert.deepStrictEqual([status.code, status.stderr], [0, ""])
          assert.deepStrictEqual(lines(status.stdout), [
            "counts: version 2 is active",
            "counts@2: position 6 of 6, lag 0, no runner"
          ])

          // On a terminal (a pseudo-terminal from `script`): a progress bar redrawn in place.
          const tty = yield* Effect.callback<string>((resume) => {
            const command = [process.execPath, "--import", "tsx", bin, "projection", "rebuild", "counts", "--module", module, "--version", "3"].join(" ")
            execFile("script", ["-qec", command, "/dev/null"], { env: { ...process.env, ...env }, timeout: 60_000 }, (_, stdout) => resume(Effect.succeed(stdout)))
          })
          assert.match(tty, /\rcounts@3 \[#{30}\] 100% 6\/6 \d+ events\/s/)
          assert.include(tty, "counts: version 3 is active (was 2); 6 events applied.")

          // Usage errors: one line, nothing done.
          const noModule = yield* cli(["projection", "rebuild", "counts"], env)
          assert.strictEqual(noModule.code, 1)
          assert.match(noModule.stderr, /^dynamo-es: projection rebuild needs --module FILE/)
          const unknown = yield* cli(["projection", "rebuild", "other", "--module", module], env)
          assert.match(unknown.stderr, /^dynamo-es: --module .* exports no projection named "other" \(it exports: counts\)\n$/)
          const misplaced = yield* cli(["stream", "read", "acc-1", "--follow"], env)
          assert.match(misplaced.stderr, /^dynamo-es: --follow is an option of log tail; usage/)
          assert.strictEqual(yield* Projection.activeVersion("counts").pipe(Effect.provide(readModels)), 3)
        }).pipe(
          Effect.provide(Layer.mergeAll(
            DynamoEventStore.layerExisting({ tableName: eventsTable }),
            DynamoEventLog.layer({ eventsTable, logTable, pollInterval: "20 millis" }),
            DynamoSequencer.layer({ eventsTable, logTable, ...fast })
          ))
        )
      }))
  })
})

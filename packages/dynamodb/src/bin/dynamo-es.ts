#!/usr/bin/env node
/**
 * The `dynamo-es` command of `@dynamo-es/dynamodb`.
 *
 *   dynamo-es tables print  [--events NAME] [--snapshots NAME] [--read-models NAME] [--log NAME]
 *   dynamo-es tables create [...same flags]
 *   dynamo-es projection status [--name NAME] [--read-models NAME] [--events NAME] [--log NAME]
 *
 * `print` writes the table definitions as CloudFormation JSON (a `Resources` object);
 * `create` creates the missing tables and waits until they are ACTIVE. Configured like
 * every entry point of the library (`DynamoClient.layerConfig()`): `DYNAMODB_ENDPOINT`,
 * `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, and the table names
 * `DYNAMO_ES_EVENTS_TABLE`, `DYNAMO_ES_SNAPSHOTS_TABLE`, `DYNAMO_ES_READ_MODELS_TABLE`,
 * `DYNAMO_ES_LOG_TABLE` (the global log).
 * `projection status` prints, per projection (one, or every one with a checkpoint in the
 * read-models table), its checkpoint, the log's head, the lag and the runner holding it.
 * A failure prints one line that says what to do, and exits with status 1.
 */
import { Projection, ReadModel, EventLog } from "@dynamo-es/core"
import { Cause, Console, Effect, Exit, Option, Stream } from "effect"
import * as DynamoClient from "../DynamoClient.js"
import * as DynamoEventLog from "../DynamoEventLog.js"
import * as DynamoReadModelStore from "../DynamoReadModelStore.js"
import * as DynamoSnapshotStore from "../DynamoSnapshotStore.js"
import * as Tables from "../Tables.js"

const usage = `usage: dynamo-es tables print|create [--events NAME] [--snapshots NAME] [--read-models NAME] [--log NAME]
       dynamo-es projection status [--name NAME] [--read-models NAME] [--events NAME] [--log NAME]`

const args = process.argv.slice(2)
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}

const definitions = () => [
  Tables.eventsTable(flag("events", process.env["DYNAMO_ES_EVENTS_TABLE"] ?? "events")),
  DynamoSnapshotStore.snapshotsTable(flag("snapshots", process.env["DYNAMO_ES_SNAPSHOTS_TABLE"] ?? "snapshots")),
  DynamoReadModelStore.readModelsTable(flag("read-models", process.env["DYNAMO_ES_READ_MODELS_TABLE"] ?? "read-models")),
  Tables.logTable(flag("log", process.env["DYNAMO_ES_LOG_TABLE"] ?? "log"))
]

class UsageError {
  readonly _tag = "UsageError"
  constructor(readonly message: string) {}
}

/** One line per projection: checkpoint, head, lag, lease holder. */
const projectionStatus = Effect.gen(function*() {
  const readModelsTable = flag("read-models", process.env["DYNAMO_ES_READ_MODELS_TABLE"] ?? "read-models")
  const storage = yield* DynamoReadModelStore.makeStorage(readModelsTable)
  const store = yield* ReadModel.make(storage)
  const log = yield* DynamoEventLog.make({
    eventsTable: flag("events", process.env["DYNAMO_ES_EVENTS_TABLE"] ?? "events"),
    logTable: flag("log", process.env["DYNAMO_ES_LOG_TABLE"] ?? "log")
  })
  const only = flag("name", "")
  const names = only !== ""
    ? [only]
    : yield* Stream.runCollect(
      Stream.paginate(undefined as string | undefined, (start) =>
        Effect.map(
          storage.queryPage(Projection.CHECKPOINTS, { consistentRead: true, limit: undefined, exclusiveStartId: start }),
          (page) => [page.rows.map((row) => row.id), Option.fromUndefinedOr(page.lastEvaluatedId)] as const
        ))
    )
  if (names.length === 0) return yield* Console.log(`No projection has a checkpoint in ${readModelsTable}.`)
  for (const name of names) {
    const s = yield* Projection.status(name).pipe(
      Effect.provideService(EventLog.EventLog, log),
      Effect.provideService(ReadModel.ReadModelStore, store)
    )
    const holder = Option.match(s.owner, {
      onNone: () => "no runner",
      onSome: (owner) => `held by ${owner} until ${Option.getOrThrow(s.leaseExpiresAt).toISOString()}`
    })
    yield* Console.log(`${s.projection}: position ${s.position} of ${s.head}, lag ${s.lag}, ${holder}`)
  }
})

const program: Effect.Effect<void, unknown> = Effect.gen(function*() {
  const [group, command] = args
  if (group === "projection" && command === "status") {
    return yield* projectionStatus.pipe(Effect.provide(DynamoClient.layerConfig()))
  }
  if (group !== "tables") return yield* Effect.fail(new UsageError(usage))
  if (command === "print") {
    return yield* Console.log(JSON.stringify({ Resources: Tables.cloudFormation(definitions()) }, null, 2))
  }
  if (command === "create") {
    const created = yield* Tables.ensureTables(definitions()).pipe(Effect.provide(DynamoClient.layerConfig()))
    return yield* Console.log(created.length === 0 ? "All tables exist already." : `Created: ${created.join(", ")}`)
  }
  return yield* Effect.fail(new UsageError(usage))
})

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

Effect.runPromiseExit(program).then((exit) => {
  if (Exit.isSuccess(exit)) return
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  console.error(`dynamo-es: ${failure === undefined ? Cause.pretty(exit.cause) : messageOf(failure.error)}`)
  process.exitCode = 1
})

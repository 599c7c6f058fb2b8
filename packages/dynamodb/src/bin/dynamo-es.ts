#!/usr/bin/env node
/**
 * The `dynamo-es` command of `@dynamo-es/dynamodb`.
 *
 *   dynamo-es tables print  [--events NAME] [--snapshots NAME] [--read-models NAME] [--log NAME]
 *                           [--sequencer-function NAME]
 *   dynamo-es tables create [...same flags]
 *   dynamo-es log backfill  [--events NAME] [--log NAME] [--segments N]
 *
 * `print` writes the table definitions as CloudFormation JSON (a `Resources` object); with
 * `--sequencer-function` (the name or ARN of a function exporting
 * `DynamoSequencer.lambdaHandler`) also the event source mapping of that function on the
 * events table's stream (`DynamoSequencer.eventSourceMapping`);
 * `create` creates the missing tables and waits until they are ACTIVE. Configured like
 * every entry point of the library (`DynamoClient.layerConfig()`): `DYNAMODB_ENDPOINT`,
 * `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, and the table names
 * `DYNAMO_ES_EVENTS_TABLE`, `DYNAMO_ES_SNAPSHOTS_TABLE`, `DYNAMO_ES_READ_MODELS_TABLE`,
 * `DYNAMO_ES_LOG_TABLE` (the global log).
 * `log backfill` indexes into the global log every event of the events table that is not in
 * it yet (`DynamoSequencer.repairScan`, a parallel `Scan`): for a table whose history
 * predates the log. Safe to run while the sequencer runs; what is indexed is dropped.
 * A failure prints one line that says what to do, and exits with status 1.
 */
import { Cause, Console, Effect, Exit } from "effect"
import * as DynamoClient from "../DynamoClient.js"
import * as DynamoReadModelStore from "../DynamoReadModelStore.js"
import * as DynamoSequencer from "../DynamoSequencer.js"
import * as DynamoSnapshotStore from "../DynamoSnapshotStore.js"
import * as Tables from "../Tables.js"

const usage = [
  `usage: dynamo-es tables print|create [--events NAME] [--snapshots NAME] [--read-models NAME] [--log NAME] [--sequencer-function NAME (print)]`,
  `       dynamo-es log backfill [--events NAME] [--log NAME] [--segments N]`
].join("\n")

const args = process.argv.slice(2)
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}

const eventsTableName = () => flag("events", process.env["DYNAMO_ES_EVENTS_TABLE"] ?? "events")

const logTableName = () => flag("log", process.env["DYNAMO_ES_LOG_TABLE"] ?? "log")

const definitions = () => [
  Tables.eventsTable(eventsTableName()),
  DynamoSnapshotStore.snapshotsTable(flag("snapshots", process.env["DYNAMO_ES_SNAPSHOTS_TABLE"] ?? "snapshots")),
  DynamoReadModelStore.readModelsTable(flag("read-models", process.env["DYNAMO_ES_READ_MODELS_TABLE"] ?? "read-models")),
  Tables.logTable(logTableName())
]

class UsageError {
  readonly _tag = "UsageError"
  constructor(readonly message: string) {}
}

const program: Effect.Effect<void, unknown> = Effect.gen(function*() {
  const [group, command] = args
  if (group === "log" && command === "backfill") {
    const segments = Number(flag("segments", "4"))
    if (!Number.isSafeInteger(segments) || segments < 1) return yield* Effect.fail(new UsageError(usage))
    return yield* Effect.gen(function*() {
      const core = yield* DynamoSequencer.makeCore({ eventsTable: eventsTableName(), logTable: logTableName() })
      yield* core.load
      const before = core.next
      yield* DynamoSequencer.repairScan(core, { segments })
      yield* core.flush
      yield* Console.log(`Indexed ${core.next - before} events; the log holds ${core.next - 1}.`)
    }).pipe(Effect.provide(DynamoClient.layerConfig()))
  }
  if (group !== "tables") return yield* Effect.fail(new UsageError(usage))
  if (command === "print") {
    const sequencer = flag("sequencer-function", "")
    const mapping = sequencer === "" ? {} : DynamoSequencer.eventSourceMapping({ eventsTable: eventsTableName(), functionName: sequencer })
    return yield* Console.log(JSON.stringify({ Resources: { ...Tables.cloudFormation(definitions()), ...mapping } }, null, 2))
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

#!/usr/bin/env node
/**
 * The `dynamo-es` command of `@dynamo-es/dynamodb`.
 *
 *   dynamo-es tables print  [--events NAME] [--snapshots NAME] [--read-models NAME] [--log NAME]
 *                           [--sequencer-function NAME]
 *   dynamo-es tables create [...same flags]
 *   dynamo-es log backfill  [--events NAME] [--log NAME] [--segments N]
 *   dynamo-es projection status [--name NAME]
 *
 * `print` writes the table definitions as CloudFormation JSON (a `Resources` object); with
 * `--sequencer-function` (the name or ARN of a function exporting
 * `DynamoSequencer.lambdaHandler`) also the event source mapping of that function on the
 * events table's stream (`DynamoSequencer.eventSourceMapping`);
 * `create` creates the missing tables and waits until they are ACTIVE. Configured like
 * every entry point of the library (`DynamoClient.layerConfig()`, which reads
 * `DynamoClient.envConfig`): `DYNAMODB_ENDPOINT`, `AWS_REGION`,
 * `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, and the table names of the stores' own
 * `envConfig`: `DYNAMO_ES_EVENTS_TABLE`, `DYNAMO_ES_SNAPSHOTS_TABLE`,
 * `DYNAMO_ES_READ_MODELS_TABLE`, and `DYNAMO_ES_LOG_TABLE` (the global log; a flag wins over its
 * variable). `projection status [--name NAME]` prints, per projection (one, or every one with a
 * checkpoint in the read-models table), its checkpoint, the log's head, the lag and the runner
 * holding it. `log backfill` indexes into the global log every event of the events table that
 * is not in it yet (`DynamoSequencer.repairScan`, a parallel `Scan`): for a table whose history
 * predates the log; safe to run while the sequencer runs. Unknown flags and table
 * names DynamoDB would refuse are usage errors. A failure prints one line that says what
 * to do, and exits with status 1.
 */
import { EventLog, Projection, ReadModel } from "@dynamo-es/core"
import { Cause, Config, Console, Data, Effect, Exit, Option, Predicate, Stream } from "effect"
import { parseArgs } from "node:util"
import * as DynamoClient from "../DynamoClient.js"
import * as DynamoEventLog from "../DynamoEventLog.js"
import * as DynamoEventStore from "../DynamoEventStore.js"
import * as DynamoReadModelStore from "../DynamoReadModelStore.js"
import * as DynamoSequencer from "../DynamoSequencer.js"
import * as DynamoSnapshotStore from "../DynamoSnapshotStore.js"
import * as Tables from "../Tables.js"

/** Each table: its flag, where its name comes from without the flag, and its definition. */
const tables = [
  { flag: "events", name: Config.map(DynamoEventStore.envConfig, (o) => o.tableName), define: Tables.eventsTable },
  { flag: "snapshots", name: Config.map(DynamoSnapshotStore.envConfig, (o) => o.tableName), define: Tables.snapshotsTable },
  { flag: "read-models", name: Config.map(DynamoReadModelStore.envConfig, (o) => o.tableName), define: Tables.readModelsTable },
  { flag: "log", name: Config.String("DYNAMO_ES_LOG_TABLE").pipe(Config.withDefault("log")), define: Tables.logTable }
] as const

const usage = `usage: dynamo-es tables print|create ${tables.map((t) => `[--${t.flag} NAME]`).join(" ")} [--sequencer-function NAME (print)]
       dynamo-es log backfill [--events NAME] [--log NAME] [--segments N]
       dynamo-es projection status [--name NAME] [--read-models NAME] [--events NAME] [--log NAME]`

/** The command line cannot be run as written. */
class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

const parse = Effect.try({
  try: () =>
    parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries([...tables.map((t) => t.flag), "name", "sequencer-function", "segments"].map((flag) => [flag, { type: "string" as const }]))
    }),
  // Node's message, without its hint about positionals that start with "-".
  catch: (error) => new UsageError({ message: `${messageOf(error).split(". To specify")[0]}; ${usage}` })
})

const definitions = (flags: Readonly<Record<string, string | boolean | undefined>>) =>
  Effect.forEach(tables, (table) =>
    Effect.gen(function*() {
      const flag = flags[table.flag]
      const name = typeof flag === "string" ? flag : yield* table.name
      // The check every store makes, as a usage error here instead of a defect.
      yield* Tables.checkTableName(`--${table.flag}`, name).pipe(
        Effect.catchDefect((defect) => Effect.fail(new UsageError({ message: `${messageOf(defect)}; ${usage}` })))
      )
      return table.define(name)
    }))

/** The table names (flag, else variable, else default), checked. */
const tableNames = (flags: Readonly<Record<string, string | boolean | undefined>>) =>
  Effect.map(definitions(flags), (defs) => Object.fromEntries(tables.map((t, i) => [t.flag, defs[i]!.create.TableName])))

/** One line per projection: checkpoint, head, lag, lease holder. */
const projectionStatus = (flags: Readonly<Record<string, string | boolean | undefined>>) =>
  Effect.gen(function*() {
    const names = yield* tableNames(flags)
    const readModelsTable = names["read-models"]!
    const storage = yield* DynamoReadModelStore.makeStorage(readModelsTable)
    const store = yield* ReadModel.make(storage)
    const log = yield* DynamoEventLog.make({ eventsTable: names["events"]!, logTable: names["log"]! })
    const only = flags["name"]
    const projections = typeof only === "string"
      ? [only]
      : yield* Stream.runCollect(
        Stream.paginate(undefined as string | undefined, (start) =>
          Effect.map(
            storage.queryPage(Projection.CHECKPOINTS, { consistentRead: true, limit: undefined, exclusiveStartId: start }),
            // `<name>#active` rows hold a projection's active version, not a checkpoint.
            (page) => [page.rows.flatMap((row) => (row.id.endsWith("#active") ? [] : [row.id])), Option.fromUndefinedOr(page.lastEvaluatedId)] as const
          ))
      )
    if (projections.length === 0) return yield* Console.log(`No projection has a checkpoint in ${readModelsTable}.`)
    for (const name of projections) {
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

const program = Effect.gen(function*() {
  const { positionals, values } = yield* parse
  const [group, command, ...rest] = positionals
  if (group === "projection" && command === "status" && rest.length === 0) {
    return yield* projectionStatus(values).pipe(Effect.provide(DynamoClient.layerConfig()))
  }
  if (values["name"] !== undefined) return yield* new UsageError({ message: `--name is an option of projection status; ${usage}` })
  if (group === "log" && command === "backfill" && rest.length === 0) {
    const segments = Number(values["segments"] ?? "4")
    if (!Number.isSafeInteger(segments) || segments < 1) {
      return yield* new UsageError({ message: `--segments must be an integer >= 1, got ${values["segments"]}; ${usage}` })
    }
    const names = yield* tableNames(values)
    return yield* Effect.gen(function*() {
      const core = yield* DynamoSequencer.makeCore({ eventsTable: names["events"]!, logTable: names["log"]! })
      yield* core.load
      const before = core.next
      yield* DynamoSequencer.repairScan(core, { segments })
      yield* core.flush
      yield* Console.log(`Indexed ${core.next - before} events; the log holds ${core.next - 1}.`)
    }).pipe(Effect.provide(DynamoClient.layerConfig()))
  }
  if (values["segments"] !== undefined) return yield* new UsageError({ message: `--segments is an option of log backfill; ${usage}` })
  if (group !== "tables" || (command !== "print" && command !== "create") || rest.length > 0) {
    return yield* new UsageError({ message: usage })
  }
  const defs = yield* definitions(values)
  const sequencer = values["sequencer-function"]
  if (command === "print") {
    const mapping = typeof sequencer === "string"
      ? DynamoSequencer.eventSourceMapping({ eventsTable: defs[0]!.create.TableName, functionName: sequencer })
      : {}
    return yield* Console.log(JSON.stringify({ Resources: { ...Tables.cloudFormation(defs), ...mapping } }, null, 2))
  }
  if (sequencer !== undefined) return yield* new UsageError({ message: `--sequencer-function is an option of tables print; ${usage}` })
  const created = yield* Tables.ensureTables(defs).pipe(Effect.provide(DynamoClient.layerConfig()))
  return yield* Console.log(created.length === 0 ? "All tables exist already." : `Created: ${created.join(", ")}`)
})

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

/** One line: a `ConfigError`'s message is `SchemaError(<what to do>\n  at ["NAME"])`. */
const oneLine = (error: unknown): string =>
  Predicate.isTagged(error, "ConfigError")
    ? messageOf(error).replace(/^SchemaError\(([\s\S]*)\)$/, "$1").replace(/\s*\n\s*at \[(.*)\]$/, " (at $1)").replace(/\s*\n\s*/g, " ")
    : messageOf(error).replace(/\s*\n\s*/g, " ")

Effect.runPromiseExit(program).then((exit) => {
  if (Exit.isSuccess(exit)) return
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  console.error(`dynamo-es: ${failure === undefined ? Cause.pretty(exit.cause) : oneLine(failure.error)}`)
  process.exitCode = 1
})

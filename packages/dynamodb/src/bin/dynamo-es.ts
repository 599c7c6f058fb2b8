#!/usr/bin/env node
/**
 * The `dynamo-es` command of `@dynamo-es/dynamodb`.
 *
 *   dynamo-es tables print  [--events NAME] [--snapshots NAME] [--read-models NAME] [--log NAME]
 *                           [--sequencer-function NAME]
 *   dynamo-es tables create [...same flags]
 *   dynamo-es log backfill  [--events NAME] [--log NAME] [--segments N]
 *   dynamo-es log tail      [--last N] [--follow]
 *   dynamo-es stream read <id> [--from VERSION] [--last N]
 *   dynamo-es projection status [--name NAME]
 *   dynamo-es projection rebuild <name> --module FILE [--version N] [--drop-after SECONDS]
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
 * checkpoint in the read-models table, versions included, after the active version of each
 * rebuilt one), its checkpoint, the log's head, the lag and the runner holding it. `log backfill` indexes into the global log every event of the events table that
 * is not in it yet (`DynamoSequencer.repairScan`, a parallel `Scan`): for a table whose history
 * predates the log; safe to run while the sequencer runs. `log tail` prints the last `--last`
 * events of the global log (default 10), one line each (position, stream@version, type,
 * payload as JSON), and with `--follow` keeps printing new ones until interrupted.
 * `stream read <id>` prints a stream's events from the events table, one line each.
 * `projection rebuild <name> --module FILE` imports FILE (a JavaScript module, or TypeScript
 * when node runs with a loader such as `--import tsx`), takes the projection named `<name>`
 * among its exports (an export that is a projection, or an array of them, e.g.
 * `export const projections = [balances, totals]`), and runs `Projection.rebuild`: a progress
 * bar on a terminal, a progress line per checkpoint otherwise; then the switch-over, and with
 * `--drop-after SECONDS` the drop of the previous version once that long has passed (readers'
 * cache and runners' check interval). Unknown flags and table
 * names DynamoDB would refuse are usage errors. A failure prints one line that says what
 * to do, and exits with status 1.
 */
import { Errors, EventLog, Projection, ReadModel } from "@dynamo-es/core"
import { Cause, Config, Console, Data, Effect, Exit, Option, Predicate, Stream } from "effect"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
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
       dynamo-es log tail [--last N] [--follow] [--events NAME] [--log NAME]
       dynamo-es stream read <id> [--from VERSION] [--last N] [--events NAME]
       dynamo-es projection status [--name NAME] [--read-models NAME] [--events NAME] [--log NAME]
       dynamo-es projection rebuild <name> --module FILE [--version N] [--drop-after SECONDS] [--read-models NAME] [--events NAME] [--log NAME]`

/** The options each command takes besides the table flags (any other one is a usage error). */
const commandOptions: Record<string, ReadonlyArray<string>> = {
  "tables print": ["sequencer-function"],
  "tables create": [],
  "log backfill": ["segments"],
  "log tail": ["last", "follow"],
  "stream read": ["from", "last"],
  "projection status": ["name"],
  "projection rebuild": ["module", "version", "drop-after"]
}
const booleanOptions = new Set(["follow"])

/** The command line cannot be run as written. */
class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

const parse = Effect.try({
  try: () =>
    parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        [...tables.map((t) => t.flag), ...new Set(Object.values(commandOptions).flat())].map((flag) => [
          flag,
          { type: booleanOptions.has(flag) ? "boolean" as const : "string" as const }
        ])
      )
    }),
  // Node's message, without its hint about positionals that start with "-".
  catch: (error) => new UsageError({ message: `${Errors.oneLine(error).split(". To specify")[0]}; ${usage}` })
})

const definitions = (flags: Readonly<Record<string, string | boolean | undefined>>) =>
  Effect.forEach(tables, (table) =>
    Effect.gen(function*() {
      const flag = flags[table.flag]
      const name = typeof flag === "string" ? flag : yield* table.name
      // The check every store makes, as a usage error here instead of a defect.
      yield* Tables.checkTableName(`--${table.flag}`, name).pipe(
        Effect.catchDefect((defect) => Effect.fail(new UsageError({ message: `${Errors.oneLine(defect)}; ${usage}` })))
      )
      return table.define(name)
    }))

/** The table names (flag, else variable, else default), checked. */
const tableNames = (flags: Readonly<Record<string, string | boolean | undefined>>) =>
  Effect.map(definitions(flags), (defs) => Object.fromEntries(tables.map((t, i) => [t.flag, defs[i]!.create.TableName])))

/** One line per projection: checkpoint, head, lag, lease holder. */
const projectionStatus = (flags: Flags) =>
  Effect.gen(function*() {
    const names = yield* tableNames(flags)
    const readModelsTable = names["read-models"]!
    const storage = yield* DynamoReadModelStore.makeStorage(readModelsTable)
    const store = yield* ReadModel.make(storage)
    const log = yield* DynamoEventLog.make({ eventsTable: names["events"]!, logTable: names["log"]! })
    const only = flags["name"]
    const ids = typeof only === "string"
      ? [only]
      : yield* Stream.runCollect(
        Stream.paginate(undefined as string | undefined, (start) =>
          Effect.map(
            storage.queryPage(Projection.CHECKPOINTS, { consistentRead: true, limit: undefined, exclusiveStartId: start }),
            (page) => [page.rows.map((row) => row.id), Option.fromUndefinedOr(page.lastEvaluatedId)] as const
          ))
      )
    // `<name>#active` rows hold the active version of a rebuilt projection, `<name>#streams`
    // the lock of `applyEvents`' transactional mode: not checkpoints.
    const projections = ids.filter((id) => !id.endsWith("#active") && !id.endsWith("#streams"))
    if (projections.length === 0) return yield* Console.log(`No projection has a checkpoint in ${readModelsTable}.`)
    for (const id of ids.filter((id) => id.endsWith("#active"))) {
      const name = id.slice(0, -"#active".length)
      const version = yield* Projection.activeVersion(name).pipe(Effect.provideService(ReadModel.ReadModelStore, store))
      yield* Console.log(`${name}: version ${version} is active`)
    }
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

type Flags = Readonly<Record<string, string | boolean | undefined>>

/** An integer flag, `fallback` when absent; a usage error when it is not an integer >= `min`. */
const integerFlag = (flags: Flags, flag: string, fallback: number, min: number) => {
  const raw = flags[flag]
  const n = raw === undefined ? fallback : Number(raw)
  return Number.isSafeInteger(n) && n >= min
    ? Effect.succeed(n)
    : Effect.fail(new UsageError({ message: `--${flag} must be an integer >= ${min}, got ${raw}; ${usage}` }))
}

/** One line per event: where it is, what it is, its payload. */
const eventLine = (event: { readonly streamId: string; readonly version: number; readonly type: string; readonly payload: unknown }, position?: number) =>
  `${position === undefined ? "" : `${position} `}${event.streamId}@${event.version} ${event.type} ${JSON.stringify(event.payload)}`

/** The log's last `--last` events, then (with `--follow`) every new one until interrupted. */
const logTail = (flags: Flags) =>
  Effect.gen(function*() {
    const last = yield* integerFlag(flags, "last", 10, 0)
    const names = yield* tableNames(flags)
    const log = yield* DynamoEventLog.make({ eventsTable: names["events"]!, logTable: names["log"]! })
    const from = Math.max(0, (yield* log.head) - last)
    if (flags["follow"] !== true) {
      return yield* Stream.runForEach(log.readAll({ from }), (event) => Console.log(eventLine(event, event.position)))
    }
    yield* Stream.runForEach(log.subscribeAll({ from }), (item) =>
      item._tag === "Event" ? Console.log(eventLine(item.event, item.event.position)) : Effect.void)
  })

/** A stream's events from the events table (`--from` a version, or the `--last` N). */
const streamRead = (flags: Flags, streamId: string) =>
  Effect.gen(function*() {
    if (flags["from"] !== undefined && flags["last"] !== undefined) {
      return yield* new UsageError({ message: `--from and --last exclude each other; ${usage}` })
    }
    const from = yield* integerFlag(flags, "from", 1, 1)
    const names = yield* tableNames(flags)
    const store = yield* DynamoEventStore.make({ tableName: names["events"]! })
    const events = flags["last"] !== undefined
      ? Stream.fromIterableEffect(store.readLast(streamId, yield* integerFlag(flags, "last", 10, 1)))
      : store.read(streamId, { from })
    const count = yield* Stream.runFold(events, () => 0, (n, event) => {
      console.log(eventLine(event))
      return n + 1
    })
    if (count === 0) yield* Console.error(`No events in stream ${streamId}${from > 1 ? ` from version ${from}` : ""}.`)
  })

/** A projection definition: what `Projection.make` returns. */
const isProjection = (u: unknown): u is Projection.Projection<unknown, Record<string, Projection.ReadModelSpec<any>>, unknown, never> =>
  Predicate.hasProperty(u, "name") && typeof u.name === "string" && Predicate.hasProperty(u, "readModels") &&
  Predicate.hasProperty(u, "handle") && typeof u.handle === "function" && Predicate.hasProperty(u, "events")

/** The projection named `name` among the exports of the module at `file` (projections, or arrays of them). */
const loadProjection = (file: string, name: string) =>
  Effect.gen(function*() {
    const exports = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(resolve(file)).href) as Promise<Record<string, unknown>>,
      catch: (error) => new UsageError({ message: `--module ${file} cannot be imported: ${Errors.oneLine(error)}` })
    })
    // The same projection may be exported alone and in an array.
    const found = [...new Set(Object.values(exports).flatMap((value) => (Array.isArray(value) ? value : [value])).filter(isProjection))]
    const projection = found.find((p) => p.name === name)
    if (projection === undefined) {
      return yield* new UsageError({
        message: `--module ${file} exports no projection named "${name}" (it exports: ${found.map((p) => p.name).join(", ") || "none"})`
      })
    }
    return projection
  })

/** A progress bar that redraws one line of a terminal. */
const bar = (p: Projection.Progress) => {
  const width = 30
  const done = p.head === 0 ? 1 : Math.min(1, p.position / p.head)
  const filled = Math.round(done * width)
  return `\r${p.projection} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(done * 100).toFixed(0).padStart(3)}% ${p.position}/${p.head} ${
    p.eventsPerSecond.toFixed(0)
  } events/s`
}

const progressLine = (p: Projection.Progress) =>
  `${p.projection}: position ${p.position} of ${p.head}, lag ${p.lag}, ${p.eventsApplied} events applied, ${p.eventsPerSecond.toFixed(0)} events/s`

/** `Projection.rebuild` of a projection from the user's module, with progress, then the optional drop of the previous version. */
const projectionRebuild = (flags: Flags, name: string) =>
  Effect.gen(function*() {
    const file = flags["module"]
    if (typeof file !== "string") {
      return yield* new UsageError({ message: `projection rebuild needs --module FILE (a module exporting the projection); ${usage}` })
    }
    const version = flags["version"] === undefined ? undefined : yield* integerFlag(flags, "version", 2, 1)
    const dropAfter = flags["drop-after"] === undefined ? undefined : yield* integerFlag(flags, "drop-after", 0, 0)
    const names = yield* tableNames(flags)
    const projection = yield* loadProjection(file, name)
    const store = yield* DynamoReadModelStore.make({ tableName: names["read-models"]! })
    const log = yield* DynamoEventLog.make({ eventsTable: names["events"]!, logTable: names["log"]! })
    const tty = process.stdout.isTTY === true
    const result = yield* Projection.rebuild(projection, {
      version,
      onProgress: (p) => Effect.sync(() => void process.stdout.write(tty ? bar(p) : `${progressLine(p)}\n`))
    }).pipe(
      Effect.provideService(EventLog.EventLog, log),
      Effect.provideService(ReadModel.ReadModelStore, store)
    )
    if (tty) process.stdout.write("\n")
    yield* Console.log(`${name}: version ${result.version} is active (was ${result.previous}); ${result.progress.eventsApplied} events applied.`)
    if (dropAfter !== undefined && result.previous !== result.version) {
      yield* Console.log(`Dropping version ${result.previous} in ${dropAfter} s...`)
      yield* Effect.sleep(`${dropAfter} seconds`)
      const dropped = yield* Projection.drop(projection, { version: result.previous }).pipe(
        Effect.provideService(ReadModel.ReadModelStore, store)
      )
      yield* Console.log(`Dropped version ${result.previous}: ${dropped.rowsDeleted} rows deleted.`)
    }
  })

const program = Effect.gen(function*() {
  const { positionals, values } = yield* parse
  const [group, command, ...rest] = positionals
  const key = `${group} ${command}`
  const allowed = commandOptions[key]
  const takesArgument = key === "stream read" || key === "projection rebuild"
  if (allowed === undefined || rest.length !== (takesArgument ? 1 : 0)) return yield* new UsageError({ message: usage })
  for (const [flag, value] of Object.entries(values)) {
    if (value !== undefined && !tables.some((t) => t.flag === flag) && !allowed.includes(flag)) {
      const owners = Object.entries(commandOptions).filter(([, options]) => options.includes(flag)).map(([k]) => k)
      return yield* new UsageError({ message: `--${flag} is an option of ${owners.join(", ")}; ${usage}` })
    }
  }
  const dynamo = DynamoClient.layerConfig()
  switch (key) {
    case "projection status":
      return yield* projectionStatus(values).pipe(Effect.provide(dynamo))
    case "projection rebuild":
      return yield* projectionRebuild(values, rest[0]!).pipe(Effect.provide(dynamo))
    case "log tail":
      return yield* logTail(values).pipe(Effect.provide(dynamo))
    case "stream read":
      return yield* streamRead(values, rest[0]!).pipe(Effect.provide(dynamo))
    case "log backfill": {
      const segments = yield* integerFlag(values, "segments", 4, 1)
      const names = yield* tableNames(values)
      return yield* Effect.gen(function*() {
        const core = yield* DynamoSequencer.makeCore({ eventsTable: names["events"]!, logTable: names["log"]! })
        yield* core.load
        const before = core.next
        yield* DynamoSequencer.repairScan(core, { segments })
        yield* core.flush
        yield* Console.log(`Indexed ${core.next - before} events; the log holds ${core.next - 1}.`)
      }).pipe(Effect.provide(dynamo))
    }
  }
  const defs = yield* definitions(values)
  const sequencer = values["sequencer-function"]
  if (command === "print") {
    const mapping = typeof sequencer === "string"
      ? DynamoSequencer.eventSourceMapping({ eventsTable: defs[0]!.create.TableName, functionName: sequencer })
      : {}
    return yield* Console.log(JSON.stringify({ Resources: { ...Tables.cloudFormation(defs), ...mapping } }, null, 2))
  }
  const created = yield* Tables.ensureTables(defs).pipe(Effect.provide(dynamo))
  return yield* Console.log(created.length === 0 ? "All tables exist already." : `Created: ${created.join(", ")}`)
})

Effect.runPromiseExit(program).then((exit) => {
  if (Exit.isSuccess(exit)) return
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  console.error(`dynamo-es: ${failure === undefined ? Cause.pretty(exit.cause) : Errors.oneLine(failure.error)}`)
  process.exitCode = 1
})

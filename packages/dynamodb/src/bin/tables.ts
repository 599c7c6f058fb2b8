/**
 * Prints the table definitions as CloudFormation JSON (a `Resources` object), or creates the
 * tables against the configured endpoint.
 *
 *   npm run tables -- print [--events NAME] [--snapshots NAME] [--read-models NAME]
 *   npm run tables -- create [...same flags]   (uses DYNAMODB_ENDPOINT, AWS_*)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as DynamoClient from "../DynamoClient.js"
import * as DynamoReadModelStore from "../DynamoReadModelStore.js"
import * as DynamoSnapshotStore from "../DynamoSnapshotStore.js"
import * as Tables from "../Tables.js"

const args = process.argv.slice(2)
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const definitions = [
  Tables.eventsTable(flag("events", process.env["DYNAMO_ES_EVENTS_TABLE"] ?? "events")),
  DynamoSnapshotStore.snapshotsTable(flag("snapshots", process.env["DYNAMO_ES_SNAPSHOTS_TABLE"] ?? "snapshots")),
  DynamoReadModelStore.readModelsTable(flag("read-models", process.env["DYNAMO_ES_READ_MODELS_TABLE"] ?? "read-models"))
]

const command = args[0] ?? "print"
const program: Effect.Effect<void, unknown> = command === "print"
  ? Console.log(JSON.stringify({ Resources: Tables.cloudFormation(definitions) }, null, 2))
  : command === "create"
  ? Tables.ensureTables(definitions).pipe(
    Effect.flatMap((created) =>
      Console.log(created.length === 0 ? "All tables exist already." : `Created: ${created.join(", ")}`)
    ),
    Effect.provide(DynamoClient.layerConfig)
  )
  : Console.error(`Unknown command "${command}". Use "print" or "create".`).pipe(Effect.andThen(Effect.fail("usage")))

NodeRuntime.runMain(program)

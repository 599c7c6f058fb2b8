import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer } from "effect"
import { DynamoClient, DynamoEventLog, DynamoEventStore, DynamoSequencer, Tables } from "../src/index.js"

export type StreamsFault = (command: string, input: any, proceed: () => Promise<any>) => Promise<any>

/**
 * A real DynamoDB Streams client on DynamoDB Local, whose requests a test can fail or
 * alter (`setFault`): lineage, expired iterators and trimmed data are simulated around the
 * real stream.
 */
export const streamsClient = Effect.gen(function*() {
  const local = yield* DynamoDBLocal.DynamoDBLocal
  const client = new DynamoDBStreamsClient(Fixtures.sdkConfig(local))
  let fault: StreamsFault | undefined
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = (context.commandName ?? "Unknown").replace(/Command$/, "")
      return fault === undefined ? next(args) : fault(command, args.input, () => next(args))
    },
    { step: "initialize", name: "dynamo-es-test-streams-fault" }
  )
  yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
  return {
    client,
    setFault: (f: StreamsFault | undefined) => {
      fault = f
    }
  }
})

/** Fresh events and log tables (deleted with the scope). */
export const freshTables = Effect.gen(function*() {
  const eventsTable = Fixtures.uniqueTableName("events")
  const logTable = Fixtures.uniqueTableName("log")
  yield* Fixtures.scopedTable(Tables.eventsTable(eventsTable))
  yield* Fixtures.scopedTable(Tables.logTable(logTable))
  return { eventsTable, logTable }
})

/** Quick polling for tests; stream items (listStreams) raised 100 ms after the last raise. */
export const fast = { pollInterval: "20 millis", leaseDuration: "3 seconds", streamItemsInterval: "100 millis", batchWindow: "30 millis" } as const

/**
 * An event store, its log and a running sequencer (in the layer's scope) on fresh tables:
 * what the EventLog conformance suite runs on.
 */
export const layerLog = (
  layout: { readonly epochSize?: number; readonly maxEntryEvents?: number } = {}
): Layer.Layer<any, unknown, DynamoClient.DynamoClient | DynamoDBLocal.DynamoDBLocal> =>
  Layer.unwrap(Effect.gen(function*() {
    const { eventsTable, logTable } = yield* freshTables
    // The sequencer as users run it: its layer, with the streams client made from the
    // DynamoDB client's settings.
    return Layer.mergeAll(
      DynamoEventStore.layerExisting({ tableName: eventsTable }),
      DynamoEventLog.layerExisting({ eventsTable, logTable, pollInterval: "20 millis", ...layout }),
      DynamoSequencer.layer({ eventsTable, logTable, ...fast, ...layout })
    )
  }))

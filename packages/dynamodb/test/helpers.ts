import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb"
import type { EventStore } from "@dynamo-es/core"
import { StoreProbe } from "@dynamo-es/core/testing/EventStoreConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer } from "effect"
import { DynamoClient, DynamoEventStore, Tables } from "../src/index.js"

/** Counts the items of a table with a Scan (Select COUNT), following pages. */
export const countItems = (tableName: string) =>
  Effect.gen(function*() {
    const client = yield* DynamoClient.DynamoClient
    let count = 0
    let startKey: Record<string, never> | undefined
    do {
      const r = yield* DynamoClient.unconditional(client.call("Scan", tableName, (c) =>
        c.send(new ScanCommand({ TableName: tableName, Select: "COUNT", ExclusiveStartKey: startKey, ConsistentRead: true }))))
      count += r.Count ?? 0
      startKey = r.LastEvaluatedKey as Record<string, never> | undefined
    } while (startKey !== undefined)
    return count
  })

/** Every request an SDK client sends, by command name, and the capacity it consumed. */
export interface Recorder {
  readonly commands: Array<string>
  readonly capacity: Array<{ readonly command: string; readonly read: number; readonly write: number }>
  clear(): void
  count(command: string): number
}

export type Fault = (command: string, input: any, proceed: () => Promise<any>) => Promise<any>

/**
 * A real SDK client on DynamoDB Local that records every request and lets a test inject
 * faults around chosen requests (the request may still reach DynamoDB: `proceed`).
 */
export const instrumentedClient = (local: DynamoDBLocal.DynamoDBLocal["Service"]) => {
  const sdk = new DynamoDBClient(Fixtures.sdkConfig(local))
  const recorder: Recorder = {
    commands: [],
    capacity: [],
    clear() {
      this.commands.length = 0
      this.capacity.length = 0
    },
    count(command) {
      return this.commands.filter((c) => c === command).length
    }
  }
  let fault: Fault | undefined
  sdk.middlewareStack.add(
    (next, context) => async (args) => {
      const command = (context.commandName ?? "Unknown").replace(/Command$/, "")
      recorder.commands.push(command)
      const proceed = async () => {
        const result = await next(args)
        const out = result.output as { ConsumedCapacity?: any }
        const consumed = Array.isArray(out.ConsumedCapacity) ? out.ConsumedCapacity : out.ConsumedCapacity ? [out.ConsumedCapacity] : []
        // With ReturnConsumedCapacity TOTAL only CapacityUnits is set: the command says which kind.
        const isWrite = /^(PutItem|UpdateItem|DeleteItem|BatchWriteItem|TransactWriteItems)$/.test(command)
        for (const c of consumed) {
          const units = c.CapacityUnits ?? 0
          recorder.capacity.push({ command, read: isWrite ? 0 : units, write: isWrite ? units : 0 })
        }
        return result
      }
      return fault === undefined ? proceed() : fault(command, args.input, proceed)
    },
    { step: "initialize", name: "dynamo-es-test-recorder" }
  )
  return {
    sdk,
    recorder,
    setFault: (f: Fault | undefined) => {
      fault = f
    }
  }
}

/** An error shaped like the SDK's service exceptions. */
export const sdkError = (name: string, message = name, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { name, $fault: "server", $metadata: { httpStatusCode: 400 }, ...extra })

/** An event store on a fresh table, plus the probe the conformance suite needs. */
export const makeStoreLayer = (
  options: EventStore.EventStoreOptions & Partial<DynamoEventStore.DynamoEventStoreOptions> = {}
) =>
  Layer.unwrap(Effect.gen(function*() {
    const tableName = Fixtures.uniqueTableName("events")
    yield* Fixtures.scopedTable(Tables.eventsTable(tableName))
    const client = yield* DynamoClient.DynamoClient
    return Layer.merge(
      DynamoEventStore.layerExisting({ ...options, tableName }),
      Layer.succeed(StoreProbe, { countItems: countItems(tableName).pipe(Effect.provideService(DynamoClient.DynamoClient, client)) })
    )
  }))

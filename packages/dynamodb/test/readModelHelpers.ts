/**
 * A DynamoDB read-model store on a fresh table, with the probe the conformance suite
 * needs: the requests the store sent (recorded by SDK middleware), the items written, raw
 * rows read with a separate client (not recorded), and faults injected around the REAL
 * requests: a `Partial` fault sends DynamoDB only part of a batch and returns the rest
 * as `UnprocessedItems`/`UnprocessedKeys`, as DynamoDB does under throttling.
 */
import {
  type AttributeValue,
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  type WriteRequest
} from "@aws-sdk/client-dynamodb"
import { ReadModel } from "@dynamo-es/core"
import { type Fault, ReadModelProbe } from "@dynamo-es/core/testing/ReadModelConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Context, Effect, Layer, Schedule } from "effect"
import { DynamoClient, DynamoReadModelStore } from "../src/index.js"
import { type Fault as SdkFault, instrumentedClient, sdkError } from "./helpers.js"

const STORAGE_OPERATIONS = new Set<string>(["GetItem", "BatchGetItem", "Query", "PutItem", "DeleteItem", "BatchWriteItem"])

/** Quick client retries, so that fault tests stay fast. */
export const fastClientRetries = Schedule.spaced("2 millis").pipe(Schedule.upTo({ times: 4 }))

/** The partition and ids a storage request is about. */
const describeRequest = (command: string, input: any, table: string): { name: string; ids: Array<string> } => {
  switch (command) {
    case "GetItem":
    case "DeleteItem":
      return { name: input.Key?.Name?.S ?? "", ids: [input.Key?.Id?.S ?? ""] }
    case "PutItem":
      return { name: input.Item?.Name?.S ?? "", ids: [input.Item?.Id?.S ?? ""] }
    case "Query":
      return { name: input.ExpressionAttributeValues?.[":n"]?.S ?? "", ids: [] }
    case "BatchGetItem": {
      const keys: Array<Record<string, AttributeValue>> = input.RequestItems?.[table]?.Keys ?? []
      return { name: keys[0]?.Name?.S ?? "", ids: keys.map((k) => k.Id?.S ?? "") }
    }
    case "BatchWriteItem": {
      const writes: Array<WriteRequest> = input.RequestItems?.[table] ?? []
      const w = writes[0]
      return {
        name: w?.PutRequest?.Item?.Name?.S ?? w?.DeleteRequest?.Key?.Name?.S ?? "",
        ids: writes.map((r) => r.PutRequest?.Item?.Id?.S ?? r.DeleteRequest?.Key?.Id?.S ?? "")
      }
    }
    default:
      return { name: "", ids: [] }
  }
}

const writeId = (r: WriteRequest) => r.PutRequest?.Item?.Id?.S ?? r.DeleteRequest?.Key?.Id?.S ?? ""

/**
 * An SDK middleware hook that counts item writes and applies a conformance {@link Fault}.
 * `extra` runs first for DynamoDB-specific faults (throttling, delays, lost responses).
 */
export const faultDispatcher = (table: string, state: {
  itemWrites: number
  fault: Fault | undefined
  extra: SdkFault | undefined
}): SdkFault =>
async (command, input, proceed) => {
  const countWrites = (output: any) => {
    if (command === "PutItem" || command === "DeleteItem") state.itemWrites++
    if (command === "BatchWriteItem") {
      state.itemWrites += (input.RequestItems?.[table]?.length ?? 0) - (output?.UnprocessedItems?.[table]?.length ?? 0)
    }
  }
  const send = async () => {
    const result = state.extra === undefined ? await proceed() : await state.extra(command, input, proceed)
    countWrites(result.output)
    return result
  }
  if (state.fault === undefined || !STORAGE_OPERATIONS.has(command)) return send()
  const { name, ids } = describeRequest(command, input, table)
  const f = state.fault(command as ReadModel.StorageOperation, name, ids)
  if (f === undefined) return send()
  if (f._tag === "Fail") {
    if (f.applied === true) await send()
    throw sdkError("AccessDeniedException", "injected failure")
  }
  const processed = new Set(f.processed)
  if (command === "BatchWriteItem") {
    const all: Array<WriteRequest> = input.RequestItems[table]
    const rest = all.filter((r) => !processed.has(writeId(r)))
    input.RequestItems[table] = all.filter((r) => processed.has(writeId(r)))
    // DynamoDB refuses an empty batch: answer "all unprocessed" without sending anything.
    if (input.RequestItems[table].length === 0) return { output: { $metadata: {}, UnprocessedItems: { [table]: rest } } }
    const result = await send()
    const unprocessed = [...(result.output.UnprocessedItems?.[table] ?? []), ...rest]
    result.output.UnprocessedItems = unprocessed.length === 0 ? {} : { [table]: unprocessed }
    return result
  }
  if (command === "BatchGetItem") {
    const request = input.RequestItems[table]
    const all: Array<Record<string, AttributeValue>> = request.Keys
    const rest = all.filter((k) => !processed.has(k.Id?.S ?? ""))
    request.Keys = all.filter((k) => processed.has(k.Id?.S ?? ""))
    const unprocessedKeys = (keys: Array<Record<string, AttributeValue>>) =>
      keys.length === 0 ? {} : { [table]: { ...request, Keys: keys } }
    if (request.Keys.length === 0) return { output: { $metadata: {}, Responses: { [table]: [] }, UnprocessedKeys: unprocessedKeys(rest) } }
    const result = await send()
    result.output.UnprocessedKeys = unprocessedKeys([...(result.output.UnprocessedKeys?.[table]?.Keys ?? []), ...rest])
    return result
  }
  return send()
}

/** Everything a DynamoDB read-model test needs, on a fresh table deleted at the end. */
export const makeReadModelEnv = (
  options: Partial<DynamoReadModelStore.DynamoReadModelStoreOptions> = {},
  clientOptions: { readonly retrySchedule?: Schedule.Schedule<unknown, any> } = {}
) =>
  Effect.gen(function*() {
    const local = yield* DynamoDBLocal.DynamoDBLocal
    const tools = instrumentedClient(local)
    const raw = new DynamoDBClient(Fixtures.sdkConfig(local))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        tools.sdk.destroy()
        raw.destroy()
      })
    )
    const tableName = options.tableName ?? Fixtures.uniqueTableName("readmodels")
    const clientContext = yield* Layer.build(
      DynamoClient.layer({ client: tools.sdk, retrySchedule: clientOptions.retrySchedule ?? fastClientRetries })
    )
    yield* Fixtures.scopedTable(DynamoReadModelStore.readModelsTable(tableName)).pipe(Effect.provide(clientContext))
    const state = { itemWrites: 0, fault: undefined as Fault | undefined, extra: undefined as SdkFault | undefined }
    tools.setFault(faultDispatcher(tableName, state))
    const store = yield* DynamoReadModelStore.make({ ...options, tableName }).pipe(Effect.provide(clientContext))

    const rows = (name: string) =>
      Effect.promise(async () => {
        const out: Array<ReadModel.StoredRow> = []
        let startKey: Record<string, AttributeValue> | undefined
        do {
          const r = await raw.send(
            new QueryCommand({
              TableName: tableName,
              KeyConditionExpression: "#n = :n",
              ExpressionAttributeNames: { "#n": "Name" },
              ExpressionAttributeValues: { ":n": { S: name } },
              ConsistentRead: true,
              ExclusiveStartKey: startKey
            })
          )
          for (const item of r.Items ?? []) out.push({ id: item.Id!.S!, data: item.Data?.S })
          startKey = r.LastEvaluatedKey
        } while (startKey !== undefined)
        return out
      })

    const probe: ReadModelProbe["Service"] = {
      operations: Effect.sync(() => tools.recorder.commands.filter((c) => STORAGE_OPERATIONS.has(c)) as Array<ReadModel.StorageOperation>),
      itemWrites: Effect.sync(() => state.itemWrites),
      reset: Effect.sync(() => {
        tools.recorder.clear()
        state.itemWrites = 0
      }),
      rows,
      putRaw: (name, id, data) =>
        Effect.promise(() =>
          raw.send(
            new PutItemCommand({
              TableName: tableName,
              Item: { Name: { S: name }, Id: { S: id }, ...(data === undefined ? {} : { Data: { S: data } }) }
            })
          )
        ),
      dropAll: Effect.promise(async () => {
        await raw.send(new DeleteTableCommand({ TableName: tableName }))
        await raw.send(new CreateTableCommand(DynamoReadModelStore.readModelsTable(tableName).create))
      }),
      setFault: (fault) =>
        Effect.sync(() => {
          state.fault = fault
        })
    }
    tools.recorder.clear()
    return {
      store,
      probe,
      tableName,
      sdk: tools.sdk,
      raw,
      recorder: tools.recorder,
      clientContext,
      /** A DynamoDB-specific fault around every request (runs inside the conformance fault). */
      setExtraFault: (f: SdkFault | undefined) => {
        state.extra = f
      }
    }
  })

/** The conformance suite's layer: store + probe on a fresh table. */
export const readModelStoreLayer = (options: ReadModel.ReadModelStoreOptions) =>
  Layer.effectContext(
    makeReadModelEnv(options).pipe(
      Effect.map((env) => Context.make(ReadModelProbe, env.probe).pipe(Context.add(ReadModel.ReadModelStore, env.store)))
    )
  )

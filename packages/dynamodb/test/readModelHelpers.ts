/**
 * A DynamoDB read-model store on a fresh table, with the probe the conformance suite
 * needs: the store runs on the DynamoDB storage wrapped by `ReadModelStorageTest` (the
 * same wrapper as the memory store's tests: requests, item writes, faults), every
 * forwarded request is checked to be one real SDK request, and raw rows are read and
 * written with a separate client (not recorded). SDK-level faults (`setExtraFault`,
 * `partialBatches`) test what only the driver does: reading `UnprocessedItems` and
 * `UnprocessedKeys`, throttling, lost responses.
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
import { makeProbe, ReadModelProbe } from "@dynamo-es/core/testing/ReadModelConformance"
import * as ReadModelStorageTest from "@dynamo-es/core/testing/ReadModelStorageTest"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Context, Effect, Layer, Schedule } from "effect"
import { DynamoClient, DynamoReadModelStore } from "../src/index.js"
import { type Fault as SdkFault, instrumentedClient, sdkError } from "./helpers.js"

const STORAGE_OPERATIONS = new Set<string>(["GetItem", "BatchGetItem", "Query", "PutItem", "DeleteItem", "BatchWriteItem"])

/** Quick client retries, so that fault tests stay fast. */
export const fastClientRetries = Schedule.spaced("2 millis").pipe(Schedule.upTo({ times: 4 }))

const writeId = (r: WriteRequest) => r.PutRequest?.Item?.Id?.S ?? r.DeleteRequest?.Key?.Id?.S ?? ""

/**
 * An SDK-level fault that sends DynamoDB only part of a batch and returns the rest as
 * `UnprocessedItems`/`UnprocessedKeys`, as DynamoDB does under throttling: it exercises
 * the driver's reading of those answers, which the storage-level `Partial` fault of
 * `ReadModelStorageTest` bypasses. `processed` chooses, per request, the ids that go
 * through (`undefined`: the whole request).
 */
export const partialBatches = (
  table: string,
  processed: (command: "BatchWriteItem" | "BatchGetItem", ids: ReadonlyArray<string>) => ReadonlyArray<string> | undefined
): SdkFault =>
async (command, input, proceed) => {
  if (command === "BatchWriteItem") {
    const all: Array<WriteRequest> = input.RequestItems[table]
    const chosen = processed(command, all.map(writeId))
    if (chosen === undefined) return proceed()
    const keep = new Set(chosen)
    const rest = all.filter((r) => !keep.has(writeId(r)))
    input.RequestItems[table] = all.filter((r) => keep.has(writeId(r)))
    // DynamoDB refuses an empty batch: answer "all unprocessed" without sending anything.
    if (input.RequestItems[table].length === 0) return { output: { $metadata: {}, UnprocessedItems: { [table]: rest } } }
    const result = await proceed()
    const unprocessed = [...(result.output.UnprocessedItems?.[table] ?? []), ...rest]
    result.output.UnprocessedItems = unprocessed.length === 0 ? {} : { [table]: unprocessed }
    return result
  }
  if (command === "BatchGetItem") {
    const request = input.RequestItems[table]
    const all: Array<Record<string, AttributeValue>> = request.Keys
    const chosen = processed(command, all.map((k) => k.Id?.S ?? ""))
    if (chosen === undefined) return proceed()
    const keep = new Set(chosen)
    const rest = all.filter((k) => !keep.has(k.Id?.S ?? ""))
    request.Keys = all.filter((k) => keep.has(k.Id?.S ?? ""))
    const unprocessedKeys = (keys: Array<Record<string, AttributeValue>>) =>
      keys.length === 0 ? {} : { [table]: { ...request, Keys: keys } }
    if (request.Keys.length === 0) return { output: { $metadata: {}, Responses: { [table]: [] }, UnprocessedKeys: unprocessedKeys(rest) } }
    const result = await proceed()
    result.output.UnprocessedKeys = unprocessedKeys([...(result.output.UnprocessedKeys?.[table]?.Keys ?? []), ...rest])
    return result
  }
  return proceed()
}

/**
 * Everything a DynamoDB read-model test needs, on a fresh table deleted at the end. The
 * store runs on the DynamoDB storage wrapped by `ReadModelStorageTest.instrument` (the
 * wrapper the memory store's tests use): the probe's requests, item writes and faults come
 * from it. `setExtraFault` injects DynamoDB-specific faults around the SDK requests
 * (throttling, delays, lost responses, partial batches).
 */
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
    const instrumented = ReadModelStorageTest.instrument(
      yield* DynamoReadModelStore.makeStorage(tableName).pipe(Effect.provide(clientContext))
    )
    const store = yield* ReadModel.make(instrumented.storage, options)

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

    /**
     * The requests the store sent (from the wrapper), checked against what reached
     * DynamoDB: each request the wrapper forwarded is exactly one SDK request.
     */
    const operations = Effect.gen(function*() {
      const sent = (yield* instrumented.requests).filter((r) => r.forwarded).map((r) => r.operation).sort()
      const sdk = tools.recorder.commands.filter((c) => STORAGE_OPERATIONS.has(c)).sort()
      if (sent.join() !== sdk.join()) {
        return yield* Effect.die(new Error(`storage primitives forwarded [${sent.join(", ")}] but the SDK sent [${sdk.join(", ")}]`))
      }
      return yield* instrumented.operations
    })

    const probe: ReadModelProbe["Service"] = {
      ...makeProbe(instrumented, {
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
        })
      }),
      operations,
      reset: Effect.andThen(instrumented.reset, Effect.sync(() => tools.recorder.clear()))
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
      /** A DynamoDB-specific fault around every SDK request (runs after the storage-level fault). */
      setExtraFault: (f: SdkFault | undefined) => tools.setFault(f)
    }
  })

/** The conformance suite's layer: store + probe on a fresh table. */
export const readModelStoreLayer = (options: ReadModel.ReadModelStoreOptions) =>
  Layer.effectContext(
    makeReadModelEnv(options).pipe(
      Effect.map((env) => Context.make(ReadModelProbe, env.probe).pipe(Context.add(ReadModel.ReadModelStore, env.store)))
    )
  )

/**
 * What every benchmark shares: starting DynamoDB Local with progress lines, an SDK client
 * with a counting middleware, and the reading of consumed capacity.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { DynamoClient } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Console, Context, Effect, Layer } from "effect"
import { performance } from "node:perf_hooks"

/** Commands whose consumed capacity is write capacity (with `ReturnConsumedCapacity: TOTAL` only `CapacityUnits` is set). */
export const WRITE_COMMANDS: ReadonlySet<string> = new Set(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"])

/** `PutItemCommand` -> `PutItem`. */
export const commandOf = (context: { readonly commandName?: string }): string =>
  (context.commandName ?? "Unknown").replace(/Command$/, "")

/** The capacity units a response reports (one entry, or one per table for batches). */
export const consumedUnits = (output: unknown): number => {
  const consumed = (output as { ConsumedCapacity?: unknown }).ConsumedCapacity
  const list = (Array.isArray(consumed) ? consumed : consumed !== undefined ? [consumed] : []) as Array<{ CapacityUnits?: number }>
  return list.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0)
}

/**
 * Starts DynamoDB Local at full JIT speed (or uses DYNAMODB_ENDPOINT), prints where, and
 * builds one SDK client (instrumented by `instrument`) with its DynamoClient layer. Both are
 * released with the scope.
 */
export const startBench = (title: string, instrument: (client: DynamoDBClient) => void) =>
  Effect.gen(function*() {
    const started = performance.now()
    const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`
    yield* Console.log(title)
    yield* Console.log(
      process.env["DYNAMODB_ENDPOINT"] ? `using DYNAMODB_ENDPOINT=${process.env["DYNAMODB_ENDPOINT"]} ...` : "starting DynamoDB Local ..."
    )
    const localContext = yield* Layer.build(DynamoDBLocal.layer({ fastStartup: false }))
    const local = Context.get(localContext, DynamoDBLocal.DynamoDBLocal)
    yield* Console.log(`DynamoDB Local at ${local.endpoint} (${elapsed()})`)
    const sdk = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = new DynamoDBClient(Fixtures.sdkConfig(local))
        instrument(client)
        return client
      }),
      (client) => Effect.sync(() => client.destroy())
    )
    const clientContext = yield* Layer.build(DynamoClient.layer({ client: sdk }))
    return { local, sdk, clientContext, elapsed }
  })

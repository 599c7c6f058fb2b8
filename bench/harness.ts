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

/** Requests by command and consumed capacity, split into reads and writes. */
export interface Stats {
  readonly requests: Map<string, number>
  read: number
  write: number
}

export const emptyStats = (): Stats => ({ requests: new Map(), read: 0, write: 0 })
export const totalRequests = (s: Stats): number => [...s.requests.values()].reduce((a, b) => a + b, 0)

/**
 * Adds a middleware that records every request into the `Stats` that `current` returns at
 * that moment (nothing while it returns `undefined`, e.g. during warm-up).
 */
export const countInto = (current: () => Stats | undefined) => (sdk: DynamoDBClient): void => {
  sdk.middlewareStack.add(
    (next, context) => async (args) => {
      const stats = current()
      if (stats === undefined) return next(args)
      const command = commandOf(context)
      stats.requests.set(command, (stats.requests.get(command) ?? 0) + 1)
      const result = await next(args)
      const units = consumedUnits(result.output)
      if (WRITE_COMMANDS.has(command)) stats.write += units
      else stats.read += units
      return result
    },
    { step: "initialize", name: "dynamo-es-bench-counter" }
  )
}

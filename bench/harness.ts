/**
 * What every benchmark shares: starting DynamoDB Local with progress lines, an SDK client
 * with a counting middleware, the reading of consumed capacity, and the reporting (number
 * formatting, result entries, printing and writing `bench/results/*.json`).
 */
import { type AttributeValue, DynamoDBClient, QueryCommand, type QueryCommandInput, type QueryCommandOutput } from "@aws-sdk/client-dynamodb"
import { DynamoClient } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Console, Context, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import { performance } from "node:perf_hooks"

/** Commands whose consumed capacity is write capacity (with `ReturnConsumedCapacity: TOTAL` only `CapacityUnits` is set). */
export const WRITE_COMMANDS: ReadonlySet<string> = new Set([
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "BatchWriteItem",
  "TransactWriteItems",
  // Only the projections' guarded batched writes use PartiQL here.
  "BatchExecuteStatement"
])

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

/**
 * Every page of a `Query` (each handed to `onPage`; a returned promise is awaited before the
 * next page is asked for): the one paginator of the raw sides.
 */
export const queryPages = async (
  sdk: DynamoDBClient,
  input: QueryCommandInput,
  onPage: (items: ReadonlyArray<Record<string, AttributeValue>>) => void | Promise<void>
): Promise<void> => {
  let startKey: Record<string, AttributeValue> | undefined
  do {
    const r: QueryCommandOutput = await sdk.send(
      new QueryCommand(startKey !== undefined ? { ...input, ExclusiveStartKey: startKey } : input)
    )
    const pending = onPage(r.Items ?? [])
    if (pending !== undefined) await pending
    startKey = r.LastEvaluatedKey
  } while (startKey !== undefined)
}

/**
 * What the raw sides read: every page of a stream (strongly consistent `Query`, no bounds),
 * each item handed to `onItem` in version order.
 */
export const queryStream = (
  sdk: DynamoDBClient,
  table: string,
  streamId: string,
  onItem: (item: Record<string, AttributeValue>) => void
): Promise<void> =>
  queryPages(sdk, {
    TableName: table,
    KeyConditionExpression: "s = :s",
    ExpressionAttributeValues: { ":s": { S: streamId } },
    ConsistentRead: true,
    ReturnConsumedCapacity: "TOTAL"
  }, (items) => {
    for (const item of items) onItem(item)
  })

/**
 * What the raw sides of the log benches read: every entry of the log's first epoch (paginated
 * `Query`, as `readAll` reads it), each event of an entry handed to `onEvent` with its
 * position; a returned promise is awaited before the next event.
 */
export const forEachLogEvent = <E>(
  sdk: DynamoDBClient,
  logTable: string,
  onEvent: (position: number, event: E) => void | Promise<void>
): Promise<void> =>
  queryPages(sdk, {
    TableName: logTable,
    KeyConditionExpression: "p = :p",
    ExpressionAttributeValues: { ":p": { S: "e#0" } },
    ReturnConsumedCapacity: "TOTAL"
  }, async (items) => {
    for (const item of items) {
      const first = Number(item.k!.S)
      const events = JSON.parse(item.b!.S!) as Array<E>
      for (let k = 0; k < events.length; k++) {
        const pending = onEvent(first + k, events[k]!)
        if (pending !== undefined) await pending
      }
    }
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

// -----------------------------------------------------------------------------
// reporting
// -----------------------------------------------------------------------------

export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "-"
export const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length))
export const lpad = (s: string, n: number) => (s.length >= n ? s : " ".repeat(n - s.length) + s)
export const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** One figure of `bench/results/*.json`: `value` is ours, `baseline` the figure it compares with. */
export interface Entry {
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly baseline?: number
}

/** The entries of a report, and `entry(...)` adding one (values rounded to 3 decimals unless `round` says otherwise). */
export const makeEntries = (round: (n: number) => number = (n) => Math.round(n * 1000) / 1000) => {
  const entries: Array<Entry> = []
  const entry = (name: string, value: number, unit: string, baseline?: number) => {
    entries.push(baseline === undefined ? { name, value: round(value), unit } : { name, value: round(value), unit, baseline: round(baseline) })
  }
  return { entries, entry }
}

/** `entries` as lines of `name  value unit  (baseline ...)`, for a report without a table of its own. */
export const entryLines = (entries: ReadonlyArray<Entry>): Array<string> => {
  const width = Math.max(...entries.map((e) => e.name.length))
  return entries.map((e) =>
    `${e.name.padEnd(width)}  ${String(e.value).padStart(10)} ${e.unit.padEnd(9)}${e.baseline === undefined ? "" : `  (baseline ${e.baseline})`}`
  )
}

/**
 * The end of every benchmark: prints `lines` (the report) and writes `entries` to
 * `bench/results/<file>`.
 */
export const writeResults = (file: string, lines: ReadonlyArray<string>, entries: ReadonlyArray<Entry>, elapsed?: () => string) =>
  Effect.gen(function*() {
    yield* Console.log("")
    for (const line of lines) yield* Console.log(line)
    const dir = new URL("./results/", import.meta.url)
    Fs.mkdirSync(dir, { recursive: true })
    Fs.writeFileSync(new URL(file, dir), JSON.stringify(entries, null, 2) + "\n")
    yield* Console.log("")
    yield* Console.log(`wrote bench/results/${file}${elapsed !== undefined ? `; total run time ${elapsed()}` : ""}`)
  })

/**
 * CPU per command, ours vs raw, with DynamoDB taken out: the same two handlers as
 * `bench/aggregate.bench.ts`, over a real SDK client and real HTTP, against a canned-answer
 * endpoint in a child process (`fake-dynamodb.ts`, whose CPU is not counted). What is left is
 * the CPU of this process per command: the SDK (the same for both sides) and what the
 * library adds. A profiling aid, not part of `npm run bench`:
 *
 *   npx tsx bench/cpu/command-cpu.ts [sizes=20,100,200] [rounds=40]
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/cpu/command-cpu.ts 200 20 ours
 */
import { type AttributeValue, DynamoDBClient, PutItemCommand, QueryCommand, type QueryCommandOutput } from "@aws-sdk/client-dynamodb"
import { Aggregate, EventStore } from "@dynamo-es/core"
import { DynamoClient, DynamoEventStore } from "@dynamo-es/dynamodb"
import { Context, Effect, Layer, Schema } from "effect"
import * as ChildProcess from "node:child_process"
import { inProcessHandler } from "./fake-dynamodb.js"
import * as Fs from "node:fs"
import { performance } from "node:perf_hooks"
import { monotonicFactory } from "ulid"

const sizes = (process.argv[2] ?? "20,100,200").split(",").map(Number)
/** `IN_PROCESS=1`: the SDK answers in this process (no HTTP, see `inProcessHandler`). */
const inProcess = process.env["IN_PROCESS"] === "1"
const rounds = Number(process.argv[3] ?? 40)
const only = process.argv[4] as "ours" | "raw" | undefined
const PER_ROUND = 20
const WARMUP = 1500

const EVENT_TYPE = "MoneyDeposited"
const MoneyDeposited = Schema.TaggedStruct(EVENT_TYPE, {
  accountId: Schema.String,
  amount: Schema.Finite,
  currency: Schema.String,
  note: Schema.String
})
type MoneyDeposited = typeof MoneyDeposited.Type
interface State {
  readonly balance: number
  readonly deposits: number
}
const initialState: State = { balance: 0, deposits: 0 }
const evolve = (s: State, e: MoneyDeposited): State => ({ balance: s.balance + e.amount, deposits: s.deposits + 1 })
const NOTE = "deposit reference ".padEnd(108, "x")
const decide = (command: { readonly amount: number }, _state: State): ReadonlyArray<MoneyDeposited> =>
  [{ _tag: EVENT_TYPE, accountId: "acc-0042", amount: command.amount, currency: "EUR", note: NOTE }]
const Account = Aggregate.make({ events: MoneyDeposited, initialState, evolve, decide })

const rawUlid = monotonicFactory()
const rawHandle = async (sdk: DynamoDBClient, table: string, streamId: string, amount: number, metadata: EventStore.EventMetadata) => {
  let state = initialState
  let version = 0
  let startKey: Record<string, AttributeValue> | undefined
  do {
    const r: QueryCommandOutput = await sdk.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "s = :s",
        ExpressionAttributeValues: { ":s": { S: streamId } },
        ConsistentRead: true,
        ReturnConsumedCapacity: "TOTAL",
        ...(startKey !== undefined ? { ExclusiveStartKey: startKey } : {})
      })
    )
    for (const item of r.Items ?? []) {
      state = evolve(state, JSON.parse(item.d!.S!) as MoneyDeposited)
      version = Number(item.v!.N)
    }
    startKey = r.LastEvaluatedKey
  } while (startKey !== undefined)
  const [event] = decide({ amount }, state)
  const now = Date.now()
  await sdk.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        s: { S: streamId },
        v: { N: String(version + 1) },
        i: { S: rawUlid(now) },
        y: { S: event!._tag },
        d: { S: JSON.stringify(event) },
        t: { N: String(now) },
        m: { S: JSON.stringify(metadata) }
      },
      ConditionExpression: "attribute_not_exists(v)",
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      ReturnConsumedCapacity: "TOTAL"
    })
  )
  return version + 1
}

const main = async () => {
  // Next to this file, or in the repository when this runs as a bundle (for readable profiles).
  const fake = new URL("./fake-dynamodb.ts", import.meta.url).pathname
  const child = ChildProcess.fork(Fs.existsSync(fake) ? fake : "bench/cpu/fake-dynamodb.ts", [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const port = await new Promise<number>((resolve) => child.once("message", (m: { port: number }) => resolve(m.port)))
  const sdk = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
    maxAttempts: 1,
    ...(inProcess ? { requestHandler: inProcessHandler as never } : {})
  })
  const table = "bench"
  const context = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const client = yield* Layer.build(DynamoClient.layer({ client: sdk }))
        const store = yield* DynamoEventStore.make({ tableName: table }).pipe(Effect.provide(client))
        return Context.make(EventStore.EventStore, store)
      })
    )
  )
  let seq = 0
  const ours = (streamId: string, n: number) =>
    Effect.runPromise(
      Effect.gen(function*() {
        for (let k = 0; k < n; k++) {
          const i = seq++
          yield* Account.handle(streamId, { amount: 1 + (i % 999) }, { metadata: { correlationId: `corr-${i}` } })
        }
      }).pipe(Effect.provide(context))
    )
  const raw = async (streamId: string, n: number) => {
    for (let k = 0; k < n; k++) {
      const i = seq++
      await rawHandle(sdk, table, streamId, 1 + (i % 999), { correlationId: `corr-${i}` })
    }
  }
  const sides = { ours, raw }
  for (const size of sizes) {
    const streamId = (side: string) => `s-${size}-${side}`
    for (let w = 0; w < WARMUP / 100; w++) {
      for (const side of ["ours", "raw"] as const) {
        if (only === undefined || only === side) await sides[side](streamId(side), 100 / (size >= 100 ? 2 : 1))
      }
    }
    const cpu = { ours: [] as Array<number>, raw: [] as Array<number> }
    const wall = { ours: 0, raw: 0 }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (["ours", "raw"] as const) : (["raw", "ours"] as const)
      for (const side of order) {
        if (only !== undefined && only !== side) continue
        const c0 = process.cpuUsage()
        const t0 = performance.now()
        await sides[side](streamId(side), PER_ROUND)
        wall[side] += performance.now() - t0
        const c = process.cpuUsage(c0)
        cpu[side].push((c.user + c.system) / PER_ROUND)
      }
    }
    const q = (xs: Array<number>, p: number) => {
      if (xs.length === 0) return NaN
      const s = [...xs].sort((a, b) => a - b)
      return s[Math.floor((s.length - 1) * p)]!
    }
    const mean = (xs: Array<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
    const f = (n: number) => n.toFixed(0).padStart(5)
    // Paired: each round's difference between the two sides, run back to back.
    const paired = cpu.ours.length === cpu.raw.length ? q(cpu.ours.map((x, i) => x - cpu.raw[i]!), 0.5) : NaN
    console.log(
      `${String(size).padStart(3)} events: CPU us/command ours ${f(mean(cpu.ours))} (q1 ${f(q(cpu.ours, 0.25))}, median ${f(q(cpu.ours, 0.5))})` +
        `  raw ${f(mean(cpu.raw))} (q1 ${f(q(cpu.raw, 0.25))}, median ${f(q(cpu.raw, 0.5))})` +
        `  ours-raw: median of pairs ${f(paired)}, mean ${f(mean(cpu.ours) - mean(cpu.raw))}` +
        `  wall ratio ${(wall.raw / wall.ours).toFixed(2)}`
    )
  }
  sdk.destroy()
  child.disconnect()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

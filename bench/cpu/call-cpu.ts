/**
 * CPU of `DynamoClient.call` alone: PutItem and Query through `call` vs `sdk.send`, against
 * the canned-answer endpoint of `fake-dynamodb.ts`. A profiling aid:
 *
 *   npx tsx bench/cpu/call-cpu.ts [rounds=30]
 */
import { PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb"
import type { EventStore } from "@dynamo-es/core"
import { DynamoClient, DynamoEventStore } from "@dynamo-es/dynamodb"
import { Context, Effect, Layer } from "effect"
import { startFake } from "./fake-dynamodb.js"

/** `IN_PROCESS=1`: the SDK answers in this process (no HTTP, see `inProcessHandler`). */
const inProcess = process.env["IN_PROCESS"] === "1"
const rounds = Number(process.argv[2] ?? 30)
const PER_ROUND = 100

const main = async () => {
  const { sdk, stop } = await startFake(inProcess)
  const { client, storage } = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(DynamoClient.layer({ client: sdk }))
      const storage = yield* DynamoEventStore.makeStorage("bench").pipe(Effect.provide(context))
      return { client: Context.get(context, DynamoClient.DynamoClient), storage }
    }))
  )
  const record: EventStore.EventRecord = {
    eventId: "01J00000000000000000000001",
    type: "MoneyDeposited",
    payloadJson: "x".repeat(200),
    metadataJson: "{\"correlationId\":\"corr-000001\"}",
    recordedAtMillis: 1_700_000_000_000,
    expiresAtSeconds: undefined
  }
  const page = { streamId: "s-20-x", from: 1, to: Number.MAX_SAFE_INTEGER, direction: "forward", consistentRead: true, maxEvents: Infinity } as const
  const query20 = () =>
    new QueryCommand({
      TableName: "bench",
      KeyConditionExpression: "s = :s",
      ExpressionAttributeValues: { ":s": { S: "s-20-x" } },
      ConsistentRead: true,
      ReturnConsumedCapacity: "TOTAL"
    })
  const put = () =>
    new PutItemCommand({
      TableName: "bench",
      Item: { s: { S: "s-1-x" }, v: { N: "2" }, d: { S: "x".repeat(200) } },
      ConditionExpression: "attribute_not_exists(v)",
      ReturnConsumedCapacity: "TOTAL"
    })
  const query = () =>
    new QueryCommand({
      TableName: "bench",
      KeyConditionExpression: "s = :s",
      ExpressionAttributeValues: { ":s": { S: "s-1-x" } },
      ConsistentRead: true,
      ReturnConsumedCapacity: "TOTAL"
    })
  /** `PER_ROUND` runs of an Effect in one `runPromise`; of a promise, awaited in turn. */
  const repeatEffect = <A, E>(effect: () => Effect.Effect<A, E>) => () =>
    Effect.runPromise(Effect.gen(function*() {
      for (let i = 0; i < PER_ROUND; i++) yield* effect()
    }))
  const repeatPromise = (promise: () => Promise<unknown>) => async () => {
    for (let i = 0; i < PER_ROUND; i++) await promise()
  }
  const sides = {
    "call put": repeatEffect(() => client.call("PutItem", "bench", (c) => c.send(put()))),
    "send put": repeatPromise(() => sdk.send(put())),
    "call query (signal)": repeatEffect(() => client.call("Query", "bench", (c, abortSignal) => c.send(query(), { abortSignal }))),
    "call query": repeatEffect(() => client.call("Query", "bench", (c) => c.send(query()))),
    "send query": repeatPromise(() => sdk.send(query())),
    "storage write": repeatEffect(() => storage.write("s-1-x", 1, [record])),
    "storage readPage (20)": repeatEffect(() => storage.readPage(page, undefined)),
    "send query (20)": repeatPromise(() => sdk.send(query20()))
  }
  const names = Object.keys(sides) as Array<keyof typeof sides>
  for (let w = 0; w < 10; w++) for (const n of names) await sides[n]()
  const cpu = Object.fromEntries(names.map((n) => [n, [] as Array<number>]))
  for (let r = 0; r < rounds; r++) {
    for (const n of r % 2 === 0 ? names : [...names].reverse()) {
      const c0 = process.cpuUsage()
      await sides[n]()
      const c = process.cpuUsage(c0)
      cpu[n]!.push((c.user + c.system) / PER_ROUND)
    }
  }
  const q1 = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 4)]!
  const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!
  for (const n of names) console.log(`${n.padEnd(20)} CPU us/call q1 ${q1(cpu[n]!).toFixed(0)} median ${median(cpu[n]!).toFixed(0)}`)
  stop()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

/**
 * CPU per command, ours vs raw, with DynamoDB taken out: the same two handlers as
 * `bench/aggregate.bench.ts`, over a real SDK client and real HTTP, against a canned-answer
 * endpoint in a child process (`fake-dynamodb.ts`, whose CPU is not counted). What is left is
 * the CPU of this process per command: the SDK (the same for both sides) and what the
 * library adds (all threads, and the main thread alone). A profiling aid, not part of `npm run bench`:
 *
 *   npx tsx bench/cpu/command-cpu.ts [sizes=20,100,200] [rounds=40]
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/cpu/command-cpu.ts 200 20 ours
 */
import { DynamoClient, DynamoEventStore } from "@dynamo-es/dynamodb"
import { Effect, Layer } from "effect"
import { performance } from "node:perf_hooks"
import { amountOf, metadataFor, oursSide, rawHandle } from "../account.js"
import { startFake } from "./fake-dynamodb.js"

const sizes = (process.argv[2] ?? "20,100,200").split(",").map(Number)
/** `IN_PROCESS=1`: the SDK answers in this process (no HTTP, see `inProcessHandler`). */
const inProcess = process.env["IN_PROCESS"] === "1"
const rounds = Number(process.argv[3] ?? 40)
const only = process.argv[4] as "ours" | "raw" | undefined
const PER_ROUND = 20
const WARMUP = 1500

const main = async () => {
  const { sdk, stop } = await startFake(inProcess)
  const table = "bench"
  const store = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const client = yield* Layer.build(DynamoClient.layer({ client: sdk }))
        return yield* DynamoEventStore.make({ tableName: table }).pipe(Effect.provide(client))
      })
    )
  )
  let seq = 0
  const ours = oursSide(store, () => seq++)
  const raw = async (streamId: string, n: number) => {
    for (let k = 0; k < n; k++) {
      const i = seq++
      await rawHandle(sdk, table, streamId, { amount: amountOf(i) }, metadataFor(i))
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
    // The main thread alone: without the GC and JIT threads, which work for either side
    // whenever they run (the steadier figure on a machine shared with other jobs).
    const main = { ours: [] as Array<number>, raw: [] as Array<number> }
    const wall = { ours: 0, raw: 0 }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (["ours", "raw"] as const) : (["raw", "ours"] as const)
      for (const side of order) {
        if (only !== undefined && only !== side) continue
        const c0 = process.cpuUsage()
        const m0 = process.threadCpuUsage()
        const t0 = performance.now()
        await sides[side](streamId(side), PER_ROUND)
        wall[side] += performance.now() - t0
        const m = process.threadCpuUsage(m0)
        const c = process.cpuUsage(c0)
        cpu[side].push((c.user + c.system) / PER_ROUND)
        main[side].push((m.user + m.system) / PER_ROUND)
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
    const pairs = (xs: { ours: Array<number>; raw: Array<number> }) =>
      xs.ours.length === xs.raw.length ? q(xs.ours.map((x, i) => x - xs.raw[i]!), 0.5) : NaN
    const paired = pairs(cpu)
    console.log(
      `${String(size).padStart(3)} events: CPU us/command ours ${f(mean(cpu.ours))} (q1 ${f(q(cpu.ours, 0.25))}, median ${f(q(cpu.ours, 0.5))})` +
        `  raw ${f(mean(cpu.raw))} (q1 ${f(q(cpu.raw, 0.25))}, median ${f(q(cpu.raw, 0.5))})` +
        `  ours-raw: median of pairs ${f(paired)}, mean ${f(mean(cpu.ours) - mean(cpu.raw))}` +
        `  wall ratio ${(wall.raw / wall.ours).toFixed(2)}`
    )
    console.log(
      `${"".padStart(3)}  main thread: ours ${f(q(main.ours, 0.5))}  raw ${f(q(main.raw, 0.5))} (medians)  ours-raw: median of pairs ${f(pairs(main))}`
    )
  }
  stop()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

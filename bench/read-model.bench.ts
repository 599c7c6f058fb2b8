/**
 * Read-model benchmark: the deferred repository's batched flush against one `PutItem` per
 * read model (what the PHP package this project learned from does), and a lookup of 1,000
 * ids with `findBy({ id: [...] })` (BatchGetItem) against 1,000 `GetItem`s, on one
 * DynamoDB Local, in one process, with one instrumented SDK client for every side.
 *
 * Run with `npx tsx bench/read-model.bench.ts`. Prints a table and writes
 * bench/results/read-model.json.
 */
import { type AttributeValue, DynamoDBClient, QueryCommand } from "@aws-sdk/client-dynamodb"
import { ReadModel } from "@dynamo-es/core"
import { DynamoClient, DynamoReadModelStore, Tables } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Layer, Schema } from "effect"
import { countInto, emptyStats, fmt, lpad, makeEntries, pad, startBench, type Stats, totalRequests, writeResults } from "./harness.js"
import { performance } from "node:perf_hooks"

// -----------------------------------------------------------------------------
// settings: about 1.5 to 2 minutes on a 2-core machine
// -----------------------------------------------------------------------------

const ROUNDS = 4 // interleaved: sides in order A,B,C then C,B,A, ...
const MODELS = 5_000
const LOOKUP_IDS = 1_000
const LOOKUP_REPEATS = 3 // lookups of 1,000 ids per side per round
const CONCURRENCY = 8 // requests in flight for the "concurrent" baselines, same as the flush default

// -----------------------------------------------------------------------------
// request and capacity recorder (SDK middleware, shared by every side)
// -----------------------------------------------------------------------------

/** The stats bucket the middleware records into; `undefined` while seeding, checking and warming up. */
let bucket: Stats | undefined
const instrument = countInto(() => bucket)

// -----------------------------------------------------------------------------
// the read model: about 300 bytes of JSON, one item of 1 KB or less
// -----------------------------------------------------------------------------

const Account = Schema.Struct({
  id: Schema.String,
  owner: Schema.String,
  email: Schema.String,
  tags: Schema.Array(Schema.String),
  balance: Schema.Number,
  openedAt: Schema.String,
  note: Schema.String
}).annotate({ identifier: "Account" })
type Account = typeof Account.Type

const idOf = (n: number) => `acc-${String(n).padStart(6, "0")}`
const accountFor = (n: number, round: number): Account => ({
  id: idOf(n),
  owner: `Owner number ${n}`,
  email: `owner.${n}@example.com`,
  tags: n % 3 === 0 ? ["vip", "eu"] : ["eu"],
  balance: (n * 7919 + round) % 1_000_000,
  openedAt: new Date(1_700_000_000_000 + n * 60_000).toISOString(),
  note: "x".repeat(120)
})

// -----------------------------------------------------------------------------
// measurements
// -----------------------------------------------------------------------------

interface Env {
  readonly sdk: DynamoDBClient
  readonly table: string
  readonly store: ReadModel.ReadModelStoreShape
}

interface Side {
  readonly key: string
  readonly title: string
  /**
   * Work units per warm-up pass. Batched sides get more: the JVM of DynamoDB Local warms
   * up per code path, and a batch path sees far fewer requests than a per-item one.
   */
  readonly warmup: number
  /** Runs one segment and returns the repository name it wrote or the ids it found. */
  readonly run: (env: Env, round: number, count: number) => Effect.Effect<string, unknown>
}

interface Measurement {
  readonly key: string
  readonly title: string
  readonly unit: string
  /** Work units per segment (models written, ids looked up). */
  readonly count: number
  readonly sides: ReadonlyArray<Side>
  /** Proves that every side did the same work (same rows, same models); runs unrecorded. */
  readonly check: (env: Env, outputs: ReadonlyArray<string>) => Effect.Effect<void, unknown>
}

let repoSeq = 0
const freshName = (kind: string) => `${kind}-${(repoSeq++).toString(36).padStart(4, "0")}`

const rawRows = async (env: Env, name: string) => {
  const out: Array<string> = []
  let startKey: Record<string, AttributeValue> | undefined
  do {
    const r = await env.sdk.send(
      new QueryCommand({
        TableName: env.table,
        KeyConditionExpression: "#n = :n",
        ExpressionAttributeNames: { "#n": "Name" },
        ExpressionAttributeValues: { ":n": { S: name } },
        ConsistentRead: true,
        ExclusiveStartKey: startKey
      })
    )
    for (const item of r.Items ?? []) out.push(`${item.Id?.S}\u0000${item.Data?.S}`)
    startKey = r.LastEvaluatedKey
  } while (startKey !== undefined)
  return out
}

const flush: Measurement = {
  key: "flush",
  title: `write ${MODELS.toLocaleString("en-US")} read models`,
  unit: "models",
  count: MODELS,
  sides: [
    {
      key: "deferred",
      title: "deferred: save each + flush (BatchWriteItem)",
      warmup: 3 * MODELS,
      run: (env, round, count) =>
        Effect.gen(function*() {
          const name = freshName("deferred")
          const uow = yield* env.store.createDeferred(name, Account)
          for (let n = 0; n < count; n++) yield* uow.save(accountFor(n, round))
          const result = yield* uow.flush
          if (result.saved !== count) return yield* Effect.die(new Error(`flush saved ${result.saved}`))
          return name
        })
    },
    {
      key: "putEach",
      title: "immediate: one PutItem per model",
      warmup: 2_000,
      run: (env, round, count) =>
        Effect.gen(function*() {
          const name = freshName("put")
          const repo = yield* env.store.create(name, Account)
          for (let n = 0; n < count; n++) yield* repo.save(accountFor(n, round))
          return name
        })
    },
    {
      key: "putConcurrent",
      title: `immediate: one PutItem per model, ${CONCURRENCY} in flight`,
      warmup: 2_000,
      run: (env, round, count) =>
        Effect.gen(function*() {
          const name = freshName("putc")
          const repo = yield* env.store.create(name, Account)
          yield* Effect.forEach(
            Array.from({ length: count }, (_, n) => n),
            (n) => repo.save(accountFor(n, round)),
            { concurrency: CONCURRENCY, discard: true }
          )
          return name
        })
    }
  ],
  check: (env, names) =>
    Effect.promise(async () => {
      const [first, ...others] = await Promise.all(names.map((name) => rawRows(env, name)))
      for (const [i, rows] of others.entries()) {
        if (rows.length !== first!.length || rows.some((row, j) => row !== first![j])) {
          throw new Error(`tables differ: ${names[0]} (${first!.length} rows) vs ${names[i + 1]} (${rows.length} rows)`)
        }
      }
    })
}

const LOOKUP_REPO = "lookup-seed"
const SEEDED = 5_000
/** 1,000 ids spread over the seeded partition, shuffled (a lookup list in no particular order). */
const lookupIds = (round: number, count: number) =>
  Array.from({ length: count }, (_, i) => idOf((i * 4_999 + round * 13) % SEEDED))

const lookup: Measurement = {
  key: "lookup",
  title: `find ${LOOKUP_IDS.toLocaleString("en-US")} read models by id`,
  unit: "ids",
  count: LOOKUP_IDS * LOOKUP_REPEATS,
  sides: [
    {
      key: "findBy",
      title: "findBy({ id: [...] }) (BatchGetItem)",
      warmup: 10 * LOOKUP_IDS,
      run: (env, round, count) =>
        Effect.gen(function*() {
          const repo = yield* env.store.create(LOOKUP_REPO, Account)
          let last: ReadonlyArray<Account> = []
          for (let k = 0; k < count / LOOKUP_IDS; k++) last = yield* repo.findBy({ id: lookupIds(round, LOOKUP_IDS) })
          return last.map((a) => `${a.id}:${a.balance}`).join(",")
        })
    },
    {
      key: "getEach",
      title: "find each id (one GetItem each)",
      warmup: LOOKUP_IDS,
      run: (env, round, count) =>
        Effect.gen(function*() {
          const repo = yield* env.store.create(LOOKUP_REPO, Account)
          const found: Array<Account> = []
          for (let k = 0; k < count / LOOKUP_IDS; k++) {
            found.length = 0
            for (const id of lookupIds(round, LOOKUP_IDS)) {
              const model = yield* repo.find(id)
              if (model._tag === "Some") found.push(model.value)
            }
          }
          return found.map((a) => `${a.id}:${a.balance}`).join(",")
        })
    },
    {
      key: "getConcurrent",
      title: `find each id, ${CONCURRENCY} in flight`,
      warmup: LOOKUP_IDS,
      run: (env, round, count) =>
        Effect.gen(function*() {
          const repo = yield* env.store.create(LOOKUP_REPO, Account)
          let last: Array<Account> = []
          for (let k = 0; k < count / LOOKUP_IDS; k++) {
            const found = yield* Effect.forEach(lookupIds(round, LOOKUP_IDS), (id) => repo.find(id), { concurrency: CONCURRENCY })
            last = found.flatMap((o) => (o._tag === "Some" ? [o.value] : []))
          }
          return last.map((a) => `${a.id}:${a.balance}`).join(",")
        })
    }
  ],
  check: (_env, outputs) =>
    Effect.sync(() => {
      if (outputs.some((o) => o !== outputs[0]) || outputs[0]!.split(",").length !== LOOKUP_IDS) {
        throw new Error("lookups returned different models")
      }
    })
}

// -----------------------------------------------------------------------------
// running and reporting
// -----------------------------------------------------------------------------

interface SideResult {
  ms: number
  units: number
  readonly stats: Stats
  readonly roundMs: Array<number>
}


const timed = (record: Stats | undefined, work: Effect.Effect<string, unknown>) =>
  Effect.gen(function*() {
    bucket = record
    const t0 = performance.now()
    const output = yield* work.pipe(Effect.ensuring(Effect.sync(() => {
      bucket = undefined
    })))
    return { ms: performance.now() - t0, output }
  })

const measure = (env: Env, m: Measurement) =>
  Effect.gen(function*() {
    const results = m.sides.map((): SideResult => ({ ms: 0, units: 0, stats: emptyStats(), roundMs: [] }))
    for (let round = 0; round < ROUNDS; round++) {
      const order = m.sides.map((_, i) => i)
      if (round % 2 === 1) order.reverse()
      const outputs: Array<string> = []
      const line: Array<string> = []
      for (const i of order) {
        const r = results[i]!
        const { ms, output } = yield* timed(r.stats, m.sides[i]!.run(env, round, m.count))
        r.ms += ms
        r.units += m.count
        r.roundMs.push(ms)
        outputs[i] = output
        line.push(`${m.sides[i]!.key} ${fmt((m.count * 1000) / ms)}/s`)
      }
      yield* m.check(env, outputs)
      yield* Console.log(`  round ${round + 1}/${ROUNDS}: ${line.join(", ")} (same result on every side: checked)`)
    }
    return results
  })

const program = Effect.gen(function*() {
  // One instrumented SDK client for the library and for the raw baseline.
  const { local, sdk, clientContext, elapsed } = yield* startBench(`dynamo-es read-model benchmark (${ROUNDS} interleaved rounds per measurement)`, instrument)
  const table = Fixtures.uniqueTableName("rmbench")
  yield* Effect.acquireRelease(
    Tables.ensureTables([DynamoReadModelStore.readModelsTable(table)]),
    () => Tables.deleteTables([table]).pipe(Effect.ignore)
  ).pipe(Effect.provide(clientContext))
  const store = yield* DynamoReadModelStore.make({ tableName: table }).pipe(Effect.provide(clientContext))
  const env: Env = { sdk, table, store }

  yield* Console.log(`seeding ${SEEDED.toLocaleString("en-US")} read models for the lookups (deferred flush, unmeasured) ...`)
  const seed = yield* store.createDeferred(LOOKUP_REPO, Account)
  for (let n = 0; n < SEEDED; n++) yield* seed.save(accountFor(n, 0))
  yield* seed.flush

  const measurements = [flush, lookup]
  yield* Console.log(`warm-up (every side, twice; the JVM keeps getting faster for thousands of requests) ... (${elapsed()})`)
  for (let pass = 0; pass < 2; pass++) {
    for (const m of measurements) {
      for (const side of pass === 0 ? m.sides : [...m.sides].reverse()) {
        // In segments of at most one measured segment (lookups: whole lists of 1,000 ids).
        for (let done = 0; done < side.warmup; done += m.count) {
          yield* timed(undefined, side.run(env, 0, Math.min(m.count, side.warmup - done)))
        }
      }
    }
  }
  yield* Console.log(`  done (${elapsed()})`)

  const all: Array<{ readonly m: Measurement; readonly results: ReadonlyArray<SideResult> }> = []
  for (const m of measurements) {
    yield* Console.log(`measuring: ${m.title}: ${ROUNDS} rounds x ${fmt(m.count)} ${m.unit} per side ... (${elapsed()})`)
    all.push({ m, results: yield* measure(env, m) })
  }

  // --- report ----------------------------------------------------------------
  const lines: Array<string> = []
  const { entries, entry } = makeEntries()

  const head = [pad("measurement / side", 52), lpad("per second", 12), lpad("ms per 1,000", 13), lpad("requests", 10), lpad("WCU", 8), lpad("RCU", 8), lpad("speedup", 8), lpad("req. ratio", 11)]
  lines.push(head.join(" "))
  lines.push("-".repeat(head.join(" ").length))
  for (const { m, results } of all) {
    const base = results[1]! // the PHP-style side: one request per model, one at a time
    lines.push(`${m.title} (per round: ${fmt(m.count)} ${m.unit} per side; totals over ${ROUNDS} rounds)`)
    for (const [i, r] of results.entries()) {
      const side = m.sides[i]!
      const speedup = base.ms / r.ms
      const requestRatio = totalRequests(base.stats) / totalRequests(r.stats)
      lines.push([
        pad(`  ${side.title}`, 52),
        lpad(fmt((r.units * 1000) / r.ms), 12),
        lpad(fmt((r.ms * 1000) / r.units, 1), 13),
        lpad(fmt(totalRequests(r.stats)), 10),
        lpad(fmt(r.stats.write), 8),
        lpad(fmt(r.stats.read), 8),
        lpad(`${fmt(speedup, 2)}x`, 8),
        lpad(`${fmt(requestRatio, 1)}x`, 11)
      ].join(" "))
      const name = `${m.title}: ${side.title}`
      entry(`${name}: throughput`, (r.units * 1000) / r.ms, `${m.unit}/s`, i === 1 ? undefined : (base.units * 1000) / base.ms)
      entry(`${name}: requests per ${fmt(m.count)} ${m.unit}`, (totalRequests(r.stats) * m.count) / r.units, "requests", i === 1 ? undefined : (totalRequests(base.stats) * m.count) / base.units)
      entry(`${name}: ${m.key === "flush" ? "WCU" : "RCU"} per ${fmt(m.count)} ${m.unit}`, ((m.key === "flush" ? r.stats.write : r.stats.read) * m.count) / r.units, m.key === "flush" ? "WCU" : "RCU")
      if (i !== 1) {
        entry(`${name}: speedup vs one request per ${m.key === "flush" ? "model" : "id"}`, speedup, "x")
        entry(`${name}: fewer requests vs one request per ${m.key === "flush" ? "model" : "id"}`, requestRatio, "x")
      }
    }
    const spread = results[0]!.roundMs.map((ms, k) => base.roundMs[k]! / ms)
    lines.push(`  speedup of the first side per round: ${spread.map((s) => `${fmt(s, 2)}x`).join(", ")}`)
  }
  const flushResults = all[0]!.results
  const speedup = flushResults[1]!.ms / flushResults[0]!.ms
  const requestRatio = totalRequests(flushResults[1]!.stats) / totalRequests(flushResults[0]!.stats)
  lines.push("")
  lines.push(
    `Goal (flush of ${fmt(MODELS)} vs one PutItem per model): >= 5x faster, >= 25x fewer requests. ` +
      `Measured: ${fmt(speedup, 1)}x faster, ${fmt(requestRatio, 1)}x fewer requests: ${speedup >= 5 && requestRatio >= 25 ? "met" : "NOT met"}.`
  )
  lines.push("Every round checks that all sides left identical rows (Id and Data) / returned identical models.")

  yield* writeResults("read-model.json", lines, entries, elapsed)
  yield* Console.log("stopping DynamoDB Local ...")
})

program.pipe(Effect.scoped, NodeRuntime.runMain)

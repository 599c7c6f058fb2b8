/**
 * CPU of the core alone per command: `Aggregate.handle` over an `EventStore.make` whose
 * storage answers at once from memory (N fixed rows, every write succeeds), against the raw
 * equivalent of what storage hands back (JSON.parse of N payloads, fold). No SDK, no HTTP:
 * what is left is what core adds. A profiling aid:
 *
 *   npx tsx bench/cpu/core-cpu.ts [sizes=20,100,200] [rounds=30]
 */
import { EventStore } from "@dynamo-es/core"
import { Effect } from "effect"
import { amountOf, decide, EVENT_TYPE, evolve, initialState, metadataFor, NOTE, oursSide } from "../account.js"

const sizes = (process.argv[2] ?? "20,100,200").split(",").map(Number)
const rounds = Number(process.argv[3] ?? 30)
const PER_ROUND = 200

const rowsFor = (streamId: string, n: number): Array<EventStore.StoredEvent> =>
  Array.from({ length: n }, (_, i) => ({
    streamId,
    version: i + 1,
    eventId: `01J${String(i + 1).padStart(23, "0")}`,
    type: EVENT_TYPE,
    payloadJson: JSON.stringify({ _tag: EVENT_TYPE, accountId: "acc-0042", amount: 1 + i, currency: "EUR", note: NOTE }),
    metadataJson: JSON.stringify({ correlationId: `corr-${String(i + 1).padStart(6, "0")}` }),
    recordedAtMillis: 1_700_000_000_000 + i * 60_000,
    expiresAtSeconds: undefined
  }))

const main = async () => {
  const rows = new Map<string, Array<EventStore.StoredEvent>>()
  const storage: EventStore.Storage = {
    lastVersion: (streamId) => Effect.sync(() => rows.get(streamId)?.length ?? 0),
    write: () => Effect.succeed({ _tag: "Written" }),
    // A copy of the row objects per page, as a driver builds them from its response.
    readPage: (request) => Effect.sync(() => ({ rows: (rows.get(request.streamId) ?? []).map((r) => ({ ...r })), cursor: undefined }))
  }
  const store = await Effect.runPromise(EventStore.make(storage))
  let seq = 0
  const ours = oursSide(store, () => seq++)
  let sink = 0
  const raw = async (streamId: string, n: number) => {
    for (let k = 0; k < n; k++) {
      const i = seq++
      let state = initialState
      for (const r of (rows.get(streamId) ?? []).map((r) => ({ ...r }))) state = evolve(state, JSON.parse(r.payloadJson as string))
      const [event] = decide({ amount: amountOf(i) }, state)
      sink += JSON.stringify(event).length + JSON.stringify(metadataFor(i)).length
      await Promise.resolve()
      await Promise.resolve()
    }
  }
  const sides = { ours, raw }
  for (const size of sizes) {
    const streamId = (side: string) => `s-${size}-${side}`
    rows.set(streamId("ours"), rowsFor(streamId("ours"), size))
    rows.set(streamId("raw"), rowsFor(streamId("raw"), size))
    for (let w = 0; w < 10; w++) for (const side of ["ours", "raw"] as const) await sides[side](streamId(side), PER_ROUND)
    const cpu = { ours: [] as Array<number>, raw: [] as Array<number> }
    for (let r = 0; r < rounds; r++) {
      for (const side of r % 2 === 0 ? (["ours", "raw"] as const) : (["raw", "ours"] as const)) {
        const c0 = process.cpuUsage()
        await sides[side](streamId(side), PER_ROUND)
        const c = process.cpuUsage(c0)
        cpu[side].push((c.user + c.system) / PER_ROUND)
      }
    }
    const q1 = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 4)]!
    const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!
    console.log(
      `${String(size).padStart(3)} events: core CPU us/command ours q1 ${q1(cpu.ours).toFixed(1)} median ${median(cpu.ours).toFixed(1)}` +
        `, raw q1 ${q1(cpu.raw).toFixed(1)} median ${median(cpu.raw).toFixed(1)}, difference (q1) ${(q1(cpu.ours) - q1(cpu.raw)).toFixed(1)}`
    )
  }
  if (sink < 0) console.log(sink)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})

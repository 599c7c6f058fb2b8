/**
 * The in-memory {@link Storage} of the event store: a map of streams, each an array of
 * records whose index is the version - 1. A write is check-then-set without any await in
 * between, so it is atomic for other fibers. Pages are 100 events, so that paging code
 * runs in tests too.
 */
import { Effect } from "effect"
import type { EventRecord, Page, PageRequest, Storage, StorageLimits, StoredEvent, WriteOutcome } from "./eventStoreModel.js"
import { utf8Length } from "./inputs.js"

const PAGE_SIZE = 100

/** DynamoDB's size of a number: one byte per two significant digits (no leading or trailing zeros), plus one. */
const numberSize = (n: number): number =>
  Math.ceil(String(Math.abs(n)).replace(/^0+|\.|e.*$/g, "").replace(/0+$/, "").length / 2) + 1

/**
 * The memory storage's limits, and those of a storage that declares none: DynamoDB's (as
 * `DynamoEventStore` declares them), so that the memory store refuses exactly what the
 * DynamoDB store refuses. An event is sized as the DynamoDB item it would be: the one-letter
 * attribute names plus their values (`m` and `x` only when present).
 */
export const defaultStorageLimits: StorageLimits = {
  maxEventBytes: 409_600,
  maxEventsPerWrite: 100,
  maxWriteBytes: 4 * 1024 * 1024,
  eventSize: (streamId, version, e) =>
    6 + utf8Length(streamId) + numberSize(version) + utf8Length(e.eventId) + utf8Length(e.type) +
    utf8Length(e.payloadJson) + numberSize(e.recordedAtMillis) +
    (e.metadataJson === undefined ? 0 : 1 + utf8Length(e.metadataJson)) +
    (e.expiresAtSeconds === undefined ? 0 : 1 + numberSize(e.expiresAtSeconds))
}

export const makeMemoryStorage = (): Storage & { readonly eventCount: Effect.Effect<number> } => {
  const streams = new Map<string, Array<EventRecord>>()
  const stored = (streamId: string, version: number, e: EventRecord): StoredEvent => ({ streamId, version, ...e })

  return {
    limits: defaultStorageLimits,
    lastVersion: (streamId) => Effect.sync(() => streams.get(streamId)?.length ?? 0),
    write: (streamId, base, events) =>
      Effect.sync((): WriteOutcome => {
        const stream = streams.get(streamId) ?? []
        if (stream.length > base) {
          return {
            _tag: "Taken",
            stored: events.map((_, i) => {
              const e = stream[base + i]
              return e === undefined ? undefined : stored(streamId, base + 1 + i, e)
            })
          }
        }
        // Never a gap: the event store writes base+1 only when base is proven to exist.
        if (stream.length < base) throw new Error(`memory storage: a write at ${base + 1} after version ${stream.length}`)
        streams.set(streamId, stream.concat(events.map((e) => ({ ...e }))))
        return { _tag: "Written" }
      }),
    readPage: (request: PageRequest, cursor: unknown) =>
      Effect.sync((): Page => {
        const stream = streams.get(request.streamId) ?? []
        const size = Math.min(request.maxEvents, PAGE_SIZE)
        const to = Math.min(request.to, stream.length)
        const rows: Array<StoredEvent> = []
        if (request.direction === "forward") {
          const start = typeof cursor === "number" ? cursor : request.from
          let v = start
          for (; v <= to && rows.length < size; v++) rows.push(stored(request.streamId, v, stream[v - 1]!))
          return { rows, cursor: v <= to ? v : undefined }
        }
        const start = typeof cursor === "number" ? cursor : to
        let v = start
        for (; v >= request.from && rows.length < size; v--) rows.push(stored(request.streamId, v, stream[v - 1]!))
        return { rows, cursor: v >= request.from ? v : undefined }
      }),
    eventCount: Effect.sync(() => {
      let n = 0
      for (const stream of streams.values()) n += stream.length
      return n
    })
  }
}

/**
 * The in-memory event store's storage with a log: every successful write of the event
 * store's memory storage becomes one log entry, at commit, with no await in between, so
 * positions follow commit order and per-stream versions are in order by construction.
 */
import { Deferred, Duration, Effect } from "effect"
import type { StoredEntry, Storage as LogStorage } from "./eventLogModel.js"
import type { Storage as EventStorage, StoredEvent } from "./eventStoreModel.js"
import { makeMemoryStorage } from "./memoryStorage.js"
import { compareIds } from "./readModel/limits.js"

/** Entries per page, small so that paging code runs in tests. */
const PAGE_ENTRIES = 10
/** Stream ids per page of `listStreams`. */
const PAGE_STREAMS = 100

export const makeMemoryLogStorage = (
  categoryOf: (streamId: string) => string
): { readonly events: EventStorage; readonly log: LogStorage } => {
  const inner = makeMemoryStorage()
  const entries: Array<StoredEntry> = []
  let head = 0
  const categories = new Map<string, Set<string>>()
  let changed = Deferred.makeUnsafe<void>()

  const events: EventStorage = {
    ...inner,
    write: (streamId, base, records) =>
      Effect.flatMap(inner.write(streamId, base, records), (outcome) =>
        Effect.sync(() => {
          if (outcome._tag !== "Written") return outcome
          const stored: Array<StoredEvent> = records.map((e, i) => ({ streamId, version: base + 1 + i, ...e }))
          entries.push({ first: head + 1, events: stored })
          head += stored.length
          const category = categoryOf(streamId)
          const ids = categories.get(category) ?? new Set<string>()
          ids.add(streamId)
          categories.set(category, ids)
          const done = changed
          changed = Deferred.makeUnsafe<void>()
          Deferred.doneUnsafe(done, Effect.void)
          return outcome
        }))
  }

  /** Index of the entry holding `position` (binary search on `first`). */
  const entryIndex = (position: number) => {
    let lo = 0
    let hi = entries.length - 1
    let found = entries.length
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const e = entries[mid]!
      if (e.first + e.events.length - 1 >= position) {
        found = mid
        hi = mid - 1
      } else lo = mid + 1
    }
    return found
  }

  const log: LogStorage = {
    readEntries: (after, cursor) =>
      Effect.sync(() => {
        const start = typeof cursor === "number" ? cursor : entryIndex(after + 1)
        const page = entries.slice(start, start + PAGE_ENTRIES)
        return { entries: page, next: start + PAGE_ENTRIES < entries.length ? start + PAGE_ENTRIES : undefined }
      }),
    readEvent: (streamId, version) =>
      Effect.map(
        inner.readPage({ streamId, from: version, to: version, direction: "forward", consistentRead: true, maxEvents: 1 }, undefined),
        (page) => page.rows[0]
      ),
    head: Effect.sync(() => head),
    listStreams: (category, cursor) =>
      Effect.sync(() => {
        // DynamoDB's order of string keys: UTF-8 bytes (code points), not UTF-16 units.
        const ids = [...(categories.get(category) ?? [])].sort(compareIds)
        const start = typeof cursor === "number" ? cursor : 0
        return { streamIds: ids.slice(start, start + PAGE_STREAMS), next: start + PAGE_STREAMS < ids.length ? start + PAGE_STREAMS : undefined }
      }),
    categoryOf,
    awaitChange: (after) => Effect.suspend(() => (head > after ? Effect.void : Deferred.await(changed))),
    pollInterval: Duration.seconds(1)
  }
  return { events, log }
}

/**
 * The in-memory {@link Storage} of the snapshot store: per stream, an array of snapshots,
 * newest first. Every primitive runs without an await in between, so each is atomic for
 * other fibers. States are kept as the JSON the store hands over, so a later mutation of a
 * saved object changes nothing.
 */
import { Effect } from "effect"
import type { ReadOutcome, SnapshotRecord, Storage, StoredSnapshot } from "./snapshotStoreModel.js"

/** What the memory storage keeps per snapshot; the entry itself is the `ref` it hands out. */
interface Entry extends SnapshotRecord {
  readonly ref: Entry
}

export const makeMemoryStorage = (options: { readonly maxStateBytes?: number | undefined } = {}): Storage & {
  /** How many snapshots are stored (all streams), for tests. */
  readonly snapshotCount: Effect.Effect<number>
} => {
  const streams = new Map<string, Array<Entry>>()
  const toStored = (e: Entry): StoredSnapshot => ({
    version: e.version,
    schemaVersion: e.schemaVersion,
    savedAtMillis: e.savedAtMillis,
    ref: e
  })
  return {
    maxStateBytes: options.maxStateBytes,
    list: (streamId, atOrBefore) =>
      Effect.sync(() =>
        (streams.get(streamId) ?? [])
          .filter((e) => atOrBefore === undefined || e.version <= atOrBefore)
          .map(toStored)
      ),
    write: (streamId, snapshot) =>
      Effect.sync(() => {
        const entry = { ...snapshot } as { -readonly [K in keyof Entry]: Entry[K] }
        entry.ref = entry
        // The new snapshot goes first and the sort is stable: among equal versions, the
        // later save comes first (as on DynamoDB, where a monotonic ULID orders them).
        const list = [entry as Entry, ...(streams.get(streamId) ?? [])]
        list.sort((a, b) => b.version - a.version)
        streams.set(streamId, list)
      }),
    read: (streamId, snapshot) =>
      Effect.sync((): ReadOutcome =>
        (streams.get(streamId) ?? []).includes(snapshot.ref as Entry)
          ? { _tag: "Found", stateJson: (snapshot.ref as Entry).stateJson }
          : { _tag: "Missing", reason: "the snapshot was deleted after it was listed" }
      ),
    remove: (streamId, drop) =>
      Effect.sync(() => {
        const dropped = new Set(drop.map((s) => s.ref))
        const list = (streams.get(streamId) ?? []).filter((e) => !dropped.has(e))
        if (list.length === 0) streams.delete(streamId)
        else streams.set(streamId, list)
      }),
    snapshotCount: Effect.sync(() => {
      let n = 0
      for (const list of streams.values()) n += list.length
      return n
    })
  }
}

/**
 * The storage contract of the global log, which a driver implements. `EventLog.ts`
 * re-exports every name; they live here so that the memory log (`internal/memoryLog.ts`) and
 * the public module can both import them without importing each other.
 */
import type { Duration, Effect } from "effect"
import type { StorageError } from "../Errors.js"
import type { StoredEvent } from "./eventStoreModel.js"

/**
 * An event too large to be copied into the log: the reader reads it from the event store.
 *
 * @since 0.2.0
 * @category storage
 */
export interface EventPointer {
  readonly _tag: "Pointer"
  readonly streamId: string
  readonly version: number
}

/**
 * One log entry as storage gives it back: the position of its first event and its events
 * (stored fields as in the event store, or pointers), at positions `first`, `first + 1`, ...
 *
 * @since 0.2.0
 * @category storage
 */
export interface StoredEntry {
  readonly first: number
  readonly events: ReadonlyArray<StoredEvent | EventPointer>
}

/**
 * The storage primitives a log driver implements, each one request (or one page).
 * `EventLog.make` implements the reading rules once on top of them: paging, resuming inside an
 * entry, stopping at the first missing entry, filters, decoding, pointers, catch-up and live.
 *
 * @since 0.2.0
 * @category storage
 */
export interface Storage {
  /**
   * One page of entries in position order: the first is the entry holding position
   * `after + 1` (it may start before it); `cursor` is `undefined` for the first page of a
   * read and `next` is `undefined` when there is nothing more at the moment. `aligned` says
   * that `after` is the last position of an entry (or 0), so that the entry holding
   * `after + 1` starts there: a driver can then skip looking for it.
   */
  readonly readEntries: (
    after: number,
    cursor: unknown,
    aligned: boolean
  ) => Effect.Effect<{ readonly entries: ReadonlyArray<StoredEntry>; readonly next: unknown }, StorageError>
  /** The event a pointer points to; `undefined` when it no longer exists (expired by TTL). */
  readonly readEvent: (streamId: string, version: number) => Effect.Effect<StoredEvent | undefined, StorageError>
  /** The position of the last event in the log. */
  readonly head: Effect.Effect<number, StorageError>
  /** One page of the stream ids of a category, in id order. */
  readonly listStreams: (
    category: string,
    cursor: unknown
  ) => Effect.Effect<{ readonly streamIds: ReadonlyArray<string>; readonly next: unknown }, StorageError>
  /** The category rule the log was built with. */
  readonly categoryOf: (streamId: string) => string
  /**
   * Completes when the log may have grown past `after` (memory: on commit). Without it,
   * a subscription at the head polls every `pollInterval`.
   */
  readonly awaitChange?: ((after: number) => Effect.Effect<void>) | undefined
  /** The wait at the head between two looks, when `awaitChange` is absent. */
  readonly pollInterval: Duration.Duration
}

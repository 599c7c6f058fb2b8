/**
 * The storage contract of the snapshot store, which a driver implements. `SnapshotStore.ts`
 * re-exports every name; they live here so that the memory storage (`internal/*`) and the
 * public module can both import them without importing each other.
 */
import type { Effect } from "effect"
import type { StorageError } from "../Errors.js"

/**
 * A snapshot as the store hands it to storage: validated and encoded. A driver stores these
 * fields (in whatever layout and encoding it likes) and lists them back in a
 * {@link StoredSnapshot}.
 *
 * @since 0.2.0
 * @category storage
 */
export interface SnapshotRecord {
  readonly version: number
  readonly schemaVersion: number
  readonly savedAtMillis: number
  /** The state as JSON. */
  readonly stateJson: string
}

/**
 * A stored snapshot as {@link Storage.list} gives it, without its state. `schemaVersion`
 * and `savedAtMillis` are `unknown` because storage can hold anything (an item edited by
 * hand): the store checks them and turns a malformed one into a
 * `CorruptedSnapshotError`, so a driver never validates. `ref` is the driver's own:
 * whatever it needs to read or delete this snapshot later (keys, a part count, inline data);
 * the store only passes it back.
 *
 * @since 0.2.0
 * @category storage
 */
export interface StoredSnapshot {
  /** The stream version; entries whose version is not an integer are ignored. */
  readonly version: number
  readonly schemaVersion: unknown
  readonly savedAtMillis: unknown
  readonly ref: unknown
}

/**
 * What {@link Storage.read} found: the state's JSON, nothing (the snapshot was deleted after
 * it was listed, e.g. by a concurrent save's retention: the store lists again), or stored
 * data that cannot be what was written (a checksum mismatch, a missing part, bytes that do
 * not decode).
 *
 * @since 0.2.0
 * @category storage
 */
export type ReadOutcome =
  | { readonly _tag: "Found"; readonly stateJson: string }
  | { readonly _tag: "Missing"; readonly reason: string }
  | { readonly _tag: "Corrupted"; readonly reason: string; readonly cause?: unknown }

/**
 * The storage primitives a snapshot store driver implements. `SnapshotStore.make` implements every
 * rule of the snapshot store on top of them once: validation of ids, snapshots and options,
 * encoding states as JSON, the save time, the driver's size limit, retention (`keepLast`),
 * the `atOrBefore` and `schemaVersion` filters, checking what storage holds, parsing states,
 * and listing again when a snapshot disappears while it is loaded.
 *
 * A driver maps these to its database and classifies its failures into `StorageError`.
 * How a state is laid out (split into parts, compressed, checksummed) is the driver's
 * business. The memory storage (`SnapshotStore.makeMemoryStorage`) is the smallest example;
 * `DynamoSnapshotStore.makeStorage` in `@dynamo-es/dynamodb` the real one.
 *
 * @since 0.2.0
 * @category storage
 */
export interface Storage {
  /**
   * The largest state (UTF-8 bytes of its JSON) this storage takes, when it has a limit:
   * a larger state is a `SnapshotEncodeError` before anything is written. The
   * DynamoDB storage has none (it splits large states into parts).
   */
  readonly maxStateBytes?: number | undefined
  /**
   * The stream's snapshots at or before version `atOrBefore` (all of them when
   * `undefined`), **newest first**: by version descending, and among equal versions the
   * later save first. Only complete snapshots: one whose write did not finish is never
   * listed. One request on DynamoDB (a `Query` over small headers).
   */
  readonly list: (
    streamId: string,
    atOrBefore: number | undefined
  ) => Effect.Effect<ReadonlyArray<StoredSnapshot>, StorageError>
  /**
   * Stores a snapshot so that it is listed only once it is completely written. Never
   * overwrites another snapshot, not even one of the same version.
   */
  readonly write: (streamId: string, snapshot: SnapshotRecord) => Effect.Effect<void, StorageError>
  /** The state of a snapshot that {@link list} returned. */
  readonly read: (streamId: string, snapshot: StoredSnapshot) => Effect.Effect<ReadOutcome, StorageError>
  /**
   * Deletes the snapshots `drop` (listed before); `keep` are the ones retention keeps,
   * so that a driver can also clean up what it alone knows about (DynamoDB: parts left by
   * interrupted saves) without touching them.
   */
  readonly remove: (
    streamId: string,
    drop: ReadonlyArray<StoredSnapshot>,
    keep: ReadonlyArray<StoredSnapshot>
  ) => Effect.Effect<void, StorageError>
}

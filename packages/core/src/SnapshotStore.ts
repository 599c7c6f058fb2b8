/**
 * The snapshot store: save the state of a stream (an aggregate) at a version, and load
 * the newest usable one so that only the events after it need to be read.
 *
 * - States of any size: the DynamoDB store splits large states into parts and only
 *   trusts a snapshot whose parts were all written.
 * - Invalidation: every snapshot records the `schemaVersion` of the state Schema/reducer it
 *   was made with. `load` with a `schemaVersion` ignores snapshots made by another one, so
 *   a changed reducer rebuilds from events instead of starting from a wrong state.
 * - Retention: the newest `keepLast` snapshots per stream are kept (default 3).
 *
 * Like every service here, the rules are implemented once, by {@link make}, over a small
 * {@link Storage} that each driver implements (the memory one in this module, DynamoDB's in
 * `@dynamo-es/dynamodb`), so implementations cannot disagree.
 *
 * ```ts
 * const Snapshots = SnapshotStore.typed(AccountState, { schemaVersion: 2 })
 * yield* Snapshots.save("account-1", { version: 120, state })
 * const latest = yield* Snapshots.load("account-1") // Option<Snapshot<AccountState>>
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Context, DateTime, Effect, Exit, Layer, Option, Predicate, Schema } from "effect"
import type { InvalidInputError, StorageError } from "./Errors.js"
import * as Inputs from "./internal/inputs.js"
import { utf8Length } from "./internal/inputs.js"
import { validateStreamId } from "./internal/prepare.js"
import { makeMemoryStorage as memoryStorage } from "./internal/snapshotMemoryStorage.js"
import type { ReadOutcome, SnapshotRecord, Storage, StoredSnapshot } from "./internal/snapshotStoreModel.js"

/**
 * A saved snapshot.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot<S = unknown> {
  readonly streamId: string
  /** The stream version the state includes (the state after event `version`). */
  readonly version: number
  readonly state: S
  /** The version of the state Schema/reducer that made it. */
  readonly schemaVersion: number
  readonly savedAt: DateTime.Utc
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SaveSnapshot<S = unknown> {
  readonly version: number
  readonly state: S
  /** Default 1. */
  readonly schemaVersion?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LoadOptions {
  /** Only snapshots at or before this stream version (e.g. to rebuild a past state). */
  readonly atOrBefore?: number | undefined
  /** Only snapshots made with this schema version; others are ignored. */
  readonly schemaVersion?: number | undefined
}

/**
 * A stored snapshot could not be read back: a part is missing or does not match its
 * checksum, the state is not valid JSON or no longer decodes with the state Schema. The
 * aggregate loader falls back to a full replay from events when it sees this error.
 *
 * @since 0.1.0
 * @category errors
 */
export class CorruptedSnapshotError extends Schema.TaggedError<CorruptedSnapshotError>()("CorruptedSnapshotError", {
  streamId: Schema.String,
  version: Schema.Int,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    return `Snapshot at version ${this.version} of stream "${this.streamId}" cannot be read: ${this.reason}. Aggregates fall back to replaying the events; delete the snapshot or bump the schemaVersion.`
  }
}

/**
 * A state could not be encoded for storage (Schema failure or not JSON). Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class SnapshotEncodeError extends Schema.TaggedError<SnapshotEncodeError>()("SnapshotEncodeError", {
  streamId: Schema.String,
  version: Schema.Int,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    return `The state of stream "${this.streamId}" at version ${this.version} cannot be encoded: ${this.reason}. Nothing was written.`
  }
}

/**
 * The snapshot store service, on JSON states.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotStoreShape {
  /** Saves a snapshot, then deletes snapshots beyond the newest `keepLast`. */
  readonly save: (
    streamId: string,
    snapshot: SaveSnapshot
  ) => Effect.Effect<void, InvalidInputError | SnapshotEncodeError | StorageError>
  /** The newest complete snapshot matching the options, or none. */
  readonly load: (
    streamId: string,
    options?: LoadOptions
  ) => Effect.Effect<Option.Option<Snapshot>, InvalidInputError | CorruptedSnapshotError | StorageError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class SnapshotStore extends Context.Service<SnapshotStore, SnapshotStoreShape>()("@dynamo-es/core/SnapshotStore") {}

/**
 * Options shared by the implementations.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotStoreOptions {
  /** How many snapshots to keep per stream (newest first). Default 3; at least 1. */
  readonly keepLast?: number | undefined
}

// -----------------------------------------------------------------------------
// storage: what a driver implements
// -----------------------------------------------------------------------------

// The storage contract is defined in internal/snapshotStoreModel.ts (which the memory
// storage imports too); every name of it is public here.
export type { ReadOutcome, SnapshotRecord, Storage, StoredSnapshot } from "./internal/snapshotStoreModel.js"

const checkSave = Inputs.validate(Inputs.SaveSnapshot)
const checkLoad = Inputs.validate(Inputs.LoadSnapshotOptions)

const checkOptions = Inputs.optionsOrDie("SnapshotStore.make", Inputs.SnapshotStoreOptions)

/** A load's chosen snapshot disappeared between `list` and `read`: list again. */
class Vanished {
  constructor(readonly version: number, readonly reason: string) {}
}

/**
 * The snapshot store over a driver's {@link Storage}: every implementation is this, over its
 * own storage (see {@link Storage} for the rules it implements). Dies when `keepLast` is not
 * an integer >= 1.
 *
 * - `save`: validates, encodes the state as JSON, `write`s it, then runs retention: `list`,
 *   and `remove` what is beyond the newest `keepLast`. A failed retention is logged as a
 *   warning, not reported: the snapshot is saved at that point.
 * - `load`: `list`s (bounded by `atOrBefore`), takes the newest with the wanted
 *   `schemaVersion`, checks its fields and `read`s its state. When that snapshot was
 *   deleted in between (a concurrent save's retention), it lists again, up to 3 times.
 *
 * Operations are spans `SnapshotStore.save` and `SnapshotStore.load`.
 *
 * ```ts
 * const store = yield* SnapshotStore.make(SnapshotStore.makeMemoryStorage(), { keepLast: 5 })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (storage: Storage, options: SnapshotStoreOptions = {}): Effect.Effect<SnapshotStoreShape> =>
  Effect.map(checkOptions(options), (checked) => {
    const keepLast = checked?.keepLast ?? 3
    const maxStateBytes = storage.maxStateBytes

    const retention = (streamId: string) =>
      Effect.gen(function*() {
        const all = (yield* storage.list(streamId, undefined)).filter((s) => Number.isSafeInteger(s.version))
        if (all.length <= keepLast) return
        yield* storage.remove(streamId, all.slice(keepLast), all.slice(0, keepLast))
      })

    const save: SnapshotStoreShape["save"] = Effect.fn("SnapshotStore.save")(function*(streamId, snapshot) {
      yield* validateStreamId("save", streamId)
      const s = yield* checkSave("save", "snapshot", snapshot)
      let json: string | undefined
      try {
        json = JSON.stringify(s.state)
      } catch (cause) {
        return yield* new SnapshotEncodeError({ streamId, version: s.version, reason: "the state is not JSON-serialisable", cause })
      }
      if (json === undefined) {
        return yield* new SnapshotEncodeError({ streamId, version: s.version, reason: "the state is not a JSON value" })
      }
      if (maxStateBytes !== undefined) {
        const bytes = utf8Length(json)
        if (bytes > maxStateBytes) {
          return yield* new SnapshotEncodeError({
            streamId,
            version: s.version,
            reason: `the state is ${bytes} bytes of JSON, more than this storage takes (${maxStateBytes})`
          })
        }
      }
      const savedAtMillis = yield* Clock.currentTimeMillis
      yield* storage.write(streamId, { version: s.version, schemaVersion: s.schemaVersion ?? 1, savedAtMillis, stateJson: json })
      yield* retention(streamId).pipe(
        Effect.catch((error) => Effect.logWarning(`Snapshot retention for ${streamId} failed (the snapshot is saved): ${error.message}`))
      )
    })

    const loadOnce = (streamId: string, o: LoadOptions) =>
      Effect.gen(function*() {
        const listed = yield* storage.list(streamId, o.atOrBefore)
        const chosen = listed.find((s) =>
          Number.isSafeInteger(s.version) &&
          (o.atOrBefore === undefined || s.version <= o.atOrBefore) &&
          (o.schemaVersion === undefined || s.schemaVersion === o.schemaVersion)
        )
        if (chosen === undefined) return Option.none()
        const { version } = chosen
        const corrupted = (reason: string, cause?: unknown) => new CorruptedSnapshotError({ streamId, version, reason, cause })
        const outcome = yield* storage.read(streamId, chosen)
        if (Predicate.isTagged(outcome, "Missing")) return yield* Effect.fail(new Vanished(version, outcome.reason))
        if (Predicate.isTagged(outcome, "Corrupted")) return yield* corrupted(outcome.reason, outcome.cause)
        const { schemaVersion, savedAtMillis } = chosen
        if (typeof schemaVersion !== "number" || !Number.isSafeInteger(schemaVersion) || schemaVersion < 0) {
          return yield* corrupted("the schema version is missing or not an integer >= 0")
        }
        const savedAt = typeof savedAtMillis === "number" ? Option.getOrUndefined(DateTime.make(savedAtMillis)) : undefined
        if (savedAt === undefined) return yield* corrupted(`the saved-at time ${String(savedAtMillis)} is not a valid date`)
        let state: unknown
        try {
          state = JSON.parse(outcome.stateJson)
        } catch (cause) {
          return yield* corrupted("the state is not valid JSON", cause)
        }
        return Option.some<Snapshot>({ streamId, version, schemaVersion, state, savedAt })
      })

    const load: SnapshotStoreShape["load"] = Effect.fn("SnapshotStore.load")(function*(streamId, loadOptions) {
      yield* validateStreamId("load", streamId)
      const o = (yield* checkLoad("load", "options", loadOptions)) ?? {}
      return yield* loadOnce(streamId, o).pipe(
        Effect.retry({ times: 3, while: (e) => e instanceof Vanished }),
        Effect.catchIf(
          (e): e is Vanished => e instanceof Vanished,
          (e) =>
            Effect.fail(
              new CorruptedSnapshotError({
                streamId,
                version: e.version,
                reason: `it disappeared (${e.reason}): deleted while loading by a concurrent save's retention, or removed by hand`
              })
            )
        )
      )
    })

    return SnapshotStore.of({ save, load })
  })

// -----------------------------------------------------------------------------
// in-memory implementation
// -----------------------------------------------------------------------------

/**
 * An in-memory {@link Storage}: a map of streams, each a list of snapshots newest first,
 * states kept as JSON (a later mutation of a saved object changes nothing).
 * `snapshotCount` (not part of the storage) counts every stored snapshot, for tests.
 * `maxStateBytes` declares a size limit, to test how {@link make} enforces one.
 *
 * @since 0.2.0
 * @category storage
 */
export const makeMemoryStorage: (options?: { readonly maxStateBytes?: number | undefined }) => Storage & {
  readonly snapshotCount: Effect.Effect<number>
} = memoryStorage

/**
 * An in-memory snapshot store: {@link make} over {@link makeMemoryStorage}, so it has the
 * semantics of the DynamoDB one (same validation, retention and errors). Each call is a new
 * empty store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options: SnapshotStoreOptions = {}): Effect.Effect<SnapshotStoreShape> =>
  make(makeMemoryStorage(), options)

/**
 * An in-memory {@link SnapshotStore}; each build is a new empty store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SnapshotStore> = Layer.effect(SnapshotStore, makeMemory())

/**
 * {@link layerMemory} with options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryWith = (options: SnapshotStoreOptions): Layer.Layer<SnapshotStore> =>
  Layer.effect(SnapshotStore, makeMemory(options))

/**
 * Typed access to the snapshot store for states described by `schema`, made by the
 * reducer version `schemaVersion`: `save` records it, `load` ignores snapshots made with
 * another one, and a stored state that no longer decodes is a {@link CorruptedSnapshotError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedSnapshotStore<S> {
  readonly schemaVersion: number
  readonly save: (
    streamId: string,
    snapshot: { readonly version: number; readonly state: S }
  ) => Effect.Effect<void, InvalidInputError | SnapshotEncodeError | StorageError, SnapshotStore>
  readonly load: (
    streamId: string,
    options?: { readonly atOrBefore?: number | undefined }
  ) => Effect.Effect<Option.Option<Snapshot<S>>, InvalidInputError | CorruptedSnapshotError | StorageError, SnapshotStore>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const typed = <S, I>(
  schema: Schema.Codec<S, I>,
  options: { readonly schemaVersion: number }
): TypedSnapshotStore<S> => {
  // Canonical JSON form, as for events: what is saved is what decodes back.
  const codec = Schema.toCodecJson(schema as Schema.Codec<S, unknown>)
  const encode = Schema.encodeExit(codec)
  const decode = Schema.decodeUnknownExit(codec)
  return {
    schemaVersion: options.schemaVersion,
    save: (streamId, snapshot) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore
        const exit = encode(snapshot.state)
        const version = Number.isSafeInteger(snapshot.version) ? snapshot.version : -1
        if (Exit.isFailure(exit)) {
          return yield* new SnapshotEncodeError({
            streamId: String(streamId),
            version,
            reason: `the state does not match the state Schema: ${String(exit.cause)}`,
            cause: exit.cause
          })
        }
        const roundTrip = decode(exit.value)
        if (Exit.isFailure(roundTrip)) {
          return yield* new SnapshotEncodeError({
            streamId: String(streamId),
            version,
            reason: `the encoded state does not decode with the state Schema: ${String(roundTrip.cause)}`,
            cause: roundTrip.cause
          })
        }
        return yield* store.save(streamId, { version: snapshot.version, state: exit.value, schemaVersion: options.schemaVersion })
      }),
    load: (streamId, loadOptions) =>
      Effect.gen(function*() {
        const store = yield* SnapshotStore
        const found = yield* store.load(streamId, { atOrBefore: loadOptions?.atOrBefore, schemaVersion: options.schemaVersion })
        if (Option.isNone(found)) return Option.none()
        const exit = decode(found.value.state)
        if (Exit.isFailure(exit)) {
          return yield* new CorruptedSnapshotError({
            streamId,
            version: found.value.version,
            reason: `the state does not match the state Schema: ${String(exit.cause)}`,
            cause: exit.cause
          })
        }
        return Option.some({ ...found.value, state: exit.value })
      })
  }
}

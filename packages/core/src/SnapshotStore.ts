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
 * ```ts
 * const Snapshots = SnapshotStore.typed(AccountState, { schemaVersion: 2 })
 * yield* Snapshots.save("account-1", { version: 120, state })
 * const latest = yield* Snapshots.load("account-1") // Option<Snapshot<AccountState>>
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Context, DateTime, Effect, Layer, Option, Schema } from "effect"
import type { InvalidInputError, StorageError } from "./Errors.js"
import * as Inputs from "./internal/inputs.js"
import { validateStreamId } from "./internal/prepare.js"

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

const checkSave = Inputs.validate(Inputs.SaveSnapshot)
const checkLoad = Inputs.validate(Inputs.LoadSnapshotOptions)

/** @internal */
export const validateSave = (operation: string, streamId: string, snapshot: SaveSnapshot) =>
  Effect.gen(function*() {
    yield* validateStreamId(operation, streamId)
    const s = yield* checkSave(operation, "snapshot", snapshot)
    const schemaVersion = s.schemaVersion ?? 1
    let json: string | undefined
    try {
      json = JSON.stringify(s.state)
    } catch (cause) {
      return yield* new SnapshotEncodeError({ streamId, version: s.version, reason: "the state is not JSON-serialisable", cause })
    }
    if (json === undefined) {
      return yield* new SnapshotEncodeError({ streamId, version: s.version, reason: "the state is not a JSON value" })
    }
    return { version: s.version, schemaVersion, json }
  })

/** @internal */
export const validateLoad = (operation: string, streamId: string, options: LoadOptions | undefined) =>
  Effect.gen(function*() {
    yield* validateStreamId(operation, streamId)
    return (yield* checkLoad(operation, "options", options)) ?? {}
  })

/** @internal */
export const validateKeepLast = (keepLast: number | undefined): number => {
  const n = keepLast ?? 3
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`SnapshotStore: keepLast must be an integer >= 1, got ${n}`)
  return n
}

/** @internal */
export const parseState = (streamId: string, version: number, json: string) => {
  try {
    return Effect.succeed(JSON.parse(json) as unknown)
  } catch (cause) {
    return Effect.fail(new CorruptedSnapshotError({ streamId, version, reason: "the state is not valid JSON", cause }))
  }
}

/**
 * An in-memory snapshot store with the semantics of the DynamoDB one. States are kept as
 * JSON, so later mutation of a saved object changes nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options: SnapshotStoreOptions = {}): Effect.Effect<SnapshotStoreShape> =>
  Effect.sync(() => {
    const keepLast = validateKeepLast(options.keepLast)
    // Per stream, newest first (by version, then by save order).
    const streams = new Map<string, Array<{ version: number; schemaVersion: number; json: string; savedAt: number }>>()
    return SnapshotStore.of({
      save: Effect.fn("SnapshotStore.save")(function*(streamId, snapshot) {
        const s = yield* validateSave("save", streamId, snapshot)
        const savedAt = yield* Clock.currentTimeMillis
        // The new snapshot goes first: the sort is stable, so it also wins over an earlier
        // save at the same version in the same millisecond.
        const list = [{ ...s, savedAt }, ...(streams.get(streamId) ?? [])]
        list.sort((a, b) => b.version - a.version || b.savedAt - a.savedAt)
        streams.set(streamId, list.slice(0, keepLast))
      }),
      load: Effect.fn("SnapshotStore.load")(function*(streamId, loadOptions) {
        const o = yield* validateLoad("load", streamId, loadOptions)
        const found = (streams.get(streamId) ?? []).find((s) =>
          (o.atOrBefore === undefined || s.version <= o.atOrBefore) &&
          (o.schemaVersion === undefined || s.schemaVersion === o.schemaVersion)
        )
        if (found === undefined) return Option.none()
        return Option.some({
          streamId,
          version: found.version,
          schemaVersion: found.schemaVersion,
          state: yield* parseState(streamId, found.version, found.json),
          savedAt: DateTime.makeUnsafe(found.savedAt)
        })
      })
    })
  })

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
        if (exit._tag === "Failure") {
          return yield* new SnapshotEncodeError({
            streamId: String(streamId),
            version,
            reason: `the state does not match the state Schema: ${String(exit.cause)}`,
            cause: exit.cause
          })
        }
        const roundTrip = decode(exit.value)
        if (roundTrip._tag === "Failure") {
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
        if (exit._tag === "Failure") {
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

/**
 * A projection's checkpoint: one row of the read-models storage under the reserved
 * repository name `$projections`, claimed and committed with compare-and-set, so that one
 * runner at a time moves it (a lease with a fencing token; see docs/projections.md).
 */
import { Clock, Effect, Schema, Semaphore } from "effect"
import type { StorageError } from "../../Errors.js"
import type { ConditionalStorage } from "../../ReadModel.js"

/** The reserved repository name of checkpoint rows. */
export const CHECKPOINTS = "$projections"

export const CheckpointData = Schema.Struct({
  position: Schema.Number,
  owner: Schema.String,
  token: Schema.Number,
  expiresAt: Schema.Number
})
export type CheckpointData = typeof CheckpointData.Type

const decode = Schema.decodeUnknownOption(Schema.fromJsonString(CheckpointData))

/** The checkpoint as stored: its raw JSON (for compare-and-set) and its fields. */
export interface Stored {
  readonly raw: string
  readonly data: CheckpointData
}

/**
 * A projection's checkpoint row that is not a checkpoint (edited by hand, written by
 * something else): the projection stops instead of guessing a position.
 *
 * @since 0.2.0
 * @category errors
 */
export class CorruptedCheckpointError extends Schema.TaggedError<CorruptedCheckpointError>()("CorruptedCheckpointError", {
  projection: Schema.String,
  data: Schema.String
}) {
  override get message(): string {
    return `The checkpoint of projection "${this.projection}" (repository ${CHECKPOINTS}) does not decode: ${this.data.slice(0, 200)}`
  }
}

export const read = (
  storage: ConditionalStorage,
  projection: string
): Effect.Effect<Stored | undefined, StorageError | CorruptedCheckpointError> =>
  Effect.flatMap(storage.readGuarded(CHECKPOINTS, projection), (row) => {
    if (row?.data === undefined) return Effect.succeed(undefined)
    const data = decode(row.data)
    return data._tag === "Some"
      ? Effect.succeed({ raw: row.data, data: data.value })
      : Effect.fail(new CorruptedCheckpointError({ projection, data: row.data }))
  })

/** The runner's hold on the checkpoint, or that it lost it. */
export type CommitResult = "committed" | "fenced"

export interface Lease {
  readonly owner: string
  readonly token: number
  /** The position committed last. */
  readonly position: () => number
  readonly expiresAt: () => number
  /** Moves the checkpoint to `position` and renews the lease; "fenced" when another runner holds it. */
  readonly commit: (position: number) => Effect.Effect<CommitResult, StorageError>
  /**
   * {@link commit} through `write` (a transaction that carries the compare-and-set together
   * with rows): `write(expected, data)` returns whether it landed.
   */
  readonly commitWith: (
    position: number,
    write: (expected: string, data: string) => Effect.Effect<boolean, StorageError>
  ) => Effect.Effect<CommitResult, StorageError>
  /** Renews the lease, keeping the position it holds when it runs. */
  readonly renew: Effect.Effect<CommitResult, StorageError>
  /** Gives the lease up (expiry now), keeping the position. Best effort. */
  readonly release: Effect.Effect<void, StorageError>
}

/**
 * Claims the checkpoint: waits while another owner's lease runs, then takes it with a
 * compare-and-set that increments the fencing token.
 */
export const claim = (
  storage: ConditionalStorage,
  projection: string,
  owner: string,
  leaseMillis: number
): Effect.Effect<Lease, StorageError | CorruptedCheckpointError> =>
  Effect.gen(function*() {
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const current = yield* read(storage, projection)
      if (current !== undefined && current.data.owner !== owner && current.data.expiresAt > now) {
        yield* Effect.sleep(Math.max(10, Math.min(leaseMillis / 3, current.data.expiresAt - now)))
        continue
      }
      const data: CheckpointData = {
        position: current?.data.position ?? 0,
        owner,
        token: (current?.data.token ?? 0) + 1,
        expiresAt: now + leaseMillis
      }
      const raw = JSON.stringify(data)
      if (yield* compareAndSet(storage, projection, current?.raw, raw)) return yield* makeLease(storage, projection, { raw, data }, leaseMillis)
    }
  })

/**
 * A compare-and-set that tells a lost response apart from a lost race: when it reports a
 * failed condition, the row is read again, and if it holds exactly what was written, the
 * write landed (a retried request whose first attempt succeeded).
 */
const compareAndSet = (
  storage: ConditionalStorage,
  projection: string,
  expected: string | undefined,
  raw: string,
  write: (expected: string | undefined, data: string) => Effect.Effect<boolean, StorageError> = (e, d) =>
    storage.compareAndSet(CHECKPOINTS, projection, e, d)
) =>
  Effect.flatMap(write(expected, raw), (landed) =>
    landed ? Effect.succeed(true) : Effect.map(storage.readGuarded(CHECKPOINTS, projection), (row) => row?.data === raw))

const makeLease = (storage: ConditionalStorage, projection: string, start: Stored, leaseMillis: number) =>
  Effect.map(Semaphore.make(1), (lock): Lease => {
    let held = start
    const write = (
      /** `undefined`: a renewal, keeping the position held when it runs. */
      position: number | undefined,
      expiresAt: (now: number) => number,
      through?: (expected: string, data: string) => Effect.Effect<boolean, StorageError>
    ) =>
      // Uninterruptible: a write that lands must update `held`, or the next compare-and-set
      // (the release of an interrupted runner) would expect a state that is gone.
      lock.withPermits(1)(Effect.uninterruptible(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const data: CheckpointData = { ...held.data, position: position ?? held.data.position, expiresAt: expiresAt(now) }
        const raw = JSON.stringify(data)
        const landed = yield* compareAndSet(
          storage,
          projection,
          held.raw,
          raw,
          through === undefined ? undefined : (expected, d) => through(expected!, d)
        )
        if (!landed) return "fenced" as const
        held = { raw, data }
        return "committed" as const
      })))
    return {
      owner: start.data.owner,
      token: start.data.token,
      position: () => held.data.position,
      expiresAt: () => held.data.expiresAt,
      commit: (position) => write(position, (now) => now + leaseMillis),
      commitWith: (position, through) => write(position, (now) => now + leaseMillis, through),
      renew: write(undefined, (now) => now + leaseMillis),
      release: Effect.asVoid(write(undefined, () => 0))
    }
  })

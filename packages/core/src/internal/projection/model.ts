/**
 * The shapes of projections: definitions, repositories, options and results. Types only,
 * shared by every module of the projection so that none imports another for a type.
 */
import type { Duration, Effect, Option, Schema, Stream } from "effect"
import type { NotFoundError, StorageError } from "../../Errors.js"
import type { LoggedEvent } from "../../EventLog.js"
import type { Criteria } from "../../ReadModel.js"
import type { ReadError, ReadModelEncodeError, ReadModelTooLargeError, UnresolvedIdsError } from "../readModel/errors.js"
import type { CorruptedCheckpointError } from "./checkpoint.js"
import type { ProjectionDecodeError, ProjectionHandlerError, ProjectionTransactionTooLargeError } from "./errors.js"

/**
 * A read model a projection writes: a repository name and the model's Schema (and how to
 * get a model's id, default its `id` field).
 *
 * @since 0.2.0
 * @category models
 */
export interface ReadModelSpec<A> {
  readonly name: string
  readonly schema: Schema.Codec<A, any>
  readonly idOf?: ((model: A) => string) | undefined
}

/**
 * What a handler gets for each read model: keyed read-modify-write on a unit of work the
 * runner flushes once per batch. `find` reads storage once per batch and row (strongly
 * consistent) and then the unit of work; `save` and `remove` stage. No `findAll`/`findBy`:
 * a handler derives a row from that row and the event.
 *
 * @since 0.2.0
 * @category models
 */
export interface Repository<A> {
  readonly name: string
  readonly find: (id: string) => Effect.Effect<Option.Option<A>, ReadError>
  readonly get: (id: string) => Effect.Effect<A, ReadError | NotFoundError>
  readonly save: (model: A) => Effect.Effect<void, ReadError | ReadModelEncodeError | ReadModelTooLargeError>
  readonly remove: (id: string) => Effect.Effect<void, ReadError>
}

/**
 * The repositories of a projection, by the keys of its `readModels`.
 *
 * @since 0.2.0
 * @category models
 */
export type Repositories<RM> = { readonly [K in keyof RM]: RM[K] extends ReadModelSpec<infer A> ? Repository<A> : never }

/**
 * A projection definition (see {@link make}).
 *
 * @since 0.2.0
 * @category models
 */
export interface Projection<E, RM extends Record<string, ReadModelSpec<any>>, Err, R> {
  readonly name: string
  readonly events: Schema.Codec<E, any>
  /**
   * The event types the projection handles. When given, only those are read (a log filter)
   * and one whose payload does not decode with `events` stops the projection
   * ({@link ProjectionDecodeError}). When absent, every event is offered and those whose
   * payload does not decode are not the projection's business: they are skipped.
   */
  readonly types?: ReadonlyArray<string> | undefined
  readonly readModels: RM
  readonly handle: (event: LoggedEvent<E>, repositories: Repositories<RM>) => Effect.Effect<void, Err, R>
  /**
   * The ids of the rows the handler will read for an event, by read-model key. The runner
   * reads those of a whole batch at once before running the handler (`BatchGetItem`, 100
   * ids per request, strongly consistent) instead of one `GetItem` per row on the first
   * `find`: the difference between a per-row round trip and a per-100-rows one. Optional:
   * rows not named here are read on their first `find`.
   */
  readonly prefetch?: ((event: LoggedEvent<E>) => { readonly [K in keyof RM]?: string | ReadonlyArray<string> | undefined }) | undefined
}

/**
 * Progress of a run, after each checkpoint: a CLI, a log line or a metric can show it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Progress {
  readonly projection: string
  /** The checkpoint: every event up to it is applied. */
  readonly position: number
  /**
   * The last position of the log, never below `position`. It is read again when the runner
   * reaches the head it knew, and otherwise at most once a second, so while a runner catches
   * up it may lag the true head by up to a second of appends.
   */
  readonly head: number
  /** `head - position`. */
  readonly lag: number
  /** Events handled by this run (skipped and filtered ones excluded). */
  readonly eventsApplied: number
  /** `eventsApplied` per second since the run started. */
  readonly eventsPerSecond: number
  /** The run has reached the head of the log once. */
  readonly caughtUp: boolean
  /** Row writes that landed, guarded writes refused (the row was newer), and requests. */
  readonly rowsWritten: number
  readonly rowsRejected: number
  readonly requests: number
}

/**
 * @since 0.2.0
 * @category models
 */
export interface RunOptions {
  /** `"guarded"` (default), `"atLeastOnce"` or `"transactional"` (see the module documentation). */
  readonly mode?: "guarded" | "atLeastOnce" | "transactional" | undefined
  /** Events per batch (default 500): one flush and one checkpoint per batch. */
  readonly batchSize?: number | undefined
  /** How long a batch waits for more events once it has one (default 100 ms). */
  readonly batchWindow?: Duration.Input | undefined
  /** `"caughtUp"`: end once everything that was in the log at the head is applied. Default: run until interrupted. */
  readonly until?: "caughtUp" | undefined
  /** This runner's name in the checkpoint (default: a random one). */
  readonly owner?: string | undefined
  /** How long a claim holds without renewal (default 30 s); renewed every third of it. */
  readonly leaseDuration?: Duration.Input | undefined
  /**
   * Write requests in flight during a flush (default 8): guarded batches of 25 rows (or
   * single guarded writes on a storage without `writeGuardedBatch`), `BatchWriteItem`s.
   */
  readonly writeConcurrency?: number | undefined
  /** Prefetch requests (100 rows each) in flight (default 4). */
  readonly readConcurrency?: number | undefined
  /** The log's wait at the head between two looks. */
  readonly pollInterval?: Duration.Input | undefined
  /** Called after each checkpoint. */
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
}

/**
 * What {@link applyEvents} did: how many events it applied (skipped ones included), and
 * when it stopped early, the index of the event it stopped at and why.
 *
 * @since 0.2.0
 * @category models
 */
export interface ApplyResult {
  readonly applied: number
  readonly failure?: {
    readonly index: number
    readonly error: ProjectionHandlerError | ProjectionDecodeError | ProjectionTransactionTooLargeError
  } | undefined
}

/**
 * A projection's checkpoint as stored, and how far behind the log it is.
 *
 * @since 0.2.0
 * @category models
 */
export interface Status {
  readonly projection: string
  /** The checkpoint (0 when the projection never ran). */
  readonly position: number
  readonly head: number
  readonly lag: number
  /** The runner holding the lease, if it has not expired (or been released). */
  readonly owner: Option.Option<string>
  readonly leaseExpiresAt: Option.Option<Date>
}

/**
 * Options of `rebuild`: those of `run` (its `until` is always `"caughtUp"`), and the
 * version to build.
 *
 * @since 0.2.0
 * @category models
 */
export interface RebuildOptions extends Omit<RunOptions, "until"> {
  /**
   * The version to build (an integer >= 2): default, the active version + 1. Giving the
   * version of a rebuild that crashed resumes it from its checkpoint; giving the active
   * version again only catches it up.
   */
  readonly version?: number | undefined
}

/**
 * What `rebuild` did: the version now active, the one before it (still stored: `drop` it once
 * no reader or runner uses it), and the rebuild's last progress.
 *
 * @since 0.2.0
 * @category models
 */
export interface RebuildResult {
  readonly projection: string
  readonly version: number
  readonly previous: number
  readonly progress: Progress
}

/**
 * A read-only repository of a projection's read model that reads the **active version**
 * (resolved through the projection's active-version row, cached for `cacheTtl`): readers
 * see the old version until a rebuild switches over and the new one after.
 *
 * @since 0.2.0
 * @category models
 */
export interface Reader<A> {
  /** The version this reader reads now (from the cache). */
  readonly version: Effect.Effect<number, StorageError | CorruptedCheckpointError>
  readonly find: (id: string) => Effect.Effect<Option.Option<A>, ReadError | CorruptedCheckpointError>
  readonly get: (id: string) => Effect.Effect<A, ReadError | NotFoundError | CorruptedCheckpointError>
  readonly findAll: () => Stream.Stream<A, ReadError | CorruptedCheckpointError>
  readonly findBy: (criteria: Criteria<A>) => Effect.Effect<ReadonlyArray<A>, ReadError | UnresolvedIdsError | CorruptedCheckpointError>
}

/**
 * The readers of a projection, by the keys of its `readModels`.
 *
 * @since 0.2.0
 * @category models
 */
export type Readers<RM> = { readonly [K in keyof RM]: RM[K] extends ReadModelSpec<infer A> ? Reader<A> : never }

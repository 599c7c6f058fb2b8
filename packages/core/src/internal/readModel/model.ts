/**
 * The models of the read-model store: repositories, the service's shape, options, and the
 * storage contract a driver implements. `ReadModel.ts` re-exports every name; they live here
 * so that the modules implementing the store (`internal/readModel/*`) and the public module
 * can both import them without importing each other.
 */
import type { Effect, Option, Schedule, Schema, Stream } from "effect"
import type { InvalidInputError, NotFoundError, StorageError } from "../../Errors.js"
import type {
  DeferredFlushFailed,
  ReadError,
  ReadModelEncodeError,
  ReadModelTooLargeError,
  SaveError,
  UnresolvedIdsError
} from "./errors.js"

/**
 * One stored row: the read-model id (`Id`) and its JSON (`Data`; `undefined` when the
 * attribute is missing or not a string).
 *
 * @since 0.1.0
 * @category storage
 */
export interface StoredRow {
  readonly id: string
  readonly data: string | undefined
}

/**
 * One write of a batch.
 *
 * @since 0.1.0
 * @category storage
 */
export type WriteOperation =
  | { readonly _tag: "Put"; readonly id: string; readonly data: string }
  | { readonly _tag: "Delete"; readonly id: string }

/**
 * A row as the conditional primitives see it: its `Data` (`undefined` for a tombstone) and
 * `Pos`, the log position of the last event applied to it (0 when the row has none).
 *
 * @since 0.2.0
 * @category storage
 */
export interface GuardedRow {
  readonly data: string | undefined
  readonly position: number
}

/**
 * One guarded write (see {@link ConditionalStorage.writeGuarded}): a row's new `Data`, or a
 * tombstone (the row removed, its position kept), by the event at `position`.
 *
 * @since 0.2.0
 * @category storage
 */
export type GuardedWrite =
  | { readonly _tag: "Put"; readonly id: string; readonly data: string; readonly position: number }
  | { readonly _tag: "Tombstone"; readonly id: string; readonly position: number }

/**
 * The conditional primitives projections need (`Projection` in this package): rows that
 * carry the log position of the last event applied to them, tombstones, and the
 * compare-and-set of a checkpoint. Each is ONE request. Optional: a store without them
 * serves repositories as before, and projections refuse to run on it.
 *
 * Tombstones are invisible to every other primitive: `get`, `getBatch` and `queryPage`
 * skip them.
 *
 * @since 0.2.0
 * @category storage
 */
export interface ConditionalStorage {
  /** One strongly consistent key lookup, tombstones included (`GetItem`). */
  readonly readGuarded: (name: string, id: string) => Effect.Effect<GuardedRow | undefined, StorageError>
  /**
   * One strongly consistent lookup of at most `limits.maxBatchGet` distinct ids, tombstones
   * included (`BatchGetItem`): the rows found, in any order, and the ids storage left
   * unprocessed. Used to read the rows of a projection batch at once (`prefetch`).
   */
  readonly readGuardedBatch: (
    name: string,
    ids: ReadonlyArray<string>
  ) => Effect.Effect<
    { readonly rows: ReadonlyArray<GuardedRow & { readonly id: string }>; readonly unprocessed: ReadonlyArray<string> },
    StorageError
  >
  /**
   * One conditional write (`PutItem` with `attribute_not_exists(Id) OR Pos < :position`):
   * `true` when it landed, `false` when the row already holds a position at or above it.
   */
  readonly writeGuarded: (name: string, write: GuardedWrite) => Effect.Effect<boolean, StorageError>
  /**
   * Several guarded writes of distinct rows of partition `name` in ONE request (at most
   * `limits.maxBatchWrite`; DynamoDB: `BatchExecuteStatement` of PartiQL statements, an
   * `INSERT` for a row `stored: false`, an `UPDATE ... WHERE Pos < :position` for a row
   * `stored: true`). Each write is on its own, not a transaction. `stored` is what the
   * caller last read of the row (a row or a tombstone was there): only a hint that picks
   * the statement. A write lands only where `writeGuarded` would have landed it; every write
   * not reported landed is `unsettled` (the hint was wrong, the row already holds a later
   * position, or storage left it unprocessed) and the caller settles it with `writeGuarded`
   * Optional: without it, a guarded flush sends one `writeGuarded` per row.
   */
  readonly writeGuardedBatch?: ((
    name: string,
    writes: ReadonlyArray<GuardedWrite & { readonly stored: boolean }>
  ) => Effect.Effect<{ readonly unsettled: ReadonlyArray<string> }, StorageError>) | undefined
  /**
   * One compare-and-set of a row's `Data` (`PutItem` with `Data = :expected`, or
   * `attribute_not_exists(Id)` when `expected` is `undefined`): `true` when it landed.
   */
  readonly compareAndSet: (
    name: string,
    id: string,
    expected: string | undefined,
    data: string
  ) => Effect.Effect<boolean, StorageError>
  /**
   * One page of the tombstones of partition `name`, in id order, after `exclusiveStartId`
   * (`Query` with a filter: reads, and bills, the whole partition page by page).
   */
  readonly queryTombstones: (
    name: string,
    exclusiveStartId: string | undefined
  ) => Effect.Effect<
    { readonly rows: ReadonlyArray<{ readonly id: string; readonly position: number }>; readonly lastEvaluatedId: string | undefined },
    StorageError
  >
  /**
   * Deletes a tombstone if it is still the one at `position` (`DeleteItem` with a condition):
   * `true` when deleted, `false` when the row changed meanwhile.
   */
  readonly deleteTombstone: (name: string, id: string, position: number) => Effect.Effect<boolean, StorageError>
  /**
   * One transaction (`TransactWriteItems`): unconditional writes of at most 99 distinct rows
   * and a compare-and-set of `check` (`Data = :expected`), all or nothing, at most 4 MB.
   * `true` when it landed, `false` when the compare-and-set's condition failed (nothing is
   * written). Optional: without it, projections cannot run in the transactional mode.
   */
  readonly transact?: ((
    writes: ReadonlyArray<{ readonly name: string; readonly operation: WriteOperation }>,
    check: { readonly name: string; readonly id: string; readonly expected: string; readonly data: string }
  ) => Effect.Effect<boolean, StorageError>) | undefined
}

/**
 * The sizes and batch limits of a storage, which core's rules follow: a model whose row
 * (`rowSize(name, id, data)` bytes, `data` the model's JSON) is larger than `maxRowBytes`
 * is refused with a `ReadModelTooLargeError` before any request; `getBatch` is given at
 * most `maxBatchGet` ids and `writeBatch` at most `maxBatchWrite` operations. Every field
 * is a positive integer (a function for `rowSize`).
 *
 * @since 0.2.0
 * @category storage
 */
export interface StorageLimits {
  readonly maxRowBytes: number
  readonly rowSize: (name: string, id: string, data: string) => number
  readonly maxBatchGet: number
  readonly maxBatchWrite: number
}

/**
 * What a read-model store needs from a storage driver: single-request primitives on raw
 * rows. Validation, encoding, skip-unchanged writes, the identity map, batching, and the
 * retry of unprocessed items are done once, in `ReadModel.make`, for every driver.
 *
 * Each primitive is ONE storage request (a driver may retry transient failures of that
 * request); `getBatch`/`writeBatch` report what storage left unprocessed instead of
 * failing. Implement it to add a storage backend; application code never calls it. Test
 * a backend with `ReadModelConformance` from `@dynamo-es/core/testing`, on your storage
 * wrapped by `ReadModelStorageTest.instrument` (requests and faults).
 *
 * @since 0.1.0
 * @category storage
 */
export interface Storage {
  /** Shown in errors (e.g. the DynamoDB table name). */
  readonly table: string
  /** One key lookup (`GetItem`). */
  readonly get: (name: string, id: string, consistentRead: boolean) => Effect.Effect<StoredRow | undefined, StorageError>
  /** One lookup of at most `limits.maxBatchGet` distinct ids (`BatchGetItem`); rows in any order. */
  readonly getBatch: (
    name: string,
    ids: ReadonlyArray<string>,
    consistentRead: boolean
  ) => Effect.Effect<{ readonly rows: ReadonlyArray<StoredRow>; readonly unprocessed: ReadonlyArray<string> }, StorageError>
  /**
   * One page of the partition of `name` in id order (UTF-8 byte order), starting after
   * `exclusiveStartId` when given (`Query`): at most `limit` rows when given, and at most
   * what one request returns (DynamoDB: 1 MB). `lastEvaluatedId` is the id to start the
   * next page after, `undefined` when the partition is exhausted (a defined one may be
   * followed by an empty page). Core pages through it with `Stream.paginate`, so that each
   * page is one visible request. (Since 0.2.0; it replaces `query`, which returned a Stream.)
   */
  readonly queryPage: (
    name: string,
    options: {
      readonly consistentRead: boolean
      readonly limit: number | undefined
      readonly exclusiveStartId: string | undefined
    }
  ) => Effect.Effect<{ readonly rows: ReadonlyArray<StoredRow>; readonly lastEvaluatedId: string | undefined }, StorageError>
  /** One unconditional write (`PutItem`). */
  readonly put: (name: string, id: string, data: string) => Effect.Effect<void, StorageError>
  /** One unconditional delete (`DeleteItem`); deleting a missing row is fine. */
  readonly delete: (name: string, id: string) => Effect.Effect<void, StorageError>
  /**
   * One batch of at most `limits.maxBatchWrite` writes on distinct ids
   * (`BatchWriteItem`). Returns the ids storage did not process; the others are written.
   */
  readonly writeBatch: (
    name: string,
    operations: ReadonlyArray<WriteOperation>
  ) => Effect.Effect<{ readonly unprocessed: ReadonlyArray<string> }, StorageError>
  /** The conditional primitives projections need (since 0.2.0; optional). */
  readonly conditional?: ConditionalStorage | undefined
  /**
   * The storage's row size formula and limits (since 0.2.0). Optional, and so is each
   * field: what a storage leaves out is `ReadModel.defaultStorageLimits` (DynamoDB's: rows
   * of at most `ReadModel.MAX_ITEM_BYTES` bytes counted by `ReadModel.rowSize`,
   * `ReadModel.MAX_BATCH_GET` ids per `getBatch`, `ReadModel.MAX_BATCH_WRITE` writes per
   * `writeBatch`), so drivers written before it keep working unchanged.
   */
  readonly limits?: Partial<StorageLimits> | undefined
}

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * A criterion on one field: the field's value, or for an array field, one element it
 * must contain.
 *
 * @since 0.1.0
 * @category models
 */
export type FieldCriterion<V> = V extends ReadonlyArray<infer E> ? E : V

/**
 * `findBy` criteria: every given field must match (see {@link FieldCriterion}); values
 * are compared with `Equal.equals` (structural for plain objects, arrays, dates and Effect
 * data types). `id` always means the repository id (see `idOf`) and takes one id or a
 * list of ids: a key lookup instead of a partition read.
 *
 * @since 0.1.0
 * @category models
 */
export type Criteria<A> =
  & { readonly [K in Exclude<keyof A, "id">]?: FieldCriterion<A[K]> }
  & { readonly id?: string | ReadonlyArray<string> }

/**
 * Options of one repository.
 *
 * @since 0.1.0
 * @category models
 */
export interface RepositoryOptions<A> {
  /** How to get a model's id. Default: its `id` field. */
  readonly idOf?: ((model: A) => string) | undefined
  /**
   * Strongly consistent reads (default `true`): a read after a write sees it. `false`
   * halves the read cost on DynamoDB; reads may then miss writes of the last second, and
   * they do not feed the skip-unchanged memory.
   */
  readonly consistentRead?: boolean | undefined
  /** Rows per `Query` page of `findAll`/`findBy` (default: DynamoDB's 1 MB pages). */
  readonly pageSize?: number | undefined
  /** The model's name in errors. Default: the Schema's identifier, else the repository name. */
  readonly modelName?: string | undefined
}

/**
 * A read-model repository (immediate mode: every write is sent at once).
 *
 * @since 0.1.0
 * @category models
 */
export interface Repository<A> {
  /** The repository name: the partition (`Name`) its rows live in. */
  readonly name: string
  /**
   * Writes the model (DynamoDB: one `PutItem`, unconditional: last write wins), unless
   * the store remembers that exactly this encoded state is already stored (then no
   * request at all; see {@link ReadModelStoreOptions.skipUnchanged}).
   */
  readonly save: (model: A) => Effect.Effect<void, SaveError>
  /** One key lookup (`GetItem`): `Some(model)` or `None`. */
  readonly find: (id: string) => Effect.Effect<Option.Option<A>, ReadError>
  /** {@link find}, failing with `NotFoundError` (resource `"readModel"`) when absent. */
  readonly get: (id: string) => Effect.Effect<A, ReadError | NotFoundError>
  /**
   * Every model of the repository, lazily, in id order (UTF-8 byte order), one `Query`
   * per page. Reads the whole partition: cost grows with the repository.
   */
  readonly findAll: () => Stream.Stream<A, ReadError>
  /**
   * Models matching every criterion ({@link Criteria}). Empty criteria give `[]` without
   * any request. Criteria on `id` are key lookups (`GetItem` for one id, `BatchGetItem`
   * per 100 ids), in requested order, missing ids dropped; any other criteria read the
   * whole partition and filter in memory.
   */
  readonly findBy: (criteria: Criteria<A>) => Effect.Effect<ReadonlyArray<A>, ReadError | UnresolvedIdsError>
  /** Deletes the model (one `DeleteItem`); removing a missing id is not an error. */
  readonly remove: (id: string) => Effect.Effect<void, InvalidInputError | StorageError>
}

/**
 * A staged write of a deferred repository, as `pendingOperations` shows it. `data` is the
 * exact JSON that `flush` will store (captured when `save` was called).
 *
 * @since 0.1.0
 * @category models
 */
export type PendingOperation<A> =
  | { readonly _tag: "Save"; readonly id: string; readonly model: A; readonly data: string }
  | { readonly _tag: "Remove"; readonly id: string }

/**
 * What a successful `flush` did.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlushResult {
  /** Models written. */
  readonly saved: number
  /** Models deleted. */
  readonly removed: number
  /** Staged saves dropped because exactly that state is known to be stored already. */
  readonly unchanged: number
  /** Batch write requests sent (including retries of unprocessed items). */
  readonly requests: number
}

/**
 * A deferred repository: a unit of work over one repository.
 *
 * - `save`/`remove` stage the change in memory (no request); `save` captures the encoded
 *   state at the time of the call, so later mutation of the object changes nothing;
 *   repeated saves of an id collapse to one write; save after remove cancels the delete;
 *   remove after save leaves only the delete.
 * - `find` looks in the identity map first: a staged or already loaded model is returned
 *   as the same object without a request; a removed id is not found.
 * - `findAll`/`findBy` read storage as usual and overlay the staged saves and removes.
 * - `flush` writes everything staged with batch requests and empties the pending set.
 *
 * Gotchas: the identity map can return a model that another process has changed since
 * it was loaded: keep deferred repositories short-lived (one replay, one seed, one
 * batch) and `clear()` between independent units of work. A flush is a batching
 * boundary, not a transaction.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeferredRepository<A> extends Omit<Repository<A>, "save" | "remove"> {
  /** Stages the model's current encoded state. No request; fails only on bad input. */
  readonly save: (model: A) => Effect.Effect<void, InvalidInputError | ReadModelEncodeError | ReadModelTooLargeError>
  /** Stages the removal of `id`. No request. */
  readonly remove: (id: string) => Effect.Effect<void, InvalidInputError>
  /**
   * Writes all staged removes and saves (DynamoDB: `BatchWriteItem`, 25 per request,
   * several requests in flight, unprocessed items retried with backoff). Staged saves
   * whose state is known to be stored already are dropped without a request. On failure
   * ({@link DeferredFlushFailed}) what was written is no longer pending and the rest is:
   * call `flush` again to finish. Flushes of one repository run one at a time.
   */
  readonly flush: Effect.Effect<FlushResult, DeferredFlushFailed>
  /** {@link flush}, with your context (tenant, projector, event id, ...) in the error. */
  readonly flushWithContext: (context: Readonly<Record<string, unknown>>) => Effect.Effect<FlushResult, DeferredFlushFailed>
  /** Forgets staged changes and the identity map. Writes nothing. */
  readonly clear: Effect.Effect<void>
  /** The staged operations, in the order their ids were first staged. */
  readonly pendingOperations: Effect.Effect<ReadonlyArray<PendingOperation<A>>>
}

/** The repositories a store creates, by kind: what {@link Create} and {@link CreateDeferred} return. */
interface RepositoryKinds<A> {
  readonly immediate: Repository<A>
  readonly deferred: DeferredRepository<A>
}

/** Creates a repository of one kind for a name and a Schema (see {@link Create}). */
interface CreateOf<K extends keyof RepositoryKinds<unknown>> {
  <A extends { readonly id: string }, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options?: RepositoryOptions<A>
  ): Effect.Effect<RepositoryKinds<A>[K], InvalidInputError>
  <A, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options: RepositoryOptions<A> & { readonly idOf: (model: A) => string }
  ): Effect.Effect<RepositoryKinds<A>[K], InvalidInputError>
}

/**
 * Creates a repository for a name and a Schema. The model's id is its `id` field, or
 * what `options.idOf` returns. Fails with `InvalidInputError` when the name is empty or
 * longer than `ReadModel.MAX_NAME_BYTES` bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Create extends CreateOf<"immediate"> {}

/**
 * Creates a deferred repository (see {@link DeferredRepository}), as {@link Create} does.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateDeferred extends CreateOf<"deferred"> {}

/**
 * The read-model store: a factory of repositories on one table, sharing one memory of
 * the last state read or written per (repository, id) (see
 * {@link ReadModelStoreOptions.skipUnchanged}).
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadModelStoreShape {
  /** The table (or in-memory store) the repositories use. */
  readonly table: string
  readonly create: Create
  readonly createDeferred: CreateDeferred
  /**
   * Forgets every remembered stored state, so that the next `save` of each model is
   * written. Call it after the table was deleted, recreated or changed by someone else.
   */
  readonly clearSnapshots: Effect.Effect<void>
  /**
   * The storage the store is built on (since 0.2.0): projections write guarded rows and
   * checkpoints through it. Application code does not need it.
   */
  readonly storage?: Storage | undefined
}

/**
 * Options of a read-model store (every implementation).
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadModelStoreOptions {
  /**
   * Skip writes that would not change anything (default `true`). The store remembers the
   * last encoded state it read (strongly consistent reads only) or wrote per
   * (repository, id); a `save` (or a flushed save) of exactly that state sends nothing.
   * Only a successful write or read updates the memory; `remove` forgets it; a failed or
   * concurrent write makes the store forget it.
   *
   * Assumes that this store is the only writer of its rows (the usual case: one
   * projection owns a read model). If other processes write the same rows, a save of a
   * state this store remembers can be skipped although the row now holds another one:
   * turn this off, or call `clearSnapshots`.
   */
  readonly skipUnchanged?: boolean | undefined
  /** How many (repository, id) states are remembered, least recently used first out: an integer >= 0 (0 remembers nothing). Default 100,000. */
  readonly snapshotCapacity?: number | undefined
  /** Batch write requests in flight during a `flush`: an integer >= 1. Default 8. */
  readonly writeConcurrency?: number | undefined
  /** Batch lookups (`maxBatchGet` ids each) in flight during `findBy({ id: [...] })`: an integer >= 1. Default 4. */
  readonly readConcurrency?: number | undefined
  /**
   * Backoff between attempts at unprocessed items (`UnprocessedItems`/`UnprocessedKeys`).
   * Default: exponential from 50 ms, jittered, at most 8 retries.
   */
  readonly unprocessedRetrySchedule?: Schedule.Schedule<unknown> | undefined
}

/**
 * In-memory {@link Storage} with DynamoDB's semantics (id order, 1 MB pages, rows of a
 * batch in no particular order), plus read-only inspection of what it holds. It never
 * fails and never leaves items unprocessed: to count requests or inject faults, wrap it
 * (or any other `Storage`) with `ReadModelStorageTest.instrument` from
 * `@dynamo-es/core/testing`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStorage extends Storage {
  /** The stored rows of a partition, in id order (not a request). */
  readonly rows: (name: string) => Effect.Effect<ReadonlyArray<StoredRow>>
}

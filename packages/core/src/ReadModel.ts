/**
 * Read-model repositories: projections write read models, request handlers read them.
 * Broadway-style repositories (`save`, `find`, `findAll`, `findBy`, `remove`) typed with
 * an Effect Schema, in two modes:
 *
 * - **immediate** ({@link ReadModelStoreShape.create}): every `save`/`remove` is one write
 *   request, every `find` one key lookup;
 * - **deferred** ({@link ReadModelStoreShape.createDeferred}): a unit of work with an
 *   identity map. `save`/`remove` are staged in memory and written by `flush` in batches
 *   (DynamoDB: `BatchWriteItem`, 25 items per request, several requests in flight). Use it
 *   for replays, rebuilds and seeds.
 *
 * ```ts
 * const User = Schema.Struct({ id: Schema.String, name: Schema.String, roles: Schema.Array(Schema.String) })
 *
 * const program = Effect.gen(function*() {
 *   const users = yield* ReadModel.repository("users", User)
 *   yield* users.save({ id: "u-1", name: "Ada", roles: ["admin"] })
 *   const ada = yield* users.find("u-1")                    // Option<User>, one GetItem
 *   const admins = yield* users.findBy({ roles: "admin" })  // reads the whole "users" partition
 * })
 * ```
 *
 * Storage layout (every implementation): one row per read model, keyed by repository name
 * (`Name`) and read-model id (`Id`), holding the model's Schema-encoded JSON (`Data`).
 * A row whose `Id` is not the id inside its `Data`, or whose `Data` does not decode, is
 * refused with a typed error, never repaired silently.
 *
 * Costs (DynamoDB): `find` and `findBy({ id })` are bounded key lookups; `findAll` and
 * `findBy` on any other field read the repository's whole partition (one `Query` per
 * 1 MB page; 1 RCU per 4 KB read with strong consistency, half that without) and filter
 * in memory. Keep those off request paths for large repositories; model a lookup read
 * model keyed by what you search for and use `find` instead.
 *
 * The service {@link ReadModelStore} is storage-independent: {@link layerMemory} in unit
 * tests, `DynamoReadModelStore.layer(...)` from `@dynamo-es/dynamodb` in production.
 *
 * @since 0.1.0
 */
import { Context, Data, Effect, Equal, Exit, Layer, Option, Schedule, Schema, SchemaAST, Semaphore, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { InvalidInputError, NotFoundError, StorageError } from "./Errors.js"
import * as Inputs from "./internal/inputs.js"
import { keyProblem, utf8Length } from "./internal/inputs.js"

// -----------------------------------------------------------------------------
// limits
// -----------------------------------------------------------------------------

/**
 * DynamoDB's item size limit (400 KB), counted as DynamoDB counts it: attribute names
 * plus values of `Name`, `Id` and `Data`.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_ITEM_BYTES = 409_600

/**
 * The longest read-model id, in UTF-8 bytes: DynamoDB's limit for a sort key.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_ID_BYTES = 1024

/**
 * The longest repository name, in UTF-8 bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_NAME_BYTES = 1024

/**
 * Keys per `BatchGetItem` (DynamoDB's limit).
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_BATCH_GET = 100

/**
 * Writes per `BatchWriteItem` (DynamoDB's limit).
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_BATCH_WRITE = 25

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * A read model could not be encoded for storage: it fails its Schema, or its encoded
 * form is not JSON. Nothing was written (in deferred mode: nothing was staged).
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadModelEncodeError extends Schema.TaggedError<ReadModelEncodeError>()("ReadModelEncodeError", {
  repository: Schema.String,
  id: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    return `Read model "${this.id}" of repository "${this.repository}" cannot be encoded: ${this.reason}. Nothing was written.`
  }
}

/**
 * A read model is larger than one DynamoDB item may be (400 KB, names and values of
 * `Name`, `Id` and `Data`). Nothing was written. Split the read model, or keep large
 * parts elsewhere (e.g. S3) and store a reference.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadModelTooLargeError extends Schema.TaggedError<ReadModelTooLargeError>()("ReadModelTooLargeError", {
  repository: Schema.String,
  id: Schema.String,
  sizeBytes: Schema.Int,
  maxBytes: Schema.Int
}) {
  override get message(): string {
    return `Read model "${this.id}" of repository "${this.repository}" takes ${this.sizeBytes} bytes as a DynamoDB item; the limit is ${this.maxBytes}. Nothing was written: split the read model or store large parts elsewhere.`
  }
}

/**
 * A stored row cannot be read back: its `Data` is missing, is not JSON, or no longer
 * decodes with the repository's Schema. Names table, repository and id so that the row can
 * be found and repaired (or the Schema given a migration); never cast silently.
 *
 * @since 0.1.0
 * @category errors
 */
export class CorruptedReadModelError extends Schema.TaggedError<CorruptedReadModelError>()("CorruptedReadModelError", {
  table: Schema.String,
  repository: Schema.String,
  id: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    return `Stored read model "${this.id}" of repository "${this.repository}" in table "${this.table}" cannot be read: ${this.reason}. Repair the row or add a migration to the Schema.`
  }
}

/**
 * A stored row's key (`Id`) is not the id inside its payload. The repository does not
 * normalize such rows (which would hide a bug in whatever wrote them): repair them with
 * explicit tooling.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadModelIdMismatchError extends Schema.TaggedError<ReadModelIdMismatchError>()("ReadModelIdMismatchError", {
  table: Schema.String,
  repository: Schema.String,
  /** The row's key (`Id`). */
  storedId: Schema.String,
  /** The id of the decoded payload. */
  payloadId: Schema.String
}) {
  override get message(): string {
    return `Stored read model "${this.storedId}" of repository "${this.repository}" in table "${this.table}" holds a payload with id "${this.payloadId}". Rows are never normalized: repair the row with explicit tooling.`
  }
}

/**
 * A batched lookup by ids (`findBy({ id: [...] })`) could not get an answer for some ids:
 * storage kept returning them as unprocessed (DynamoDB `UnprocessedKeys`, i.e.
 * throttling) until the retry schedule ran out. `ids` are the ids without an answer; the
 * lookup can be retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnresolvedIdsError extends Schema.TaggedError<UnresolvedIdsError>()("UnresolvedIdsError", {
  table: Schema.String,
  repository: Schema.String,
  ids: Schema.Array(Schema.String),
  attempts: Schema.Int
}) {
  override get message(): string {
    return `${this.ids.length} read model(s) of repository "${this.repository}" in table "${this.table}" stayed unprocessed after ${this.attempts} attempts (throttling): ${
      this.ids.slice(0, 10).map((id) => JSON.stringify(id)).join(", ")
    }${this.ids.length > 10 ? ", ..." : ""}. Retry the lookup later.`
  }
}

/**
 * A deferred repository's `flush` could not write everything. What was written is no
 * longer pending; everything else (including `ids`) still is, so calling `flush` again
 * finishes the job, and writes nothing twice.
 *
 * - `operation`: what the failing batch did (`"save"` or `"remove"`);
 * - `ids`: the read models of that batch that were not written;
 * - `context`: what the caller passed to `flushWithContext` (tenant, projector, event id, ...);
 * - `written` / `pending`: read models written by this flush / still pending after it;
 * - `cause`: the storage failure (`isRetryable` tells whether trying again may help).
 *
 * A flush is a batching boundary, not a transaction: earlier batches stay written.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeferredFlushFailed extends Schema.TaggedError<DeferredFlushFailed>()("DeferredFlushFailed", {
  operation: Schema.Literals(["save", "remove"]),
  ids: Schema.Array(Schema.String),
  table: Schema.String,
  repository: Schema.String,
  /** The read model's name: the Schema's identifier, or the repository name. */
  model: Schema.String,
  context: Schema.Record(Schema.String, Schema.Unknown),
  written: Schema.Int,
  pending: Schema.Int,
  cause: StorageError
}) {
  override get message(): string {
    const ctx = Object.keys(this.context).length === 0 ? "" : ` (context: ${safeJson(this.context)})`
    return `Flushing repository "${this.repository}" (${this.model}) to table "${this.table}" failed to ${this.operation} ${this.ids.length} read model(s) [${
      this.ids.slice(0, 10).map((id) => JSON.stringify(id)).join(", ")
    }${this.ids.length > 10 ? ", ..." : ""}]${ctx}: ${this.cause.message} ${this.written} read model(s) were written and are no longer pending; ${this.pending} remain pending: call flush again to finish.`
  }
}

const safeJson = (u: unknown) => {
  try {
    return JSON.stringify(u)
  } catch {
    return String(u)
  }
}

/**
 * The errors `save` can fail with. In deferred mode only the first three (nothing is
 * sent before `flush`).
 *
 * @since 0.1.0
 * @category errors
 */
export type SaveError = InvalidInputError | ReadModelEncodeError | ReadModelTooLargeError | StorageError

/**
 * The errors a read can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type ReadError = InvalidInputError | CorruptedReadModelError | ReadModelIdMismatchError | StorageError

// -----------------------------------------------------------------------------
// storage (the driver's side)
// -----------------------------------------------------------------------------

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
 * What a read-model store needs from a storage driver: single-request primitives on raw
 * rows. Validation, encoding, skip-unchanged writes, the identity map, batching, and the
 * retry of unprocessed items are done once, in {@link make}, for every driver.
 *
 * Each primitive is ONE storage request (a driver may retry transient failures of that
 * request); `getBatch`/`writeBatch` report what storage left unprocessed instead of
 * failing. Implement it to add a storage backend; application code never calls it.
 *
 * @since 0.1.0
 * @category storage
 */
export interface Storage {
  /** Shown in errors (e.g. the DynamoDB table name). */
  readonly table: string
  /** One key lookup (`GetItem`). */
  readonly get: (name: string, id: string, consistentRead: boolean) => Effect.Effect<StoredRow | undefined, StorageError>
  /** One lookup of at most {@link MAX_BATCH_GET} distinct ids (`BatchGetItem`); rows in any order. */
  readonly getBatch: (
    name: string,
    ids: ReadonlyArray<string>,
    consistentRead: boolean
  ) => Effect.Effect<{ readonly rows: ReadonlyArray<StoredRow>; readonly unprocessed: ReadonlyArray<string> }, StorageError>
  /** The partition of `name` in id order (UTF-8 byte order), one request per page (`Query`). */
  readonly query: (
    name: string,
    options: { readonly consistentRead: boolean; readonly pageSize: number | undefined }
  ) => Stream.Stream<StoredRow, StorageError>
  /** One unconditional write (`PutItem`). */
  readonly put: (name: string, id: string, data: string) => Effect.Effect<void, StorageError>
  /** One unconditional delete (`DeleteItem`); deleting a missing row is fine. */
  readonly delete: (name: string, id: string) => Effect.Effect<void, StorageError>
  /**
   * One batch of at most {@link MAX_BATCH_WRITE} writes on distinct ids
   * (`BatchWriteItem`). Returns the ids storage did not process; the others are written.
   */
  readonly writeBatch: (
    name: string,
    operations: ReadonlyArray<WriteOperation>
  ) => Effect.Effect<{ readonly unprocessed: ReadonlyArray<string> }, StorageError>
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

/**
 * Creates a repository for a name and a Schema. The model's id is its `id` field, or
 * what `options.idOf` returns. Fails with `InvalidInputError` when the name is empty or
 * longer than {@link MAX_NAME_BYTES} bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Create {
  <A extends { readonly id: string }, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options?: RepositoryOptions<A>
  ): Effect.Effect<Repository<A>, InvalidInputError>
  <A, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options: RepositoryOptions<A> & { readonly idOf: (model: A) => string }
  ): Effect.Effect<Repository<A>, InvalidInputError>
}

/**
 * Creates a deferred repository (see {@link DeferredRepository}).
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateDeferred {
  <A extends { readonly id: string }, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options?: RepositoryOptions<A>
  ): Effect.Effect<DeferredRepository<A>, InvalidInputError>
  <A, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options: RepositoryOptions<A> & { readonly idOf: (model: A) => string }
  ): Effect.Effect<DeferredRepository<A>, InvalidInputError>
}

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
}

/**
 * The read-model store service. `yield* ReadModelStore` (or use {@link repository} and
 * {@link deferred}); provide {@link layerMemory} or `DynamoReadModelStore.layer(...)`.
 *
 * @since 0.1.0
 * @category services
 */
export class ReadModelStore extends Context.Service<ReadModelStore, ReadModelStoreShape>()("@dynamo-es/core/ReadModelStore") {}

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
  /** How many (repository, id) states are remembered, least recently used first out. Default 100,000. */
  readonly snapshotCapacity?: number | undefined
  /** Batch write requests in flight during a `flush`. Default 8. */
  readonly writeConcurrency?: number | undefined
  /** Batch lookups (100 ids each) in flight during `findBy({ id: [...] })`. Default 4. */
  readonly readConcurrency?: number | undefined
  /**
   * Backoff between attempts at unprocessed items (`UnprocessedItems`/`UnprocessedKeys`).
   * Default: exponential from 50 ms, jittered, at most 8 retries.
   */
  readonly unprocessedRetrySchedule?: Schedule.Schedule<unknown> | undefined
}

/**
 * The default backoff for unprocessed batch items: exponential from 50 ms, jittered, at
 * most 8 retries (about 13 s in the worst case, up to about 15 s with jitter).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultUnprocessedRetrySchedule: Schedule.Schedule<unknown> = Schedule.exponential("50 millis").pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 8 })
)

// -----------------------------------------------------------------------------
// helpers
// -----------------------------------------------------------------------------

/**
 * Compares ids the way DynamoDB sorts string keys (by UTF-8 bytes, i.e. by code point),
 * which differs from `<` on JavaScript strings for characters above U+FFFF.
 *
 * @since 0.1.0
 * @category utils
 */
export const compareIds = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) {
      const xs = x >= 0xd800 && x <= 0xdfff
      const ys = y >= 0xd800 && y <= 0xdfff
      // A surrogate encodes a code point above U+FFFF: it sorts after any other unit.
      if (xs !== ys) return xs ? 1 : -1
      return x - y
    }
  }
  return a.length - b.length
}

/**
 * The size DynamoDB counts for a read-model row: attribute names and values.
 *
 * @since 0.1.0
 * @category utils
 */
export const rowSize = (name: string, id: string, data: string): number =>
  4 + utf8Length(name) + 2 + utf8Length(id) + 4 + utf8Length(data)

/** Ids and repository names are keys: the same rule as every key of the library (`Inputs.keyProblem`). */
const validateText = (operation: string, field: string, value: unknown, maxBytes: number): InvalidInputError | undefined => {
  if (typeof value !== "string") return new InvalidInputError({ operation, field, reason: "must be a non-empty string" })
  const problem = keyProblem(value, maxBytes)
  return problem === undefined ? undefined : new InvalidInputError({ operation, field, reason: problem })
}

const checkRepositoryOptions = Inputs.validate(Inputs.RepositoryOptions)

const validateId = (operation: string, id: unknown, field = "id"): Effect.Effect<string, InvalidInputError> => {
  const error = validateText(operation, field, id, MAX_ID_BYTES)
  return error === undefined ? Effect.succeed(id as string) : Effect.fail(error)
}

const chunksOf = <X>(items: ReadonlyArray<X>, size: number): Array<ReadonlyArray<X>> => {
  const out: Array<ReadonlyArray<X>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const schemaErrorMessage = (cause: { readonly reasons: ReadonlyArray<{ readonly _tag: string }> }): string => {
  const fail = cause.reasons.find((r) => r._tag === "Fail") as { readonly error?: { readonly message?: unknown } } | undefined
  const message = fail?.error?.message
  return typeof message === "string" ? message : String(cause)
}

/** Internal: a batch still has unprocessed items; drives `Effect.retry` with the backoff schedule. */
class Unprocessed extends Data.TaggedError("Unprocessed")<{}> {}

/**
 * Remembers the last encoded state read or written per key, for skipping unchanged
 * writes. Correct under concurrency: a write makes the key forgotten when it starts and
 * "spoils" every operation in flight on that key, so that no read or write whose order
 * against it is unknown can record a state afterwards. Only a write that ran alone, or a
 * read that no write overlapped, records its state. Bounded (LRU).
 */
class StateMemory {
  private readonly states = new Map<string, string>()
  private readonly inflight = new Map<string, Set<MemoryToken>>()
  constructor(private readonly capacity: number) {}

  get(key: string): string | undefined {
    const state = this.states.get(key)
    if (state !== undefined) {
      this.states.delete(key)
      this.states.set(key, state)
    }
    return state
  }

  begin(key: string, kind: "read" | "write"): MemoryToken {
    let set = this.inflight.get(key)
    if (set === undefined) {
      set = new Set()
      this.inflight.set(key, set)
    }
    let spoiled = false
    for (const other of set) {
      if (other.kind === "write") spoiled = true
      if (kind === "write") other.spoiled = true
    }
    if (kind === "write") this.states.delete(key)
    const token: MemoryToken = { key, kind, spoiled }
    set.add(token)
    return token
  }

  /** `state`: the stored state now known (a string), known absent (`null`), or unknown (`undefined`). */
  end(token: MemoryToken, state: string | null | undefined): void {
    const set = this.inflight.get(token.key)
    if (set !== undefined && set.delete(token) && set.size === 0) this.inflight.delete(token.key)
    if (state === null) {
      this.states.delete(token.key)
      return
    }
    if (state === undefined || token.spoiled || this.capacity <= 0) return
    this.states.delete(token.key)
    this.states.set(token.key, state)
    if (this.states.size > this.capacity) this.states.delete(this.states.keys().next().value!)
  }

  clear(): void {
    this.states.clear()
    for (const set of this.inflight.values()) for (const token of set) token.spoiled = true
  }
}

interface MemoryToken {
  readonly key: string
  readonly kind: "read" | "write"
  spoiled: boolean
}

type Prepared = { readonly id: string; readonly data: string }

// -----------------------------------------------------------------------------
// the store
// -----------------------------------------------------------------------------

/**
 * Builds a read-model store on a {@link Storage} driver. Every implementation (the
 * in-memory one here, DynamoDB's) is this function on its own storage, so they share
 * validation, encoding, skip-unchanged writes, deferred mode and flush semantics.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (storage: Storage, options: ReadModelStoreOptions = {}): Effect.Effect<ReadModelStoreShape> =>
  Effect.sync(() => {
    const memory = new StateMemory(options.skipUnchanged === false ? 0 : options.snapshotCapacity ?? 100_000)
    const writeConcurrency = Math.max(1, options.writeConcurrency ?? 8)
    const readConcurrency = Math.max(1, options.readConcurrency ?? 4)
    const retrySchedule = options.unprocessedRetrySchedule ?? defaultUnprocessedRetrySchedule
    const table = storage.table

    /**
     * Runs `attempt` (which returns the items still unprocessed) until nothing is left,
     * with the backoff schedule in between. Fails with `Unprocessed` when it runs out.
     */
    const untilProcessed = <E>(attempt: Effect.Effect<number, E>): Effect.Effect<void, E | Unprocessed> =>
      attempt.pipe(
        Effect.flatMap((left) => (left === 0 ? Effect.void : Effect.fail(new Unprocessed()))),
        Effect.retry({ schedule: retrySchedule, while: (e) => e instanceof Unprocessed })
      )

    const build = <A>(nameInput: string, schema: Schema.Codec<A, unknown>, repoOptions: RepositoryOptions<A> = {}) =>
      Effect.gen(function*() {
        const nameError = validateText("create", "name", nameInput, MAX_NAME_BYTES)
        if (nameError !== undefined) return yield* nameError
        yield* checkRepositoryOptions("create", "options", repoOptions)
        const name = nameInput
        const consistentRead = repoOptions.consistentRead ?? true
        const pageSize = repoOptions.pageSize
        const idOf = repoOptions.idOf ?? ((model: A) => (model as { readonly id: string }).id)
        const modelName = repoOptions.modelName ?? SchemaAST.resolveIdentifier(schema.ast) ?? name
        const codec = Schema.toCodecJson(schema as Schema.Codec<A, unknown>)
        const encode = Schema.encodeExit(codec as unknown as Schema.Codec<A, unknown>)
        const decode = Schema.decodeUnknownExit(codec as unknown as Schema.Codec<A, unknown>)
        const keyOf = (id: string) => `${name}\u0000${id}`

        // --- encoding and decoding -------------------------------------------------

        const prepare = (operation: string, model: A): Effect.Effect<Prepared, InvalidInputError | ReadModelEncodeError | ReadModelTooLargeError> => {
          let id: unknown
          try {
            id = idOf(model)
          } catch (cause) {
            return Effect.fail(
              new InvalidInputError({ operation, field: "id", reason: `reading the model's id failed: ${cause instanceof Error ? cause.message : String(cause)}` })
            )
          }
          const idError = validateText(operation, "id", id, MAX_ID_BYTES)
          if (idError !== undefined) return Effect.fail(idError)
          const modelId = id as string
          const exit = encode(model)
          if (exit._tag === "Failure") {
            return Effect.fail(
              new ReadModelEncodeError({
                repository: name,
                id: modelId,
                reason: `the model does not match its Schema: ${schemaErrorMessage(exit.cause)}`,
                cause: exit.cause
              })
            )
          }
          let data: string | undefined
          try {
            data = JSON.stringify(exit.value)
          } catch (cause) {
            return Effect.fail(
              new ReadModelEncodeError({ repository: name, id: modelId, reason: `its encoded form is not JSON (${cause instanceof Error ? cause.message : String(cause)})`, cause })
            )
          }
          if (data === undefined) {
            return Effect.fail(new ReadModelEncodeError({ repository: name, id: modelId, reason: "its encoded form is not a JSON value" }))
          }
          const size = rowSize(name, modelId, data)
          if (size > MAX_ITEM_BYTES) {
            return Effect.fail(new ReadModelTooLargeError({ repository: name, id: modelId, sizeBytes: size, maxBytes: MAX_ITEM_BYTES }))
          }
          return Effect.succeed({ id: modelId, data })
        }

        const corrupted = (id: string, reason: string, cause?: unknown) =>
          new CorruptedReadModelError({ table, repository: name, id, reason, cause })

        const decodeRowSync = (row: StoredRow): A | CorruptedReadModelError | ReadModelIdMismatchError => {
          if (row.data === undefined) return corrupted(row.id, "the Data attribute is missing or not a string")
          let json: unknown
          try {
            json = JSON.parse(row.data)
          } catch (cause) {
            return corrupted(row.id, "Data is not valid JSON", cause)
          }
          const exit = decode(json)
          if (exit._tag === "Failure") {
            return corrupted(row.id, `Data does not match the Schema: ${schemaErrorMessage(exit.cause)}`, exit.cause)
          }
          let payloadId: unknown
          try {
            payloadId = idOf(exit.value)
          } catch (cause) {
            return corrupted(row.id, "reading the payload's id failed", cause)
          }
          if (payloadId !== row.id) {
            return new ReadModelIdMismatchError({ table, repository: name, storedId: row.id, payloadId: String(payloadId) })
          }
          return exit.value
        }
        const isRowError = (u: unknown): u is CorruptedReadModelError | ReadModelIdMismatchError =>
          u instanceof CorruptedReadModelError || u instanceof ReadModelIdMismatchError

        const decodeRow = (row: StoredRow): Effect.Effect<A, CorruptedReadModelError | ReadModelIdMismatchError> => {
          const result = decodeRowSync(row)
          return isRowError(result) ? Effect.fail(result) : Effect.succeed(result)
        }

        const decodeRows = (rows: ReadonlyArray<StoredRow>) =>
          Effect.suspend(() => {
            const out: Array<A> = []
            for (const row of rows) {
              const result = decodeRowSync(row)
              if (isRowError(result)) return Effect.fail(result)
              out.push(result)
            }
            return Effect.succeed(out)
          })

        // --- immediate operations --------------------------------------------------

        const save = Effect.fn("ReadModel.save")(function*(model: A) {
          const { id, data } = yield* prepare("save", model)
          const key = keyOf(id)
          if (memory.get(key) === data) return
          const token = memory.begin(key, "write")
          yield* storage.put(name, id, data).pipe(
            Effect.onExit((exit) => Effect.sync(() => memory.end(token, Exit.isSuccess(exit) ? data : undefined)))
          )
        })

        const remove = Effect.fn("ReadModel.remove")(function*(idInput: string) {
          const id = yield* validateId("remove", idInput)
          const token = memory.begin(keyOf(id), "write")
          yield* storage.delete(name, id).pipe(
            Effect.onExit(() => Effect.sync(() => memory.end(token, null)))
          )
        })

        /** One GetItem; feeds the memory when strongly consistent. */
        const fetchOne = (id: string): Effect.Effect<Option.Option<A>, ReadError> => {
          const token = consistentRead ? memory.begin(keyOf(id), "read") : undefined
          let state: string | null | undefined
          return storage.get(name, id, consistentRead).pipe(
            Effect.flatMap((row) => {
              if (row === undefined) {
                state = null
                return Effect.succeed(Option.none<A>())
              }
              return decodeRow(row).pipe(
                Effect.map((model) => {
                  state = row.data
                  return Option.some(model)
                })
              )
            }),
            Effect.onExit(() => Effect.sync(() => token !== undefined && memory.end(token, state)))
          )
        }

        /** Lookups of up to 100 distinct ids (`BatchGetItem`), unprocessed keys retried with backoff. */
        const fetchChunk = (ids: ReadonlyArray<string>) =>
          Effect.suspend(() => {
            const tokens = consistentRead ? ids.map((id) => [id, memory.begin(keyOf(id), "read")] as const) : []
            const rows: Array<StoredRow> = []
            let remaining = ids
            let attempts = 0
            const states = new Map<string, string | null>()
            return untilProcessed(
              Effect.suspend(() => {
                attempts++
                return storage.getBatch(name, remaining, consistentRead)
              }).pipe(
                Effect.map((r) => {
                  rows.push(...r.rows)
                  remaining = r.unprocessed
                  return remaining.length
                })
              )
            ).pipe(
              Effect.catchTag("Unprocessed", () =>
                Effect.fail(new UnresolvedIdsError({ table, repository: name, ids: [...remaining], attempts }))),
              Effect.flatMap(() => decodeRows(rows)),
              Effect.tap(() =>
                Effect.sync(() => {
                  for (const id of ids) states.set(id, null)
                  for (const row of rows) states.set(row.id, row.data ?? null)
                })
              ),
              Effect.onExit(() =>
                Effect.sync(() => {
                  for (const [id, token] of tokens) memory.end(token, states.get(id))
                })
              )
            )
          })

        /** Models for distinct, valid ids, in the given order, missing ones dropped. */
        const lookup = (ids: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<A>, ReadError | UnresolvedIdsError> => {
          if (ids.length === 0) return Effect.succeed([])
          if (ids.length === 1) return fetchOne(ids[0]!).pipe(Effect.map((o) => (Option.isSome(o) ? [o.value] : [])))
          return Effect.forEach(chunksOf(ids, MAX_BATCH_GET), fetchChunk, { concurrency: readConcurrency }).pipe(
            Effect.map((chunks) => {
              const byId = new Map<string, A>()
              for (const chunk of chunks) for (const model of chunk) byId.set(idOf(model), model)
              const out: Array<A> = []
              for (const id of ids) {
                const model = byId.get(id)
                if (model !== undefined) out.push(model)
              }
              return out
            })
          )
        }

        const queryRows = () => storage.query(name, { consistentRead, pageSize })

        const findAll = (): Stream.Stream<A, ReadError> =>
          queryRows().pipe(
            Stream.mapArrayEffect((rows) =>
              decodeRows(rows) as unknown as Effect.Effect<NonEmptyReadonlyArray<A>, CorruptedReadModelError | ReadModelIdMismatchError>
            )
          )

        /** Splits criteria into the id part (distinct, validated ids) and field predicates. */
        const parseCriteria = (criteria: Criteria<A>) =>
          Effect.gen(function*() {
            if (typeof criteria !== "object" || criteria === null) {
              return yield* new InvalidInputError({ operation: "findBy", field: "criteria", reason: "must be an object" })
            }
            const fields = Object.entries(criteria).filter(([key]) => key !== "id")
            let ids: Array<string> | undefined
            if (Object.prototype.hasOwnProperty.call(criteria, "id")) {
              const raw = (criteria as { readonly id?: unknown }).id
              const list: ReadonlyArray<unknown> = Array.isArray(raw) ? raw : [raw]
              if (!Array.isArray(raw) && typeof raw !== "string") {
                return yield* new InvalidInputError({ operation: "findBy", field: "criteria.id", reason: "must be an id or an array of ids" })
              }
              const seen = new Set<string>()
              ids = []
              for (let i = 0; i < list.length; i++) {
                const id = yield* validateId("findBy", list[i], Array.isArray(raw) ? `criteria.id[${i}]` : "criteria.id")
                if (!seen.has(id)) {
                  seen.add(id)
                  ids.push(id)
                }
              }
            }
            const matches = (model: A): boolean => {
              for (const [key, expected] of fields) {
                const actual = (model as Record<string, unknown>)[key]
                if (Equal.equals(actual, expected)) continue
                if (Array.isArray(actual) && actual.some((element) => Equal.equals(element, expected))) continue
                return false
              }
              return true
            }
            return { ids, empty: fields.length === 0 && ids === undefined, matches }
          })

        const findBy = Effect.fn("ReadModel.findBy")(function*(criteria: Criteria<A>) {
          const parsed = yield* parseCriteria(criteria)
          if (parsed.empty) return [] as ReadonlyArray<A>
          if (parsed.ids !== undefined) return (yield* lookup(parsed.ids)).filter(parsed.matches)
          return yield* Stream.runCollect(findAll().pipe(Stream.filter(parsed.matches)))
        })

        const find = Effect.fn("ReadModel.find")(function*(idInput: string) {
          const id = yield* validateId("find", idInput)
          return yield* fetchOne(id)
        })

        const getOrFail = (find: Repository<A>["find"]) => (id: string) =>
          find(id).pipe(
            Effect.flatMap((o) =>
              Option.isSome(o) ? Effect.succeed(o.value) : Effect.fail(new NotFoundError({ resource: "readModel", id: String(id) }))
            )
          )

        const immediate: Repository<A> = {
          name,
          save,
          find,
          get: getOrFail(find),
          findAll,
          findBy,
          remove
        }

        // --- deferred mode ---------------------------------------------------------

        const makeDeferred = Effect.gen(function*() {
          type Staged =
            | { readonly _tag: "Save"; readonly id: string; readonly model: A; readonly data: string; readonly seq: number }
            | { readonly _tag: "Remove"; readonly id: string; readonly seq: number }
          const pending = new Map<string, Staged>()
          /** Identity map: staged and loaded models by id. */
          const managed = new Map<string, A>()
          let seq = 0
          const flushLock = yield* Semaphore.make(1)

          const dSave = Effect.fn("ReadModel.deferred.save")(function*(model: A) {
            const { id, data } = yield* prepare("save", model)
            pending.set(id, { _tag: "Save", id, model, data, seq: ++seq })
            managed.set(id, model)
          })

          const dRemove = Effect.fn("ReadModel.deferred.remove")(function*(idInput: string) {
            const id = yield* validateId("remove", idInput)
            pending.set(id, { _tag: "Remove", id, seq: ++seq })
            managed.delete(id)
          })

          /** What the unit of work knows about `id` without asking storage. */
          const local = (id: string): Option.Option<Option.Option<A>> => {
            const staged = pending.get(id)
            if (staged !== undefined) return Option.some(staged._tag === "Save" ? Option.some(staged.model) : Option.none())
            const loaded = managed.get(id)
            return loaded !== undefined ? Option.some(Option.some(loaded)) : Option.none()
          }

          const dFind = Effect.fn("ReadModel.deferred.find")(function*(idInput: string) {
            const id = yield* validateId("find", idInput)
            const known = local(id)
            if (Option.isSome(known)) return known.value
            const found = yield* fetchOne(id)
            // Another fiber may have staged something meanwhile: the unit of work wins.
            const after = local(id)
            if (Option.isSome(after)) return after.value
            if (Option.isSome(found)) managed.set(id, found.value)
            return found
          })

          const dLookup = (ids: ReadonlyArray<string>) =>
            Effect.gen(function*() {
              const missing = ids.filter((id) => Option.isNone(local(id)))
              const fetched = yield* lookup(missing)
              for (const model of fetched) {
                const id = idOf(model)
                if (Option.isNone(local(id))) managed.set(id, model)
              }
              const out: Array<A> = []
              for (const id of ids) {
                const known = local(id)
                if (Option.isSome(known) && Option.isSome(known.value)) out.push(known.value.value)
              }
              return out
            })

          /**
           * The partition with the unit of work laid over it, lazily and in id order: staged
           * saves replace or join stored rows, staged removes hide them, managed models are
           * returned as the same objects.
           */
          const dFindAll = (): Stream.Stream<A, ReadError> =>
            Stream.unwrap(Effect.sync(() => {
              const saves = [...pending.values()]
                .flatMap((s) => (s._tag === "Save" ? [s] : []))
                .sort((a, b) => compareIds(a.id, b.id))
              const staged = new Map(pending)
              const loaded = new Map(managed)
              type Item = { readonly row: StoredRow } | { readonly model: A }
              return queryRows().pipe(
                Stream.mapAccum(
                  () => 0,
                  (next: number, row: StoredRow) => {
                    const out: Array<Item> = []
                    while (next < saves.length && compareIds(saves[next]!.id, row.id) < 0) out.push({ model: saves[next++]!.model })
                    const s = staged.get(row.id)
                    if (s === undefined) {
                      const model = loaded.get(row.id)
                      out.push(model !== undefined ? { model } : { row })
                    } else if (s._tag === "Save") {
                      out.push({ model: s.model })
                      if (next < saves.length && saves[next]!.id === row.id) next++
                    }
                    return [next, out] as const
                  },
                  { onHalt: (next) => saves.slice(next).map((s): Item => ({ model: s.model })) }
                ),
                Stream.mapEffect((item) => ("row" in item ? decodeRow(item.row) : Effect.succeed(item.model)))
              )
            }))

          const dFindBy = Effect.fn("ReadModel.deferred.findBy")(function*(criteria: Criteria<A>) {
            const parsed = yield* parseCriteria(criteria)
            if (parsed.empty) return [] as ReadonlyArray<A>
            if (parsed.ids !== undefined) return (yield* dLookup(parsed.ids)).filter(parsed.matches)
            return yield* Stream.runCollect(dFindAll().pipe(Stream.filter(parsed.matches)))
          })

          const flushWithContext = (context: Readonly<Record<string, unknown>>) =>
            flushLock.withPermits(1)(Effect.suspend(() => {
              const staged = [...pending.values()]
              let unchanged = 0
              let saved = 0
              let removed = 0
              let requests = 0
              let failure: { readonly operation: "save" | "remove"; readonly ids: ReadonlyArray<string>; readonly cause: StorageError } | undefined

              /** The op is written (or known stored): no longer pending, unless it was staged again meanwhile. */
              const settle = (op: Staged) => {
                const current = pending.get(op.id)
                if (current !== undefined && current.seq === op.seq) pending.delete(op.id)
              }

              const removes: Array<Staged> = []
              const saves: Array<Staged> = []
              for (const op of staged) {
                if (op._tag === "Remove") removes.push(op)
                else if (memory.get(keyOf(op.id)) === op.data) {
                  unchanged++
                  settle(op)
                } else saves.push(op)
              }

              const runBatch = (operation: "save" | "remove", batch: ReadonlyArray<Staged>) =>
                Effect.suspend(() => {
                  if (failure !== undefined) return Effect.void
                  const byId = new Map(batch.map((op) => [op.id, op]))
                  const tokens = new Map(batch.map((op) => [op.id, memory.begin(keyOf(op.id), "write")]))
                  let remaining: ReadonlyArray<Staged> = batch
                  const done = (op: Staged) => {
                    settle(op)
                    const token = tokens.get(op.id)!
                    tokens.delete(op.id)
                    memory.end(token, op._tag === "Save" ? op.data : null)
                    if (op._tag === "Save") saved++
                    else removed++
                  }
                  return untilProcessed(
                    Effect.suspend(() => {
                      requests++
                      return storage.writeBatch(
                        name,
                        remaining.map((op): WriteOperation =>
                          op._tag === "Save" ? { _tag: "Put", id: op.id, data: op.data } : { _tag: "Delete", id: op.id }
                        )
                      )
                    }).pipe(
                      Effect.map(({ unprocessed }) => {
                        const left = new Set(unprocessed)
                        for (const op of remaining) if (!left.has(op.id)) done(op)
                        remaining = remaining.filter((op) => left.has(op.id) && byId.has(op.id))
                        return remaining.length
                      })
                    )
                  ).pipe(
                    Effect.catch((error) =>
                      Effect.sync(() => {
                        const cause = error instanceof StorageError
                          ? error
                          : new StorageError({
                            operation: "BatchWriteItem",
                            reason: "Throttled",
                            resource: table,
                            detail: `${remaining.length} item(s) stayed unprocessed (UnprocessedItems) after every retry`
                          })
                        failure ??= { operation, ids: remaining.map((op) => op.id), cause }
                      })
                    ),
                    // Whatever is not confirmed (failed, unprocessed or interrupted) stays pending and unknown.
                    Effect.ensuring(Effect.sync(() => {
                      for (const token of tokens.values()) memory.end(token, undefined)
                      tokens.clear()
                    }))
                  )
                })

              const batches = [
                ...chunksOf(removes, MAX_BATCH_WRITE).map((batch) => ["remove", batch] as const),
                ...chunksOf(saves, MAX_BATCH_WRITE).map((batch) => ["save", batch] as const)
              ]
              return Effect.forEach(batches, ([operation, batch]) => runBatch(operation, batch), {
                concurrency: writeConcurrency,
                discard: true
              }).pipe(
                Effect.flatMap(() =>
                  failure === undefined
                    ? Effect.succeed<FlushResult>({ saved, removed, unchanged, requests })
                    : Effect.fail(
                      new DeferredFlushFailed({
                        operation: failure.operation,
                        ids: [...failure.ids],
                        table,
                        repository: name,
                        model: modelName,
                        context: { ...context },
                        written: saved + removed,
                        pending: pending.size,
                        cause: failure.cause
                      })
                    )
                )
              )
            })).pipe(Effect.withSpan("ReadModel.deferred.flush", { attributes: { repository: name } }))

          const clear = Effect.sync(() => {
            pending.clear()
            managed.clear()
          })

          const pendingOperations = Effect.sync(() =>
            [...pending.values()].map((op): PendingOperation<A> =>
              op._tag === "Save" ? { _tag: "Save", id: op.id, model: op.model, data: op.data } : { _tag: "Remove", id: op.id }
            )
          )

          const deferredRepo: DeferredRepository<A> = {
            name,
            save: dSave,
            remove: dRemove,
            find: dFind,
            get: getOrFail(dFind),
            findAll: dFindAll,
            findBy: dFindBy,
            flush: flushWithContext({}),
            flushWithContext,
            clear,
            pendingOperations
          }
          return deferredRepo
        })

        return { immediate, makeDeferred }
      })

    const create = ((name: string, schema: Schema.Codec<unknown, unknown>, repoOptions?: RepositoryOptions<unknown>) =>
      build(name, schema, repoOptions).pipe(Effect.map((r) => r.immediate))) as Create

    const createDeferred = ((name: string, schema: Schema.Codec<unknown, unknown>, repoOptions?: RepositoryOptions<unknown>) =>
      build(name, schema, repoOptions).pipe(Effect.flatMap((r) => r.makeDeferred))) as CreateDeferred

    return ReadModelStore.of({
      table,
      create,
      createDeferred,
      clearSnapshots: Effect.sync(() => memory.clear())
    })
  })

// -----------------------------------------------------------------------------
// accessors
// -----------------------------------------------------------------------------

/**
 * A repository from the {@link ReadModelStore} in context. Same as
 * `ReadModelStore.use((store) => store.create(name, schema, options))`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const repository: {
  <A extends { readonly id: string }, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options?: RepositoryOptions<A>
  ): Effect.Effect<Repository<A>, InvalidInputError, ReadModelStore>
  <A, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options: RepositoryOptions<A> & { readonly idOf: (model: A) => string }
  ): Effect.Effect<Repository<A>, InvalidInputError, ReadModelStore>
} = (name: string, schema: Schema.Codec<any, any>, options?: RepositoryOptions<any>) =>
  ReadModelStore.use((store) => store.create(name, schema, options as RepositoryOptions<{ readonly id: string }>))

/**
 * A deferred repository (unit of work) from the {@link ReadModelStore} in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const deferred: {
  <A extends { readonly id: string }, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options?: RepositoryOptions<A>
  ): Effect.Effect<DeferredRepository<A>, InvalidInputError, ReadModelStore>
  <A, I>(
    name: string,
    schema: Schema.Codec<A, I>,
    options: RepositoryOptions<A> & { readonly idOf: (model: A) => string }
  ): Effect.Effect<DeferredRepository<A>, InvalidInputError, ReadModelStore>
} = (name: string, schema: Schema.Codec<any, any>, options?: RepositoryOptions<any>) =>
  ReadModelStore.use((store) => store.createDeferred(name, schema, options as RepositoryOptions<{ readonly id: string }>))

// -----------------------------------------------------------------------------
// in-memory implementation
// -----------------------------------------------------------------------------

/**
 * The storage operations, by their DynamoDB names, as the in-memory storage records them.
 *
 * @since 0.1.0
 * @category models
 */
export type StorageOperation = "GetItem" | "BatchGetItem" | "Query" | "PutItem" | "DeleteItem" | "BatchWriteItem"

/**
 * A fault for the in-memory storage to inject into one request (tests): fail it (after
 * applying it when `applied` is true: a lost response), or process only some of its ids
 * and report the others as unprocessed (`BatchGetItem`/`BatchWriteItem`).
 *
 * @since 0.1.0
 * @category models
 */
export type MemoryFault =
  | { readonly _tag: "Fail"; readonly error: StorageError; readonly applied?: boolean | undefined }
  | { readonly _tag: "Partial"; readonly processed: ReadonlyArray<string> }

/**
 * In-memory {@link Storage} with DynamoDB's semantics (id order, 1 MB pages, unprocessed
 * items only when injected), plus inspection for tests.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStorage extends Storage {
  /** Every request so far, in order. */
  readonly operations: Array<StorageOperation>
  /** Items written or deleted so far (batch items count one each). */
  readonly itemWrites: () => number
  /** The stored rows of a partition, in id order. */
  readonly rows: (name: string) => ReadonlyArray<StoredRow>
  /** Writes a raw row, bypassing every check (to simulate corrupted data); `undefined` data: no `Data`. */
  readonly putRaw: (name: string, id: string, data: string | undefined) => void
  /** Drops every row (a recreated table). */
  readonly reset: () => void
  /** Installs a fault hook called before each request; `undefined` removes it. */
  readonly setFault: (
    fault: ((operation: StorageOperation, name: string, ids: ReadonlyArray<string>) => MemoryFault | undefined) | undefined
  ) => void
}

const ONE_MB = 1024 * 1024

/**
 * Builds an in-memory {@link Storage}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryStorage = (table = "memory"): MemoryStorage => {
  const partitions = new Map<string, Map<string, string | undefined>>()
  const operations: Array<StorageOperation> = []
  let writes = 0
  let fault: ((operation: StorageOperation, name: string, ids: ReadonlyArray<string>) => MemoryFault | undefined) | undefined
  const partition = (name: string) => {
    let p = partitions.get(name)
    if (p === undefined) {
      p = new Map()
      partitions.set(name, p)
    }
    return p
  }
  const sortedIds = (name: string) => [...(partitions.get(name)?.keys() ?? [])].sort(compareIds)

  /** Records the request, applies a fault, and runs `apply` on the ids storage processes. */
  const request = <X>(
    operation: StorageOperation,
    name: string,
    ids: ReadonlyArray<string>,
    apply: (processed: ReadonlyArray<string>) => X
  ): Effect.Effect<{ readonly value: X; readonly unprocessed: ReadonlyArray<string> }, StorageError> =>
    // Yield first, as a real request would: concurrent requests then overlap, which the
    // skip-unchanged bookkeeping must survive just as it must on DynamoDB.
    Effect.andThen(Effect.yieldNow, () => {
      operations.push(operation)
      const f = fault?.(operation, name, ids)
      if (f?._tag === "Fail") {
        if (f.applied === true) apply(ids)
        return Effect.fail(f.error)
      }
      if (f?._tag === "Partial") {
        const processed = new Set(f.processed)
        const kept = ids.filter((id) => processed.has(id))
        return Effect.succeed({ value: apply(kept), unprocessed: ids.filter((id) => !processed.has(id)) })
      }
      return Effect.succeed({ value: apply(ids), unprocessed: [] })
    })

  const rowOf = (name: string, id: string): StoredRow | undefined => {
    const p = partitions.get(name)
    return p?.has(id) ? { id, data: p.get(id) } : undefined
  }

  return {
    table,
    get: (name, id) => request("GetItem", name, [id], () => rowOf(name, id)).pipe(Effect.map((r) => r.value)),
    getBatch: (name, ids) =>
      // DynamoDB returns the rows of a batch in no particular order: so does this (reversed).
      request("BatchGetItem", name, ids, (processed) => processed.flatMap((id) => rowOf(name, id) ?? []).reverse()).pipe(
        Effect.map((r) => ({ rows: r.value, unprocessed: r.unprocessed }))
      ),
    query: (name, { pageSize }) =>
      Stream.paginate({ after: undefined as string | undefined }, ({ after }) =>
        request("Query", name, [], () => {
          const ids = sortedIds(name).filter((id) => after === undefined || compareIds(id, after) > 0)
          const page: Array<StoredRow> = []
          let bytes = 0
          for (const id of ids) {
            if (pageSize !== undefined && page.length >= pageSize) break
            const row = rowOf(name, id)!
            bytes += rowSize(name, id, row.data ?? "")
            page.push(row)
            if (bytes >= ONE_MB) break
          }
          const more = page.length > 0 && page.length < ids.length
          return [page, more ? Option.some({ after: page[page.length - 1]!.id }) : Option.none()] as const
        }).pipe(Effect.map((r) => r.value))),
    put: (name, id, data) =>
      request("PutItem", name, [id], (processed) => {
        for (const pid of processed) {
          partition(name).set(pid, data)
          writes++
        }
      }).pipe(Effect.asVoid),
    delete: (name, id) =>
      request("DeleteItem", name, [id], (processed) => {
        for (const pid of processed) {
          partitions.get(name)?.delete(pid)
          writes++
        }
      }).pipe(Effect.asVoid),
    writeBatch: (name, ops) =>
      Effect.suspend(() => {
        const byId = new Map(ops.map((op) => [op.id, op]))
        if (byId.size !== ops.length) {
          return Effect.fail(
            new StorageError({ operation: "BatchWriteItem", reason: "Validation", resource: table, detail: "Provided list of item keys contains duplicates" })
          )
        }
        return request("BatchWriteItem", name, ops.map((op) => op.id), (processed) => {
          for (const id of processed) {
            const op = byId.get(id)!
            if (op._tag === "Put") partition(name).set(id, op.data)
            else partitions.get(name)?.delete(id)
            writes++
          }
        }).pipe(Effect.map((r) => ({ unprocessed: r.unprocessed })))
      }),
    operations,
    itemWrites: () => writes,
    rows: (name) => sortedIds(name).map((id) => rowOf(name, id)!),
    putRaw: (name, id, data) => {
      partition(name).set(id, data)
    },
    reset: () => partitions.clear(),
    setFault: (f) => {
      fault = f
    }
  }
}

/**
 * Builds an in-memory read-model store with exactly the semantics of the DynamoDB one
 * (same validation, limits, errors, skip-unchanged writes and deferred mode). Each call
 * is a new empty store; `storage` is there for tests (requests, rows, faults).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (
  options: ReadModelStoreOptions = {}
): Effect.Effect<ReadModelStoreShape & { readonly storage: MemoryStorage }> =>
  Effect.suspend(() => {
    const storage = makeMemoryStorage()
    return make(storage, options).pipe(Effect.map((store) => ({ ...store, storage })))
  })

/**
 * An in-memory {@link ReadModelStore} for unit tests and prototypes. Each build of the
 * layer is a new empty store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ReadModelStore> = Layer.effect(ReadModelStore, makeMemory())

/**
 * {@link layerMemory} with options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryWith = (options: ReadModelStoreOptions): Layer.Layer<ReadModelStore> =>
  Layer.effect(ReadModelStore, makeMemory(options))

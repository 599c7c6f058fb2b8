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
import { Context, Effect, Layer, type Schema } from "effect"
import type { InvalidInputError } from "./Errors.js"
import type {
  DeferredRepository,
  MemoryStorage,
  ReadModelStoreOptions,
  ReadModelStoreShape,
  Repository,
  RepositoryOptions
} from "./internal/readModel/model.js"
import { makeMemoryStorage } from "./internal/readModel/memoryStorage.js"
import { make } from "./internal/readModel/store.js"

// -----------------------------------------------------------------------------
// limits, errors and the rules (defined in internal/readModel/*, one concern each)
// -----------------------------------------------------------------------------

export {
  compareIds,
  defaultStorageLimits,
  MAX_BATCH_GET,
  MAX_BATCH_WRITE,
  MAX_ID_BYTES,
  MAX_ITEM_BYTES,
  MAX_NAME_BYTES,
  rowSize
} from "./internal/readModel/limits.js"
export {
  CorruptedReadModelError,
  DeferredFlushFailed,
  ReadModelEncodeError,
  ReadModelIdMismatchError,
  ReadModelTooLargeError,
  UnresolvedIdsError
} from "./internal/readModel/errors.js"
export type { ReadError, SaveError } from "./internal/readModel/errors.js"
export { defaultUnprocessedRetrySchedule, make } from "./internal/readModel/store.js"
export { makeMemoryStorage } from "./internal/readModel/memoryStorage.js"
export { chunksOf, Unprocessed, untilProcessed } from "./internal/readModel/unprocessed.js"

// -----------------------------------------------------------------------------
// models and storage (the driver's side)
// -----------------------------------------------------------------------------

// The models and the storage contract are defined in internal/readModel/model.ts, which the
// modules implementing the store import too; every name of it is public here.
export type {
  ConditionalStorage,
  Create,
  CreateDeferred,
  Criteria,
  DeferredRepository,
  FieldCriterion,
  FlushResult,
  GuardedRow,
  GuardedWrite,
  MemoryStorage,
  PendingOperation,
  ReadModelStoreOptions,
  ReadModelStoreShape,
  Repository,
  RepositoryOptions,
  Storage,
  StorageLimits,
  StoredRow,
  WriteOperation
} from "./internal/readModel/model.js"

/**
 * The read-model store service. `yield* ReadModelStore` (or use {@link repository} and
 * {@link deferred}); provide {@link layerMemory} or `DynamoReadModelStore.layer(...)`.
 *
 * @since 0.1.0
 * @category services
 */
export class ReadModelStore extends Context.Service<ReadModelStore, ReadModelStoreShape>()("@dynamo-es/core/ReadModelStore") {}

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
 * Builds an in-memory read-model store with exactly the semantics of the DynamoDB one
 * (same validation, limits, errors, skip-unchanged writes and deferred mode). Each call
 * is a new empty store; `storage` shows the stored rows (`storage.rows(name)`).
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

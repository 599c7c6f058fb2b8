/**
 * What the parts of a read-model store share: the store's storage, skip-unchanged memory
 * and settings, and per repository its name, read settings and row codec. Built once per
 * store ({@link makeStoreContext}) and once per repository ({@link makeRepositoryContext}).
 */
import { Effect, type Schedule, type Schema, SchemaAST } from "effect"
import type { InvalidInputError } from "../../Errors.js"
import type { ReadModelStoreOptions, RepositoryOptions, Storage, StorageLimits } from "./model.js"
import { makeRowCodec, type RowCodec } from "./codec.js"
import { limitsOf, MAX_NAME_BYTES } from "./limits.js"
import { StateMemory } from "./stateMemory.js"
import { defaultUnprocessedRetrySchedule } from "./unprocessed.js"
import { checkRepositoryOptions, validateText } from "./validation.js"

/** One store: its storage and what every repository of it shares. */
export interface StoreContext {
  readonly storage: Storage
  readonly table: string
  /** The limits the storage declares, defaults filled in. */
  readonly limits: StorageLimits
  /** The skip-unchanged memory, shared by every repository of the store. */
  readonly memory: StateMemory
  readonly writeConcurrency: number
  readonly readConcurrency: number
  readonly retrySchedule: Schedule.Schedule<unknown>
}

/** `options` are checked (`ReadModel.make` decodes them with their Schema first). */
export const makeStoreContext = (storage: Storage, options: ReadModelStoreOptions): StoreContext => ({
  storage,
  table: storage.table,
  limits: limitsOf(storage),
  memory: new StateMemory(options.skipUnchanged === false ? 0 : options.snapshotCapacity ?? 100_000),
  writeConcurrency: options.writeConcurrency ?? 8,
  readConcurrency: options.readConcurrency ?? 4,
  retrySchedule: options.unprocessedRetrySchedule ?? defaultUnprocessedRetrySchedule
})

/** One repository of a store. */
export interface RepositoryContext<A> extends StoreContext {
  readonly name: string
  readonly consistentRead: boolean
  readonly pageSize: number | undefined
  readonly idOf: (model: A) => string
  /** The model's name in errors. */
  readonly modelName: string
  readonly codec: RowCodec<A>
  /** The key of `id` in the store's memory (repositories share it). */
  readonly keyOf: (id: string) => string
}

/** Checks the repository name and options, and builds the repository's context. */
export const makeRepositoryContext = <A>(
  store: StoreContext,
  name: string,
  schema: Schema.Codec<A, unknown>,
  options: RepositoryOptions<A> = {}
): Effect.Effect<RepositoryContext<A>, InvalidInputError> =>
  Effect.gen(function*() {
    const nameError = validateText("create", "name", name, MAX_NAME_BYTES)
    if (nameError !== undefined) return yield* nameError
    yield* checkRepositoryOptions("create", "options", options)
    const idOf = options.idOf ?? ((model: A) => (model as { readonly id: string }).id)
    return {
      ...store,
      name,
      consistentRead: options.consistentRead ?? true,
      pageSize: options.pageSize,
      idOf,
      modelName: options.modelName ?? SchemaAST.resolveIdentifier(schema.ast) ?? name,
      codec: makeRowCodec({ table: store.table, name, schema, idOf, limits: store.limits }),
      keyOf: (id: string) => `${name}\u0000${id}`
    }
  })

/**
 * `ReadModel.make`: a read-model store over the single-request primitives of a
 * `ReadModel.Storage`. The rules are written once here and in the modules it assembles,
 * for every implementation: `codec.ts` (encoding, decoding, limits), `reads.ts`,
 * `writes.ts` (skip-unchanged), `unitOfWork.ts` and `flush.ts` (deferred mode),
 * `stateMemory.ts` (the skip-unchanged memory), `unprocessed.ts` (retries of unprocessed
 * batch items).
 */
import { Effect, type Schema } from "effect"
import type { Create, CreateDeferred, ReadModelStoreOptions, ReadModelStoreShape, Repository, RepositoryOptions, Storage } from "./model.js"
import * as Inputs from "../inputs.js"
import { makeRepositoryContext, makeStoreContext } from "./context.js"
import { makeReads } from "./reads.js"
import { makeUnitOfWork } from "./unitOfWork.js"
import { makeWrites } from "./writes.js"

export { defaultUnprocessedRetrySchedule } from "./unprocessed.js"

const checkOptions = Inputs.optionsOrDie("ReadModel.make", Inputs.ReadModelStoreOptions)

/**
 * Builds a read-model store on a {@link Storage} driver. Every implementation (the
 * in-memory one, DynamoDB's) is this function on its own storage, so they share
 * validation, encoding, skip-unchanged writes, deferred mode and flush semantics.
 * Dies with a message naming the option when `options` are invalid (e.g. a
 * `writeConcurrency` that is not an integer >= 1), or when the storage declares a limit
 * that is not a positive integer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (storage: Storage, options: ReadModelStoreOptions = {}): Effect.Effect<ReadModelStoreShape> =>
  Effect.flatMap(checkOptions(options), () =>
    Effect.sync(() => {
      const store = makeStoreContext(storage, options)

      const create = ((name: string, schema: Schema.Codec<unknown, unknown>, repoOptions?: RepositoryOptions<unknown>) =>
        Effect.map(makeRepositoryContext(store, name, schema, repoOptions), (ctx): Repository<unknown> => {
          const { findAll, find, findBy, get } = makeReads(ctx)
          return { name, ...makeWrites(ctx), find, get, findAll, findBy }
        })) as Create

      const createDeferred = ((name: string, schema: Schema.Codec<unknown, unknown>, repoOptions?: RepositoryOptions<unknown>) =>
        Effect.flatMap(makeRepositoryContext(store, name, schema, repoOptions), (ctx) => makeUnitOfWork(ctx, makeReads(ctx)))) as CreateDeferred

      return {
        table: store.table,
        create,
        createDeferred,
        clearSnapshots: Effect.sync(() => store.memory.clear()),
        storage
      }
    }))

/**
 * The writes of an immediate repository: `save` (one `PutItem`, none when the store
 * remembers exactly this state as stored) and `remove` (one `DeleteItem`), each keeping
 * the skip-unchanged memory right under concurrency.
 */
import { Effect, Exit } from "effect"
import type { Repository } from "./model.js"
import type { RepositoryContext } from "./context.js"
import { validateId } from "./validation.js"

export const makeWrites = <A>(ctx: RepositoryContext<A>): Pick<Repository<A>, "save" | "remove"> => {
  const { codec, keyOf, memory, name, storage } = ctx

  const save = Effect.fn("ReadModel.save")(function*(model: A) {
    const { data, id } = yield* codec.prepare("save", model)
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

  return { save, remove }
}

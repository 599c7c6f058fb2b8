/**
 * The deferred repository: a unit of work over one repository. Staged saves and removes
 * (collapsed per id), an identity map of staged and loaded models, reads that look at the
 * unit of work first and lay it over what storage returns, and `flush` (see `flush.ts`).
 */
import { Effect, Option, Stream } from "effect"
import type { Criteria, DeferredRepository, PendingOperation, StoredRow } from "./model.js"
import type { RepositoryContext } from "./context.js"
import { parseCriteria } from "./criteria.js"
import type { ReadError } from "./errors.js"
import { makeFlush, type Pending } from "./flush.js"
import { compareIds } from "./limits.js"
import { getOrFail, type Reads } from "./reads.js"
import * as Tracing from "../tracing.js"
import { validateId } from "./validation.js"

export const makeUnitOfWork = <A>(ctx: RepositoryContext<A>, reads: Reads<A>): Effect.Effect<DeferredRepository<A>> =>
  Effect.gen(function*() {
    const { codec, idOf, name } = ctx
    const pending: Pending<A> = new Map()
    /** Identity map: staged and loaded models by id. */
    const managed = new Map<string, A>()
    let seq = 0
    const flushWithContext = yield* makeFlush(ctx, pending)

    const save = Effect.fn("ReadModel.deferred.save")(function*(model: A) {
      const { data, id } = yield* codec.prepare("save", model)
      pending.set(id, { _tag: "Save", id, model, data, seq: ++seq })
      managed.set(id, model)
    })

    const remove = Effect.fn("ReadModel.deferred.remove")(function*(idInput: string) {
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

    const find = Effect.fn("ReadModel.deferred.find")(function*(idInput: string) {
      const id = yield* validateId("find", idInput)
      const known = local(id)
      if (Option.isSome(known)) return known.value
      const found = yield* reads.fetchOne(id)
      // Another fiber may have staged something meanwhile: the unit of work wins.
      const after = local(id)
      if (Option.isSome(after)) return after.value
      if (Option.isSome(found)) managed.set(id, found.value)
      return found
    })

    const lookup = (ids: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const missing = ids.filter((id) => Option.isNone(local(id)))
        const fetched = yield* reads.lookup(missing)
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
    const partition = (): Stream.Stream<A, ReadError> =>
      Stream.unwrap(Effect.sync(() => {
        const saves = [...pending.values()]
          .flatMap((s) => (s._tag === "Save" ? [s] : []))
          .sort((a, b) => compareIds(a.id, b.id))
        const staged = new Map(pending)
        const loaded = new Map(managed)
        type Item = { readonly row: StoredRow } | { readonly model: A }
        return reads.queryRows().pipe(
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
          Stream.mapEffect((item) => ("row" in item ? codec.decodeRow(item.row) : Effect.succeed(item.model)))
        )
      }))

    /** {@link partition} in a span covering the whole stream, when a tracer is installed. */
    const findAll = (): Stream.Stream<A, ReadError> =>
      Tracing.withStreamSpan(partition(), "ReadModel.deferred.findAll", () => ({ repository: name }))

    const findBy = Effect.fn("ReadModel.deferred.findBy")(function*(criteria: Criteria<A>) {
      const parsed = yield* parseCriteria(criteria)
      if (parsed.empty) return [] as ReadonlyArray<A>
      if (parsed.ids !== undefined) return (yield* lookup(parsed.ids)).filter(parsed.matches)
      return yield* Stream.runCollect(partition().pipe(Stream.filter(parsed.matches)))
    })

    const clear = Effect.sync(() => {
      pending.clear()
      managed.clear()
    })

    const pendingOperations = Effect.sync(() =>
      [...pending.values()].map((op): PendingOperation<A> =>
        op._tag === "Save" ? { _tag: "Save", id: op.id, model: op.model, data: op.data } : { _tag: "Remove", id: op.id }
      )
    )

    const repository: DeferredRepository<A> = {
      name,
      save,
      remove,
      find,
      get: getOrFail(find),
      findAll,
      findBy,
      flush: flushWithContext({}),
      flushWithContext,
      clear,
      pendingOperations
    }
    return repository
  })

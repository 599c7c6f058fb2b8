/**
 * The reads of a repository: `find`/`get` (one `GetItem`), `findBy` on ids (`GetItem`, or
 * `BatchGetItem` per `maxBatchGet` ids (100 on DynamoDB) with unprocessed keys retried), `findAll` and `findBy` on
 * fields (the partition, one `Query` per page). Strongly consistent reads feed the
 * skip-unchanged memory.
 */
import { Effect, Option, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { NotFoundError } from "../../Errors.js"
import type { Criteria, Repository, StoredRow } from "./model.js"
import * as Tracing from "../tracing.js"
import type { RepositoryContext } from "./context.js"
import { parseCriteria } from "./criteria.js"
import { type ReadError, UnresolvedIdsError } from "./errors.js"
import { chunksOf, untilProcessed } from "./unprocessed.js"
import { validateId } from "./validation.js"

/** The reads of one repository, and the storage-level pieces the unit of work reuses. */
export interface Reads<A> extends Pick<Repository<A>, "find" | "get" | "findAll" | "findBy"> {
  /** One `GetItem` of a valid id. */
  readonly fetchOne: (id: string) => Effect.Effect<Option.Option<A>, ReadError>
  /** Models for distinct, valid ids, in the given order, missing ones dropped. */
  readonly lookup: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<A>, ReadError | UnresolvedIdsError>
  /** The stored rows of the partition in id order, one `Query` per page, lazily. */
  readonly queryRows: () => Stream.Stream<StoredRow, ReadError>
}

/** `find`, failing with `NotFoundError` (resource `"readModel"`) when absent. */
export const getOrFail = <A, E>(find: (id: string) => Effect.Effect<Option.Option<A>, E>) => (id: string) =>
  find(id).pipe(
    Effect.flatMap((o) =>
      Option.isSome(o) ? Effect.succeed(o.value) : Effect.fail(new NotFoundError({ resource: "readModel", id: String(id) }))
    )
  )

export const makeReads = <A>(ctx: RepositoryContext<A>): Reads<A> => {
  const { codec, consistentRead, idOf, keyOf, memory, name, pageSize, storage, table } = ctx

  const fetchOne = (id: string): Effect.Effect<Option.Option<A>, ReadError> => {
    const token = consistentRead ? memory.begin(keyOf(id), "read") : undefined
    let state: string | null | undefined
    return storage.get(name, id, consistentRead).pipe(
      Effect.flatMap((row) => {
        if (row === undefined) {
          state = null
          return Effect.succeed(Option.none<A>())
        }
        return codec.decodeRow(row).pipe(
          Effect.map((model) => {
            state = row.data
            return Option.some(model)
          })
        )
      }),
      Effect.onExit(() => Effect.sync(() => token !== undefined && memory.end(token, state)))
    )
  }

  /** One lookup of up to `maxBatchGet` distinct ids (`BatchGetItem`), unprocessed keys retried with backoff. */
  const fetchChunk = (ids: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      const tokens = consistentRead ? ids.map((id) => [id, memory.begin(keyOf(id), "read")] as const) : []
      const rows: Array<StoredRow> = []
      let remaining = ids
      let attempts = 0
      const states = new Map<string, string | null>()
      return untilProcessed(
        ctx.retrySchedule,
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
        Effect.catchTag("Unprocessed", () => Effect.fail(new UnresolvedIdsError({ table, repository: name, ids: [...remaining], attempts }))),
        Effect.flatMap(() => codec.decodeRows(rows)),
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

  const lookup: Reads<A>["lookup"] = (ids) => {
    if (ids.length === 0) return Effect.succeed([])
    if (ids.length === 1) return fetchOne(ids[0]!).pipe(Effect.map((o) => (Option.isSome(o) ? [o.value] : [])))
    return Effect.forEach(chunksOf(ids, ctx.limits.maxBatchGet), fetchChunk, { concurrency: ctx.readConcurrency }).pipe(
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

  const queryRows = (): Stream.Stream<StoredRow, ReadError> =>
    Stream.paginate(undefined as string | undefined, (exclusiveStartId) =>
      storage.queryPage(name, { consistentRead, limit: pageSize, exclusiveStartId }).pipe(
        Effect.map((page) => [page.rows, Option.fromUndefinedOr(page.lastEvaluatedId)] as const)
      ))

  const decodedRows = (): Stream.Stream<A, ReadError> =>
    queryRows().pipe(
      Stream.mapArrayEffect((rows) => codec.decodeRows(rows) as unknown as Effect.Effect<NonEmptyReadonlyArray<A>, ReadError>)
    )

  /** A span covering the whole stream, when a tracer is installed (the other reads are `Effect.fn` spans). */
  const findAll = (): Stream.Stream<A, ReadError> =>
    Tracing.withStreamSpan(decodedRows(), "ReadModel.findAll", () => ({ repository: name }))

  const findBy = Effect.fn("ReadModel.findBy")(function*(criteria: Criteria<A>) {
    const parsed = yield* parseCriteria(criteria)
    if (parsed.empty) return [] as ReadonlyArray<A>
    if (parsed.ids !== undefined) return (yield* lookup(parsed.ids)).filter(parsed.matches)
    return yield* Stream.runCollect(decodedRows().pipe(Stream.filter(parsed.matches)))
  })

  const find = Effect.fn("ReadModel.find")(function*(idInput: string) {
    const id = yield* validateId("find", idInput)
    return yield* fetchOne(id)
  })

  return { find, get: getOrFail(find), findAll, findBy, fetchOne, lookup, queryRows }
}

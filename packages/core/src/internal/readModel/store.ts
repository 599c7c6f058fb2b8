/**
 * The rules of read-model repositories, written once over the single-request primitives of
 * a `ReadModel.Storage`: validation, encoding, skip-unchanged writes, identity map, deferred
 * flushes in batches and retries of unprocessed items. Every implementation is this code
 * over its own storage.
 */
import { Data, Effect, Equal, Exit, Option, Schedule, Schema, SchemaAST, Semaphore, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { InvalidInputError, NotFoundError, StorageError } from "../../Errors.js"
import type {
  Create,
  CreateDeferred,
  Criteria,
  DeferredRepository,
  FlushResult,
  PendingOperation,
  ReadModelStoreOptions,
  ReadModelStoreShape,
  Repository,
  RepositoryOptions,
  Storage,
  StoredRow,
  WriteOperation
} from "../../ReadModel.js"
import * as Inputs from "../inputs.js"
import { keyProblem } from "../inputs.js"
import {
  CorruptedReadModelError,
  DeferredFlushFailed,
  type ReadError,
  ReadModelEncodeError,
  ReadModelIdMismatchError,
  ReadModelTooLargeError,
  UnresolvedIdsError
} from "./errors.js"
import { compareIds, MAX_BATCH_GET, MAX_BATCH_WRITE, MAX_ID_BYTES, MAX_ITEM_BYTES, MAX_NAME_BYTES, rowSize } from "./limits.js"
import { StateMemory } from "./stateMemory.js"

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

type Prepared = { readonly id: string; readonly data: string }

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

    const store: ReadModelStoreShape = {
      table,
      create,
      createDeferred,
      clearSnapshots: Effect.sync(() => memory.clear())
    }
    return store
  })

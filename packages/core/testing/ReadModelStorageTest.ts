/**
 * A test wrapper over any read-model `ReadModel.Storage` (the memory one, DynamoDB's, your
 * own): it records every request the store sends, counts the items written, and injects
 * faults into chosen requests. The store under test runs on the wrapped storage:
 *
 * ```ts
 * const instrumented = ReadModelStorageTest.instrument(ReadModel.makeMemoryStorage())
 * const store = yield* ReadModel.make(instrumented.storage)
 * yield* instrumented.setFault((operation) => operation === "PutItem" ? { _tag: "Fail" } : undefined)
 * ```
 *
 * Each storage primitive is one request (a `Query` page is one `queryPage` call), so what
 * the wrapper records is what a driver sends, page by page. It adds no request of its own:
 * a `Partial` fault forwards only the processed ids, and nothing when none is processed.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import { Errors, type ReadModel } from "../src/index.js"

/**
 * The storage primitives, by their DynamoDB request names.
 *
 * @since 0.2.0
 * @category models
 */
export type Operation =
  | "GetItem"
  | "BatchGetItem"
  | "Query"
  | "PutItem"
  | "DeleteItem"
  | "BatchWriteItem"
  /** `ConditionalStorage.readGuarded` (a `GetItem`). */
  | "GuardedRead"
  /** `ConditionalStorage.readGuardedBatch` (a `BatchGetItem`). */
  | "GuardedBatchRead"
  /** `ConditionalStorage.writeGuarded` (a conditional `PutItem`). */
  | "GuardedWrite"
  /** `ConditionalStorage.writeGuardedBatch` (a `BatchExecuteStatement`). */
  | "GuardedBatchWrite"
  /** `ConditionalStorage.compareAndSet` (a conditional `PutItem`). */
  | "CompareAndSet"
  /** `ConditionalStorage.transact` (a `TransactWriteItems`). */
  | "TransactWriteItems"

/**
 * One request the store sent: the primitive, the partition, the ids it is about (none
 * for a `Query` page), and whether it reached the wrapped storage (a fault may stop it).
 *
 * @since 0.2.0
 * @category models
 */
export interface Request {
  readonly operation: Operation
  readonly name: string
  readonly ids: ReadonlyArray<string>
  readonly forwarded: boolean
}

/**
 * A fault for one request:
 * - `Fail`: the request fails with `error` (default: a non-retryable `StorageError`
 *   `AccessDenied`); with `applied`, the wrapped storage applied it first (a lost response);
 * - `Partial`: for `BatchGetItem`/`BatchWriteItem` (and the guarded batches), only the
 *   `processed` ids reach storage and the others are reported unprocessed (as DynamoDB does
 *   under throttling; unsettled for `GuardedBatchWrite`). Other
 *   requests ignore it.
 *
 * @since 0.2.0
 * @category models
 */
export type Fault =
  | { readonly _tag: "Fail"; readonly error?: Errors.StorageError | undefined; readonly applied?: boolean | undefined }
  | { readonly _tag: "Partial"; readonly processed: ReadonlyArray<string> }

/**
 * Chooses the fault of each request (`undefined`: none), called when the request starts.
 *
 * @since 0.2.0
 * @category models
 */
export type FaultHook = (operation: Operation, name: string, ids: ReadonlyArray<string>) => Fault | undefined

/**
 * A wrapped storage and what it observed.
 *
 * @since 0.2.0
 * @category models
 */
export interface InstrumentedStorage {
  /** The storage to build the store on (`ReadModel.make(instrumented.storage)`). */
  readonly storage: ReadModel.Storage
  /** Every request since the last `reset`, in the order they started. */
  readonly requests: Effect.Effect<ReadonlyArray<Request>>
  /** The operation of every request since the last `reset`. */
  readonly operations: Effect.Effect<ReadonlyArray<Operation>>
  /** Items written or deleted since the last `reset`, as storage confirmed them (batch items count one each). */
  readonly itemWrites: Effect.Effect<number>
  /** Forgets the requests and item writes recorded so far. */
  readonly reset: Effect.Effect<void>
  /** Installs the fault hook; `undefined` removes it. */
  readonly setFault: (hook: FaultHook | undefined) => Effect.Effect<void>
}

/**
 * Wraps `storage` (see the module documentation).
 *
 * @since 0.2.0
 * @category constructors
 */
export const instrument = (storage: ReadModel.Storage): InstrumentedStorage => {
  const requests: Array<{ -readonly [K in keyof Request]: Request[K] }> = []
  let itemWrites = 0
  let hook: FaultHook | undefined

  /**
   * One request: records it, asks the hook, and runs `forward` (the wrapped primitive on
   * the ids that reach storage) as the fault says. `unprocessed` builds the answer for
   * the ids a `Partial` fault kept back, or for all of them when none reaches storage.
   */
  const request = <X>(
    operation: Operation,
    name: string,
    ids: ReadonlyArray<string>,
    forward: (ids: ReadonlyArray<string>) => Effect.Effect<X, Errors.StorageError>,
    partial?: (answer: X | undefined, kept: ReadonlyArray<string>) => X
  ): Effect.Effect<X, Errors.StorageError> =>
    Effect.suspend(() => {
      const fault = hook?.(operation, name, ids)
      const recorded = { operation, name, ids, forwarded: false }
      requests.push(recorded)
      const send = (sent: ReadonlyArray<string>) =>
        Effect.suspend(() => {
          recorded.forwarded = true
          return forward(sent)
        })
      if (fault?._tag === "Fail") {
        const error = fault.error ??
          new Errors.StorageError({ operation, reason: "AccessDenied", resource: storage.table, detail: "injected fault" })
        return fault.applied === true ? Effect.andThen(send(ids), Effect.fail(error)) : Effect.fail(error)
      }
      if (fault?._tag === "Partial" && partial !== undefined) {
        const processed = new Set(fault.processed)
        const sent = ids.filter((id) => processed.has(id))
        const kept = ids.filter((id) => !processed.has(id))
        return sent.length === 0
          ? Effect.succeed(partial(undefined, kept))
          : Effect.map(send(sent), (answer) => partial(answer, kept))
      }
      return send(ids)
    })

  const counted = <A>(effect: Effect.Effect<A, Errors.StorageError>, items: (a: A) => number) =>
    Effect.tap(effect, (a) =>
      Effect.sync(() => {
        itemWrites += items(a)
      }))

  const wrapConditional = (conditional: ReadModel.ConditionalStorage): ReadModel.ConditionalStorage => ({
    readGuarded: (name, id) => request("GuardedRead", name, [id], () => conditional.readGuarded(name, id)),
    readGuardedBatch: (name, ids) =>
      request(
        "GuardedBatchRead",
        name,
        ids,
        (sent) => conditional.readGuardedBatch(name, sent),
        (answer, kept) => ({ rows: answer?.rows ?? [], unprocessed: [...(answer?.unprocessed ?? []), ...kept] })
      ),
    writeGuarded: (name, write) =>
      request("GuardedWrite", name, [write.id], () => counted(conditional.writeGuarded(name, write), (landed) => (landed ? 1 : 0))),
    writeGuardedBatch: conditional.writeGuardedBatch === undefined ? undefined : (name, writes) =>
      request(
        "GuardedBatchWrite",
        name,
        writes.map((w) => w.id),
        (sent) => {
          const ids = new Set(sent)
          const forwarded = writes.filter((w) => ids.has(w.id))
          return counted(conditional.writeGuardedBatch!(name, forwarded), (r) => forwarded.length - r.unsettled.length)
        },
        (answer, kept) => ({ unsettled: [...(answer?.unsettled ?? []), ...kept] })
      ),
    compareAndSet: (name, id, expected, data) =>
      request("CompareAndSet", name, [id], () => conditional.compareAndSet(name, id, expected, data)),
    queryTombstones: (name, exclusiveStartId) => request("Query", name, [], () => conditional.queryTombstones(name, exclusiveStartId)),
    deleteTombstone: (name, id, position) =>
      request("DeleteItem", name, [id], () => counted(conditional.deleteTombstone(name, id, position), (deleted) => (deleted ? 1 : 0))),
    transact: conditional.transact === undefined ? undefined : (writes, check) =>
      request(
        "TransactWriteItems",
        check.name,
        [...writes.map((w) => w.operation.id), check.id],
        () => counted(conditional.transact!(writes, check), (landed) => (landed ? writes.length + 1 : 0))
      )
  })

  const wrapped: ReadModel.Storage = {
    table: storage.table,
    limits: storage.limits,
    get: (name, id, consistentRead) => request("GetItem", name, [id], () => storage.get(name, id, consistentRead)),
    getBatch: (name, ids, consistentRead) =>
      request(
        "BatchGetItem",
        name,
        ids,
        (sent) => storage.getBatch(name, sent, consistentRead),
        (answer, kept) => ({ rows: answer?.rows ?? [], unprocessed: [...(answer?.unprocessed ?? []), ...kept] })
      ),
    queryPage: (name, options) => request("Query", name, [], () => storage.queryPage(name, options)),
    put: (name, id, data) => request("PutItem", name, [id], () => counted(storage.put(name, id, data), () => 1)),
    delete: (name, id) => request("DeleteItem", name, [id], () => counted(storage.delete(name, id), () => 1)),
    writeBatch: (name, operations) =>
      request(
        "BatchWriteItem",
        name,
        operations.map((op) => op.id),
        (sent) => {
          const keep = new Set(sent)
          const batch = operations.filter((op) => keep.has(op.id))
          return counted(storage.writeBatch(name, batch), (r) => batch.length - r.unprocessed.length)
        },
        (answer, kept) => ({ unprocessed: [...(answer?.unprocessed ?? []), ...kept] })
      ),
    conditional: storage.conditional === undefined ? undefined : wrapConditional(storage.conditional)
  }

  return {
    storage: wrapped,
    requests: Effect.sync(() => requests.map((r): Request => ({ ...r }))),
    operations: Effect.sync(() => requests.map((r) => r.operation)),
    itemWrites: Effect.sync(() => itemWrites),
    reset: Effect.sync(() => {
      requests.length = 0
      itemWrites = 0
    }),
    setFault: (f) =>
      Effect.sync(() => {
        hook = f
      })
  }
}

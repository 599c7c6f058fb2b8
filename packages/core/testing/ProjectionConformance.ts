/**
 * The Projection contract, written once and run on every read-model storage (the memory
 * one here, DynamoDB's in @dynamo-es/dynamodb): the events come from the in-memory event
 * store and log, the rows, tombstones and checkpoints go to the storage under test.
 *
 * What it shows, with real concurrent fibers and faults injected by wrappers around the
 * real storage (never a fake of it):
 * - a run gives the rows a plain fold of the events gives (nothing skipped, nothing twice);
 * - crashes at random points (mid-flush, between flush and checkpoint, lost responses) and
 *   interruptions at random times, each followed by a restart, while writers append: the rows
 *   equal those of an uninterrupted run, row for row;
 * - replays and duplicated deliveries change nothing; two runners at once, and a stale
 *   runner that wakes up after another took over, leave the rows exact;
 * - a handler failure half-way stops at that event, with everything before it applied and
 *   checkpointed, and a restart after the fix completes exactly.
 */
import { assert, describe, it } from "./vitest.js"
import { Deferred, Effect, Exit, Fiber, Option, Schema, type Scope, Stream } from "effect"
import { EventLog, EventStore, Projection, ReadModel } from "../src/index.js"
import { instrument } from "./ReadModelStorageTest.js"
import { failure, range } from "./utils.js"

/** A fresh, empty storage with the conditional primitives (deleted with the scope). */
export type MakeStorage = () => Effect.Effect<ReadModel.Storage, unknown, Scope.Scope>

const Payload = Schema.Struct({ kind: Schema.Literals(["Deposited", "Withdrawn", "Closed"]), amount: Schema.Number })
type Payload = typeof Payload.Type
const Balance = Schema.Struct({ id: Schema.String, balance: Schema.Number, count: Schema.Number, last: Schema.Number })
type Balance = typeof Balance.Type
const Total = Schema.Struct({ id: Schema.String, sum: Schema.Number, events: Schema.Number })

/** Not idempotent on purpose: applying an event twice changes the rows. */
const accounts = (name: string, poison?: (event: EventLog.LoggedEvent<Payload>) => boolean, prefetch = false, scale = 1) =>
  Projection.make({
    name,
    events: Payload,
    prefetch: prefetch ? (event) => ({ balances: event.streamId, totals: "all" }) : undefined,
    readModels: {
      balances: Projection.readModel(`${name}-balances`, Balance),
      totals: Projection.readModel(`${name}-totals`, Total)
    },
    handle: (event, { balances, totals }) =>
      Effect.gen(function*() {
        if (poison?.(event) === true) return yield* Effect.fail(new Error(`poison at ${event.position}`))
        const total = Option.getOrElse(yield* totals.find("all"), () => ({ id: "all", sum: 0, events: 0 }))
        const delta = (event.payload.kind === "Withdrawn" ? -event.payload.amount : event.payload.amount) * scale
        yield* totals.save({ id: "all", sum: total.sum + delta, events: total.events + 1 })
        if (event.payload.kind === "Closed") return yield* balances.remove(event.streamId)
        const current = Option.getOrElse(yield* balances.find(event.streamId), () => ({ id: event.streamId, balance: 0, count: 0, last: 0 }))
        yield* balances.save({ id: event.streamId, balance: current.balance + delta, count: current.count + 1, last: event.version })
      })
  })

/** The rows the projection must produce: a plain fold of the events, in log order. */
const expected = (events: ReadonlyArray<EventLog.LoggedEvent>, scale = 1) => {
  const balances = new Map<string, Balance>()
  let sum = 0
  for (const e of events) {
    const p = e.payload as Payload
    const delta = (p.kind === "Withdrawn" ? -p.amount : p.amount) * scale
    sum += delta
    if (p.kind === "Closed") balances.delete(e.streamId)
    else {
      const b = balances.get(e.streamId) ?? { id: e.streamId, balance: 0, count: 0, last: 0 }
      balances.set(e.streamId, { id: e.streamId, balance: b.balance + delta, count: b.count + 1, last: e.version })
    }
  }
  return {
    balances: [...balances.values()].sort((a, b) => ReadModel.compareIds(a.id, b.id)),
    totals: events.length === 0 ? [] : [{ id: "all", sum, events: events.length }]
  }
}

let counter = 0
const unique = (prefix: string) => `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}`

/** Appends `perStream` events to each of `streams` new streams, from `writers` concurrent fibers; some streams end Closed. */
const appendEvents = (store: EventStore.EventStoreShape, streams: number, perStream: number, writers = 4) =>
  Effect.gen(function*() {
    const ids = range(1, streams).map(() => unique("acc-"))
    const byWriter = range(0, writers - 1).map((w) => ids.filter((_, i) => i % writers === w))
    yield* Effect.forEach(byWriter, (mine) =>
      Effect.forEach(mine, (id) =>
        Effect.forEach(range(1, perStream), (v) => {
          const kind = v === perStream && id.length % 3 === 0 ? "Closed" : v % 4 === 0 ? "Withdrawn" : "Deposited"
          return Effect.andThen(
            store.append(id, [{ type: kind, payload: { kind, amount: (v * 7 + id.length) % 23 } }], { expectedVersion: v - 1 }),
            Effect.yieldNow
          )
        }, { discard: true }), { discard: true }), { concurrency: "unbounded", discard: true })
  })

export const projectionConformance = (name: string, makeStorage: MakeStorage, options: { readonly timeout?: number } = {}) =>
  describe(`Projection conformance: ${name}`, { timeout: options.timeout ?? 60_000 }, () => {
    /** A fresh log and storage; `runOn` runs a projection with a store over a (wrapped) storage. */
    const setup = Effect.gen(function*() {
      const storage = yield* makeStorage()
      const { log, store } = yield* EventLog.makeMemory()
      const runOn = <Err>(
        on: ReadModel.Storage,
        projection: Projection.Projection<any, any, Err, never>,
        runOptions: Projection.RunOptions = {}
      ) =>
        Effect.flatMap(ReadModel.make(on), (readModels) =>
          Projection.run(projection, { batchSize: 20, batchWindow: "5 millis", pollInterval: "5 millis", ...runOptions }).pipe(
            Effect.provideService(EventLog.EventLog, log),
            Effect.provideService(ReadModel.ReadModelStore, readModels)
          ))
      /** Provides the log and a store over `on` (default: the storage under test). */
      const provide = <A, E>(effect: Effect.Effect<A, E, EventLog.EventLog | ReadModel.ReadModelStore>, on: ReadModel.Storage = storage) =>
        Effect.flatMap(ReadModel.make(on), (readModels) =>
          effect.pipe(
            Effect.provideService(EventLog.EventLog, log),
            Effect.provideService(ReadModel.ReadModelStore, readModels)
          ))
      const rows = (projection: string, version = 1) =>
        Effect.gen(function*() {
          const readModels = yield* ReadModel.make(storage)
          const suffix = version === 1 ? "" : `@${version}`
          const balances = yield* readModels.create(`${projection}-balances${suffix}`, Balance)
          const totals = yield* readModels.create(`${projection}-totals${suffix}`, Total)
          return { balances: yield* Stream.runCollect(balances.findAll()), totals: yield* Stream.runCollect(totals.findAll()) }
        })
      const allEvents = Stream.runCollect(log.readAll())
      return { storage, log, store, runOn, provide, rows, allEvents }
    })

    /** Runs until caught up, restarting after each failure that `retryable` accepts (at most 200 times). */
    const untilDone = <A, E>(attempt: Effect.Effect<A, E>, retryable: (e: E) => boolean) =>
      Effect.gen(function*() {
        for (let restarts = 0; restarts < 200; restarts++) {
          const exit = yield* Effect.exit(attempt)
          if (Exit.isSuccess(exit)) return { value: exit.value, restarts }
          const error = failure(exit)
          if (!retryable(error)) return yield* Effect.die(error)
        }
        return yield* Effect.die(new Error("too many restarts"))
      })

    /**
     * Eight faults on `operations`, each `minGap` to `minGap + 4` requests after the previous
     * one: a lost request or a lost response (applied, then failed). Returns how many fired.
     */
    const injectFaults = (
      instrumented: ReturnType<typeof instrument>,
      operations: ReadonlyArray<string>,
      minGap: number,
      spread = 5
    ) =>
      Effect.gen(function*() {
        let writes = 0
        let injected = 0
        let next = minGap + Math.floor(Math.random() * spread)
        yield* instrumented.setFault((operation) => {
          if (!operations.includes(operation)) return undefined
          if (++writes !== next || injected === 8) return undefined
          injected++
          next += minGap + Math.floor(Math.random() * spread)
          return { _tag: "Fail", applied: Math.random() < 0.5 }
        })
        return () => injected
      })

    /** Runs `attempt` to the end again and again while `writers` append, restarting after StorageErrors; the restarts. */
    const restartingWhileAppending = <A, E extends { readonly _tag: string }>(writers: Fiber.Fiber<unknown, unknown>, attempt: Effect.Effect<A, E>) =>
      Effect.gen(function*() {
        let crashes = 0
        while (true) {
          const done = writers.pollUnsafe() !== undefined
          const { restarts } = yield* untilDone(attempt, (e) => e._tag === "StorageError")
          crashes += restarts
          if (done) break
        }
        yield* Fiber.join(writers)
        return crashes
      })

    it.live("progress reads the log's head when the runner reaches the head it knows, not once per batch", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        yield* appendEvents(env.store, 12, 9)
        let headReads = 0
        const counting: EventLog.EventLogShape = { ...env.log, head: Effect.tap(env.log.head, () => Effect.sync(() => headReads++)) }
        const seen: Array<Projection.Progress> = []
        const readModels = yield* ReadModel.make(env.storage)
        const last = yield* Projection.run(accounts(unique("p")), {
          until: "caughtUp",
          batchSize: 10,
          batchWindow: "5 millis",
          pollInterval: "5 millis",
          onProgress: (p) => Effect.sync(() => seen.push(p))
        }).pipe(Effect.provideService(EventLog.EventLog, counting), Effect.provideService(ReadModel.ReadModelStore, readModels))
        assert.isAtLeast(seen.length, 11, "a progress per batch")
        assert.isBelow(headReads, seen.length)
        assert.isTrue(seen.every((p) => p.head >= p.position && p.lag === p.head - p.position))
        assert.deepStrictEqual([last.position, last.head, last.lag], [108, 108, 0])
      })))

    for (const mode of ["guarded", "atLeastOnce", "transactional"] as const) {
      it.live(`${mode}: a run gives the rows of a plain fold of the log, with progress as data`, () =>
        Effect.scoped(Effect.gen(function*() {
          const env = yield* setup
          yield* appendEvents(env.store, 12, 9)
          const seen: Array<Projection.Progress> = []
          const name = unique("p")
          const progress = yield* env.runOn(env.storage, accounts(name), {
            mode,
            until: "caughtUp",
            onProgress: (p) => Effect.sync(() => seen.push(p))
          })
          assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
          assert.strictEqual(progress.position, 108)
          assert.strictEqual(progress.head, 108)
          assert.strictEqual(progress.lag, 0)
          assert.strictEqual(progress.eventsApplied, 108)
          assert.isTrue(progress.caughtUp)
          assert.isAbove(seen.length, 1, "progress after each batch")
          assert.deepStrictEqual(seen.map((p) => p.position), [...seen.map((p) => p.position)].sort((a, b) => a - b))
          // A second run finds nothing to do.
          const again = yield* env.runOn(env.storage, accounts(name), { mode, until: "caughtUp" })
          assert.strictEqual(again.eventsApplied, 0)
          assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
        })))

      it.live(`${mode}: with prefetch, the rows of a batch are read in batch requests and the rows are the same`, () =>
        Effect.scoped(Effect.gen(function*() {
          const env = yield* setup
          yield* appendEvents(env.store, 30, 5)
          const instrumented = instrument(env.storage)
          const name = unique("p")
          yield* env.runOn(instrumented.storage, accounts(name, undefined, true), { mode, until: "caughtUp", batchSize: 200, batchWindow: "1 second" })
          assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
          const operations = yield* instrumented.operations
          const reads = operations.filter((o) => o === "GuardedRead" || o === "GetItem").length
          const batchReads = operations.filter((o) => o === "GuardedBatchRead" || o === "BatchGetItem").length
          // One batch of 150 events over 30 accounts and the total: 31 rows in one lookup per
          // repository; the only single read is the checkpoint's.
          assert.strictEqual(batchReads, 2)
          assert.strictEqual(reads, operations.filter((o) => o === "GuardedRead").length)
          assert.isAtMost(reads, 2, "no row read one by one")
        })))

      it.live(`${mode}: a handler failure half-way stops at that event, applied and checkpointed up to it; a restart after the fix completes`, () =>
        Effect.scoped(Effect.gen(function*() {
          const env = yield* setup
          yield* appendEvents(env.store, 6, 8)
          const events = yield* env.allEvents
          // The first event of a stream at log position 27 or later (a new row, not just an update).
          const first = events.find((e) => e.position >= 27 && e.version === 1)!
          const name = unique("p")
          const exit = yield* Effect.exit(env.runOn(env.storage, accounts(name, (e) => e.streamId === first.streamId), { mode, until: "caughtUp" }))
          const error = failure(exit)
          assert.strictEqual(error._tag, "ProjectionHandlerError")
          const handlerError = error as Projection.ProjectionHandlerError
          assert.deepStrictEqual(
            [handlerError.projection, handlerError.streamId, handlerError.version, handlerError.position],
            [name, first.streamId, first.version, first.position]
          )
          assert.strictEqual((handlerError.cause as Error).message, `poison at ${first.position}`)
          assert.deepStrictEqual(yield* env.rows(name), expected(events.slice(0, first.position - 1)), "everything before it, nothing of it")
          const checkpoint = yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, name)
          assert.strictEqual(JSON.parse(checkpoint!.data!).position, first.position - 1, "the checkpoint stops right before it")
          yield* env.runOn(env.storage, accounts(name), { mode, until: "caughtUp" })
          assert.deepStrictEqual(yield* env.rows(name), expected(events))
        })))

      it.live(`${mode}: two runners at once: one waits for the other, the rows are exact`, () =>
        Effect.scoped(Effect.gen(function*() {
          const env = yield* setup
          const name = unique("p")
          const writers = yield* Effect.forkChild(appendEvents(env.store, 10, 8))
          const runner = (owner: string) =>
            env.runOn(env.storage, accounts(name), { mode, owner, leaseDuration: "2 seconds" }).pipe(Effect.forkChild)
          const a = yield* runner("a")
          const b = yield* runner("b")
          yield* Fiber.join(writers)
          // Wait until the projection has everything, then stop both runners.
          const head = yield* env.log.head
          while (true) {
            const row = yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, name)
            if (row?.data !== undefined && JSON.parse(row.data).position === head) break
            yield* Effect.sleep("10 millis")
          }
          yield* Fiber.interrupt(a)
          yield* Fiber.interrupt(b)
          assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
        })))

      it.live(`${mode}: a runner idle at the head renews its lease and keeps its checkpoint`, () =>
        Effect.scoped(Effect.gen(function*() {
          const env = yield* setup
          yield* appendEvents(env.store, 4, 10)
          const name = unique("p")
          const caughtUp = yield* Deferred.make<void>()
          const runner = yield* env.runOn(env.storage, accounts(name), {
            mode,
            leaseDuration: "150 millis",
            onProgress: (p) => (p.caughtUp && p.lag === 0 ? Deferred.succeed(caughtUp, undefined) : Effect.void)
          }).pipe(Effect.forkChild)
          yield* Deferred.await(caughtUp)
          // Several renewals (every 50 ms) later:
          yield* Effect.sleep("400 millis")
          const row = yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, name)
          const checkpoint = JSON.parse(row!.data!)
          assert.strictEqual(checkpoint.position, 40, "a renewal never moves the checkpoint")
          assert.isAbove(checkpoint.expiresAt, Date.now(), "the lease is renewed")
          const status = (readModels: ReadModel.ReadModelStoreShape) =>
            Projection.status(name).pipe(
              Effect.provideService(EventLog.EventLog, env.log),
              Effect.provideService(ReadModel.ReadModelStore, readModels)
            )
          const readModels = yield* ReadModel.make(env.storage)
          const held = yield* status(readModels)
          assert.deepStrictEqual([held.position, held.head, held.lag, Option.isSome(held.owner)], [40, 40, 0, true])
          yield* Fiber.interrupt(runner)
          const released = yield* status(readModels)
          assert.isTrue(Option.isNone(released.owner), "an interrupted runner releases its lease")
          assert.strictEqual(released.position, 40)
          assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
        })))

      // At least once, a stale runner's flush before its failed checkpoint is a replay for the
      // next runner: exact only for idempotent handlers, which this one is not.
      if (mode !== "atLeastOnce") it.live(`${mode}: a stale runner that wakes up after another took over is fenced and leaves the rows exact`, () =>
        Effect.scoped(Effect.gen(function*() {
          const env = yield* setup
          yield* appendEvents(env.store, 8, 6)
          const name = unique("p")
          // Runner A pauses (as a process stalled by GC or a network partition): inside a
          // handler, and every compare-and-set of its checkpoint waits too, so it cannot renew.
          const paused = yield* Deferred.make<void>()
          const inHandler = yield* Deferred.make<void>()
          let handled = 0
          const stalling = (storage: ReadModel.Storage): ReadModel.Storage => ({
            ...storage,
            conditional: {
              ...storage.conditional!,
              compareAndSet: (n, id, expectedData, data) =>
                Effect.andThen(
                  handled >= 25 ? Deferred.await(paused) : Effect.void,
                  storage.conditional!.compareAndSet(n, id, expectedData, data)
                )
            }
          })
          const base = accounts(name)
          const slowA = Projection.make({
            ...base,
            handle: (event, repositories) =>
              Effect.gen(function*() {
                if (++handled === 30) {
                  yield* Deferred.succeed(inHandler, undefined)
                  yield* Deferred.await(paused)
                }
                yield* base.handle(event, repositories)
              })
          })
          const a = yield* env.runOn(stalling(env.storage), slowA, { mode, owner: "a", leaseDuration: "300 millis" }).pipe(
            Effect.exit,
            Effect.forkChild
          )
          yield* Deferred.await(inHandler)
          // B claims once A's lease has expired, and completes the projection.
          yield* env.runOn(env.storage, base, { mode, owner: "b", leaseDuration: "300 millis", until: "caughtUp" })
          yield* Deferred.succeed(paused, undefined)
          const exit = yield* Fiber.join(a)
          assert.strictEqual(failure(exit)._tag, "ProjectionFencedError")
          assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
        })))
    }

    for (const mode of ["guarded", "transactional"] as const) {
    it.live(`${mode}: crashes at random points (mid-flush, between flush and checkpoint, lost responses) while writers append; after restarts the rows equal an uninterrupted run`, () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        const reference = unique("r")
        const instrumented = instrument(env.storage)
        // Faults on row writes and checkpoint compare-and-sets, 2 to 6 requests apart.
        const injected = yield* injectFaults(instrumented, ["GuardedWrite", "GuardedBatchWrite", "CompareAndSet", "GuardedBatchRead", "BatchGetItem", "TransactWriteItems"], 2)
        const writers = yield* Effect.forkChild(appendEvents(env.store, 16, 10))
        const crashes = yield* restartingWhileAppending(
          writers,
          // The same process restarting: its own lease does not hold it back.
          env.runOn(instrumented.storage, accounts(name, undefined, true), { mode, until: "caughtUp", owner: "restarting" })
        )
        yield* instrumented.setFault(undefined)
        yield* env.runOn(env.storage, accounts(reference), { until: "caughtUp" })
        const [got, want] = [yield* env.rows(name), yield* env.rows(reference)]
        assert.strictEqual(injected(), 8)
        assert.isAtLeast(crashes, 4, "the faults did crash the runner")
        assert.deepStrictEqual(got.balances.map((b) => ({ ...b })), want.balances.map((b) => ({ ...b })))
        assert.deepStrictEqual(got.totals.map((t) => t.sum), want.totals.map((t) => t.sum))
        assert.deepStrictEqual(got, { balances: want.balances, totals: want.totals.map((t) => ({ ...t })) })
        assert.deepStrictEqual(got, expected(yield* env.allEvents))
      })))
    }

    it.live("atLeastOnce with an idempotent handler: crashes at random points (mid-flush, between flush and checkpoint, lost responses) while writers append; after restarts the rows equal an uninterrupted run", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        const reference = unique("r")
        // Idempotent: each row is computed from the event alone (last value wins, in log order).
        const Last = Schema.Struct({ id: Schema.String, version: Schema.Number, kind: Schema.String, amount: Schema.Number })
        const latest = (projection: string) =>
          Projection.make({
            name: projection,
            events: Payload,
            readModels: { last: Projection.readModel(`${projection}-last`, Last) },
            handle: (event, { last }) =>
              event.payload.kind === "Closed"
                ? last.remove(event.streamId)
                : last.save({ id: event.streamId, version: event.version, kind: event.payload.kind, amount: event.payload.amount })
          })
        const rowsOf = (projection: string) =>
          Effect.flatMap(ReadModel.make(env.storage), (readModels) =>
            Effect.flatMap(readModels.create(`${projection}-last`, Last), (repo) => Stream.runCollect(repo.findAll())))
        const instrumented = instrument(env.storage)
        const injected = yield* injectFaults(instrumented, ["BatchWriteItem", "CompareAndSet", "BatchGetItem"], 1, 3)
        const writers = yield* Effect.forkChild(appendEvents(env.store, 16, 10))
        const crashes = yield* restartingWhileAppending(
          writers,
          env.runOn(instrumented.storage, latest(name), { mode: "atLeastOnce", until: "caughtUp", owner: "restarting" })
        )
        yield* instrumented.setFault(undefined)
        yield* env.runOn(env.storage, latest(reference), { mode: "atLeastOnce", until: "caughtUp" })
        const [got, want] = [yield* rowsOf(name), yield* rowsOf(reference)]
        assert.strictEqual(injected(), 8)
        assert.isAtLeast(crashes, 4, "the faults did crash the runner")
        assert.deepStrictEqual(got, want)
        // And what a plain fold of the log gives.
        const fold = new Map<string, typeof Last.Type>()
        for (const e of yield* env.allEvents) {
          const p = e.payload as Payload
          if (p.kind === "Closed") fold.delete(e.streamId)
          else fold.set(e.streamId, { id: e.streamId, version: e.version, kind: p.kind, amount: p.amount })
        }
        assert.deepStrictEqual(got, [...fold.values()].sort((a, b) => ReadModel.compareIds(a.id, b.id)))
      })))

    it.live("applyEvents transactional: exactly once across streams with two shards at once, lost responses, retried and duplicated batches", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        yield* appendEvents(env.store, 12, 6)
        const events = yield* env.allEvents
        const streams = [...new Set(events.map((e) => e.streamId))]
        // Two shards, each delivering its streams' records in version order, 10 per batch.
        const shards = [0, 1].map((shard) => {
          const mine = events.filter((e) => streams.indexOf(e.streamId) % 2 === shard)
          return range(0, Math.ceil(mine.length / 10) - 1).map((i) => mine.slice(i * 10, i * 10 + 10))
        })
        const instrumented = instrument(env.storage)
        let transactions = 0
        let injected = 0
        yield* instrumented.setFault((operation) => {
          if (operation !== "TransactWriteItems" || ++transactions % 2 !== 0 || injected === 4) return undefined
          injected++
          return { _tag: "Fail", applied: injected % 2 === 0 }
        })
        const readModels = yield* ReadModel.make(instrumented.storage)
        const apply = (batch: ReadonlyArray<EventLog.LoggedEvent>) =>
          Projection.applyEvents(accounts(name), batch, { mode: "transactional" }).pipe(
            Effect.provideService(ReadModel.ReadModelStore, readModels)
          )
        let retries = 0
        yield* Effect.forEach(shards, (batches) =>
          Effect.forEach(batches, (batch, i) =>
            Effect.gen(function*() {
              // Lambda retries a failed batch until it succeeds...
              while (Exit.isFailure(yield* Effect.exit(apply(batch)))) retries++
              // ...and delivers some batches again.
              if (i % 2 === 0) {
                const again = yield* apply(batch)
                assert.strictEqual(again.applied, batch.length)
              }
            }), { discard: true }), { concurrency: 2, discard: true })
        assert.strictEqual(injected, 4)
        assert.strictEqual(retries, 4)
        assert.deepStrictEqual(yield* env.rows(name), expected(events), "every event once, whatever the interleaving")
      })))

    it.live("applyEvents transactional: a batch whose rows and stream checkpoints pass 99 items is committed in several transactions; a handler failure keeps what came before it", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        yield* appendEvents(env.store, 70, 1)
        const [name, events, instrumented] = [unique("p"), yield* env.allEvents, instrument(env.storage)]
        const readModels = yield* ReadModel.make(instrumented.storage)
        const apply = (projection: ReturnType<typeof accounts>, batch: ReadonlyArray<EventLog.LoggedEvent>) =>
          Projection.applyEvents(projection, batch, { mode: "transactional" }).pipe(
            Effect.provideService(ReadModel.ReadModelStore, readModels)
          )
        // The 61st event fails: 60 applied.
        const first = yield* apply(accounts(name, (e) => e.streamId === events[60]!.streamId), events)
        assert.strictEqual(first.applied, 60)
        assert.strictEqual(first.failure?.index, 60)
        assert.strictEqual(first.failure?.error._tag, "ProjectionHandlerError")
        assert.deepStrictEqual(yield* env.rows(name), expected(events.slice(0, 60)))
        const transactions = (yield* instrumented.requests).filter((r) => r.operation === "TransactWriteItems")
        assert.isAtLeast(transactions.length, 2)
        for (const t of transactions) assert.isAtMost(t.ids.length, 100)
        // The retry from the failed record on (Lambda), and the whole batch again: exact.
        const rest = yield* apply(accounts(name), events.slice(60))
        assert.deepStrictEqual([rest.applied, rest.failure], [10, undefined])
        yield* apply(accounts(name), events)
        assert.deepStrictEqual(yield* env.rows(name), expected(events))
      })))

    it.live("transactional: a batch is cut where its rows would pass 99; an event changing more rows alone is a typed error", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        yield* appendEvents(env.store, 150, 2)
        const instrumented = instrument(env.storage)
        const name = unique("p")
        yield* env.runOn(instrumented.storage, accounts(name, undefined, true), {
          mode: "transactional",
          until: "caughtUp",
          batchSize: 500,
          batchWindow: "1 second"
        })
        assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
        const requests = yield* instrumented.requests
        assert.strictEqual(requests.filter((r) => r.operation === "GetItem").length, 0, "the cut batch keeps its prefetched rows")
        const transactions = requests.filter((r) => r.operation === "TransactWriteItems")
        assert.isAtLeast(transactions.length, 2)
        for (const t of transactions) assert.isAtMost(t.ids.length, 100)
        // One event that changes 120 rows cannot be one transaction.
        const wide = Projection.make({
          name: unique("wide"),
          events: Payload,
          readModels: { totals: Projection.readModel(`${name}-wide`, Total) },
          handle: (event, { totals }) =>
            event.position === 5
              ? Effect.forEach(range(1, 120), (i) => totals.save({ id: `t${i}`, sum: i, events: 1 }), { discard: true })
              : totals.save({ id: "one", sum: event.position, events: 1 })
        })
        const error = failure(yield* Effect.exit(env.runOn(env.storage, wide, { mode: "transactional", until: "caughtUp" })))
        assert.strictEqual(error._tag, "ProjectionTransactionTooLargeError")
        assert.strictEqual((error as Projection.ProjectionTransactionTooLargeError).position, 5)
        const checkpoint = yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, wide.name)
        assert.strictEqual(JSON.parse(checkpoint!.data!).position, 4, "everything before it is applied")
      })))

    it.live("guarded: a crash between flush and checkpoint, then a restart with other batch boundaries: no event is applied twice", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        yield* appendEvents(env.store, 6, 12)
        const instrumented = instrument(env.storage)
        let casCount = 0
        // Compare-and-sets: the claim, then one commit per batch: the third batch's commit is lost.
        yield* instrumented.setFault((operation) => operation === "CompareAndSet" && ++casCount === 4 ? { _tag: "Fail" } : undefined)
        const exit = yield* Effect.exit(
          env.runOn(instrumented.storage, accounts(name), { until: "caughtUp", batchSize: 20, batchWindow: "1 second", owner: "x" })
        )
        assert.strictEqual(failure(exit)._tag, "StorageError")
        const checkpoint = yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, name)
        assert.strictEqual(JSON.parse(checkpoint!.data!).position, 40, "the third batch is written, its checkpoint is not")
        // Batches of 7 from 40: the batch 55..61 straddles rows the lost batch wrote at 55..60.
        yield* env.runOn(env.storage, accounts(name), { until: "caughtUp", batchSize: 7, batchWindow: "1 second", owner: "x" })
        assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
      })))

    it.live("guarded: removes are tombstones no read returns; cleanTombstones deletes those below its bound and the checkpoint", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        const closed = range(1, 3).map(() => unique("acc-"))
        for (const id of closed) {
          yield* env.store.append(id, [
            { type: "Deposited", payload: { kind: "Deposited", amount: 5 } },
            { type: "Closed", payload: { kind: "Closed", amount: 0 } }
          ], { expectedVersion: "noStream" })
        }
        yield* appendEvents(env.store, 2, 3)
        yield* env.runOn(env.storage, accounts(name), { until: "caughtUp" })
        const events = yield* env.allEvents
        assert.deepStrictEqual(yield* env.rows(name), expected(events))
        const readModels = yield* ReadModel.make(env.storage)
        const balances = yield* readModels.create(`${name}-balances`, Balance)
        assert.isTrue(Option.isNone(yield* balances.find(closed[0]!)), "a tombstone is not found")
        const tombstones = yield* env.storage.conditional!.queryTombstones(`${name}-balances`, undefined)
        assert.strictEqual(tombstones.rows.length, 3)
        // Positions 2, 4, 6 hold the Closed events: below 5, two of them go.
        const first = yield* Projection.cleanTombstones(accounts(name), { before: 5 }).pipe(
          Effect.provideService(ReadModel.ReadModelStore, readModels)
        )
        assert.strictEqual(first.removed, 2)
        const rest = yield* Projection.cleanTombstones(accounts(name), { before: Number.MAX_SAFE_INTEGER }).pipe(
          Effect.provideService(ReadModel.ReadModelStore, readModels)
        )
        assert.strictEqual(rest.removed, 1)
        assert.strictEqual((yield* env.storage.conditional!.queryTombstones(`${name}-balances`, undefined)).rows.length, 0)
        assert.deepStrictEqual(yield* env.rows(name), expected(events))
      })))

    it.live("guarded: interrupted at random times and restarted, the rows equal a plain fold", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        yield* appendEvents(env.store, 12, 10)
        for (let i = 0; i < 12; i++) {
          const fiber = yield* env.runOn(env.storage, accounts(name), { leaseDuration: "1 second" }).pipe(Effect.forkChild)
          yield* Effect.sleep(Math.floor(Math.random() * 15))
          yield* Fiber.interrupt(fiber)
        }
        yield* env.runOn(env.storage, accounts(name), { until: "caughtUp" })
        assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
      })))

    it.live("guarded writes in batches (writeGuardedBatch) land exactly where one writeGuarded per row would; wrong hints and newer rows are unsettled, nothing else", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const conditional = env.storage.conditional!
        if (conditional.writeGuardedBatch === undefined) return
        const name = unique("rows")
        // Stored: a at 5, b tombstone at 5, c at 5 (c and d written by their single-row twins below).
        for (const id of ["a", "c"]) assert.isTrue(yield* conditional.writeGuarded(name, { _tag: "Put", id, data: `"${id}5"`, position: 5 }))
        assert.isTrue(yield* conditional.writeGuarded(name, { _tag: "Tombstone", id: "b", position: 5 }))
        const writes = [
          { _tag: "Put", id: "a", data: `"a7"`, position: 7, stored: true }, // lands: 5 < 7
          { _tag: "Put", id: "b", data: `"b7"`, position: 7, stored: true }, // lands on the tombstone
          { _tag: "Tombstone", id: "c", position: 4, stored: true }, // refused: 5 >= 4
          { _tag: "Put", id: "d", data: `"d3"`, position: 3, stored: false }, // lands: no row
          { _tag: "Put", id: "a2", data: `"x"`, position: 9, stored: true }, // wrong hint (no row): unsettled, nothing written
          { _tag: "Put", id: "c2", data: `"x"`, position: 9, stored: false } // wrong hint (c2 is written first): unsettled
        ] as const
        assert.isTrue(yield* conditional.writeGuarded(name, { _tag: "Put", id: "c2", data: `"c2-1"`, position: 1 }))
        const { unsettled } = yield* conditional.writeGuardedBatch(name, writes)
        assert.deepStrictEqual([...unsettled].sort(), ["a2", "c", "c2"])
        const rows = yield* Effect.forEach(["a", "b", "c", "d", "a2", "c2"], (id) => conditional.readGuarded(name, id))
        assert.deepStrictEqual(rows, [
          { data: `"a7"`, position: 7 },
          { data: `"b7"`, position: 7 },
          { data: `"c5"`, position: 5 },
          { data: `"d3"`, position: 3 },
          undefined,
          { data: `"c2-1"`, position: 1 }
        ])
        // A tombstone by batch, over a row, and a new one.
        const second = yield* conditional.writeGuardedBatch(name, [
          { _tag: "Tombstone", id: "a", position: 8, stored: true },
          { _tag: "Tombstone", id: "e", position: 8, stored: false }
        ])
        assert.deepStrictEqual(second.unsettled, [])
        assert.deepStrictEqual(yield* conditional.readGuarded(name, "a"), { data: undefined, position: 8 })
        assert.deepStrictEqual(yield* conditional.readGuarded(name, "e"), { data: undefined, position: 8 })
      })))

    it.live("guarded: rows a batched guarded write leaves unsettled (throttled) are written one by one; the rows equal a plain fold", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        if (env.storage.conditional?.writeGuardedBatch === undefined) return
        const name = unique("p")
        yield* appendEvents(env.store, 12, 6)
        const instrumented = instrument(env.storage)
        // Every batch: only its first row reaches storage, the others come back unsettled.
        yield* instrumented.setFault((operation, _, ids) => operation === "GuardedBatchWrite" ? { _tag: "Partial", processed: ids.slice(0, 1) } : undefined)
        const progress = yield* env.runOn(instrumented.storage, accounts(name, undefined, true), { until: "caughtUp", batchSize: 20, batchWindow: "5 millis" })
        const operations = yield* instrumented.operations
        assert.isAbove(operations.filter((o) => o === "GuardedBatchWrite").length, 0)
        assert.isAbove(operations.filter((o) => o === "GuardedWrite").length, 0, "the unsettled rows went through writeGuarded")
        assert.deepStrictEqual(yield* env.rows(name), expected(yield* env.allEvents))
        assert.strictEqual(progress.rowsRejected, 0)
      })))

    it.live("guarded: a replay from an older checkpoint and duplicated deliveries change nothing", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        yield* appendEvents(env.store, 8, 8)
        yield* env.runOn(env.storage, accounts(name), { until: "caughtUp" })
        const before = yield* env.rows(name)
        // Move the checkpoint back to 10 (as a crash between flush and checkpoint would leave it).
        const row = yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, name)
        const data = JSON.parse(row!.data!)
        assert.isTrue(yield* env.storage.conditional!.compareAndSet(Projection.CHECKPOINTS, name, row!.data, JSON.stringify({ ...data, position: 10 })))
        // And a log that delivers every event twice, with earlier ones again now and then.
        const duplicating: EventLog.EventLogShape = {
          ...env.log,
          subscribeAll: (o) =>
            env.log.subscribeAll(o).pipe(Stream.flatMap((item) =>
              item._tag === "Event" && item.event.position % 5 === 0
                ? Stream.make(item, item, { _tag: "Event" as const, event: { ...item.event, position: item.event.position - 3 } })
                : Stream.make(item, item)
            ))
        }
        const readModels = yield* ReadModel.make(env.storage)
        const progress = yield* Projection.run(accounts(name), { until: "caughtUp", batchSize: 7, batchWindow: "5 millis" }).pipe(
          Effect.provideService(EventLog.EventLog, duplicating),
          Effect.provideService(ReadModel.ReadModelStore, readModels)
        )
        assert.deepStrictEqual(yield* env.rows(name), before)
        assert.deepStrictEqual(before, expected(yield* env.allEvents))
        assert.strictEqual(progress.rowsWritten, 0, "every replayed change was already in its row")
      })))

    /** The rows readers see now, through the active version. */
    const readAll = (readers: Projection.Readers<ReturnType<typeof accounts>["readModels"]>) =>
      Effect.gen(function*() {
        return {
          balances: yield* Stream.runCollect(readers.balances.findAll()),
          totals: yield* Stream.runCollect(readers.totals.findAll())
        }
      })

    it.live("rebuild: a new version is built while the active one serves and a live runner follows it; readers switch over; the old version is dropped", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        yield* appendEvents(env.store, 8, 6)
        // Version 1 live, following the active version.
        const live = yield* env.provide(
          Projection.runActive(accounts(name), { batchSize: 20, batchWindow: "5 millis", pollInterval: "5 millis", checkInterval: "20 millis" })
        ).pipe(Effect.forkChild)
        const readers = yield* env.provide(Projection.readers(accounts(name), { cacheTtl: "0 millis" }))
        const reachedHead = (projection: string) =>
          Effect.gen(function*() {
            const head = yield* env.log.head
            while (true) {
              const row = yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, projection)
              if (row?.data !== undefined && JSON.parse(row.data).position === head) return
              yield* Effect.sleep("10 millis")
            }
          })
        yield* reachedHead(name)
        assert.deepStrictEqual(yield* readAll(readers), expected(yield* env.allEvents))
        // The rebuild (a fixed handler: amounts doubled) while writers append.
        const writers = yield* Effect.forkChild(appendEvents(env.store, 4, 5))
        const duringRebuild: Array<number> = []
        const result = yield* env.provide(Projection.rebuild(accounts(name, undefined, false, 2), {
          batchSize: 20,
          batchWindow: "5 millis",
          pollInterval: "5 millis",
          onProgress: () => Effect.orDie(Effect.map(readers.balances.version, (v) => void duringRebuild.push(v)))
        }))
        assert.deepStrictEqual([result.version, result.previous], [2, 1])
        assert.isAbove(duringRebuild.length, 0)
        assert.isTrue(duringRebuild.every((v) => v === 1), "readers read version 1 until the switch")
        assert.strictEqual(yield* readers.totals.version, 2, "and version 2 after it")
        assert.strictEqual(yield* env.provide(Projection.activeVersion(name)), 2)
        yield* Fiber.join(writers)
        // The live runner moved to version 2 and keeps it up to date.
        yield* reachedHead(`${name}@2`)
        const events = yield* env.allEvents
        assert.deepStrictEqual(yield* readAll(readers), expected(events, 2))
        assert.deepStrictEqual(yield* env.rows(name, 2), expected(events, 2))
        yield* Fiber.interrupt(live)
        // The active version cannot be dropped; the old one can, rows, tombstones and checkpoint.
        const refused = failure(yield* Effect.exit(env.provide(Projection.drop(accounts(name), { version: 2 }))))
        assert.strictEqual(refused._tag, "ProjectionVersionError")
        assert.deepStrictEqual(yield* env.rows(name, 2), expected(events, 2))
        const dropped = yield* env.provide(Projection.drop(accounts(name), { version: 1 }))
        assert.isAbove(dropped.rowsDeleted, 0)
        assert.deepStrictEqual(yield* env.rows(name, 1), { balances: [], totals: [] })
        assert.strictEqual((yield* env.storage.conditional!.queryTombstones(`${name}-balances`, undefined)).rows.length, 0)
        assert.isUndefined(yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, name))
        // Rebuilding into an older version than the active one is refused.
        const older = failure(yield* Effect.exit(env.provide(Projection.rebuild(accounts(name), { version: 1 }))))
        assert.strictEqual(older._tag, "ProjectionVersionError")
      })))

    it.live("rebuild: what was appended while it caught up, more than a batch, is applied by another pass before the switch", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        yield* appendEvents(env.store, 6, 5)
        let appended = false
        const result = yield* env.provide(Projection.rebuild(accounts(name), {
          version: 2,
          batchSize: 10,
          batchWindow: "5 millis",
          pollInterval: "5 millis",
          // At the end of the first pass: 24 more events (more than a batch).
          onProgress: (p) =>
            p.caughtUp && !appended
              ? Effect.orDie(Effect.andThen(Effect.sync(() => void (appended = true)), appendEvents(env.store, 4, 6)))
              : Effect.void
        }))
        const events = yield* env.allEvents
        assert.strictEqual(events.length, 54)
        assert.deepStrictEqual([result.version, result.progress.position, result.progress.eventsApplied], [2, 54, 54])
        assert.deepStrictEqual(yield* env.rows(name, 2), expected(events), "switched with everything applied, no runner needed")
      })))

    it.live("rebuild: crashes at random points (mid-flush, between flush and checkpoint, lost responses) and restarts give the rows of an uninterrupted rebuild; readers see the old version until the switch", () =>
      Effect.scoped(Effect.gen(function*() {
        const env = yield* setup
        const name = unique("p")
        const reference = unique("r")
        yield* appendEvents(env.store, 14, 8)
        yield* env.provide(Projection.run(accounts(name), { until: "caughtUp" }))
        const readers = yield* env.provide(Projection.readers(accounts(name), { cacheTtl: "0 millis" }))
        const instrumented = instrument(env.storage)
        const injected = yield* injectFaults(instrumented, ["GuardedWrite", "GuardedBatchWrite", "CompareAndSet", "GuardedBatchRead", "BatchGetItem", "TransactWriteItems"], 2)
        const writers = yield* Effect.forkChild(appendEvents(env.store, 6, 6))
        const options = { batchSize: 15, batchWindow: "5 millis", pollInterval: "5 millis", owner: "restarting" } as const
        let crashes = 0
        for (let attempt = 0; ; attempt++) {
          const exit = yield* Effect.exit(env.provide(Projection.rebuild(accounts(name, undefined, true, 2), { ...options, version: 2 }), instrumented.storage))
          if (Exit.isSuccess(exit)) break
          assert.strictEqual(failure(exit)._tag, "StorageError")
          assert.isBelow(attempt, 200)
          crashes++
          // Readers read version 1, whole, until the switch (whose lost response is the only
          // crash that can leave version 2 active), and the rows of the active version.
          const version = yield* readers.balances.version
          assert.isTrue(version === 1 || (version === 2 && (yield* env.storage.conditional!.readGuarded(Projection.CHECKPOINTS, `${name}#active`)) !== undefined))
          assert.deepStrictEqual(yield* readAll(readers), yield* env.rows(name, version))
        }
        yield* Fiber.join(writers)
        yield* instrumented.setFault(undefined)
        // The rebuild ended at the head it saw; what was appended after it, a runner adds.
        yield* env.provide(Projection.runActive(accounts(name, undefined, true, 2), { ...options, until: "caughtUp" }))
        yield* env.provide(Projection.rebuild(accounts(reference, undefined, false, 2), { version: 2 }))
        const [got, want] = [yield* env.rows(name, 2), yield* env.rows(reference, 2)]
        assert.strictEqual(injected(), 8)
        assert.isAtLeast(crashes, 4, "the faults did crash the rebuild")
        assert.deepStrictEqual(got, want, "row for row as an uninterrupted rebuild")
        assert.deepStrictEqual(got, expected(yield* env.allEvents, 2))
        assert.deepStrictEqual(yield* readAll(readers), got, "readers read version 2 after the switch")
      })))
  })

/**
 * The rules of the event store, written once over the single-request primitives of a
 * {@link Storage}: validation and encoding, the version cache, expected versions, retries
 * under contention, recognising an append that is already stored, reading back a write
 * whose outcome is unknown, paging, and decoding what storage holds. Every implementation
 * (the memory one in this package, the DynamoDB one in `@dynamo-es/dynamodb`) is this code
 * over its own storage, so they cannot disagree.
 *
 * Each public operation is a span (`EventStore.append`, `EventStore.read`,
 * `EventStore.readLast`, `EventStore.version`; when a tracer is installed) under which the
 * storage requests nest; a `ConflictError` from `append` counts in `Metrics.conflicts`.
 */
import { Clock, Effect, Metric, Option, Random, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { ConflictError, CorruptedEventError, type InvalidInputError, NotFoundError, type StorageError } from "../Errors.js"
import type {
  AppendError,
  AppendOptions,
  AppendResult,
  EventEnvelope,
  ExpectedVersion,
  NewEvent,
  EventStoreOptions,
  EventStoreShape,
  Storage,
  StorageLimits,
  StoredEvent
} from "./eventStoreModel.js"
import { checkedPayload, decodeStoredEvent, envelopeOf } from "./envelope.js"
import { matchStored, type StoredMatch } from "./idempotency.js"
import { defaultStorageLimits } from "./memoryStorage.js"
import {
  limitsOf,
  type PreparedAppend,
  type PreparedEvent,
  type PrepareError,
  prepareAppend,
  type StoreDefaults,
  validateConsistency,
  validateCount,
  validateOptions,
  validateReadOptions,
  validateStreamId
} from "./prepare.js"
import { makeLru } from "./lru.js"
import { spanAttributes, traced, withSpan, withStreamSpan } from "./tracing.js"
import * as Metrics from "../Metrics.js"

const appendAttributes = (streamId: unknown, events: unknown, options: unknown) => {
  let expected: unknown
  try {
    expected = typeof options === "object" && options !== null ? (options as { expectedVersion?: unknown }).expectedVersion : undefined
  } catch {
    // A hostile getter: validation reports it.
  }
  return spanAttributes(streamId, {
    "dynamo_es.event_count": Array.isArray(events) ? events.length : undefined,
    "dynamo_es.expected_version": typeof expected === "number" || typeof expected === "string" ? expected : undefined
  })
}

const appendConflicts = Metrics.tagged(Metrics.conflicts, { operation: "append" })
const countConflict = (e: { readonly _tag: string }) =>
  e._tag === "ConflictError" ? Metric.update(appendConflicts, 1) : Effect.void

const MAX_VERSION = Number.MAX_SAFE_INTEGER

export const make = (storage: Storage, options: EventStoreOptions = {}): Effect.Effect<EventStoreShape> =>
  Effect.gen(function*() {
    yield* validateOptions(options)
    const limits = yield* limitsOf(storage.limits, defaultStorageLimits)
    const defaults: StoreDefaults = { defaultTtl: options.defaultTtl, limits }
    // Per stream, the highest version known to exist. Versions never disappear, so an
    // expected version at or below it is proven and needs no read before the write.
    const cache = makeLru<string, number>(options.versionCacheSize ?? 10_000)
    const observe = (streamId: string, version: number) => {
      if (version > (cache.peek(streamId) ?? 0)) cache.set(streamId, version)
    }
    const maxAttempts = options.maxAppendAttempts ?? 50

    const lastVersion = (streamId: string, consistentRead = true) =>
      Effect.map(storage.lastVersion(streamId, consistentRead), (v) => {
        observe(streamId, v)
        return v
      })

    /** Every stored event at versions base+1..base+k (strongly consistent); `undefined` where none is. */
    const storedAfter = (streamId: string, base: number, k: number) =>
      Stream.runFold(
        pages(
          streamId,
          { from: base + 1, to: base + k, direction: "forward", consistentRead: true, limit: k, pageSize: undefined },
          (page) => Effect.succeed({ out: page.rows })
        ),
        () => new Array<StoredEvent | undefined>(k).fill(undefined),
        (acc, row) => {
          if (row.version > base && row.version <= base + k) acc[row.version - base - 1] = row
          return acc
        }
      )

    type Outcome = { readonly _tag: "Written" } | StoredMatch

    /**
     * Writes the events at base+1.., or says what is in the way. A write whose outcome is
     * unknown is read back: this append found stored is `Applied`; when nothing is there
     * or the read fails, the StorageError (`unknownOutcome: true`) stands.
     */
    const write = (
      streamId: string,
      base: number,
      events: NonEmptyReadonlyArray<PreparedEvent>
    ): Effect.Effect<Outcome, StorageError> => {
      const match = (stored: ReadonlyArray<StoredEvent | undefined>) => matchStored(streamId, base, events, stored)
      return storage.write(streamId, base, events).pipe(
        Effect.flatMap((outcome): Effect.Effect<Outcome, StorageError> =>
          outcome._tag === "Written"
            ? Effect.succeed(outcome)
            : outcome.stored !== undefined
            ? Effect.succeed(match(outcome.stored))
            : Effect.map(storedAfter(streamId, base, events.length), match)
        ),
        Effect.catchIf(
          (e) => e.unknownOutcome === true,
          (error) =>
            storedAfter(streamId, base, events.length).pipe(
              Effect.catch(() => Effect.fail(error)),
              Effect.flatMap((stored) =>
                stored.every((s) => s === undefined) ? Effect.fail(error) : Effect.succeed(match(stored))
              )
            )
        )
      )
    }

    /**
     * An append of events already validated and prepared (see `prepareAppend`): a generator
     * that `append` delegates to (`yield*`), so that it costs no Effect of its own.
     */
    function* appendPrepared(
      streamId: string,
      prepared: ReadonlyArray<PreparedEvent>,
      expected: ExpectedVersion
    ): Generator<Effect.Effect<unknown, AppendError>, AppendResult, any> {
      const rows = prepared as unknown as NonEmptyReadonlyArray<PreparedEvent>
      const conflict = (actual: number) => new ConflictError({ streamId, expectedVersion: expected, actualVersion: actual })
      const done = (base: number, envelopes: ReadonlyArray<EventEnvelope>): AppendResult => {
        // Only versions proven stored reach the cache: a write that succeeded, or this
        // append found stored at exactly its versions.
        observe(streamId, base + envelopes.length)
        return { streamId, version: base + envelopes.length, events: envelopes }
      }
      const appended = (base: number) => done(base, prepared.map((e, i) => envelopeOf(streamId, base + 1 + i, e)))

      if (typeof expected === "number" || expected === "noStream") {
        const base = expected === "noStream" ? 0 : expected
        let outcome: Outcome
        if (base > 0 && (cache.get(streamId) ?? 0) < base) {
          // Version `base` must be proven to exist before base+1 is written (no gaps).
          const actual = yield* lastVersion(streamId)
          if (actual < base) return yield* conflict(actual)
          outcome = actual === base
            ? yield* write(streamId, base, rows)
            : matchStored(streamId, base, prepared, yield* storedAfter(streamId, base, prepared.length))
        } else {
          outcome = yield* write(streamId, base, rows)
        }
        switch (outcome._tag) {
          case "Written":
            return appended(base)
          case "Applied":
            return done(base, outcome.events)
          case "EventIdConflict":
            return yield* outcome.error
          case "Conflict":
            return yield* conflict(yield* lastVersion(streamId))
        }
      }
      let attempt = 0
      while (true) {
        const base = yield* lastVersion(streamId)
        if (expected === "streamExists" && base === 0) return yield* conflict(0)
        const outcome = yield* write(streamId, base, rows)
        if (outcome._tag === "Written") return appended(base)
        if (outcome._tag === "Applied") return done(base, outcome.events)
        if (outcome._tag === "EventIdConflict") return yield* outcome.error
        if (++attempt >= maxAttempts) return yield* conflict(yield* lastVersion(streamId))
        // Someone else appended: back off a little so that racing writers spread out.
        yield* Effect.sleep(yield* Random.nextBetween(0, Math.min(100, 5 * attempt)))
      }
    }

    const append: EventStoreShape["append"] = Effect.fnUntraced(function*(streamId, events, appendOptions) {
      yield* validateStreamId("append", streamId)
      const now = yield* Clock.currentTimeMillis
      const { events: prepared, expectedVersion } = yield* prepareAppend("append", streamId, events, appendOptions, defaults, now)
      return yield* appendPrepared(streamId, prepared, expectedVersion)
    }, Effect.tapError(countConflict), traced("EventStore.append", appendAttributes))

    const internals: StoreInternals = {
      prepare: (operation, streamId, events, appendOptions, nowMillis) =>
        prepareAppend(operation, streamId, events, appendOptions, defaults, nowMillis, false),
      limits,
      // The same span and conflict count as `append`: a bulk import is a series of appends.
      appendPrepared: (streamId, prepared, expected) =>
        withSpan(
          Effect.tapError(Effect.gen(() => appendPrepared(streamId, prepared, expected)), countConflict),
          "EventStore.append",
          () => spanAttributes(streamId, { "dynamo_es.event_count": prepared.length, "dynamo_es.expected_version": expected })
        )
    }

    interface Range {
      readonly from: number
      readonly to: number | undefined
      readonly direction: "forward" | "backward"
      readonly consistentRead: boolean
      readonly limit: number | undefined
      readonly pageSize: number | undefined
    }

    interface PageInfo {
      readonly rows: ReadonlyArray<StoredEvent>
      /** The first page of the range. */
      readonly first: boolean
      /** More pages follow. */
      readonly more: boolean
    }

    /**
     * The pages of a range, one storage request each, at most `limit` events in all; each
     * page goes through `onPage`, whose results are emitted as they are (one chunk a page).
     * `onPage` may return a `failure` with what it emits: the stream fails with it after
     * emitting them (a damaged event fails the read after the events before it).
     */
    const pages = <A, E, F = never>(
      streamId: string,
      range: Range,
      onPage: (page: PageInfo) => Effect.Effect<{ readonly out: ReadonlyArray<A>; readonly failure?: F | undefined }, E>
    ): Stream.Stream<A, E | F | StorageError> =>
      Stream.paginate(
        { cursor: undefined as unknown, emitted: 0, first: true, failure: undefined as F | undefined },
        (state) =>
          Effect.gen(function*() {
            if (state.failure !== undefined) return yield* Effect.fail(state.failure)
            const page = yield* storage.readPage({
              streamId,
              from: range.from,
              to: range.to ?? MAX_VERSION,
              direction: range.direction,
              consistentRead: range.consistentRead,
              maxEvents: Math.min(range.limit === undefined ? Infinity : range.limit - state.emitted, range.pageSize ?? Infinity)
            }, state.cursor)
            const emitted = state.emitted + page.rows.length
            const more = page.cursor !== undefined && (range.limit === undefined || emitted < range.limit)
            const { failure, out } = yield* onPage({ rows: page.rows, first: state.first, more })
            if (failure !== undefined) return [out, Option.some({ cursor: undefined, emitted, first: false, failure })] as const
            return [out, more ? Option.some({ cursor: page.cursor, emitted, first: false, failure: undefined }) : Option.none()] as const
          })
      )

    const read: EventStoreShape["read"] = (streamId, readOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        yield* validateStreamId("read", streamId)
        const o = yield* validateReadOptions("read", readOptions)
        return pages(streamId, o, (page) =>
          Effect.gen(function*() {
            if (page.first && page.rows.length === 0 && !page.more && o.ifMissing === "fail") {
              // Either the stream does not exist, or the range is past its end.
              const bounded = o.to !== undefined || o.from > 1
              const exists = bounded ? (yield* lastVersion(streamId, o.consistentRead)) > 0 : false
              if (!exists) return yield* new NotFoundError({ resource: "stream", id: streamId })
            }
            // A damaged row fails the read with CorruptedEventError (stream, version) after the
            // events before it: read on from the next version to skip it.
            const envelopes: Array<EventEnvelope> = []
            let failure: CorruptedEventError | undefined
            for (const row of page.rows) {
              const decoded = decodeStoredEvent(row)
              if (decoded._tag === "Failure") {
                failure = decoded.failure
                break
              }
              envelopes.push(decoded.success)
            }
            if (envelopes.length > 0) {
              observe(streamId, Math.max(envelopes[0]!.version, envelopes[envelopes.length - 1]!.version))
            }
            return { out: envelopes, failure }
          }))
      })).pipe((stream) => withStreamSpan(stream, "EventStore.read", () => spanAttributes(streamId)))

    const forEachPage: PageFold = (streamId, from, onPage) => {
      const request = { streamId, from, to: MAX_VERSION, direction: "forward", consistentRead: true, maxEvents: Infinity } as const
      const next = (cursor: unknown): Effect.Effect<void, CorruptedEventError | StorageError> =>
        Effect.flatMap(storage.readPage(request, cursor), (page) => {
          const rows = page.rows
          const payloads: Array<unknown> = []
          // As in `read`: the events before a damaged one count, then it fails the read.
          let failure: CorruptedEventError | undefined
          for (let i = 0; i < rows.length; i++) {
            const payload = checkedPayload(rows[i]!)
            if (payload instanceof CorruptedEventError) {
              failure = payload
              break
            }
            payloads.push(payload)
          }
          if (payloads.length > 0) observe(streamId, rows[payloads.length - 1]!.version)
          const stop = (payloads.length > 0 ? onPage(rows, payloads) : undefined) ?? failure
          if (stop !== undefined) return Effect.fail(stop)
          return page.cursor === undefined ? Effect.void : next(page.cursor)
        })
      return withSpan(
        Effect.flatMap(validateStreamId("read", streamId), () => next(undefined)),
        "EventStore.read",
        () => spanAttributes(streamId)
      )
    }

    const readLast: EventStoreShape["readLast"] = Effect.fnUntraced(function*(streamId, n, readOptions) {
      yield* validateStreamId("readLast", streamId)
      yield* validateCount("readLast", n)
      const consistentRead = yield* validateConsistency("readLast", readOptions)
      const events = yield* Stream.runCollect(read(streamId, { direction: "backward", limit: n, consistentRead }))
      return events.reverse()
    }, traced("EventStore.readLast", (streamId: unknown, n: unknown) =>
      spanAttributes(streamId, { "dynamo_es.count": typeof n === "number" ? n : undefined })))

    const version: EventStoreShape["version"] = Effect.fnUntraced(function*(streamId, versionOptions) {
      yield* validateStreamId("version", streamId)
      return yield* lastVersion(streamId, yield* validateConsistency("version", versionOptions))
    }, traced("EventStore.version", (streamId: unknown) => spanAttributes(streamId)))

    pageFolds.set(read, forEachPage)
    storeInternals.set(append, internals)
    return { append, read, readLast, version }
  })

/**
 * What `Aggregate.load` reads: versions `from`.. of a stream (strongly consistent; a missing
 * stream has none), with the requests, checks, errors, version cache and span of
 * `read(streamId, { from, ifMissing: "empty" })`, but without a Stream and without an
 * envelope per event (the command path's hot loop). Each page goes to `onPage` before the
 * next one is read: its rows, with the parsed payloads of the first `payloads.length` of
 * them, all checked; a damaged row after those fails the read once `onPage` has seen them.
 * `onPage` returns an error to stop with. `from` must be an integer >= 1.
 */
export type PageFold = (
  streamId: string,
  from: number,
  onPage: (rows: ReadonlyArray<StoredEvent>, payloads: ReadonlyArray<unknown>) => CorruptedEventError | undefined
) => Effect.Effect<void, InvalidInputError | CorruptedEventError | StorageError>

/** The page fold of each store made here, by its `read`: a store that wraps `read` has none. */
const pageFolds = new WeakMap<EventStoreShape["read"], PageFold>()

/**
 * The {@link PageFold} behind `store.read` when the store is one {@link make} built (with
 * its own `read`); `undefined` for any other implementation, which is read through `read`.
 */
export const pageFoldOf = (store: EventStoreShape): PageFold | undefined => pageFolds.get(store.read)



/**
 * What `appendBulk` uses of a store built by {@link make}: preparing the events once (with
 * the store's defaults, without the limits of one transaction), then appending prepared
 * chunks, cut to its storage's limits, without validating and encoding them again.
 */
export interface StoreInternals {
  readonly limits: StorageLimits
  readonly prepare: (
    operation: string,
    streamId: string,
    events: ReadonlyArray<NewEvent>,
    options: AppendOptions,
    nowMillis: number
  ) => Effect.Effect<PreparedAppend, PrepareError>
  readonly appendPrepared: (
    streamId: string,
    prepared: ReadonlyArray<PreparedEvent>,
    expected: ExpectedVersion
  ) => Effect.Effect<AppendResult, AppendError>
}

/** The internals of each store made here, by its `append`: a store that wraps `append` has none. */
const storeInternals = new WeakMap<EventStoreShape["append"], StoreInternals>()

/** The {@link StoreInternals} behind `store.append`, when {@link make} built it. */
export const storeInternalsOf = (store: EventStoreShape): StoreInternals | undefined => storeInternals.get(store.append)

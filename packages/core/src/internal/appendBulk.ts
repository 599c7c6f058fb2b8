/**
 * `EventStore.appendBulk`: imports of any size as consecutive atomic appends over the
 * service (so every implementation has it). See its documentation in `EventStore.ts`.
 */
import { Clock, Effect, Predicate } from "effect"
import { AppendBulkInterrupted } from "../Errors.js"
import type {
  AppendError,
  AppendOptions,
  AppendResult,
  EventEnvelope,
  EventStoreShape,
  ExpectedVersion,
  NewEvent
} from "./eventStoreModel.js"
import { storeInternalsOf } from "./eventStore.js"
import { defaultStorageLimits } from "./memoryStorage.js"
import { mergeMetadata, prepareAppend, validateStreamId } from "./prepare.js"

export const appendBulk = (
  store: EventStoreShape,
  streamId: string,
  events: ReadonlyArray<NewEvent>,
  options: AppendOptions
): Effect.Effect<AppendResult, AppendError | AppendBulkInterrupted> =>
  Effect.gen(function*() {
    yield* validateStreamId("appendBulk", streamId)
    const now = yield* Clock.currentTimeMillis
    // A store built by EventStore.make prepares the events once, with its own defaults, and
    // appends the prepared chunks, cut to its storage's limits, as they are. Any other store
    // (one whose `append` is wrapped) gets each chunk as events, cut to the default limits,
    // which are DynamoDB's.
    const internals = storeInternalsOf(store)
    const limits = internals?.limits ?? defaultStorageLimits
    const { events: prepared, sizes, expectedVersion } = yield* (internals !== undefined
      ? internals.prepare("appendBulk", streamId, events, options, now)
      : prepareAppend("appendBulk", streamId, events, options, { limits }, now, false))
    // Greedy chunks within the limits of one write.
    const chunks: Array<Array<number>> = []
    let current: Array<number> = []
    let bytes = 0
    for (let i = 0; i < prepared.length; i++) {
      if (current.length === limits.maxEventsPerWrite || (current.length > 0 && bytes + sizes[i]! > limits.maxWriteBytes)) {
        chunks.push(current)
        current = []
        bytes = 0
      }
      current.push(i)
      bytes += sizes[i]!
    }
    chunks.push(current)

    let expected: ExpectedVersion = expectedVersion
    // Where the stream is before the first transaction, when the caller said (for "any" and
    // "streamExists" it is only known from the first transaction's result).
    let version = typeof expectedVersion === "number" ? expectedVersion : 0
    let appended = 0
    const envelopes: Array<EventEnvelope> = []
    // The ids given by validation are kept, so the stored events are the validated ones,
    // and so that a resumed import recognises a transaction that was in fact applied.
    // The append's metadata goes into each event, so that `remaining` resumes with exactly
    // the events of this import, whatever options the resuming call passes.
    const withIds = events.map((e, i): NewEvent => {
      const metadata = mergeMetadata(options.metadata, e.metadata)
      return { ...e, eventId: prepared[i]!.eventId, ...(metadata !== undefined ? { metadata } : {}) }
    })
    for (const chunk of chunks) {
      const result = yield* (internals !== undefined
        ? internals.appendPrepared(streamId, chunk.map((i) => prepared[i]!), expected)
        : store.append(streamId, chunk.map((i) => withIds[i]!), { expectedVersion: expected, metadata: options.metadata })).pipe(
        Effect.mapError((cause) =>
          // Before the first transaction nothing is stored, unless its outcome is unknown:
          // then the caller needs `remaining` (with the ids given here) to resume safely.
          appended === 0 &&
            !(Predicate.isTagged(cause, "StorageError") && cause.unknownOutcome === true &&
              (typeof expectedVersion === "number" || expectedVersion === "noStream"))
            ? cause
            : new AppendBulkInterrupted({
            streamId,
            appended,
            version,
            total: events.length,
            // The store already read back what it could: a write whose outcome stays
            // unknown says so; resuming with `remaining` is safe either way.
            unknownOutcome: Predicate.isTagged(cause, "StorageError") && cause.unknownOutcome === true,
            remaining: withIds.slice(appended),
            cause
          })
        )
      )
      expected = result.version
      version = result.version
      appended += chunk.length
      envelopes.push(...result.events)
    }
    return { streamId, version, events: envelopes }
  })

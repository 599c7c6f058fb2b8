/**
 * Input validation and encoding shared by every EventStore implementation, so that the
 * in-memory store and the DynamoDB store refuse exactly the same inputs with exactly the
 * same errors, before anything is written.
 */
import { type Duration, Effect } from "effect"
import { makeUlid } from "./ids.js"
import {
  AppendTooLargeError,
  EventEncodeError,
  EventTooLargeError,
  InvalidInputError
} from "../Errors.js"
import type { AppendOptions, EventMetadata, ExpectedVersion, NewEvent, ReadOptions } from "../EventStore.js"
import * as Inputs from "./inputs.js"
import { utf8Length } from "./inputs.js"

/** DynamoDB's item size limit (400 KB). */
export const MAX_ITEM_BYTES = 409_600
/** DynamoDB's transaction limits: 100 items, 4 MB in all. */
export const MAX_EVENTS_PER_APPEND = 100
export const MAX_APPEND_BYTES = 4 * 1024 * 1024
export { MAX_EVENT_TYPE_BYTES, MAX_STREAM_ID_BYTES, utf8Length } from "./inputs.js"

/**
 * DynamoDB's size of a number attribute value: about one byte per two significant
 * digits plus one.
 */
const numberSize = (n: number): number => Math.ceil(String(Math.abs(n)).replace(/^0+|\.|e.*$/g, "").length / 2) + 1

/**
 * One event as it is stored: every implementation keeps these fields. Attribute names in
 * DynamoDB are one letter each (cost: names count towards the item size):
 * `s` stream id, `v` version, `i` event id, `y` type, `d` payload JSON,
 * `m` metadata JSON (absent when empty), `t` recorded-at epoch ms, `x` TTL epoch seconds.
 */
export interface PreparedEvent {
  readonly eventId: string
  readonly type: string
  /** The payload as given (returned in the append result without re-parsing). */
  readonly payload: unknown
  /** The metadata as stored (compact: no undefined fields). */
  readonly metadata: EventMetadata
  readonly payloadJson: string
  readonly metadataJson: string | undefined
  readonly recordedAtMillis: number
  readonly expiresAtSeconds: number | undefined
}

/** The size DynamoDB bills and limits for one stored event. */
export const storedEventSize = (streamId: string, version: number, e: PreparedEvent): number =>
  1 + utf8Length(streamId) +
  1 + numberSize(version) +
  1 + utf8Length(e.eventId) +
  1 + utf8Length(e.type) +
  1 + utf8Length(e.payloadJson) +
  (e.metadataJson === undefined ? 0 : 1 + utf8Length(e.metadataJson)) +
  1 + numberSize(e.recordedAtMillis) +
  (e.expiresAtSeconds === undefined ? 0 : 1 + numberSize(e.expiresAtSeconds))

const checkStreamId = Inputs.validate(Inputs.StreamId)
export const validateStreamId = (operation: string, streamId: unknown): Effect.Effect<string, InvalidInputError> =>
  checkStreamId(operation, "streamId", streamId)

const checkReadOptions = Inputs.validate(Inputs.ReadOptions)

/** Read options with defaults applied. `to` is inclusive; `undefined` means no upper bound. */
export interface NormalizedReadOptions {
  readonly from: number
  readonly to: number | undefined
  readonly direction: "forward" | "backward"
  readonly limit: number | undefined
  readonly consistentRead: boolean
  readonly pageSize: number | undefined
  readonly ifMissing: "fail" | "empty"
}

export const validateReadOptions = (
  operation: string,
  options: ReadOptions | undefined
): Effect.Effect<NormalizedReadOptions, InvalidInputError> =>
  Effect.map(checkReadOptions(operation, "options", options), (o) => ({
    from: o?.from ?? 1,
    to: o?.to,
    direction: o?.direction ?? "forward",
    limit: o?.limit,
    consistentRead: o?.consistentRead ?? true,
    pageSize: o?.pageSize,
    ifMissing: o?.ifMissing ?? "fail"
  }))

const checkConsistency = Inputs.validate(Inputs.ConsistencyOptions)
/** `{ consistentRead }` options of `version` and `readLast`: strongly consistent unless `false`. */
export const validateConsistency = (
  operation: string,
  options: { readonly consistentRead?: boolean | undefined } | undefined
): Effect.Effect<boolean, InvalidInputError> =>
  Effect.map(checkConsistency(operation, "options", options), (o) => o?.consistentRead ?? true)

const checkCount = Inputs.validate(Inputs.PositiveInt)
export const validateCount = (operation: string, n: unknown): Effect.Effect<number, InvalidInputError> =>
  checkCount(operation, "n", n)

const stringifyJson = (value: unknown): { readonly json: string } | { readonly error: string; readonly cause?: unknown } => {
  try {
    const json = JSON.stringify(value)
    if (json === undefined) return { error: "it is not a JSON value (undefined, a function or a symbol)" }
    return { json }
  } catch (cause) {
    return { error: `it is not JSON-serialisable (${cause instanceof Error ? cause.message : String(cause)})`, cause }
  }
}

/** Metadata of an event: the append's, with the event's own winning per field (custom merged). */
export const mergeMetadata = (a: EventMetadata | undefined, b: EventMetadata | undefined): EventMetadata | undefined => {
  if (a === undefined) return b
  if (b === undefined) return a
  return { ...a, ...b, custom: a.custom === undefined ? b.custom : b.custom === undefined ? a.custom : { ...a.custom, ...b.custom } }
}

const metadataToJson = (
  m: EventMetadata | undefined
): { readonly json: string | undefined; readonly compact: EventMetadata } | { readonly error: string; readonly cause?: unknown } => {
  if (m === undefined) return { json: undefined, compact: {} }
  // The shape was validated (Inputs.Metadata): strings, and custom a plain object.
  const compact: Record<string, unknown> = {}
  for (const key of ["actor", "correlationId", "causationId"] as const) {
    if (m[key] !== undefined) compact[key] = m[key]
  }
  if (m.custom !== undefined && Object.keys(m.custom).length > 0) compact.custom = m.custom
  if (Object.keys(compact).length === 0) return { json: undefined, compact }
  const result = stringifyJson(compact)
  return "error" in result ? result : { json: result.json, compact: JSON.parse(result.json) as EventMetadata }
}


const checkAppendOptions = Inputs.validate(Inputs.AppendOptions)
const checkEvents = Inputs.validate(Inputs.NewEvents)
const checkTtl = Inputs.validate(Inputs.Ttl)

/** The milliseconds of a TTL that passed validation. */
const ttlOf = (ttl: unknown): number => Inputs.ttlMillis(ttl) as number

/**
 * Checks a store's `defaultTtl` when the store is built: a wrong one is a configuration
 * error, reported at once rather than on the first append.
 */
export const validateDefaults = (store: string, defaults: StoreDefaults): Effect.Effect<void> =>
  defaults.defaultTtl === undefined
    ? Effect.void
    : checkTtl(store, "options.defaultTtl", defaults.defaultTtl).pipe(
      Effect.asVoid,
      Effect.orDie
    )

export interface StoreDefaults {
  /** TTL applied to events that do not set their own; `undefined` or zero: no TTL. */
  readonly defaultTtl?: Duration.Input | undefined
}

/**
 * Validates and encodes the events of one `append`. Fails with the first problem found;
 * nothing is written by anyone before this has succeeded.
 */
export const prepareAppend = (
  operation: string,
  streamId: string,
  events: ReadonlyArray<NewEvent>,
  options: AppendOptions,
  defaults: StoreDefaults,
  nowMillis: number,
  /** `false` for a bulk import, which splits the events into transactions itself. */
  transactionLimits = true
): Effect.Effect<
  {
    readonly expectedVersion: ExpectedVersion
    readonly events: ReadonlyArray<PreparedEvent>
    /** Each event's size as a DynamoDB item (counting the widest version number). */
    readonly sizes: ReadonlyArray<number>
  },
  InvalidInputError | EventEncodeError | EventTooLargeError | AppendTooLargeError
> =>
  Effect.gen(function*() {
    // Everything is checked before anything is encoded, so the first refusal names the
    // argument, not a symptom of it.
    const { expectedVersion } = yield* checkAppendOptions(operation, "options", options)
    yield* checkEvents(operation, "events", events)
    const defaultTtlMillis = defaults.defaultTtl === undefined ? undefined : ttlOf(defaults.defaultTtl)
    const prepared: Array<PreparedEvent> = []
    const sizes: Array<number> = []
    let totalBytes = 0
    const seen = new Map<string, number>()
    for (let index = 0; index < events.length; index++) {
      const e = events[index]!
      const type = e.type
      if (e.eventId !== undefined) {
        const first = seen.get(e.eventId)
        if (first !== undefined) {
          return yield* new InvalidInputError({
            operation,
            field: `events[${index}].eventId`,
            reason: `is the same as events[${first}].eventId: an event id names one event`
          })
        }
        seen.set(e.eventId, index)
      }
      const payload = stringifyJson(e.payload)
      if ("error" in payload) {
        return yield* new EventEncodeError({ streamId, index, eventType: type, reason: `payload: ${payload.error}`, cause: payload.cause })
      }
      const metadata = metadataToJson(mergeMetadata(options.metadata, e.metadata))
      if ("error" in metadata) {
        return yield* new EventEncodeError({ streamId, index, eventType: type, reason: metadata.error, cause: metadata.cause })
      }
      const ttlMillis = e.ttl !== undefined ? ttlOf(e.ttl) : defaultTtlMillis
      const expiresAtSeconds = ttlMillis === undefined || ttlMillis === 0 ? undefined : Math.ceil((nowMillis + ttlMillis) / 1000)
      const event: PreparedEvent = {
        eventId: e.eventId ?? makeUlid(nowMillis),
        type,
        payload: e.payload,
        metadata: metadata.compact,
        payloadJson: payload.json,
        metadataJson: metadata.json,
        recordedAtMillis: nowMillis,
        expiresAtSeconds
      }
      // The version is not known yet; count the widest version number DynamoDB could store.
      const size = storedEventSize(streamId, Number.MAX_SAFE_INTEGER, event)
      if (size > MAX_ITEM_BYTES) {
        return yield* new EventTooLargeError({ streamId, index, eventType: type, sizeBytes: size, maxBytes: MAX_ITEM_BYTES })
      }
      totalBytes += size
      sizes.push(size)
      prepared.push(event)
    }
    if (transactionLimits && (prepared.length > MAX_EVENTS_PER_APPEND || totalBytes > MAX_APPEND_BYTES)) {
      return yield* new AppendTooLargeError({
        streamId,
        eventCount: prepared.length,
        totalBytes,
        maxEvents: MAX_EVENTS_PER_APPEND,
        maxBytes: MAX_APPEND_BYTES
      })
    }
    return { expectedVersion, events: prepared, sizes }
  })

/**
 * Input validation and encoding shared by every EventStore implementation, so that the
 * in-memory store and the DynamoDB store refuse exactly the same inputs with exactly the
 * same errors, before anything is written.
 */
import { Effect } from "effect"
import { makeUlid } from "./ids.js"
import {
  AppendTooLargeError,
  EventEncodeError,
  EventTooLargeError,
  InvalidInputError
} from "../Errors.js"
import type {
  AppendOptions,
  EventMetadata,
  EventRecord,
  EventStoreOptions,
  ExpectedVersion,
  NewEvent,
  ReadOptions,
  StorageLimits
} from "./eventStoreModel.js"
import * as Inputs from "./inputs.js"
import { utf8Length } from "./inputs.js"

export { MAX_EVENT_TYPE_BYTES, MAX_STREAM_ID_BYTES, utf8Length } from "./inputs.js"

/**
 * One event as the store prepared it: the {@link EventRecord} a storage keeps, and the
 * payload and metadata as values for the append's result.
 */
export interface PreparedEvent extends EventRecord {
  /** The payload as given (returned in the append result without re-parsing). */
  readonly payload: unknown
  /** The metadata as stored (compact: no undefined fields). */
  readonly metadata: EventMetadata
}

const checkStreamId = Inputs.validate(Inputs.StreamId)
export const validateStreamId = (operation: string, streamId: unknown): Effect.Effect<string, InvalidInputError> =>
  // What Inputs.StreamId checks, without decoding; the Schema reports anything else.
  typeof streamId === "string" && Inputs.keyProblem(streamId, Inputs.MAX_STREAM_ID_BYTES) === undefined
    ? Effect.succeed(streamId)
    : checkStreamId(operation, "streamId", streamId)

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
  const compact: { -readonly [K in keyof EventMetadata]: EventMetadata[K] } = {}
  if (m.actor !== undefined) compact.actor = m.actor
  if (m.correlationId !== undefined) compact.correlationId = m.correlationId
  if (m.causationId !== undefined) compact.causationId = m.causationId
  if (m.custom !== undefined && Object.keys(m.custom).length > 0) compact.custom = m.custom
  if (compact.actor === undefined && compact.correlationId === undefined && compact.causationId === undefined && compact.custom === undefined) {
    return { json: undefined, compact }
  }
  const result = stringifyJson(compact)
  if ("error" in result) return result
  // Strings read back from JSON as they are; custom fields may not (Dates, undefined
  // fields, toJSON), so with custom the metadata is what its JSON reads back as.
  return { json: result.json, compact: compact.custom === undefined ? compact : JSON.parse(result.json) as EventMetadata }
}


const checkAppendOptions = Inputs.validate(Inputs.AppendOptions)
const checkEvents = Inputs.validate(Inputs.NewEvents)

/** The milliseconds of a TTL that passed validation. */
const ttlOf = (ttl: unknown): number => Inputs.ttlMillis(ttl) as number

/**
 * Checks a store's options (`defaultTtl`, `versionCacheSize`, `maxAppendAttempts`) when it is
 * built: a wrong one is a configuration error, a defect (an `InvalidInputError` naming the
 * option) reported at once rather than on the first append.
 */
const checkOptions = Inputs.optionsOrDie("EventStore.make", Inputs.EventStoreOptions)
export const validateOptions = (options: EventStoreOptions): Effect.Effect<void> => Effect.asVoid(checkOptions(options))

const positiveInteger = (field: string, n: unknown): number => {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw new Error(`EventStore.make: the storage declares limits.${field} = ${String(n)}; expected an integer >= 1`)
  }
  return n
}

/**
 * The limits a storage declares, with `defaults` (DynamoDB's) for what it leaves out, checked
 * when the store is built: a limit that is not a positive integer is a defect naming it (a
 * driver's bug).
 */
export const limitsOf = (
  declared: Partial<StorageLimits> | undefined,
  defaults: StorageLimits
): Effect.Effect<StorageLimits> =>
  declared === undefined ? Effect.succeed(defaults) : Effect.sync(() => ({
    maxEventBytes: positiveInteger("maxEventBytes", declared.maxEventBytes ?? defaults.maxEventBytes),
    maxEventsPerWrite: positiveInteger("maxEventsPerWrite", declared.maxEventsPerWrite ?? defaults.maxEventsPerWrite),
    maxWriteBytes: positiveInteger("maxWriteBytes", declared.maxWriteBytes ?? defaults.maxWriteBytes),
    eventSize: declared.eventSize ?? defaults.eventSize
  }))

/** What the encoding of appends uses: the store's `defaultTtl` and its storage's limits. */
export interface StoreDefaults extends Pick<EventStoreOptions, "defaultTtl"> {
  readonly limits: StorageLimits
}

/** What {@link prepareAppend} gives: the expected version and the events as they will be stored. */
export interface PreparedAppend {
  readonly expectedVersion: ExpectedVersion
  readonly events: ReadonlyArray<PreparedEvent>
  /** Each event's size as the storage counts it (`limits.eventSize`, at the widest version). */
  readonly sizes: ReadonlyArray<number>
}

export type PrepareError = InvalidInputError | EventEncodeError | EventTooLargeError | AppendTooLargeError

const isPlainObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) &&
  (Object.getPrototypeOf(u) === Object.prototype || Object.getPrototypeOf(u) === null)

const isKey = (u: unknown, maxBytes: number): boolean => typeof u === "string" && Inputs.keyProblem(u, maxBytes) === undefined

/** Metadata that Inputs.Metadata accepts, seen without decoding (`false`: let the Schema decide). */
const plainMetadata = (m: unknown): boolean => {
  if (m === undefined) return true
  if (!isPlainObject(m)) return false
  for (const key in m) {
    const value = m[key]
    if (value === undefined) {
      if (key !== "actor" && key !== "correlationId" && key !== "causationId" && key !== "custom") return false
    } else if (key === "custom") {
      if (!isPlainObject(value)) return false
    } else if (key !== "actor" && key !== "correlationId" && key !== "causationId" || typeof value !== "string") {
      return false
    }
  }
  return Object.getOwnPropertySymbols(m).length === 0
}

/**
 * The expected version of an append whose options and events the Schemas (Inputs.AppendOptions,
 * Inputs.NewEvents) plainly accept, seen without decoding them; `undefined` when anything is
 * unusual (a class instance, a getter that throws, a missing field, ...): the Schemas then
 * decide, and name what they refuse. This check only ever accepts less than the Schemas do.
 */
export const plainAppend = (events: unknown, options: unknown): ExpectedVersion | undefined => {
  try {
    if (!isPlainObject(options) || !plainMetadata(options.metadata)) return undefined
    const expected = options.expectedVersion
    const expectedVersion: ExpectedVersion | undefined = typeof expected === "number"
      ? (Number.isSafeInteger(expected) && expected >= 0 ? expected : undefined)
      : expected === "any" || expected === "noStream" || expected === "streamExists"
      ? expected
      : undefined
    if (expectedVersion === undefined || !Array.isArray(events) || events.length === 0) return undefined
    for (let i = 0; i < events.length; i++) {
      const e: unknown = events[i]
      if (!isPlainObject(e) || !Object.hasOwn(e, "payload") || !isKey(e.type, Inputs.MAX_EVENT_TYPE_BYTES)) return undefined
      if (!plainMetadata(e.metadata)) return undefined
      if (e.ttl !== undefined && typeof Inputs.ttlMillis(e.ttl) !== "number") return undefined
      if (e.eventId !== undefined && !isKey(e.eventId, Inputs.MAX_EVENT_ID_BYTES)) return undefined
    }
    return expectedVersion
  } catch {
    return undefined
  }
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
): Effect.Effect<PreparedAppend, PrepareError> =>
  Effect.suspend(() => {
    const done = (result: PreparedAppend | PrepareError) =>
      "_tag" in result ? Effect.fail(result) : Effect.succeed(result)
    const plain = plainAppend(events, options)
    if (plain !== undefined) {
      return done(prepareEvents(operation, streamId, events, options, plain, defaults, nowMillis, transactionLimits))
    }
    // Everything is checked before anything is encoded, so the first refusal names the
    // argument, not a symptom of it.
    return Effect.flatMap(checkAppendOptions(operation, "options", options), ({ expectedVersion }) =>
      Effect.flatMap(checkEvents(operation, "events", events), () =>
        done(prepareEvents(operation, streamId, events, options, expectedVersion, defaults, nowMillis, transactionLimits))))
  })

/** The encoding of events whose inputs are valid (see {@link prepareAppend}). */
const prepareEvents = (
  operation: string,
  streamId: string,
  events: ReadonlyArray<NewEvent>,
  options: AppendOptions,
  expectedVersion: ExpectedVersion,
  defaults: StoreDefaults,
  nowMillis: number,
  transactionLimits: boolean
): PreparedAppend | PrepareError => {
  const defaultTtlMillis = defaults.defaultTtl === undefined ? undefined : ttlOf(defaults.defaultTtl)
  const limits = defaults.limits
  const prepared: Array<PreparedEvent> = []
  const sizes: Array<number> = []
  let totalBytes = 0
  let seen: Map<string, number> | undefined
  for (let index = 0; index < events.length; index++) {
    const e = events[index]!
    const type = e.type
    if (e.eventId !== undefined) {
      seen ??= new Map()
      const first = seen.get(e.eventId)
      if (first !== undefined) {
        return new InvalidInputError({
          operation,
          field: `events[${index}].eventId`,
          reason: `is the same as events[${first}].eventId: an event id names one event`
        })
      }
      seen.set(e.eventId, index)
    }
    const payload = stringifyJson(e.payload)
    if ("error" in payload) {
      return new EventEncodeError({ streamId, index, eventType: type, reason: `payload: ${payload.error}`, cause: payload.cause })
    }
    const metadata = metadataToJson(mergeMetadata(options.metadata, e.metadata))
    if ("error" in metadata) {
      return new EventEncodeError({ streamId, index, eventType: type, reason: metadata.error, cause: metadata.cause })
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
    // The version is not known yet; count the widest version a stream can reach.
    const size = limits.eventSize(streamId, Number.MAX_SAFE_INTEGER, event)
    if (size > limits.maxEventBytes) {
      return new EventTooLargeError({ streamId, index, eventType: type, sizeBytes: size, maxBytes: limits.maxEventBytes })
    }
    totalBytes += size
    sizes.push(size)
    prepared.push(event)
  }
  if (transactionLimits && (prepared.length > limits.maxEventsPerWrite || totalBytes > limits.maxWriteBytes)) {
    return new AppendTooLargeError({
      streamId,
      eventCount: prepared.length,
      totalBytes,
      maxEvents: limits.maxEventsPerWrite,
      maxBytes: limits.maxWriteBytes
    })
  }
  return { expectedVersion, events: prepared, sizes }
}

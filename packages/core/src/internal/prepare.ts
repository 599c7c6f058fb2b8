/**
 * Input validation and encoding shared by every EventStore implementation, so that the
 * in-memory store and the DynamoDB store refuse exactly the same inputs with exactly the
 * same errors, before anything is written.
 */
import { Duration, Effect, Option } from "effect"
import { makeUlid } from "./ids.js"
import {
  AppendTooLargeError,
  EventEncodeError,
  EventTooLargeError,
  InvalidInputError
} from "../Errors.js"
import type { AppendOptions, EventMetadata, ExpectedVersion, NewEvent, ReadOptions } from "../EventStore.js"

/** DynamoDB's item size limit (400 KB). */
export const MAX_ITEM_BYTES = 409_600
/** DynamoDB's transaction limits: 100 items, 4 MB in all. */
export const MAX_EVENTS_PER_APPEND = 100
export const MAX_APPEND_BYTES = 4 * 1024 * 1024
/** DynamoDB allows 2048 bytes for a partition key; we keep a margin for composite keys. */
export const MAX_STREAM_ID_BYTES = 1024
export const MAX_EVENT_TYPE_BYTES = 256

/** UTF-8 length of a string without encoding it (a lone surrogate counts as 3 bytes, as when encoded). */
export const utf8Length = (s: string): number => {
  let bytes = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) bytes += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2 // a surrogate pair: 2 UTF-16 units, 4 bytes
      i++
    } else bytes += 2
  }
  return bytes
}

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

export const validateStreamId = (operation: string, streamId: unknown): Effect.Effect<string, InvalidInputError> => {
  if (typeof streamId !== "string" || streamId.length === 0) {
    return Effect.fail(new InvalidInputError({ operation, field: "streamId", reason: "must be a non-empty string" }))
  }
  const bytes = utf8Length(streamId)
  if (bytes > MAX_STREAM_ID_BYTES) {
    return Effect.fail(
      new InvalidInputError({
        operation,
        field: "streamId",
        reason: `is ${bytes} bytes long (UTF-8); the limit is ${MAX_STREAM_ID_BYTES}`
      })
    )
  }
  return Effect.succeed(streamId)
}

export const validateExpectedVersion = (
  operation: string,
  expected: unknown
): Effect.Effect<ExpectedVersion, InvalidInputError> =>
  expected === "any" || expected === "noStream" || expected === "streamExists" ||
    (typeof expected === "number" && Number.isSafeInteger(expected) && expected >= 0)
    ? Effect.succeed(expected as ExpectedVersion)
    : Effect.fail(
      new InvalidInputError({
        operation,
        field: "options.expectedVersion",
        reason: `must be "any", "noStream", "streamExists" or an integer >= 0, got ${String(expected)}`
      })
    )

const positiveInt = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 1

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
): Effect.Effect<NormalizedReadOptions, InvalidInputError> => {
  const o = options ?? {}
  const fail = (field: string, reason: string) =>
    Effect.fail(new InvalidInputError({ operation, field: `options.${field}`, reason }))
  if (o.from !== undefined && !positiveInt(o.from)) return fail("from", "must be an integer >= 1")
  if (o.to !== undefined && !positiveInt(o.to)) return fail("to", "must be an integer >= 1")
  if (o.from !== undefined && o.to !== undefined && o.to < o.from) return fail("to", "must be >= options.from")
  if (o.limit !== undefined && !positiveInt(o.limit)) return fail("limit", "must be an integer >= 1")
  if (o.pageSize !== undefined && !positiveInt(o.pageSize)) return fail("pageSize", "must be an integer >= 1")
  if (o.direction !== undefined && o.direction !== "forward" && o.direction !== "backward") {
    return fail("direction", `must be "forward" or "backward"`)
  }
  if (o.ifMissing !== undefined && o.ifMissing !== "fail" && o.ifMissing !== "empty") {
    return fail("ifMissing", `must be "fail" or "empty"`)
  }
  return Effect.succeed({
    from: o.from ?? 1,
    to: o.to,
    direction: o.direction ?? "forward",
    limit: o.limit,
    consistentRead: o.consistentRead ?? true,
    pageSize: o.pageSize,
    ifMissing: o.ifMissing ?? "fail"
  })
}

export const validateCount = (operation: string, n: unknown): Effect.Effect<number, InvalidInputError> =>
  positiveInt(n)
    ? Effect.succeed(n)
    : Effect.fail(new InvalidInputError({ operation, field: "n", reason: "must be an integer >= 1" }))

const stringifyJson = (value: unknown): { readonly json: string } | { readonly error: string; readonly cause?: unknown } => {
  try {
    const json = JSON.stringify(value)
    if (json === undefined) return { error: "it is not a JSON value (undefined, a function or a symbol)" }
    return { json }
  } catch (cause) {
    return { error: `it is not JSON-serialisable (${cause instanceof Error ? cause.message : String(cause)})`, cause }
  }
}

const mergeMetadata = (a: EventMetadata | undefined, b: EventMetadata | undefined): EventMetadata | undefined => {
  if (a === undefined) return b
  if (b === undefined) return a
  return { ...a, ...b, custom: a.custom === undefined ? b.custom : b.custom === undefined ? a.custom : { ...a.custom, ...b.custom } }
}

const metadataToJson = (
  m: EventMetadata | undefined
): { readonly json: string | undefined; readonly compact: EventMetadata } | { readonly error: string; readonly cause?: unknown } => {
  if (m === undefined) return { json: undefined, compact: {} }
  const compact: Record<string, unknown> = {}
  for (const key of ["actor", "correlationId", "causationId"] as const) {
    const value = m[key]
    if (value !== undefined) {
      if (typeof value !== "string") return { error: `metadata.${key} must be a string` }
      compact[key] = value
    }
  }
  if (m.custom !== undefined && Object.keys(m.custom).length > 0) compact.custom = m.custom
  if (Object.keys(compact).length === 0) return { json: undefined, compact }
  const result = stringifyJson(compact)
  return "error" in result ? result : { json: result.json, compact: JSON.parse(result.json) as EventMetadata }
}


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
    if (!Array.isArray(events) || events.length === 0) {
      return yield* new InvalidInputError({ operation, field: "events", reason: "must be a non-empty array" })
    }
    const expectedVersion = yield* validateExpectedVersion(operation, options?.expectedVersion)
    const prepared: Array<PreparedEvent> = []
    const sizes: Array<number> = []
    let totalBytes = 0
    for (let index = 0; index < events.length; index++) {
      const e = events[index]!
      const type = e?.type
      if (typeof type !== "string" || type.length === 0 || utf8Length(type) > MAX_EVENT_TYPE_BYTES) {
        return yield* new InvalidInputError({
          operation,
          field: `events[${index}].type`,
          reason: `must be a non-empty string of at most ${MAX_EVENT_TYPE_BYTES} bytes`
        })
      }
      if (e.eventId !== undefined && (typeof e.eventId !== "string" || e.eventId.length === 0 || utf8Length(e.eventId) > 64)) {
        return yield* new InvalidInputError({
          operation,
          field: `events[${index}].eventId`,
          reason: "must be a non-empty string of at most 64 bytes (UTF-8)"
        })
      }
      const payload = stringifyJson(e.payload)
      if ("error" in payload) {
        return yield* new EventEncodeError({ streamId, index, eventType: type, reason: `payload: ${payload.error}`, cause: payload.cause })
      }
      const metadata = metadataToJson(mergeMetadata(options.metadata, e.metadata))
      if ("error" in metadata) {
        return yield* new EventEncodeError({ streamId, index, eventType: type, reason: metadata.error, cause: metadata.cause })
      }
      const ttlInput = e.ttl !== undefined ? e.ttl : defaults.defaultTtl
      let expiresAtSeconds: number | undefined
      if (ttlInput !== undefined) {
        const ttl = Option.getOrUndefined(Duration.fromInput(ttlInput))
        if (ttl === undefined || !Duration.isFinite(ttl) || Duration.toMillis(ttl) < 0) {
          return yield* new InvalidInputError({ operation, field: `events[${index}].ttl`, reason: "must be a finite, non-negative duration" })
        }
        const ms = Duration.toMillis(ttl)
        expiresAtSeconds = ms === 0 ? undefined : Math.ceil((nowMillis + ms) / 1000)
      }
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

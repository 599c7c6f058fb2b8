import { DateTime, Result } from "effect"
import { CorruptedEventError } from "../Errors.js"
import type { EventEnvelope, EventMetadata, StoredEvent } from "./eventStoreModel.js"
import type { PreparedEvent } from "./prepare.js"

/** The envelope of an event just appended, built from what was prepared (no re-parsing). */
export const envelopeOf = (streamId: string, version: number, e: PreparedEvent): EventEnvelope<unknown> => ({
  eventId: e.eventId,
  streamId,
  version,
  type: e.type,
  payload: e.payload,
  metadata: e.metadata,
  recordedAt: DateTime.makeUnsafe(e.recordedAtMillis),
  expiresAt: e.expiresAtSeconds === undefined ? undefined : DateTime.makeUnsafe(e.expiresAtSeconds * 1000)
})

const corrupted = (e: StoredEvent, reason: string, cause?: unknown) =>
  new CorruptedEventError({
    streamId: e.streamId,
    // A version a reader can skip past with `from: version + 1` (storage bounds reads to
    // 1..2^53-1, so a fractional version is the only kind that is not an integer).
    version: Number.isSafeInteger(e.version) ? e.version : Number.isFinite(e.version) ? Math.max(0, Math.floor(e.version)) : -1,
    reason,
    cause
  })

/** JavaScript's date range (+-8.64e15 ms): a stored time outside it is not a valid date. */
const isDate = (millis: number): boolean => Math.abs(millis) <= 8.64e15

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Why stored metadata is not {@link EventMetadata}, or `undefined`. */
const metadataProblem = (m: Record<string, unknown>): string | undefined => {
  for (const key of ["actor", "correlationId", "causationId"] as const) {
    if (m[key] !== undefined && typeof m[key] !== "string") return `the metadata's ${key} is not a string`
  }
  if (m.custom !== undefined && !isRecord(m.custom)) return "the metadata's custom field is not an object"
  return undefined
}

/**
 * A stored event whose every field was checked: its payload parsed, its metadata parsed
 * and checked (`undefined` when it has none). Times are valid dates; no `DateTime` is made.
 */
export interface CheckedEvent {
  readonly payload: unknown
  readonly metadata: EventMetadata | undefined
}

/** What is wrong with the fields of a stored event that need no parsing, or `undefined`. */
const fieldsProblem = (e: StoredEvent): CorruptedEventError | undefined => {
  if (!Number.isSafeInteger(e.version) || e.version < 1) return corrupted(e, `the version ${e.version} is not an integer >= 1`)
  if (typeof e.eventId !== "string") return corrupted(e, "the event id is missing or not a string")
  if (typeof e.type !== "string") return corrupted(e, "the event type is missing or not a string")
  if (typeof e.payloadJson !== "string") return corrupted(e, "the payload is missing or not a string")
  if (typeof e.recordedAtMillis !== "number" || !Number.isFinite(e.recordedAtMillis)) {
    return corrupted(e, "the recorded time is missing or not a number")
  }
  if (e.metadataJson !== undefined && typeof e.metadataJson !== "string") return corrupted(e, "the metadata is not a string")
  if (e.expiresAtSeconds !== undefined && (typeof e.expiresAtSeconds !== "number" || !Number.isFinite(e.expiresAtSeconds))) {
    return corrupted(e, "the TTL is not a number")
  }
  if (!isDate(e.recordedAtMillis)) return corrupted(e, `the recorded time ${e.recordedAtMillis} is not a valid date`)
  if (e.expiresAtSeconds !== undefined && !isDate(e.expiresAtSeconds * 1000)) {
    return corrupted(e, `the TTL ${e.expiresAtSeconds} is not a valid date`)
  }
  return undefined
}

/** The parsed payload of a stored event whose fields are checked. */
const parsePayload = (e: StoredEvent): unknown => {
  try {
    return JSON.parse(e.payloadJson as string)
  } catch (cause) {
    return corrupted(e, "the payload is not valid JSON", cause)
  }
}

/** The parsed and checked metadata of a stored event whose fields are checked (`undefined`: none). */
const parseMetadata = (e: StoredEvent): EventMetadata | undefined | CorruptedEventError => {
  if (e.metadataJson === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(e.metadataJson as string)
  } catch (cause) {
    return corrupted(e, "the metadata is not valid JSON", cause)
  }
  if (!isRecord(parsed)) return corrupted(e, "the metadata is not a JSON object")
  const problem = metadataProblem(parsed)
  if (problem !== undefined) return corrupted(e, problem)
  return parsed as EventMetadata
}

/**
 * Metadata JSON as the event store writes it without custom fields: an object of string
 * fields `actor`, `correlationId`, `causationId`, no whitespace. Whatever this matches is
 * metadata {@link parseMetadata} accepts; anything else is parsed and checked.
 */
const PLAIN_METADATA = (() => {
  const pair = `"(?:actor|correlationId|causationId)":"(?:[^"\\\\\\x00-\\x1f]|\\\\["\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})*"`
  return new RegExp(`^\\{(?:${pair}(?:,${pair})*)?\\}$`)
})()

/**
 * Checks every field of a stored event, parses its payload and metadata, and says what is
 * wrong with the first bad field as a {@link CorruptedEventError} naming stream and
 * version. What a read does per event before building an envelope ({@link decodeStoredEvent}).
 */
export const checkStoredEvent = (e: StoredEvent): CheckedEvent | CorruptedEventError => {
  const problem = fieldsProblem(e)
  if (problem !== undefined) return problem
  const payload = parsePayload(e)
  if (payload instanceof CorruptedEventError) return payload
  const metadata = parseMetadata(e)
  if (metadata instanceof CorruptedEventError) return metadata
  return { payload, metadata }
}

/**
 * {@link checkStoredEvent} for a reader that needs only the payload (an aggregate load):
 * the same checks in the same order, the payload parsed (a parsed payload is never a
 * `CorruptedEventError`), and the metadata checked without being parsed when it has the
 * shape the store writes.
 */
export const checkedPayload = (e: StoredEvent): unknown => {
  const problem = fieldsProblem(e)
  if (problem !== undefined) return problem
  const payload = parsePayload(e)
  if (payload instanceof CorruptedEventError) return payload
  if (e.metadataJson !== undefined && !PLAIN_METADATA.test(e.metadataJson as string)) {
    const metadata = parseMetadata(e)
    if (metadata instanceof CorruptedEventError) return metadata
  }
  return payload
}

/**
 * Turns a stored event into an envelope with its payload as parsed JSON. Anything
 * missing or malformed is a {@link CorruptedEventError} naming stream and version.
 */
export const decodeStoredEvent = (e: StoredEvent): Result.Result<EventEnvelope<unknown>, CorruptedEventError> => {
  const checked = checkStoredEvent(e)
  if (checked instanceof CorruptedEventError) return Result.fail(checked)
  return Result.succeed({
    eventId: e.eventId as string,
    streamId: e.streamId,
    version: e.version,
    type: e.type as string,
    payload: checked.payload,
    metadata: checked.metadata ?? {},
    recordedAt: DateTime.makeUnsafe(e.recordedAtMillis as number),
    expiresAt: e.expiresAtSeconds === undefined ? undefined : DateTime.makeUnsafe((e.expiresAtSeconds as number) * 1000)
  })
}

import { DateTime, Result } from "effect"
import { CorruptedEventError } from "../Errors.js"
import type { EventEnvelope, EventMetadata, StoredEvent } from "../EventStore.js"
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

/** A time from storage as a `DateTime`, or `undefined` when it is out of range. */
const dateOf = (millis: number): DateTime.Utc | undefined =>
  // JavaScript's date range, checked first: a read makes one or two of these per event.
  Math.abs(millis) <= 8.64e15 ? DateTime.makeUnsafe(millis) : undefined

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
 * Turns a stored event into an envelope with its payload as parsed JSON. Anything
 * missing or malformed is a {@link CorruptedEventError} naming stream and version.
 */
export const decodeStoredEvent = (e: StoredEvent): Result.Result<EventEnvelope<unknown>, CorruptedEventError> => {
  if (!Number.isSafeInteger(e.version) || e.version < 1) {
    return Result.fail(corrupted(e, `the version ${e.version} is not an integer >= 1`))
  }
  if (typeof e.eventId !== "string") return Result.fail(corrupted(e, "the event id is missing or not a string"))
  if (typeof e.type !== "string") return Result.fail(corrupted(e, "the event type is missing or not a string"))
  if (typeof e.payloadJson !== "string") return Result.fail(corrupted(e, "the payload is missing or not a string"))
  if (typeof e.recordedAtMillis !== "number" || !Number.isFinite(e.recordedAtMillis)) {
    return Result.fail(corrupted(e, "the recorded time is missing or not a number"))
  }
  if (e.metadataJson !== undefined && typeof e.metadataJson !== "string") {
    return Result.fail(corrupted(e, "the metadata is not a string"))
  }
  if (e.expiresAtSeconds !== undefined && (typeof e.expiresAtSeconds !== "number" || !Number.isFinite(e.expiresAtSeconds))) {
    return Result.fail(corrupted(e, "the TTL is not a number"))
  }
  const recordedAt = dateOf(e.recordedAtMillis)
  if (recordedAt === undefined) return Result.fail(corrupted(e, `the recorded time ${e.recordedAtMillis} is not a valid date`))
  const expiresAt = e.expiresAtSeconds === undefined ? undefined : dateOf(e.expiresAtSeconds * 1000)
  if (e.expiresAtSeconds !== undefined && expiresAt === undefined) {
    return Result.fail(corrupted(e, `the TTL ${e.expiresAtSeconds} is not a valid date`))
  }
  let payload: unknown
  let metadata: EventMetadata = {}
  try {
    payload = JSON.parse(e.payloadJson)
  } catch (cause) {
    return Result.fail(corrupted(e, "the payload is not valid JSON", cause))
  }
  if (e.metadataJson !== undefined) {
    try {
      const parsed: unknown = JSON.parse(e.metadataJson)
      if (!isRecord(parsed)) return Result.fail(corrupted(e, "the metadata is not a JSON object"))
      const problem = metadataProblem(parsed)
      if (problem !== undefined) return Result.fail(corrupted(e, problem))
      metadata = parsed as EventMetadata
    } catch (cause) {
      return Result.fail(corrupted(e, "the metadata is not valid JSON", cause))
    }
  }
  return Result.succeed({
    eventId: e.eventId,
    streamId: e.streamId,
    version: e.version,
    type: e.type,
    payload,
    metadata,
    recordedAt,
    expiresAt
  })
}

/**
 * Recognising an append that is already stored. A write can fail although it was applied
 * (a lost response, a timeout), and callers retry after such unknown outcomes. An append
 * counts as already applied only when every one of its events is stored, with the same
 * content, at exactly the version it would take: then the store reports the original
 * result instead of a conflict. Every implementation decides with {@link matchStored}.
 */
import { EventIdConflictError } from "../Errors.js"
import type { EventEnvelope, StoredEvent } from "./eventStoreModel.js"
import { envelopeOf } from "./envelope.js"
import type { PreparedEvent } from "./prepare.js"

export type StoredMatch =
  /** Every event is stored at its version with the same content: the original result. */
  | { readonly _tag: "Applied"; readonly events: ReadonlyArray<EventEnvelope> }
  /** None of the append's ids is at its version: an ordinary version conflict. */
  | { readonly _tag: "Conflict" }
  | { readonly _tag: "EventIdConflict"; readonly error: EventIdConflictError }

const sameContent = (p: PreparedEvent, s: StoredEvent): string | undefined =>
  s.type !== p.type
    ? `its type is ${JSON.stringify(s.type)}, not ${JSON.stringify(p.type)}`
    : s.payloadJson !== p.payloadJson
    ? "its payload differs"
    : (s.metadataJson ?? undefined) !== p.metadataJson
    ? "its metadata differs"
    : undefined

/** A stored time if it is a valid date (JavaScript's range: +-8.64e15 ms), else `fallback`. */
const MAX_DATE_MILLIS = 8.64e15
const timeOr = (u: unknown, scale: number, fallback: number | undefined): number | undefined =>
  typeof u === "number" && Math.abs(u * scale) <= MAX_DATE_MILLIS ? u : fallback

/**
 * Compares an append of `prepared` at versions `base + 1 ..` with what storage holds at
 * those versions (`stored[i]` at `base + 1 + i`, `undefined` where nothing is stored).
 */
export const matchStored = (
  streamId: string,
  base: number,
  prepared: ReadonlyArray<PreparedEvent>,
  stored: ReadonlyArray<StoredEvent | undefined>
): StoredMatch => {
  const found = prepared.findIndex((p, i) => stored[i]?.eventId === p.eventId)
  if (found < 0) return { _tag: "Conflict" }
  const conflict = (index: number, reason: "differentContent" | "partiallyStored", detail: string): StoredMatch => ({
    _tag: "EventIdConflict",
    error: new EventIdConflictError({
      streamId,
      eventId: prepared[index]!.eventId,
      version: base + 1 + index,
      index,
      reason,
      detail
    })
  })
  // Same id, other content first: that is the caller's bug to see, wherever it is.
  for (let i = 0; i < prepared.length; i++) {
    const s = stored[i]
    if (s?.eventId !== prepared[i]!.eventId) continue
    const difference = sameContent(prepared[i]!, s)
    if (difference !== undefined) return conflict(i, "differentContent", `the stored event has this id but ${difference}`)
  }
  for (let i = 0; i < prepared.length; i++) {
    const s = stored[i]
    if (s?.eventId === prepared[i]!.eventId) continue
    const version = base + 1 + i
    return conflict(
      found,
      "partiallyStored",
      s === undefined
        ? `event #${i} of the append ("${prepared[i]!.eventId}") is not stored at version ${version}`
        : `version ${version} holds event "${String(s.eventId)}", not event #${i} of the append ("${prepared[i]!.eventId}")`
    )
  }
  return {
    _tag: "Applied",
    events: prepared.map((p, i) => {
      const s = stored[i]!
      return envelopeOf(streamId, base + 1 + i, {
        ...p,
        recordedAtMillis: timeOr(s.recordedAtMillis, 1, p.recordedAtMillis)!,
        expiresAtSeconds: s.expiresAtSeconds === undefined ? undefined : timeOr(s.expiresAtSeconds, 1000, p.expiresAtSeconds)
      })
    })
  }
}

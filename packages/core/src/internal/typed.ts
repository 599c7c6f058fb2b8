/**
 * The codec of `EventStore.typed`: events to the JSON payloads the store keeps, and back.
 * Used by `EventStore.typed` and by `Aggregate`, which appends through it on a store it
 * already holds.
 */
import { Effect, Schema } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { CorruptedEventError, EventEncodeError } from "../Errors.js"
import type { AppendError, AppendOptions, AppendResult, EventEnvelope, EventInput, EventStoreShape, NewEvent } from "./eventStoreModel.js"
import { EventInputTypeId } from "./eventStoreModel.js"

export const isEventInput = (u: unknown): u is EventInput<unknown> =>
  typeof u === "object" && u !== null && EventInputTypeId in u

export interface Codec<E> {
  /**
   * Encodes every event (and checks that its encoding decodes back) before anything is
   * written: the events to hand to the store, and the payloads as a read will return them.
   */
  readonly encodeAll: (
    streamId: string,
    events: ReadonlyArray<E | EventInput<E>>
  ) => { readonly raw: Array<NewEvent>; readonly stored: Array<E> } | EventEncodeError
  /** {@link encodeAll}, `store.append`, and the result with the stored payloads. */
  readonly appendTo: (
    store: EventStoreShape,
    streamId: string,
    events: ReadonlyArray<E | EventInput<E>>,
    options: AppendOptions
  ) => Effect.Effect<AppendResult<E>, AppendError>
  readonly decodeAll: (events: ReadonlyArray<EventEnvelope>) => Effect.Effect<Array<EventEnvelope<E>>, CorruptedEventError>
  /** {@link decodeAll} of a Stream's chunk: a non-empty page stays non-empty. */
  readonly decodePage: (
    events: NonEmptyReadonlyArray<EventEnvelope>
  ) => Effect.Effect<NonEmptyReadonlyArray<EventEnvelope<E>>, CorruptedEventError>
}

/** The result of an append with the payloads as stored (what a read returns) instead of their JSON. */
export const withPayloads = <E>(result: AppendResult, stored: ReadonlyArray<E>): AppendResult<E> => ({
  ...result,
  events: result.events.map((e, i) => ({ ...e, payload: stored[i]! }))
})

export const make = <E extends { readonly _tag: string }>(schema: Schema.Codec<E, unknown>): Codec<E> => {
  // The canonical JSON form of the Schema: Dates, non-finite numbers, bigints, ... get a
  // JSON representation, so that what is stored is exactly what decodes back.
  const codec = Schema.toCodecJson(schema)
  const encode = Schema.encodeExit(codec)
  const decode = Schema.decodeUnknownExit(codec)

  const decodeAll = (events: ReadonlyArray<EventEnvelope>): Effect.Effect<Array<EventEnvelope<E>>, CorruptedEventError> => {
    const decoded = new Array<EventEnvelope<E>>(events.length)
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!
      const exit = decode(e.payload)
      if (exit._tag === "Failure") {
        return Effect.fail(
          new CorruptedEventError({
            streamId: e.streamId,
            version: e.version,
            reason: `the payload of a "${e.type}" event does not match the event Schema: ${String(exit.cause)}`,
            cause: exit.cause
          })
        )
      }
      decoded[i] = { ...e, payload: exit.value }
    }
    return Effect.succeed(decoded)
  }

  const encodeAll: Codec<E>["encodeAll"] = (streamId, events) => {
    const raw: Array<NewEvent> = []
    const stored: Array<E> = []
    for (let index = 0; index < (events?.length ?? 0); index++) {
      const input = events[index]!
      const event = (isEventInput(input) ? input.event : input) as E
      const eventType = typeof event?._tag === "string" ? event._tag : "<unknown>"
      const fail = (reason: string, cause: unknown) =>
        new EventEncodeError({ streamId: String(streamId), index, eventType, reason, cause })
      const encoded = encode(event)
      if (encoded._tag === "Failure") {
        return fail(`the payload does not match the event Schema: ${String(encoded.cause)}`, encoded.cause)
      }
      // Refuse what would be written but could not be read back (a Schema whose
      // decoding does not accept its own encoding).
      const decoded = decode(encoded.value)
      if (decoded._tag === "Failure") {
        return fail(`the encoded payload does not decode with the event Schema: ${String(decoded.cause)}`, decoded.cause)
      }
      stored.push(decoded.value)
      raw.push(
        isEventInput(input)
          ? { type: eventType, payload: encoded.value, metadata: input.metadata, ttl: input.ttl, eventId: input.eventId }
          : { type: eventType, payload: encoded.value }
      )
    }
    return { raw, stored }
  }

  return {
    encodeAll,
    appendTo: (store, streamId, events, options) =>
      Effect.suspend(() => {
        const encoded = encodeAll(streamId, events)
        if (encoded instanceof EventEncodeError) return Effect.fail(encoded)
        return Effect.map(store.append(streamId, encoded.raw, options), (result) => withPayloads(result, encoded.stored))
      }),
    decodeAll,
    // decodeAll keeps the length, so a non-empty page stays non-empty.
    decodePage: decodeAll as unknown as Codec<E>["decodePage"]
  }
}

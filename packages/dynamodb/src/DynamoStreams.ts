/**
 * Decoding of the events table's DynamoDB Stream records into stored events, for the
 * global log's sequencer and for projections that read the stream directly.
 *
 * Two formats carry the same record: the `GetRecords` response of the DynamoDB Streams API
 * (`@aws-sdk/client-dynamodb-streams`) and the event a Lambda function receives from an event
 * source mapping (`{ Records: [...] }`, with `eventSourceARN`). Both give `eventName`, and
 * under `dynamodb` the `Keys`, the `NewImage` (the table's stream view type is `NEW_IMAGE`)
 * and the `SequenceNumber`, with attribute values in the same `{ S: ... }` / `{ N: ... }`
 * shape, so one decoder reads both.
 *
 * What a record is:
 * - an `INSERT` of an item with key `s` (a string) and `v` (a number): an event, decoded
 *   exactly as the event store decodes its items (`DynamoEventStore.fromItem`, then
 *   `EventStore.decodeStored`), so a damaged one is the same `CorruptedEventError` naming
 *   stream and version that a read would give;
 * - anything else (`REMOVE` by TTL, `MODIFY` of an event edited by hand, an item that is not
 *   an event): `Skipped`, with its sequence number, so that a reader can still move its
 *   checkpoint past it.
 *
 * Only the per-stream order of the DynamoDB Stream holds here (within a shard, an item's
 * records come in the order of the writes): for one order across all streams, read the
 * global log (`EventLog`).
 *
 * @since 0.2.0
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb"
import { Errors, EventStore } from "@dynamo-es/core"
import { Effect, Result } from "effect"
import { fromItem } from "./DynamoEventStore.js"

/**
 * An attribute value as both formats give it; only strings and numbers are read.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamAttributeValue {
  readonly S?: string | undefined
  readonly N?: string | undefined
}

/**
 * A DynamoDB Stream record in the `GetRecords` format or the Lambda event format (the SDK's
 * `_Record` and `aws-lambda`'s `DynamoDBRecord` are both assignable to it).
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamRecord {
  readonly eventName?: string | undefined
  /** Present in the Lambda format: the ARN of the table's stream. */
  readonly eventSourceARN?: string | undefined
  readonly dynamodb?: {
    readonly Keys?: { readonly [key: string]: StreamAttributeValue } | undefined
    readonly NewImage?: { readonly [key: string]: StreamAttributeValue } | undefined
    readonly SequenceNumber?: string | undefined
  } | undefined
}

/**
 * A decoded record: an event (the envelope and the stored fields it was decoded from), or a
 * record that is not an event.
 *
 * @since 0.2.0
 * @category models
 */
export type DecodedRecord =
  | {
    readonly _tag: "Event"
    readonly sequenceNumber: string
    readonly envelope: EventStore.EventEnvelope
    /** The stored fields, checked by the decoding: what the global log copies. */
    readonly stored: EventStore.StoredEvent
  }
  | {
    readonly _tag: "Skipped"
    readonly sequenceNumber: string
    /** Why it is not an event, e.g. `"REMOVE"` or `"not an event item"`. */
    readonly reason: string
  }

/**
 * The stream id and version of a record's item, when its keys are those of an event.
 *
 * @since 0.2.0
 * @category decoding
 */
export const eventKey = (record: StreamRecord): { readonly streamId: string; readonly version: number } | undefined => {
  const keys = record.dynamodb?.Keys
  const s = keys?.s?.S
  const v = keys?.v?.N
  if (s === undefined || v === undefined || keys === undefined || Object.keys(keys).length !== 2) return undefined
  return { streamId: s, version: Number(v) }
}

/**
 * Decodes one record (see the module documentation). Fails with a `CorruptedEventError`
 * naming stream and version when an event's image does not decode, or is missing (a stream
 * view type without new images).
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeRecord = (record: StreamRecord): Result.Result<DecodedRecord, Errors.CorruptedEventError> => {
  const sequenceNumber = record.dynamodb?.SequenceNumber ?? ""
  const key = eventKey(record)
  if (key === undefined) return Result.succeed({ _tag: "Skipped", sequenceNumber, reason: "not an event item" })
  if (record.eventName !== "INSERT") {
    return Result.succeed({ _tag: "Skipped", sequenceNumber, reason: record.eventName ?? "no event name" })
  }
  const image = record.dynamodb?.NewImage
  if (image === undefined) {
    return Result.fail(
      new Errors.CorruptedEventError({
        streamId: key.streamId,
        version: Number.isSafeInteger(key.version) ? key.version : -1,
        reason: "the stream record has no new image (the table's stream view type must include NEW_IMAGE)"
      })
    )
  }
  // Only `S` and `N` are read from the image, which both formats spell alike.
  const stored = fromItem(key.streamId, image as Record<string, AttributeValue>)
  return Result.map(
    EventStore.decodeStored(stored),
    (envelope): DecodedRecord => ({ _tag: "Event", sequenceNumber, envelope, stored })
  )
}

/**
 * Decodes records in order; the first that does not decode fails the whole batch (use
 * {@link decodeRecord} one by one to keep the records before it, as a Lambda handler that
 * reports `batchItemFailures` does).
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeRecords = (
  records: ReadonlyArray<StreamRecord>
): Effect.Effect<ReadonlyArray<DecodedRecord>, Errors.CorruptedEventError> =>
  Effect.forEach(records, (record) => Effect.fromResult(decodeRecord(record)))

/**
 * A Lambda event from a DynamoDB Stream event source mapping.
 *
 * @since 0.2.0
 * @category models
 */
export interface LambdaStreamEvent {
  readonly Records: ReadonlyArray<StreamRecord>
}

/**
 * Decodes the records of a Lambda event ({@link decodeRecords}).
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeLambdaEvent = (event: LambdaStreamEvent) => decodeRecords(event.Records)

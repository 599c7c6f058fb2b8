/**
 * DynamoDB's sizes as the DynamoDB drivers count them and declare them to core: the events
 * table's item size and transaction limits (`EventStore.Storage.limits`, declared by
 * `DynamoEventStore`), the read-model table's item size and batch limits
 * (`ReadModel.Storage.limits`, declared by `DynamoReadModelStore`), and the `BatchWriteItem`
 * limit. An item's size is what DynamoDB bills and limits: its attribute names plus their
 * values (a string's UTF-8 length, a number's significant digits).
 */
import { type EventStore, type ReadModel, Utf8 } from "@dynamo-es/core"

/** The UTF-8 length of a string, without encoding it (core's `Utf8.byteLength`). */
export const utf8Length: (s: string) => number = Utf8.byteLength

/** DynamoDB's item size limit (400 KB). */
export const MAX_ITEM_BYTES = 409_600

/**
 * DynamoDB's size of a number attribute value: one byte per two significant digits (leading
 * and trailing zeros left out), plus one. Integers (versions, times) are counted without
 * making their string.
 */
const numberSize = (n: number): number => {
  if (Number.isSafeInteger(n)) {
    let m = Math.abs(n)
    if (m === 0) return 1
    while (m % 10 === 0) m /= 10
    let digits = 1
    while (m >= 10) {
      m = Math.floor(m / 10)
      digits++
    }
    return Math.ceil(digits / 2) + 1
  }
  return Math.ceil(String(Math.abs(n)).replace(/^0+|\.|e.*$/g, "").length / 2) + 1
}

/**
 * The size of an event's item in the events table (see `DynamoEventStore`): the one-letter
 * attribute names `s`, `v`, `i`, `y`, `d`, `t` (and `m`, `x` when present) plus their values.
 */
export const eventItemSize = (streamId: string, version: number, e: EventStore.EventRecord): number =>
  1 + utf8Length(streamId) +
  1 + numberSize(version) +
  1 + utf8Length(e.eventId) +
  1 + utf8Length(e.type) +
  1 + utf8Length(e.payloadJson) +
  (e.metadataJson === undefined ? 0 : 1 + utf8Length(e.metadataJson)) +
  1 + numberSize(e.recordedAtMillis) +
  (e.expiresAtSeconds === undefined ? 0 : 1 + numberSize(e.expiresAtSeconds))

/**
 * The events table's limits: an item of at most 400 KB counted by {@link eventItemSize}, and
 * a `TransactWriteItems` of at most 100 items and 4 MB (an append is one transaction).
 */
export const eventStoreLimits: EventStore.StorageLimits = {
  maxEventBytes: MAX_ITEM_BYTES,
  maxEventsPerWrite: 100,
  maxWriteBytes: 4 * 1024 * 1024,
  eventSize: eventItemSize
}

/**
 * The size DynamoDB counts for a read-model item: the attribute names `Name` (4), `Id`
 * (2) and `Data` (4) plus their values' UTF-8 lengths.
 */
export const readModelRowSize = (name: string, id: string, data: string): number =>
  4 + utf8Length(name) + 2 + utf8Length(id) + 4 + utf8Length(data)

/** DynamoDB's limit of writes per `BatchWriteItem`. */
export const MAX_BATCH_WRITE = 25

/**
 * The read-model table's limits: DynamoDB's item size limit (400 KB), 100 keys per
 * `BatchGetItem`, 25 writes per `BatchWriteItem`.
 */
export const readModelLimits: ReadModel.StorageLimits = {
  maxRowBytes: MAX_ITEM_BYTES,
  rowSize: readModelRowSize,
  maxBatchGet: 100,
  maxBatchWrite: MAX_BATCH_WRITE
}

/**
 * DynamoDB's sizes as the DynamoDB drivers count them: UTF-8 lengths, the `BatchWriteItem`
 * limit, and the read-model table's item size and batch limits, which `DynamoReadModelStore` declares to core
 * (`ReadModel.Storage.limits`).
 */
import type { ReadModel } from "@dynamo-es/core"

/**
 * The UTF-8 length of a string, without encoding it (what DynamoDB bills and limits). A
 * lone surrogate counts 3 bytes (its replacement character).
 */
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
  maxRowBytes: 409_600,
  rowSize: readModelRowSize,
  maxBatchGet: 100,
  maxBatchWrite: MAX_BATCH_WRITE
}

/**
 * The limits and key order of read models. A storage declares its row size formula and
 * limits (`ReadModel.Storage.limits`); the values here are the defaults of a storage that
 * declares none, and those of the memory storage, which mimics DynamoDB (the DynamoDB
 * driver declares its own, the same). Ids and names are limited to 1024 bytes and sorted
 * by UTF-8 bytes everywhere.
 */
import type { Storage, StorageLimits } from "./model.js"
import { utf8Length } from "../inputs.js"

/**
 * DynamoDB's item size limit (400 KB), counted as DynamoDB counts it: attribute names
 * plus values of `Name`, `Id` and `Data`. The default `maxRowBytes` of a storage's
 * {@link StorageLimits}, and the memory storage's.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_ITEM_BYTES = 409_600

/**
 * The longest read-model id, in UTF-8 bytes: DynamoDB's limit for a sort key.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_ID_BYTES = 1024

/**
 * The longest repository name, in UTF-8 bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_NAME_BYTES = 1024

/**
 * Keys per `BatchGetItem` (DynamoDB's limit); the default `maxBatchGet`.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_BATCH_GET = 100

/**
 * Writes per `BatchWriteItem` (DynamoDB's limit); the default `maxBatchWrite`.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_BATCH_WRITE = 25

/**
 * Compares ids the way DynamoDB sorts string keys (by UTF-8 bytes, i.e. by code point),
 * which differs from `<` on JavaScript strings for characters above U+FFFF.
 *
 * @since 0.1.0
 * @category utils
 */
export const compareIds = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) {
      const xs = x >= 0xd800 && x <= 0xdfff
      const ys = y >= 0xd800 && y <= 0xdfff
      // A surrogate encodes a code point above U+FFFF: it sorts after any other unit.
      if (xs !== ys) return xs ? 1 : -1
      return x - y
    }
  }
  return a.length - b.length
}

/**
 * The size DynamoDB counts for a read-model row: attribute names and values. The default
 * `rowSize` of a storage's {@link StorageLimits}, and the memory storage's.
 *
 * @since 0.1.0
 * @category utils
 */
export const rowSize = (name: string, id: string, data: string): number =>
  4 + utf8Length(name) + 2 + utf8Length(id) + 4 + utf8Length(data)

/**
 * The limits of a storage that declares none: DynamoDB's ({@link MAX_ITEM_BYTES},
 * {@link rowSize}, {@link MAX_BATCH_GET}, {@link MAX_BATCH_WRITE}). The memory storage
 * declares these.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultStorageLimits: StorageLimits = {
  maxRowBytes: MAX_ITEM_BYTES,
  rowSize,
  maxBatchGet: MAX_BATCH_GET,
  maxBatchWrite: MAX_BATCH_WRITE
}

const positiveInteger = (storage: Storage, field: string, n: number): number => {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`ReadModel.make: the storage of table "${storage.table}" declares limits.${field} = ${String(n)}; expected a positive integer`)
  }
  return n
}

/** The limits `storage` declares, defaults filled in; dies on a limit that is not a positive integer. */
export const limitsOf = (storage: Storage): StorageLimits => {
  const declared = storage.limits
  if (declared === undefined) return defaultStorageLimits
  return {
    maxRowBytes: positiveInteger(storage, "maxRowBytes", declared.maxRowBytes ?? MAX_ITEM_BYTES),
    rowSize: declared.rowSize ?? rowSize,
    maxBatchGet: positiveInteger(storage, "maxBatchGet", declared.maxBatchGet ?? MAX_BATCH_GET),
    maxBatchWrite: positiveInteger(storage, "maxBatchWrite", declared.maxBatchWrite ?? MAX_BATCH_WRITE)
  }
}

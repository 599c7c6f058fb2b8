/**
 * The limits and key order of read models: DynamoDB's, which every implementation keeps so
 * that memory and DynamoDB refuse the same models and list them in the same order.
 */
import { utf8Length } from "../inputs.js"

/**
 * DynamoDB's item size limit (400 KB), counted as DynamoDB counts it: attribute names
 * plus values of `Name`, `Id` and `Data`.
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
 * Keys per `BatchGetItem` (DynamoDB's limit).
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_BATCH_GET = 100

/**
 * Writes per `BatchWriteItem` (DynamoDB's limit).
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
 * The size DynamoDB counts for a read-model row: attribute names and values.
 *
 * @since 0.1.0
 * @category utils
 */
export const rowSize = (name: string, id: string, data: string): number =>
  4 + utf8Length(name) + 2 + utf8Length(id) + 4 + utf8Length(data)

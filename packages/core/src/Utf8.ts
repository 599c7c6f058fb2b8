/**
 * UTF-8 lengths, counted without encoding the string: what storage limits and bills (key
 * and item sizes). Core checks its inputs with it; drivers declare their size formulas
 * with it (`EventStore.StorageLimits.eventSize`, `ReadModel.StorageLimits.rowSize`).
 *
 * @since 0.2.0
 */

/**
 * The UTF-8 length of a string, in bytes, without encoding it. A lone surrogate counts 3
 * bytes, as when encoded (it becomes the replacement character).
 *
 * ```ts
 * Utf8.byteLength("é") // 2
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const byteLength = (s: string): number => {
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

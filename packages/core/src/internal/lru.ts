/**
 * A bounded map that forgets the least recently used key first. The one LRU of the
 * library (version caches, the skip-unchanged memory of read-model stores).
 */
export interface Lru<K, V> {
  /** The value, marking the key as recently used. */
  readonly get: (key: K) => V | undefined
  /** The value, without touching the order. */
  readonly peek: (key: K) => V | undefined
  readonly set: (key: K, value: V) => void
  readonly delete: (key: K) => void
  readonly clear: () => void
  readonly size: () => number
}

/** An LRU of at most `capacity` keys; a capacity of 0 or less keeps nothing. */
export const makeLru = <K, V>(capacity: number): Lru<K, V> => {
  const map = new Map<K, V>()
  return {
    get: (key) => {
      const value = map.get(key)
      if (value === undefined) return undefined
      map.delete(key)
      map.set(key, value)
      return value
    },
    peek: (key) => map.get(key),
    set: (key, value) => {
      if (capacity <= 0) return
      map.delete(key)
      map.set(key, value)
      if (map.size > capacity) map.delete(map.keys().next().value!)
    },
    delete: (key) => {
      map.delete(key)
    },
    clear: () => map.clear(),
    size: () => map.size
  }
}

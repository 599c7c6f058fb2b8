/**
 * The skip-unchanged memory of read-model stores.
 */
import { type Lru, makeLru } from "../lru.js"

/**
 * Remembers the last encoded state read or written per key, for skipping unchanged
 * writes. Correct under concurrency: a write makes the key forgotten when it starts and
 * "spoils" every operation in flight on that key, so that no read or write whose order
 * against it is unknown can record a state afterwards. Only a write that ran alone, or a
 * read that no write overlapped, records its state. Bounded (LRU).
 */
export class StateMemory {
  private readonly states: Lru<string, string>
  private readonly inflight = new Map<string, Set<MemoryToken>>()
  constructor(capacity: number) {
    this.states = makeLru(capacity)
  }

  get(key: string): string | undefined {
    return this.states.get(key)
  }

  begin(key: string, kind: "read" | "write"): MemoryToken {
    let set = this.inflight.get(key)
    if (set === undefined) {
      set = new Set()
      this.inflight.set(key, set)
    }
    let spoiled = false
    for (const other of set) {
      if (other.kind === "write") spoiled = true
      if (kind === "write") other.spoiled = true
    }
    if (kind === "write") this.states.delete(key)
    const token: MemoryToken = { key, kind, spoiled }
    set.add(token)
    return token
  }

  /** `state`: the stored state now known (a string), known absent (`null`), or unknown (`undefined`). */
  end(token: MemoryToken, state: string | null | undefined): void {
    const set = this.inflight.get(token.key)
    if (set !== undefined && set.delete(token) && set.size === 0) this.inflight.delete(token.key)
    if (state === null) {
      this.states.delete(token.key)
      return
    }
    if (state === undefined || token.spoiled) return
    this.states.set(token.key, state)
  }

  clear(): void {
    this.states.clear()
    for (const set of this.inflight.values()) for (const token of set) token.spoiled = true
  }
}

interface MemoryToken {
  readonly key: string
  readonly kind: "read" | "write"
  spoiled: boolean
}

/**
 * The sequencer's knowledge of each stream's last indexed version: the stream items of the
 * log table (what `listStreams` lists, and the version check's truth), raised lazily, and
 * the entries folded since the last raise (`dirty`), which complete them.
 *
 * - Stream items are raised with a conditional `UpdateItem` (`attribute_not_exists(v) OR
 *   v < :v`): an item only grows, so a raise is idempotent and a stale writer cannot lower it.
 * - `raised`: every entry up to this position has its stream items raised. Each entry
 *   records it as `r`; the claim stays true later, since items only grow.
 * - `dirty`: the last version (and position) of each stream in the entries folded since the
 *   last raise. Never evicted: with the stored items it is the truth.
 * - The versions read or folded are cached (Effect's `Cache`, least recently used first out);
 *   a miss costs one consistent `GetItem` (1 RCU).
 */
import { GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb"
import type { Errors } from "@dynamo-es/core"
import { Cache, Duration, Effect, Exit, Option } from "effect"
import { unconditional } from "../../DynamoClient.js"
import { type Entry, type makeLogTable, streamKey } from "../../DynamoEventLog.js"

/** The log table's primitives, as `makeLogTable` makes them. */
export type LogTable = Effect.Success<ReturnType<typeof makeLogTable>>

export interface StreamItemsOptions {
  readonly categoryOf: (streamId: string) => string
  /** Streams whose last indexed version is cached. */
  readonly cacheSize: number
  /** Raise after this many entries ... */
  readonly every: number
  /** ... or this many milliseconds after the last raise, whichever comes first. */
  readonly intervalMs: number
}

export const makeStreamItems = (t: LogTable, options: StreamItemsOptions) =>
  Effect.gen(function*() {
    const { categoryOf } = options
    const client = t.client

    /** The stream item's version: the truth once the entries' stream items are raised. */
    const storedVersion = (streamId: string): Effect.Effect<number, Errors.StorageError> =>
      unconditional(client.call("GetItem", t.table, (c, abortSignal) =>
        c.send(
          new GetItemCommand({
            TableName: t.table,
            Key: streamKey(categoryOf(streamId), streamId),
            ConsistentRead: true,
            ReturnConsumedCapacity: "TOTAL"
          }),
          { abortSignal }
        ))).pipe(Effect.map((r) => Number(r.Item?.v?.N ?? 0)))

    // A failed lookup is not kept: the next look asks the table again.
    const versions = yield* Cache.makeWith(storedVersion, {
      capacity: Math.max(0, options.cacheSize),
      timeToLive: (exit) => (Exit.isSuccess(exit) ? Duration.infinity : Duration.zero)
    })

    /** A version folded from an entry: the last indexed one of its stream, as far as the chain is folded. */
    const remember = (streamId: string, version: number) =>
      Effect.flatMap(Cache.getSuccess(versions, streamId), (known) =>
        Cache.set(versions, streamId, Math.max(Option.getOrElse(known, () => 0), version)))

    let raised = 0
    const dirty = new Map<string, { v: number; n: number }>()
    let entriesSinceFlush = 0
    let flushedAt = Date.now()

    /**
     * The last indexed version of a stream: the stored item covers the entries up to
     * `raised`, `dirty` those after it (the cache holds what either said).
     */
    const indexedVersion = (streamId: string) =>
      Effect.map(Cache.get(versions, streamId), (v) => Math.max(v, dirty.get(streamId)?.v ?? 0))

    /** Takes the events of an entry (written, or read from the log) into the state. */
    const fold = (entry: Entry) =>
      Effect.gen(function*() {
        for (let i = 0; i < entry.events.length; i++) {
          const e = entry.events[i]!
          const known = dirty.get(e.s)
          if (known === undefined || known.v < e.v) dirty.set(e.s, { v: e.v, n: entry.first + i })
          yield* remember(e.s, e.v)
        }
        if (entry.raised !== undefined && entry.raised > raised) {
          raised = entry.raised
          // Another writer raised the stream items up to there: what it covers is stored.
          for (const [streamId, { n }] of dirty) if (n <= raised) dirty.delete(streamId)
        }
        entriesSinceFlush++
      })

    /** Raises one stream item (monotonic, so idempotent and safe for a stale writer). */
    const raise = (streamId: string, v: number, n: number) =>
      client.call("UpdateItem", t.table, (c) =>
        c.send(
          new UpdateItemCommand({
            TableName: t.table,
            Key: streamKey(categoryOf(streamId), streamId),
            UpdateExpression: "SET v = :v, n = :n",
            ConditionExpression: "attribute_not_exists(v) OR v < :v",
            ExpressionAttributeValues: { ":v": { N: String(v) }, ":n": { N: String(n) } },
            ReturnConsumedCapacity: "TOTAL"
          })
        )).pipe(Effect.catchTag("ConditionFailed", () => Effect.void), unconditional)

    /** Raises the stream items of every entry folded so far (up to `through`); then `raised` is `through`. */
    const flush = (through: number) =>
      Effect.suspend(() => {
        const batch = [...dirty]
        return Effect.forEach(batch, ([streamId, { n, v }]) => raise(streamId, v, n), { concurrency: 8, discard: true }).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              for (const [streamId, value] of batch) if (dirty.get(streamId) === value) dirty.delete(streamId)
              raised = Math.max(raised, through)
              entriesSinceFlush = 0
              flushedAt = Date.now()
            })
          )
        )
      })

    /** `flush` once `every` entries or `intervalMs` have passed. */
    const flushDue = (through: number) =>
      Effect.suspend(() =>
        dirty.size > 0 && (entriesSinceFlush >= options.every || Date.now() - flushedAt >= options.intervalMs) ? flush(through) : Effect.void
      )

    return {
      indexedVersion,
      fold,
      flush,
      flushDue,
      get raised() {
        return raised
      },
      /** At start: the head entry's claim. */
      setRaised: (value: number) => {
        raised = value
      }
    }
  })

export type StreamItems = Effect.Success<ReturnType<typeof makeStreamItems>>

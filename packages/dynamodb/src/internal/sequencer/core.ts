/**
 * The sequencer's core: its state (next position, checkpoint, stream versions) and how a
 * batch of stream records (or stored events, in a repair scan) becomes dense entries of the
 * log table. Entry keys are the chain: the entry after `[a, b]` is written at `b + 1` with
 * `attribute_not_exists(k)`, only by an instance whose state is the fold of every entry
 * before it; when that put fails, the instance folds the entries written since and plans
 * again. The runner (`runner.ts`), the Lambda handler (`lambda.ts`) and the repair scan
 * (`repair.ts`) drive it; `DynamoSequencer` is its public face.
 */
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { type Errors, EventLog, EventStore } from "@dynamo-es/core"
import { Duration, Effect, Result, Stream } from "effect"
import { unconditional } from "../../DynamoClient.js"
import {
  type Checkpoint,
  checkpointKey,
  type Entry,
  type EntryEvent,
  entryEvent,
  entryItem,
  epochMarkerKey,
  makeLogTable,
  MAX_ENTRY_EVENTS,
  utf8Length
} from "../../DynamoEventLog.js"
import { fromItem } from "../../DynamoEventStore.js"
import { decodeRecord, type StreamRecord } from "../../DynamoStreams.js"
import { queryItems } from "../query.js"
import { makeStreamItems } from "./streamItems.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface SequencerOptions {
  readonly logTable: string
  readonly eventsTable: string
  /** The category rule of the log (default `EventLog.defaultCategory`); readers use the same. */
  readonly categoryOf?: ((streamId: string) => string) | undefined
  /** At most this many events per entry (default and maximum 1,000, and at most `epochSize`). */
  readonly maxEntryEvents?: number | undefined
  /** At most this many bytes of events (JSON) per entry (default 350,000; an item is at most 400 KB). */
  readonly maxEntryBytes?: number | undefined
  /** Streams whose last indexed version is cached (default 100,000); a miss costs one GetItem. */
  readonly cacheSize?: number | undefined
  /** Positions per epoch: the log table's layout (`DynamoEventLogOptions.epochSize`; default 1,000,000). */
  readonly epochSize?: number | undefined
  /**
   * How often, at most, a checkpoint is saved while batches bring nothing to index (only
   * removals by TTL, or duplicates); default 1 minute. Without it, a sequencer restarted after
   * a long quiet spell would read those records again, or even find them trimmed and scan the
   * table.
   */
  readonly checkpointInterval?: Duration.Input | undefined
  /**
   * The stream items (last indexed version of each stream: `listStreams` and the version
   * check) are raised lazily, after this many entries (default 20) or this long after the
   * last raise (`streamItemsInterval`, default 5 seconds), whichever comes first. A stream
   * written in several entries in between pays one write. Until then the entries since the
   * last raise are the truth (in memory, and read again at start). A new stream is listed by
   * `listStreams` at most about this late.
   */
  readonly streamItemsEvery?: number | undefined
  /** See `streamItemsEvery` (default 5 seconds). */
  readonly streamItemsInterval?: Duration.Input | undefined
}

/**
 * One record of a shard. Without `shardId` (Lambda events do not say which shard a record
 * comes from) the record is not checked against the checkpoint: redeliveries are then
 * dropped by version alone.
 *
 * @since 0.2.0
 * @category models
 */
export interface ShardRecord {
  readonly shardId?: string | undefined
  readonly record: StreamRecord
}

const bigger = (a: string, b: string | undefined) => b === undefined || (b !== "done" && BigInt(a) > BigInt(b))

/**
 * The sequencer's core: its state (next position, checkpoint, cached stream versions) and
 * how a batch of records becomes entries. One instance must be used by one fiber at a time
 * (the runner serialises); several instances (processes) may run at once safely.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeCore = (options: SequencerOptions) =>
  Effect.gen(function*() {
    const t = yield* makeLogTable(options)
    const client = t.client
    const categoryOf = options.categoryOf ?? EventLog.defaultCategory
    const maxEvents = Math.min(MAX_ENTRY_EVENTS, t.epochSize, Math.max(1, options.maxEntryEvents ?? MAX_ENTRY_EVENTS))
    const maxBytes = options.maxEntryBytes ?? 350_000
    const cacheSize = options.cacheSize ?? 100_000

    let next = 1
    /** The first position of the last entry (0 before the first entry). */
    let previousFirst = 0
    let checkpoint: Checkpoint = {}
    let token = 0
    const streamItems = yield* makeStreamItems(t, {
      categoryOf,
      cacheSize,
      every: Math.max(1, options.streamItemsEvery ?? 20),
      intervalMs: Duration.toMillis(Duration.fromInputUnsafe(options.streamItemsInterval ?? "5 seconds"))
    })
    /** Raises the stream items of every entry folded so far. */
    const flush = Effect.suspend(() => streamItems.flush(next - 1))
    /** `flush` once `streamItemsEvery` entries or `streamItemsInterval` have passed. */
    const flushDue = Effect.suspend(() => streamItems.flushDue(next - 1))

    /** Takes an entry (written, or read from the log) into the state. */
    const fold = (entry: Entry) =>
      Effect.andThen(
        streamItems.fold(entry),
        Effect.sync(() => {
          next = entry.first + entry.events.length
          previousFirst = entry.first
          checkpoint = entry.checkpoint
        })
      )

    /** Reads and folds every entry from `next` on (written by someone else). */
    const catchUp = Effect.gen(function*() {
      while (true) {
        const { entries } = yield* t.readEntries(next - 1, undefined, true, true)
        const fresh = entries.filter((e) => e.first + e.events.length > next)
        if (fresh.length === 0) return
        for (const entry of fresh) yield* fold(entry)
      }
    })

    /**
     * The checkpoint saved by a quiet batch: its claim ("every record up to here is indexed or
     * not an event") was true when written, so it is merged with the head entry's by taking the
     * further position of each shard.
     */
    const savedCheckpoint = unconditional(client.call("GetItem", t.table, (c, abortSignal) =>
      c.send(new GetItemCommand({ TableName: t.table, Key: checkpointKey, ConsistentRead: true, ReturnConsumedCapacity: "TOTAL" }), {
        abortSignal
      }))).pipe(Effect.map((r) => (r.Item?.q?.S === undefined ? {} : JSON.parse(r.Item.q.S) as Checkpoint)))

    const checkpointEvery = Duration.toMillis(Duration.fromInputUnsafe(options.checkpointInterval ?? "1 minute"))
    let savedAt = 0
    const saveCheckpoint = (value: Checkpoint) =>
      Effect.suspend(() => {
        if (Date.now() - savedAt < checkpointEvery) return Effect.void
        savedAt = Date.now()
        return unconditional(client.call("PutItem", t.table, (c) =>
          c.send(new PutItemCommand({
            TableName: t.table,
            Item: { ...checkpointKey, q: { S: JSON.stringify(value) }, w: { N: String(Date.now()) } },
            ReturnConsumedCapacity: "TOTAL"
          })))).pipe(Effect.asVoid)
      })

    /** Loads the head of the log: where to write next, and from where to read the stream. */
    const load = Effect.gen(function*() {
      // The entries after the head's `raised` may lack their stream items: read and fold them
      // all (at most `streamItemsEvery` entries, or what one `streamItemsInterval` wrote).
      const head = yield* t.lastEntry(true)
      if (head !== undefined) {
        streamItems.setRaised(head.raised ?? head.first - 1)
        next = streamItems.raised + 1
        yield* catchUp
        if (next < head.first + head.events.length) {
          return yield* Effect.die(new Error(`DynamoSequencer: the log's entries after position ${streamItems.raised} do not reach its head entry at ${head.first}`))
        }
      }
      const saved = yield* savedCheckpoint
      const merged: Record<string, string> = { ...checkpoint }
      for (const [shard, at] of Object.entries(saved)) {
        const mine = merged[shard]
        if (mine === undefined || (mine !== "done" && (at === "done" || BigInt(at) > BigInt(mine)))) merged[shard] = at
      }
      checkpoint = merged
    })

    /** The events of a stream's versions from..to, from the events table (consistent). */
    const readRange = (streamId: string, from: number, to: number) =>
      Stream.runCollect(queryItems(client, t.events, {
        KeyConditionExpression: "s = :s AND v BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":s": { S: streamId }, ":from": { N: String(from) }, ":to": { N: String(to) } },
        ConsistentRead: true
      })).pipe(Effect.map((items) => items.map((item) => fromItem(streamId, item))))

    const asEntryEvent = (stored: EventStore.StoredEvent): EntryEvent =>
      // An event that does not decode is indexed as a pointer: a reader gets the same
      // CorruptedEventError (stream, version) as a read of the store, and can read past it.
      Result.isSuccess(EventStore.decodeStored(stored)) ? entryEvent(stored) : { s: stored.streamId, v: stored.version, ptr: 1 }

    /**
     * The events to index for a batch, in order, and the checkpoint after it. Records at or
     * below the checkpoint and versions already indexed are dropped; a hole is repaired.
     */
    const plan = (records: ReadonlyArray<ShardRecord>, stored: ReadonlyArray<EventStore.StoredEvent>) =>
      Effect.gen(function*() {
        const events: Array<EntryEvent> = []
        const pending = new Map<string, number>()
        const after: Record<string, string> = { ...checkpoint }
        const add = (e: EntryEvent) =>
          Effect.gen(function*() {
            const known = pending.get(e.s) ?? (yield* streamItems.indexedVersion(e.s))
            if (e.v <= known) return
            if (e.v > known + 1) {
              // A hole: records not seen yet, or lost. The events table holds every version
              // that still exists (a version is written only after the one before it
              // committed, and this Query is consistent), so what it lacks was deleted, by
              // TTL or by hand: the store no longer has it, and neither does the log.
              const stored = yield* readRange(e.s, known + 1, e.v - 1)
              for (const found of stored) events.push(asEntryEvent(found))
              const deleted = e.v - 1 - known - stored.length
              if (deleted > 0) {
                yield* Effect.logWarning(
                  `DynamoSequencer: ${deleted} of the versions ${known + 1} to ${e.v - 1} of stream "${e.s}" are no longer in the events table (deleted by TTL?): not in the log`
                )
              }
            }
            events.push(e)
            pending.set(e.s, e.v)
          })
        for (const { record, shardId } of records) {
          if (shardId !== undefined) {
            const sequence = record.dynamodb?.SequenceNumber
            if (sequence === undefined || !bigger(sequence, after[shardId])) continue
            after[shardId] = sequence
          }
          const decoded = decodeRecord(record)
          if (Result.isFailure(decoded)) {
            yield* add({ s: decoded.failure.streamId, v: decoded.failure.version, ptr: 1 })
          } else if (decoded.success._tag === "Event") {
            yield* add(entryEvent(decoded.success.stored))
          }
        }
        for (const e of stored) yield* add(asEntryEvent(e))
        return { events, checkpoint: after }
      })

    /** Cuts events into entries within the count and size limits. */
    const chunks = (events: ReadonlyArray<EntryEvent>) => {
      const out: Array<Array<EntryEvent>> = []
      let current: Array<EntryEvent> = []
      let bytes = 0
      for (const e of events) {
        const size = utf8Length(JSON.stringify(e)) + 1
        if (current.length > 0 && (current.length >= maxEvents || bytes + size > maxBytes)) {
          out.push(current)
          current = []
          bytes = 0
        }
        current.push(e)
        bytes += size
      }
      if (current.length > 0) out.push(current)
      return out
    }

    /** Writes one entry at `next`; `false` when that key is taken (someone else wrote it). */
    const writeEntry = (entry: Entry) =>
      Effect.gen(function*() {
        const epoch = t.epochOf(entry.first)
        // The first entry of its epoch's partition (the one before may have started in the
        // previous epoch and ended in this one): the marker goes first.
        if (previousFirst === 0 || t.epochOf(previousFirst) !== epoch) {
          yield* unconditional(client.call("PutItem", t.table, (c) =>
            c.send(new PutItemCommand({ TableName: t.table, Item: epochMarkerKey(epoch), ReturnConsumedCapacity: "TOTAL" }))))
        }
        return yield* client.call("PutItem", t.table, (c) =>
          c.send(
            new PutItemCommand({
              TableName: t.table,
              Item: entryItem(t.entryKey(entry.first), entry, Date.now()),
              ConditionExpression: "attribute_not_exists(k)",
              ReturnConsumedCapacity: "TOTAL"
            })
          )).pipe(
            Effect.as(true),
            Effect.catchTag("ConditionFailed", () => Effect.succeed(false)),
            unconditional
          )
      })

    /**
     * Indexes a batch: records of the stream (in shard order) and/or stored events from the
     * events table (a repair scan), then marks `doneShards` as read to their end. Returns the
     * number of events indexed by this call.
     */
    const index = (
      records: ReadonlyArray<ShardRecord>,
      stored: ReadonlyArray<EventStore.StoredEvent> = [],
      doneShards: ReadonlyArray<string> = []
    ) =>
      Effect.gen(function*() {
        while (true) {
          const planned = yield* plan(records, stored)
          for (const shard of doneShards) planned.checkpoint[shard] = "done"
          const parts = chunks(planned.events)
          // Nothing to index: the checkpoint moves with the next entry, or is saved by itself
          // after a quiet `checkpointInterval` (records before it would only be dropped again).
          if (parts.length === 0) {
            const moved = JSON.stringify(planned.checkpoint) !== JSON.stringify(checkpoint)
            checkpoint = planned.checkpoint
            if (moved) yield* saveCheckpoint(checkpoint)
            return 0
          }
          let written = 0
          let lost = false
          for (let i = 0; i < parts.length; i++) {
            // Only the last entry carries the batch's checkpoint; a restart between entries
            // reads the records again and drops what is indexed by version.
            const entry: Entry = {
              first: next,
              events: parts[i]!,
              checkpoint: i === parts.length - 1 ? planned.checkpoint : checkpoint,
              token,
              raised: streamItems.raised
            }
            if (!(yield* writeEntry(entry))) {
              lost = true
              break
            }
            yield* fold(entry)
            savedAt = Date.now()
            written += entry.events.length
          }
          if (!lost) {
            yield* flushDue
            return written
          }
          // Someone else extended the log: take their entries in, then plan again.
          yield* catchUp
        }
      })

    return {
      load,
      index,
      catchUp,
      get next() {
        return next
      },
      get checkpoint() {
        return checkpoint
      },
      setToken: (value: number) => {
        token = value
      },
      /**
       * Drops shards that the stream no longer lists (trimmed 24 hours after they closed) from
       * the checkpoint, which would otherwise grow by a shard every few hours for ever. It is
       * saved with the next entry or quiet checkpoint.
       */
      forget: (shardIds: ReadonlyArray<string>) => {
        const kept: Record<string, string> = { ...checkpoint }
        for (const id of shardIds) delete kept[id]
        checkpoint = kept
      },
      flush,
      flushDue,
      table: t
    }
  })

/**
 * The sequencer's core, as {@link makeCore} makes it.
 *
 * @since 0.2.0
 * @category models
 */
export type Core = Effect.Success<ReturnType<typeof makeCore>>

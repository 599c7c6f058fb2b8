/**
 * The sequencer of the global log: reads the events table's DynamoDB Stream and appends
 * what it sees to the log table as dense entries (see `docs/global-log.md` for the design
 * and the proof; `DynamoEventLog` for the layout).
 *
 * - Entry keys are the chain: the entry after `[a, b]` is written at `b + 1` with
 *   `attribute_not_exists(k)`, only by a sequencer whose state is the fold of every entry
 *   before it. When the put fails, someone else wrote that entry: the sequencer reads the
 *   entries from there (consistent `Query`), folds them, and plans its batch again. So the
 *   log stays dense and nothing is indexed twice even with two sequencers at once; the lease
 *   only keeps a second instance idle.
 * - Per stream, version `v` is indexed only after `v - 1`. The last indexed version of a
 *   stream is cached; the truth is the stream item of the log table together with the
 *   entries after the position its items were last raised for (`r` in each entry): items are
 *   raised lazily (`streamItemsEvery` entries or `streamItemsInterval`), and the entries since
 *   are kept in memory and read again at start. A hole (`v` above the next version) is
 *   repaired with a consistent `Query` of the events table.
 * - The checkpoint (shard -> last sequence number) is in each entry: an entry and its
 *   checkpoint are one item. Redelivered records are dropped by sequence number and by version.
 * - `TrimmedDataAccessException` (the sequencer was down longer than the stream's 24 hours):
 *   a repair scan of the events table indexes whatever is missing, then reading resumes at
 *   the trim horizon. A backfill of a table that predates the log is the same scan.
 *
 * @since 0.2.0
 */
import {
  type AttributeValue,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand
} from "@aws-sdk/client-dynamodb"
// Type-only: the DynamoDB Streams SDK is an optional peer dependency, loaded when a runner
// starts (the Lambda handler and the core do not need it).
import type {
  DescribeStreamCommandOutput,
  GetRecordsCommandOutput,
  GetShardIteratorCommandOutput,
  Shard
} from "@aws-sdk/client-dynamodb-streams"
import { Errors, EventLog, EventStore } from "@dynamo-es/core"
import { Cause, Duration, Effect, Exit, Fiber, Layer, ManagedRuntime, Result, Schedule, Schema, Semaphore, Stream } from "effect"
import { DynamoClient, unconditional } from "./DynamoClient.js"
import {
  type Checkpoint,
  type Entry,
  type EntryEvent,
  entryEvent,
  entryItem,
  epochMarkerKey,
  checkpointKey,
  leaseKey,
  makeLogTable,
  MAX_ENTRY_EVENTS,
  streamKey,
  utf8Length
} from "./DynamoEventLog.js"
import { fromItem } from "./DynamoEventStore.js"
import { queryItems } from "./internal/query.js"
import { decodeRecord, type LambdaStreamEvent, type StreamRecord } from "./DynamoStreams.js"

/**
 * The events table has a hole the sequencer cannot fill: a version missing from the table
 * while a later one exists (the event store never produces this). The sequencer stops
 * rather than skip it.
 *
 * @since 0.2.0
 * @category errors
 */
export class SequencerHoleError extends Schema.TaggedError<SequencerHoleError>()("SequencerHoleError", {
  streamId: Schema.String,
  version: Schema.Int
}) {
  override get message(): string {
    return `The events table has no version ${this.version} of stream "${this.streamId}" although a later version exists: the global log cannot skip it. Restore the event, then restart the sequencer.`
  }
}

/**
 * This instance lost the sequencer lease (another one holds it): it stops.
 *
 * @since 0.2.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", { owner: Schema.String }) {}

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
    const versions = new Map<string, number>()
    const remember = (streamId: string, version: number) => {
      const known = versions.get(streamId) ?? 0
      versions.delete(streamId)
      versions.set(streamId, Math.max(known, version))
      if (versions.size > cacheSize) versions.delete(versions.keys().next().value!)
    }

    /** The stream item's version: the truth once the entries' stream items are raised. */
    const storedVersion = (streamId: string) =>
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

    /**
     * The last indexed version of a stream: the stored item covers the entries up to
     * `raised`, `dirty` those after it (the cache holds what either said).
     */
    const indexedVersion = (streamId: string) => {
      const cached = versions.get(streamId)
      const pending = dirty.get(streamId)?.v ?? 0
      return cached !== undefined ? Effect.succeed(Math.max(cached, pending)) : Effect.map(storedVersion(streamId), (v) => {
        remember(streamId, Math.max(v, pending))
        return Math.max(v, pending)
      })
    }

    /**
     * Stream items are raised lazily. `raised`: every entry up to this position has its stream
     * items raised (each entry records it as `r`, still true later since items only grow).
     * `dirty`: the last version (and position) of each stream in the entries this instance
     * folded since its last raise: never evicted, so that with the stored items it is the truth.
     */
    let raised = 0
    const dirty = new Map<string, { v: number; n: number }>()
    const flushEvery = Math.max(1, options.streamItemsEvery ?? 20)
    const flushInterval = Duration.toMillis(Duration.fromInputUnsafe(options.streamItemsInterval ?? "5 seconds"))
    let entriesSinceFlush = 0
    let flushedAt = Date.now()

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

    /** Raises the stream items of every entry folded so far; then `raised` is the head. */
    const flush = Effect.suspend(() => {
      const through = next - 1
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

    /** `flush` once `streamItemsEvery` entries or `streamItemsInterval` have passed. */
    const flushDue = Effect.suspend(() =>
      dirty.size > 0 && (entriesSinceFlush >= flushEvery || Date.now() - flushedAt >= flushInterval) ? flush : Effect.void
    )

    /** Takes an entry (written, or read from the log) into the state. */
    const fold = (entry: Entry) =>
      Effect.sync(() => {
        entry.events.forEach((e, i) => {
          const known = dirty.get(e.s)
          if (known === undefined || known.v < e.v) dirty.set(e.s, { v: e.v, n: entry.first + i })
          remember(e.s, e.v)
        })
        next = entry.first + entry.events.length
        previousFirst = entry.first
        checkpoint = entry.checkpoint
        if (entry.raised !== undefined && entry.raised > raised) {
          raised = entry.raised
          // Another writer raised the stream items up to there: what it covers is stored.
          for (const [streamId, { n }] of dirty) if (n <= raised) dirty.delete(streamId)
        }
        entriesSinceFlush++
      })

    /** Reads and folds every entry from `next` on (written by someone else). */
    const catchUp = Effect.gen(function*() {
      while (true) {
        const { entries } = yield* t.readEntries(next - 1, undefined, true, true)
        const fresh = entries.filter((e) => e.first + e.events.length > next)
        if (fresh.length === 0) return
        for (const entry of fresh) yield* fold(entry)
      }
    })

    /** Loads the head of the log: where to write next, and from where to read the stream. */
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

    const load = Effect.gen(function*() {
      // The entries after the head's `raised` may lack their stream items: read and fold them
      // all (at most `streamItemsEvery` entries, or what one `streamItemsInterval` wrote).
      const head = yield* t.lastEntry(true)
      if (head !== undefined) {
        raised = head.raised ?? head.first - 1
        next = raised + 1
        yield* catchUp
        if (next < head.first + head.events.length) {
          return yield* Effect.die(new Error(`DynamoSequencer: the log's entries after position ${raised} do not reach its head entry at ${head.first}`))
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
            const known = pending.get(e.s) ?? (yield* indexedVersion(e.s))
            if (e.v <= known) return
            if (e.v > known + 1) {
              const missing = yield* readRange(e.s, known + 1, e.v - 1)
              for (let v = known + 1; v < e.v; v++) {
                const found = missing.find((m) => m.version === v)
                if (found === undefined) return yield* new SequencerHoleError({ streamId: e.s, version: v })
                events.push(asEntryEvent(found))
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
              raised
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

// -----------------------------------------------------------------------------
// the lease
// -----------------------------------------------------------------------------

/**
 * Takes the lease if it is free, expired or already ours; returns the new fencing token, or
 * `undefined` when another owner holds it.
 *
 * @since 0.2.0
 * @category lease
 */
export const acquireLease = (core: Core, owner: string, duration: Duration.Duration) =>
  core.table.client.call("UpdateItem", core.table.table, (c) =>
    c.send(
      new UpdateItemCommand({
        TableName: core.table.table,
        Key: leaseKey,
        UpdateExpression: "SET o = :o, x = :x ADD f :one",
        ConditionExpression: "attribute_not_exists(p) OR x < :now OR o = :o",
        ExpressionAttributeValues: {
          ":o": { S: owner },
          ":x": { N: String(Date.now() + Duration.toMillis(duration)) },
          ":now": { N: String(Date.now()) },
          ":one": { N: "1" }
        },
        ReturnValues: "ALL_NEW",
        ReturnConsumedCapacity: "TOTAL"
      })
    )).pipe(
      Effect.map((r): number | undefined => Number(r.Attributes?.f?.N ?? 0)),
      Effect.catchTag("ConditionFailed", () => Effect.succeed(undefined)),
      unconditional
    )

const renewLease = (core: Core, owner: string, token: number, duration: Duration.Duration) =>
  core.table.client.call("UpdateItem", core.table.table, (c) =>
    c.send(
      new UpdateItemCommand({
        TableName: core.table.table,
        Key: leaseKey,
        UpdateExpression: "SET x = :x",
        ConditionExpression: "o = :o AND f = :f",
        ExpressionAttributeValues: {
          ":o": { S: owner },
          ":f": { N: String(token) },
          ":x": { N: String(Date.now() + Duration.toMillis(duration)) }
        },
        ReturnConsumedCapacity: "TOTAL"
      })
    )).pipe(
      Effect.asVoid,
      Effect.catchTag("ConditionFailed", () => Effect.fail(new LeaseLost({ owner }))),
      unconditional
    )

const releaseLease = (core: Core, owner: string, token: number) =>
  core.table.client.call("UpdateItem", core.table.table, (c) =>
    c.send(
      new UpdateItemCommand({
        TableName: core.table.table,
        Key: leaseKey,
        UpdateExpression: "SET x = :zero",
        ConditionExpression: "o = :o AND f = :f",
        ExpressionAttributeValues: { ":o": { S: owner }, ":f": { N: String(token) }, ":zero": { N: "0" } }
      })
    )).pipe(Effect.ignore)

// -----------------------------------------------------------------------------
// the in-process runner
// -----------------------------------------------------------------------------

/**
 * A DynamoDB Streams client as the runner uses it: the SDK's `DynamoDBStreamsClient` (from the
 * optional peer dependency `@aws-sdk/client-dynamodb-streams`), or a wrapper around one.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamsClient {
  // Loosely typed so that the type does not need the optional SDK package.
  readonly send: (command: any, options?: any) => Promise<any>
  readonly destroy: () => void
}

const loadStreamsSdk = Effect.tryPromise({
  try: () => import("@aws-sdk/client-dynamodb-streams"),
  catch: (cause) =>
    new Error(
      `DynamoSequencer: the in-process runner reads the DynamoDB Stream with @aws-sdk/client-dynamodb-streams; install it (npm install @aws-sdk/client-dynamodb-streams). ${String(cause)}`
    )
}).pipe(Effect.orDie)

/**
 * A DynamoDB Streams client with the DynamoDB client's region, credentials and (custom)
 * endpoint, sending each request once (`DynamoClient`'s schedule retries). Needs the optional
 * peer dependency `@aws-sdk/client-dynamodb-streams`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const streamsClientFor = (client: DynamoClient["Service"]): Effect.Effect<StreamsClient> =>
  Effect.map(loadStreamsSdk, (sdk) => {
    const config = client.sdk.config as unknown as {
      readonly region: unknown
      readonly credentials: unknown
      readonly endpoint?: unknown
      readonly isCustomEndpoint?: boolean
    }
    return new sdk.DynamoDBStreamsClient({
      region: config.region as string,
      credentials: config.credentials as never,
      ...(config.isCustomEndpoint && config.endpoint !== undefined ? { endpoint: config.endpoint as string } : {}),
      maxAttempts: 1
    })
  })

/**
 * @since 0.2.0
 * @category models
 */
export interface RunOptions extends SequencerOptions {
  /**
   * The DynamoDB Streams client (created with `maxAttempts: 1`: `DynamoClient`'s schedule
   * retries). Default: one with the DynamoDB client's region, credentials and endpoint.
   */
  readonly streams?: StreamsClient | undefined
  /** This instance's name in the lease (default: a random one). */
  readonly owner?: string | undefined
  /** Lease duration (default 30 s), renewed every third of it. */
  readonly leaseDuration?: Duration.Input | undefined
  /** `false` runs without a lease (tests of concurrent sequencers; safe, but wasteful). */
  readonly lease?: boolean | undefined
  /** The wait when no shard has new records (default 1 s). */
  readonly pollInterval?: Duration.Input | undefined
  /**
   * How long records read from the stream may wait to be indexed together (default 500 ms):
   * a steady trickle of events then makes entries of many events instead of one entry (at
   * least 1 WCU) per page of a few. It adds at most this much to the lag; 1,000 waiting
   * records are indexed at once.
   */
  readonly batchWindow?: Duration.Input | undefined
  /** Segments of the repair scan (default 4). */
  readonly scanSegments?: number | undefined
}

const failedWith = (name: string) => (e: unknown) =>
  typeof e === "object" && e !== null && (e as { _tag?: string })._tag === "StorageError" &&
  (e as Errors.StorageError).detail.startsWith(name)

/**
 * Indexes every event of the events table that is not in the log yet, with a parallel
 * `Scan` (a stream's items come back in version order within a segment). The repair after
 * trimmed stream data, and the backfill of a table whose history predates the log. Safe to
 * run at any time and concurrently with the stream: what is indexed already is dropped.
 *
 * @since 0.2.0
 * @category operations
 */
export const repairScan = (core: Core, options: { readonly segments?: number | undefined; readonly lock?: Semaphore.Semaphore | undefined } = {}) =>
  Effect.gen(function*() {
    const segments = Math.max(1, options.segments ?? 4)
    const lock = options.lock ?? (yield* Semaphore.make(1))
    const t = core.table
    yield* Effect.forEach(Array.from({ length: segments }, (_, i) => i), (segment) =>
      Effect.gen(function*() {
        let start: Record<string, AttributeValue> | undefined
        do {
          const r = yield* unconditional(t.client.call("Scan", t.events, (c, abortSignal) =>
            c.send(
              new ScanCommand({
                TableName: t.events,
                Segment: segment,
                TotalSegments: segments,
                ConsistentRead: true,
                ExclusiveStartKey: start,
                ReturnConsumedCapacity: "TOTAL"
              }),
              { abortSignal }
            )))
          const stored = (r.Items ?? [])
            .filter((item) => item.s?.S !== undefined && item.v?.N !== undefined)
            .map((item) => fromItem(item.s!.S!, item))
          yield* lock.withPermits(1)(core.index([], stored))
          start = r.LastEvaluatedKey
        } while (start !== undefined)
      }), { concurrency: segments, discard: true })
  })

/**
 * Runs the sequencer in this process until interrupted (or until it fails): takes the lease
 * (waiting while another instance holds it), loads the head of the log, then reads the
 * events table's stream shard by shard (parents before children) and indexes what it reads.
 * Use it in a scope (`Effect.forkScoped`), or as the body of a long-running program.
 *
 * @since 0.2.0
 * @category runners
 */
export const run = (options: RunOptions) =>
  Effect.gen(function*() {
    const core = yield* makeCore(options)
    const client = core.table.client
    const owner = options.owner ?? `sequencer-${Math.random().toString(36).slice(2)}`
    const leaseDuration = Duration.fromInputUnsafe(options.leaseDuration ?? "30 seconds")
    const pollInterval = Duration.fromInputUnsafe(options.pollInterval ?? "1 second")
    const lock = yield* Semaphore.make(1)

    if (options.lease !== false) {
      const token = yield* acquireLease(core, owner, leaseDuration).pipe(
        Effect.flatMap((t) => (t === undefined ? Effect.fail("held" as const) : Effect.succeed(t))),
        Effect.retry({ while: (e) => e === "held", schedule: Schedule.spaced(Duration.divideUnsafe(leaseDuration, 3)) }),
        Effect.catchIf((e): e is "held" => e === "held", () => Effect.die("unreachable"))
      )
      core.setToken(token)
      yield* Effect.addFinalizer(() => releaseLease(core, owner, token))
      const renewal = yield* renewLease(core, owner, token, leaseDuration).pipe(
        Effect.repeat(Schedule.spaced(Duration.divideUnsafe(leaseDuration, 3))),
        Effect.forkScoped
      )
      yield* Effect.addFinalizer(() => Fiber.interrupt(renewal))
      // A lost lease stops the runner (the renewal fiber's failure is joined below).
      return yield* Effect.raceFirst(Fiber.join(renewal).pipe(Effect.flatMap(() => Effect.never)), loop(core, options, client, pollInterval, lock))
    }
    return yield* loop(core, options, client, pollInterval, lock)
  })

const loop = (
  core: Core,
  options: RunOptions,
  client: DynamoClient["Service"],
  pollInterval: Duration.Duration,
  lock: Semaphore.Semaphore
) =>
  Effect.gen(function*() {
    yield* lock.withPermits(1)(core.load)
    const description = yield* unconditional(client.call("DescribeTable", options.eventsTable, (c, abortSignal) =>
      c.send(new DescribeTableCommand({ TableName: options.eventsTable }), { abortSignal })))
    const streamArn = description.Table?.LatestStreamArn
    if (streamArn === undefined) {
      return yield* Effect.die(new Error(`DynamoSequencer: the table ${options.eventsTable} has no DynamoDB Stream (StreamSpecification NEW_IMAGE)`))
    }
    const { DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand } = yield* loadStreamsSdk
    const streams = options.streams ?? (yield* Effect.acquireRelease(
      streamsClientFor(client),
      (c) => Effect.sync(() => c.destroy())
    ))
    const send = <A>(operation: string, f: (signal: AbortSignal) => Promise<A>) =>
      unconditional(client.call(operation, streamArn, (_, signal) => f(signal)))

    const iterators = new Map<string, string | undefined>()
    const batchWindowMs = Duration.toMillis(Duration.fromInputUnsafe(options.batchWindow ?? "500 millis"))

    const listShards = Effect.gen(function*() {
      const shards: Array<Shard> = []
      let start: string | undefined
      do {
        const r = yield* send("DescribeStream", (abortSignal) =>
          streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }), { abortSignal }) as Promise<DescribeStreamCommandOutput>)
        shards.push(...(r.StreamDescription?.Shards ?? []))
        start = r.StreamDescription?.LastEvaluatedShardId
      } while (start !== undefined)
      return shards
    })

    const iteratorFor = (shardId: string) => {
      const at = core.checkpoint[shardId]
      return send("GetShardIterator", (abortSignal) =>
        streams.send(
          new GetShardIteratorCommand({
            StreamArn: streamArn,
            ShardId: shardId,
            ...(at === undefined ? { ShardIteratorType: "TRIM_HORIZON" } : { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: at })
          }),
          { abortSignal }
        ) as Promise<GetShardIteratorCommandOutput>).pipe(Effect.map((r) => r.ShardIterator))
    }

    /**
     * Records read and not indexed yet: indexed together once `batchWindow` has passed since
     * the first of them (or 1,000 are waiting, or a shard was read to its end), so that a
     * steady trickle of events makes entries of many events, not one entry (at least 1 WCU)
     * per page of a few. The checkpoint moves only when they are indexed: a crash re-reads them.
     */
    const pending: Array<ShardRecord> = []
    const pendingDone: Array<string> = []
    let pendingSince = 0
    const indexPending = Effect.suspend(() => {
      const records = pending.splice(0)
      const done = pendingDone.splice(0)
      return lock.withPermits(1)(core.index(records, [], done))
    })

    /** Reads one page of a shard into `pending`; `true` when records came. */
    const step = (shardId: string) =>
      Effect.gen(function*() {
        let iterator = iterators.get(shardId)
        if (iterator === undefined) {
          iterator = yield* iteratorFor(shardId)
          if (iterator === undefined) {
            pendingDone.push(shardId)
            return false
          }
        }
        const page = yield* send("GetRecords", (abortSignal) =>
          streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }), { abortSignal }) as Promise<GetRecordsCommandOutput>)
        const records = (page.Records ?? []).map((record) => ({ shardId, record: record as StreamRecord }))
        const closed = page.NextShardIterator === undefined
        if (records.length > 0 && pending.length === 0) pendingSince = Date.now()
        pending.push(...records)
        if (closed) pendingDone.push(shardId)
        iterators.set(shardId, page.NextShardIterator)
        if (closed) iterators.delete(shardId)
        return records.length > 0
      }).pipe(
        // An expired iterator (15 minutes): a new one after the checkpoint.
        Effect.catchIf(failedWith("ExpiredIteratorException"), () => Effect.sync(() => iterators.delete(shardId)).pipe(Effect.as(true))),
        // Records gone (down for more than 24 hours): repair from the table, then read the
        // stream from its trim horizon (what the scan indexed is dropped by version).
        Effect.catchIf(failedWith("TrimmedDataAccessException"), () =>
          Effect.gen(function*() {
            yield* repairScan(core, { segments: options.scanSegments, lock })
            const horizon = yield* send("GetShardIterator", (abortSignal) =>
              streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }), { abortSignal }) as Promise<GetShardIteratorCommandOutput>)
            iterators.set(shardId, horizon.ShardIterator)
            return true
          }))
      )

    while (true) {
      const shards = yield* listShards
      const ids = new Set(shards.map((s) => s.ShardId!))
      const gone = Object.keys(core.checkpoint).filter((id) => !ids.has(id))
      if (gone.length > 0) {
        yield* indexPending
        // A shard trimmed before it was read to its end lost records: repair from the table.
        if (gone.some((id) => core.checkpoint[id] !== "done")) yield* repairScan(core, { segments: options.scanSegments, lock })
        core.forget(gone)
      }
      // Parents before children: a shard is read once its parent is done or gone (trimmed).
      const readable = shards.filter((s) =>
        core.checkpoint[s.ShardId!] !== "done" &&
        (s.ParentShardId === undefined || !ids.has(s.ParentShardId) || core.checkpoint[s.ParentShardId] === "done")
      )
      let progressed = false
      for (const shard of readable) {
        if (yield* step(shard.ShardId!)) progressed = true
      }
      const waited = Date.now() - pendingSince
      if (pending.length >= MAX_ENTRY_EVENTS || pendingDone.length > 0 || (pending.length > 0 && waited >= batchWindowMs)) {
        yield* indexPending
      }
      if (!progressed) {
        // Quiet: raise the stream items of the last entries once `streamItemsInterval` passed.
        yield* lock.withPermits(1)(core.flushDue)
        yield* Effect.sleep(pending.length > 0 ? Duration.millis(Math.max(0, Math.min(Duration.toMillis(pollInterval), batchWindowMs - waited))) : pollInterval)
      }
    }
  })

/**
 * The sequencer as a scoped service: runs in the background for as long as the layer lives,
 * and restarts after a failure (a restart is always safe: the log's state is in the log), with
 * backoff, logging the failure.
 *
 * ```ts
 * const SequencerLive = DynamoSequencer.layer({ eventsTable: "events", logTable: "log" }).pipe(
 *   Layer.provide(DynamoClient.layerConfig())
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: RunOptions): Layer.Layer<never, never, DynamoClient> =>
  Layer.effectDiscard(
    run(options).pipe(
      Effect.scoped,
      Effect.tapCause((cause) => Effect.logError("DynamoSequencer stopped; restarting", cause)),
      Effect.retry(Schedule.min([Schedule.exponential("1 second"), Schedule.spaced("30 seconds")])),
      Effect.forkScoped
    )
  )

// -----------------------------------------------------------------------------
// the Lambda entry point
// -----------------------------------------------------------------------------

/**
 * @since 0.2.0
 * @category lambda
 */
export interface EventSourceMappingOptions {
  /** The events table's name, as in `Tables.eventsTable(name)` of the same template. */
  readonly eventsTable: string
  /** The sequencer function (`lambdaHandler`): a name, an ARN, or a CloudFormation reference such as `{ Ref: "Sequencer" }`. */
  readonly functionName: unknown
  /** Records per invocation (default 1,000: one entry per batch keeps the write cost low). */
  readonly batchSize?: number | undefined
  /** How long Lambda gathers records before invoking (default 1 s: the lag it adds). */
  readonly batchingWindowSeconds?: number | undefined
  /**
   * Where a new mapping starts (default `TRIM_HORIZON`: the stream's last 24 hours, so that
   * nothing written since is missed; older history is a backfill, `repairScan`).
   */
  readonly startingPosition?: "TRIM_HORIZON" | "LATEST" | undefined
}

/**
 * The Lambda event source mapping of the sequencer on the events table's stream, as a
 * CloudFormation `Resources` object to merge with `Tables.cloudFormation([...])` (the stream
 * ARN refers to the events table's resource there; `dynamo-es tables print
 * --sequencer-function NAME` prints both). Settings that the log's guarantees need:
 * `FunctionResponseTypes: ["ReportBatchItemFailures"]` (a failed batch is retried from the
 * record the handler names), `MaximumRetryAttempts: -1` and `MaximumRecordAgeInSeconds: -1`
 * (retry until it succeeds: a record given up would be a hole, repaired only when a later
 * version of its stream comes), no bisection and no on-failure destination, and
 * `ParallelizationFactor: 1` (one invocation per shard, so a stream's records come in order).
 *
 * @since 0.2.0
 * @category lambda
 */
export const eventSourceMapping = (options: EventSourceMappingOptions): Record<string, unknown> => {
  // The logical id `Tables.cloudFormation` gives the events table's resource.
  const table = options.eventsTable.replace(/[^A-Za-z0-9]/g, "") + "Table"
  return {
    [`${table}SequencerMapping`]: {
      Type: "AWS::Lambda::EventSourceMapping",
      Properties: {
        EventSourceArn: { "Fn::GetAtt": [table, "StreamArn"] },
        FunctionName: options.functionName,
        StartingPosition: options.startingPosition ?? "TRIM_HORIZON",
        BatchSize: options.batchSize ?? 1000,
        MaximumBatchingWindowInSeconds: options.batchingWindowSeconds ?? 1,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        MaximumRetryAttempts: -1,
        MaximumRecordAgeInSeconds: -1,
        BisectBatchOnFunctionError: false,
        ParallelizationFactor: 1,
        Enabled: true
      }
    }
  }
}

/**
 * What a Lambda handler on a DynamoDB Stream returns to report a partial failure (with
 * `FunctionResponseTypes: ["ReportBatchItemFailures"]` on the event source mapping).
 *
 * @since 0.2.0
 * @category models
 */
export interface BatchResponse {
  readonly batchItemFailures: ReadonlyArray<{ readonly itemIdentifier: string }>
}

/**
 * Indexes the records of one Lambda event with the sequencer's core: the same rules as the
 * in-process runner, except that Lambda does not say which shard a record comes from, so a
 * redelivery is dropped by version (the stream items) rather than by sequence number. On a
 * failure the whole batch is reported failed from its first record (`batchItemFailures`):
 * Lambda retries it, and what was indexed is dropped. Several invocations at once (one per
 * shard) are safe: entries are chained by key.
 *
 * @since 0.2.0
 * @category lambda
 */
export const handleLambdaEvent = (core: Core, event: LambdaStreamEvent): Effect.Effect<BatchResponse> =>
  core.catchUp.pipe(
    Effect.andThen(core.index(event.Records.map((record) => ({ record })))),
    Effect.andThen(core.flushDue),
    Effect.as<BatchResponse>({ batchItemFailures: [] }),
    Effect.catchCause((cause) =>
      Effect.logError("DynamoSequencer (Lambda): the batch is retried", cause).pipe(
        Effect.as<BatchResponse>({
          batchItemFailures: event.Records.length === 0
            ? []
            : [{ itemIdentifier: event.Records[0]!.dynamodb?.SequenceNumber ?? "" }]
        })
      )
    )
  )

/**
 * A Lambda handler for the events table's stream (the event source mapping's function),
 * on the given client layer (e.g. `DynamoClient.layerConfig()`). The sequencer's core and its
 * cache live as long as the Lambda container; each invocation first takes in the entries
 * written since (by another invocation).
 *
 * ```ts
 * export const handler = DynamoSequencer.lambdaHandler(
 *   { eventsTable: "events", logTable: "log" },
 *   DynamoClient.layerConfig()
 * )
 * ```
 *
 * @since 0.2.0
 * @category lambda
 */
export const lambdaHandler = <E>(
  options: SequencerOptions,
  clientLayer: Layer.Layer<DynamoClient, E>
): (event: LambdaStreamEvent) => Promise<BatchResponse> => {
  const runtime = ManagedRuntime.make(clientLayer)
  let core: Promise<Core> | undefined
  const getCore = () => {
    core ??= runtime.runPromise(Effect.tap(makeCore(options), (c) => c.load)).catch((error) => {
      core = undefined
      throw error
    })
    return core
  }
  return async (event) => {
    const failAll: BatchResponse = {
      batchItemFailures: event.Records.length === 0 ? [] : [{ itemIdentifier: event.Records[0]!.dynamodb?.SequenceNumber ?? "" }]
    }
    try {
      const c = await getCore()
      const exit = await runtime.runPromiseExit(handleLambdaEvent(c, event))
      return Exit.isSuccess(exit) ? exit.value : failAll
    } catch (error) {
      await runtime.runPromise(Effect.logError("DynamoSequencer (Lambda): no core", Cause.fail(error))).catch(() => undefined)
      return failAll
    }
  }
}

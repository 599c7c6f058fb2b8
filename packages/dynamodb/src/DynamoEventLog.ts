/**
 * The global log on DynamoDB: the log table's layout (see `docs/global-log.md` and
 * `Tables.logTable`), the reader (`EventLog.Storage` for `EventLog.make`) and the
 * single-request primitives the sequencer (`DynamoSequencer`) writes with.
 *
 * Items of the log table (`p` partition key, `k` sort key, both strings):
 * - entry: `p = "e#<epoch>"`, `k` = its first position, 16 zero-padded digits; `c` event
 *   count, `b` events as JSON (the event items' own fields, or a pointer), `q` the stream
 *   checkpoint as JSON (shard id -> last consumed sequence number, or `"done"`), `f` fencing
 *   token of the writer, `w` written-at ms, `r` the position up to which the stream items were
 *   raised when it was written. An epoch holds the entries whose first position
 *   is in `[epoch * 1,000,000, (epoch + 1) * 1,000,000)`;
 * - epoch marker: `p = "epochs"`, `k` = the epoch, 16 digits; written before the first entry
 *   of the epoch, so that the head is found with two small reads;
 * - stream: `p = "s#<category>"`, `k` = stream id; `v` last indexed version, `n` its position;
 * - lease: `p = "lease"`, `k = "lease"`; `o` owner, `f` fencing token, `x` expiry ms;
 * - saved checkpoint: `p = k = "checkpoint"`; `q` as in entries, saved after quiet batches.
 *
 * Reading costs: one `Query` page (1 MB, eventually consistent: 0.5 RCU per 4 KB) per page of
 * entries; resuming inside an entry costs one more `Query` to find it; a pointer (an event
 * over 4 KB) costs one `GetItem` on the events table.
 *
 * @since 0.2.0
 */
import { type AttributeValue, GetItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb"
import { type Errors, EventLog, type EventStore } from "@dynamo-es/core"
import { Cache, Duration, Effect, Exit, Layer } from "effect"
import { DynamoClient, unconditional } from "./DynamoClient.js"
import { fromItem } from "./DynamoEventStore.js"
import { utf8Length } from "./internal/sizes.js"
import { checkTableName, ensuring, logTable, type TableMismatchError } from "./Tables.js"

/** Positions per epoch (partition of entries), by default. */
export const EPOCH_SIZE = 1_000_000
/** At most this many events in one entry (and never more than an epoch's size, so that an entry spans at most two epochs). */
export const MAX_ENTRY_EVENTS = 1_000

/** A number as a sort key: 16 zero-padded digits (positions up to 10^16). */
export const pad = (n: number): string => String(n).padStart(16, "0")
export const epochMarkerKey = (epoch: number) => ({ p: { S: "epochs" }, k: { S: pad(epoch) } })
export const streamKey = (category: string, streamId: string) => ({ p: { S: `s#${category}` }, k: { S: streamId } })
export const leaseKey = { p: { S: "lease" }, k: { S: "lease" } }
export const checkpointKey = { p: { S: "checkpoint" }, k: { S: "checkpoint" } }

/**
 * An event as an entry holds it: the event item's own fields (`s v i y d m t x`), or a
 * pointer `{ s, v, ptr: 1 }` to an event read from the events table.
 *
 * @since 0.2.0
 * @category models
 */
export type EntryEvent =
  | {
    readonly s: string
    readonly v: number
    readonly i: string
    readonly y: string
    readonly d: string
    readonly m?: string | undefined
    readonly t: number
    readonly x?: number | undefined
  }
  | { readonly s: string; readonly v: number; readonly ptr: 1 }

/** Shard id -> last consumed sequence number, or "done" for a shard read to its end. */
export type Checkpoint = { readonly [shardId: string]: string }

/**
 * A decoded entry.
 *
 * @since 0.2.0
 * @category models
 */
export interface Entry {
  readonly first: number
  readonly events: ReadonlyArray<EntryEvent>
  readonly checkpoint: Checkpoint
  readonly token: number
  /**
   * The stream items were raised for every entry up to this position when the entry was
   * written (`r`). Missing in entries of older sequencers, which raised them after each
   * entry: there it is the position before the entry.
   */
  readonly raised?: number | undefined
}

/** An event larger than this (its JSON, in UTF-8 bytes) is stored in an entry as a pointer. */
export const POINTER_THRESHOLD = 4_096

/** The UTF-8 length of a string, without encoding it (what DynamoDB bills and limits). */
export { utf8Length } from "./internal/sizes.js"

/** The entry form of a checked stored event (the fields `EventStore.decodeStored` accepted). */
export const entryEvent = (e: EventStore.StoredEvent): EntryEvent => {
  const full: EntryEvent = {
    s: e.streamId,
    v: e.version,
    i: e.eventId as string,
    y: e.type as string,
    d: e.payloadJson as string,
    ...(typeof e.metadataJson === "string" ? { m: e.metadataJson } : {}),
    t: e.recordedAtMillis as number,
    ...(typeof e.expiresAtSeconds === "number" ? { x: e.expiresAtSeconds } : {})
  }
  return utf8Length(JSON.stringify(full)) > POINTER_THRESHOLD ? { s: e.streamId, v: e.version, ptr: 1 } : full
}

const storedOf = (e: EntryEvent): EventStore.StoredEvent | EventLog.EventPointer =>
  "ptr" in e
    ? { _tag: "Pointer", streamId: e.s, version: e.v }
    : {
      streamId: e.s,
      version: e.v,
      eventId: e.i,
      type: e.y,
      payloadJson: e.d,
      metadataJson: e.m,
      recordedAtMillis: e.t,
      expiresAtSeconds: e.x
    }

/** The item of an entry (its key made by the table's `entryKey`). */
export const entryItem = (key: Record<string, AttributeValue>, entry: Entry, now: number): Record<string, AttributeValue> => ({
  ...key,
  c: { N: String(entry.events.length) },
  b: { S: JSON.stringify(entry.events) },
  q: { S: JSON.stringify(entry.checkpoint) },
  f: { N: String(entry.token) },
  w: { N: String(now) },
  ...(entry.raised !== undefined ? { r: { N: String(entry.raised) } } : {})
})

/** An entry item back; a damaged one is a defect (only the sequencer writes entries). */
export const entryOf = (item: Record<string, AttributeValue>): Entry => {
  const first = Number(item.k?.S)
  const events = JSON.parse(item.b?.S ?? "null") as Array<EntryEvent>
  if (!Number.isSafeInteger(first) || !Array.isArray(events) || events.length !== Number(item.c?.N)) {
    throw new Error(`DynamoEventLog: the log entry ${item.p?.S}/${item.k?.S} is damaged`)
  }
  return {
    first,
    events,
    checkpoint: JSON.parse(item.q?.S ?? "{}") as Checkpoint,
    token: Number(item.f?.N ?? 0),
    raised: item.r?.N === undefined ? first - 1 : Number(item.r.N)
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface DynamoEventLogOptions {
  /** The log table (`Tables.logTable`). */
  readonly logTable: string
  /** The events table the log indexes (pointers are read there). */
  readonly eventsTable: string
  /** The category rule (default `EventLog.defaultCategory`); the sequencer's must be the same. */
  readonly categoryOf?: ((streamId: string) => string) | undefined
  /** The wait at the head of the log between two looks of a subscription (default 500 ms). */
  readonly pollInterval?: Duration.Input | undefined
  /**
   * Positions per epoch (partition of entries; default 1,000,000). Part of the table's layout:
   * the sequencer and every reader must use the same, and it never changes for a table.
   */
  readonly epochSize?: number | undefined
  /**
   * How long one look at the head of the log is shared by every subscription of this reader
   * at the same position (default: half of `pollInterval`; `0` turns sharing off). Idle
   * subscriptions poll the head with one `Query` each (0.5 RCU); with sharing, `n`
   * subscriptions at the head make at most one `Query` per this interval between them, at the
   * price of up to this much more lag. A read that knows of a later position (from `head`
   * or another read) never takes a shared look that stops before it.
   */
  readonly headCacheTtl?: Duration.Input | undefined
}

/**
 * Where the next page of entries starts: an epoch, and the key after which to read in it.
 *
 * @since 0.2.0
 * @category models
 */
export interface PageCursor {
  readonly epoch: number
  readonly start: Record<string, AttributeValue> | undefined
}

/**
 * The log table's primitives (reads and writes), shared by the reader and the sequencer.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeLogTable = (options: { readonly logTable: string; readonly eventsTable: string; readonly epochSize?: number | undefined }) =>
  Effect.gen(function*() {
    const epochSize = options.epochSize ?? EPOCH_SIZE
    if (!Number.isSafeInteger(epochSize) || epochSize < 1) {
      return yield* Effect.die(new Error(`DynamoEventLog: epochSize must be a positive integer, got ${epochSize}`))
    }
    const epochOf = (position: number): number => Math.floor(position / epochSize)
    const entryKey = (first: number) => ({ p: { S: `e#${epochOf(first)}` }, k: { S: pad(first) } })
    const client = yield* DynamoClient
    const table = yield* checkTableName("DynamoEventLog", options.logTable)
    const events = yield* checkTableName("DynamoEventLog", options.eventsTable)

    const query = (input: Omit<ConstructorParameters<typeof QueryCommand>[0], "TableName">) =>
      unconditional(client.call("Query", table, (c, abortSignal) =>
        c.send(new QueryCommand({ ...input, TableName: table, ReturnConsumedCapacity: "TOTAL" }), { abortSignal })))

    /** One page of the entries of an epoch from `from` (a position) or from an exclusive start key. */
    const entriesPage = (epoch: number, from: { readonly position: number } | { readonly start: Record<string, AttributeValue> }, consistent: boolean) =>
      query({
        KeyConditionExpression: "p = :p AND k >= :k",
        ExpressionAttributeValues: { ":p": { S: `e#${epoch}` }, ":k": { S: "position" in from ? pad(from.position) : pad(0) } },
        ...("start" in from ? { ExclusiveStartKey: from.start } : {}),
        ConsistentRead: consistent
      }).pipe(Effect.map((r) => ({ entries: (r.Items ?? []).map(entryOf), last: r.LastEvaluatedKey })))

    /** The entry starting at or before `position` in its epoch or the one before, if any. */
    const entryAtOrBefore = (position: number, consistent: boolean) =>
      Effect.gen(function*() {
        for (const epoch of [epochOf(position), epochOf(position) - 1]) {
          if (epoch < 0) break
          const r = yield* query({
            KeyConditionExpression: "p = :p AND k <= :k",
            ExpressionAttributeValues: { ":p": { S: `e#${epoch}` }, ":k": { S: pad(position) } },
            ScanIndexForward: false,
            Limit: 1,
            ConsistentRead: consistent
          })
          const item = r.Items?.[0]
          if (item !== undefined) return entryOf(item)
        }
        return undefined
      })

    /** The last entry of the log (two small reads: the last epoch marker, then its last entry). */
    const lastEntry = (consistent: boolean) =>
      Effect.gen(function*() {
        const marker = yield* query({
          KeyConditionExpression: "p = :p",
          ExpressionAttributeValues: { ":p": { S: "epochs" } },
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: consistent
        })
        const epochKey = marker.Items?.[0]?.k?.S
        if (epochKey === undefined) return undefined
        // The marker of a new epoch is written before its first entry: the last entry may
        // still be in the epoch before.
        for (const epoch of [Number(epochKey), Number(epochKey) - 1]) {
          if (epoch < 0) break
          const r = yield* query({
            KeyConditionExpression: "p = :p",
            ExpressionAttributeValues: { ":p": { S: `e#${epoch}` } },
            ScanIndexForward: false,
            Limit: 1,
            ConsistentRead: consistent
          })
          const item = r.Items?.[0]
          if (item !== undefined) return entryOf(item)
        }
        return undefined
      })

    /**
     * A page of entries from the one holding `after + 1`, following epochs; `next` is the
     * cursor of the following page, `undefined` at the head.
     */
    const readEntries = (after: number, cursor: unknown, aligned: boolean, consistent = false) =>
      Effect.gen(function*() {
        let epoch: number
        let from: { readonly position: number } | { readonly start: Record<string, AttributeValue> }
        if (cursor !== undefined) {
          const c = cursor as PageCursor
          epoch = c.epoch
          from = c.start === undefined ? { position: 0 } : { start: c.start }
        } else if (aligned) {
          epoch = epochOf(after + 1)
          from = { position: after + 1 }
        } else {
          const holding = yield* entryAtOrBefore(after + 1, consistent)
          if (holding === undefined || holding.first + holding.events.length <= after + 1) {
            // Position after + 1 is not written yet (or the log is empty).
            return { entries: [] as ReadonlyArray<Entry>, next: undefined }
          }
          epoch = epochOf(holding.first)
          from = { position: holding.first }
        }
        const page = yield* entriesPage(epoch, from, consistent)
        if (page.last !== undefined) return { entries: page.entries, next: { epoch, start: page.last } as PageCursor }
        const tail = page.entries[page.entries.length - 1]
        // The epoch is exhausted: the next entry, if any, is in the next epoch.
        const nextFirst = tail === undefined ? after + 1 : tail.first + tail.events.length
        const next = epochOf(nextFirst) > epoch ? { epoch: epoch + 1, start: undefined } as PageCursor : undefined
        return { entries: page.entries, next }
      })

    const readEvent = (streamId: string, version: number) =>
      unconditional(client.call("GetItem", events, (c, abortSignal) =>
        c.send(
          new GetItemCommand({
            TableName: events,
            Key: { s: { S: streamId }, v: { N: String(version) } },
            ReturnConsumedCapacity: "TOTAL"
          }),
          { abortSignal }
        ))).pipe(Effect.map((r) => (r.Item === undefined ? undefined : fromItem(streamId, r.Item))))

    const listStreams = (category: string, cursor: unknown) =>
      query({
        KeyConditionExpression: "p = :p",
        ExpressionAttributeValues: { ":p": { S: `s#${category}` } },
        ProjectionExpression: "k",
        ...(cursor !== undefined ? { ExclusiveStartKey: cursor as Record<string, AttributeValue> } : {})
      }).pipe(Effect.map((r) => ({ streamIds: (r.Items ?? []).map((i) => i.k!.S!), next: r.LastEvaluatedKey as unknown })))

    return { client, table, events, epochSize, epochOf, entryKey, query, readEntries, entryAtOrBefore, lastEntry, readEvent, listStreams }
  })

/**
 * The reader's storage of the log table, for `EventLog.make`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeStorage = (options: DynamoEventLogOptions): Effect.Effect<EventLog.Storage, never, DynamoClient> =>
  Effect.gen(function*() {
    const t = yield* makeLogTable(options)
    const pollInterval = Duration.fromInputUnsafe(options.pollInterval ?? "500 millis")
    const ttl = options.headCacheTtl === undefined ? Duration.divideUnsafe(pollInterval, 2) : Duration.fromInputUnsafe(options.headCacheTtl)

    /** The furthest position this reader has seen in the log (a read, or `head`). */
    let known = 0
    const reach = (after: number, entries: ReadonlyArray<Entry>) => {
      const last = entries[entries.length - 1]
      return last === undefined ? after : last.first + last.events.length - 1
    }
    const read = (after: number, cursor: unknown, aligned: boolean) =>
      Effect.map(t.readEntries(after, cursor, aligned), (r) => {
        known = Math.max(known, reach(after, r.entries))
        return r
      })

    // A fresh look from a position (no cursor: what an idle subscription does at the head),
    // shared for `ttl` by every read from the same position. Entries never change, so a shared
    // look is a past state of the log, as an eventually consistent read may be: a reader stops
    // where it ends and looks again later, it never skips.
    const looks = yield* Cache.makeWith((key: string) => read(Number(key.slice(1)), undefined, key[0] === "a"), {
      capacity: 256,
      timeToLive: (exit) => (Exit.isSuccess(exit) ? ttl : Duration.zero)
    })
    const look = (after: number, aligned: boolean) =>
      Effect.gen(function*() {
        const key = `${aligned ? "a" : "u"}${after}`
        const shared = yield* Cache.get(looks, key)
        // Stale for sure: this reader knows of a position past where it ends.
        if (shared.next !== undefined || reach(after, shared.entries) >= known) return shared
        yield* Cache.invalidate(looks, key)
        return yield* Cache.get(looks, key)
      })
    const entries = Duration.isZero(ttl) ? read : (after: number, cursor: unknown, aligned: boolean) =>
      cursor === undefined ? look(after, aligned) : read(after, cursor, aligned)

    return {
      readEntries: (after, cursor, aligned) =>
        Effect.map(entries(after, cursor, aligned), ({ entries, next }) => ({
          entries: entries.map((e) => ({ first: e.first, events: e.events.map(storedOf) })),
          next
        })) as Effect.Effect<{ readonly entries: ReadonlyArray<EventLog.StoredEntry>; readonly next: unknown }, Errors.StorageError>,
      readEvent: t.readEvent,
      head: Effect.map(t.lastEntry(false), (e) => {
        const head = e === undefined ? 0 : e.first + e.events.length - 1
        known = Math.max(known, head)
        return head
      }),
      listStreams: t.listStreams,
      categoryOf: options.categoryOf ?? EventLog.defaultCategory,
      pollInterval
    }
  })

/**
 * The log reader on existing tables.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: DynamoEventLogOptions) => Effect.map(makeStorage(options), EventLog.make)

/**
 * The `EventLog` service on DynamoDB, creating the log table first when it does not exist
 * (`ensureTables`). The sequencer (`DynamoSequencer.layer`, or its Lambda handler) fills the
 * log; this layer only reads it.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: DynamoEventLogOptions
): Layer.Layer<EventLog.EventLog, Errors.StorageError | TableMismatchError, DynamoClient> =>
  Layer.effect(EventLog.EventLog, ensuring(logTable(options.logTable), make(options)))

/**
 * The `EventLog` service on a log table that already exists (no `DescribeTable` at start).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerExisting = (options: DynamoEventLogOptions): Layer.Layer<EventLog.EventLog, never, DynamoClient> =>
  Layer.effect(EventLog.EventLog, make(options))

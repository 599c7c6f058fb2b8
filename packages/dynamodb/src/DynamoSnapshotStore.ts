/**
 * The DynamoDB implementation of the core `SnapshotStore`: the storage primitives of
 * `SnapshotStore.Storage` on a DynamoDB table ({@link makeStorage}), under the rules that
 * `SnapshotStore.make` implements once for every implementation (validation, encoding,
 * retention, the `schemaVersion` and `atOrBefore` filters, checks of what is stored). What
 * stays here is DynamoDB's: the item layout, splitting a state into parts, compression and
 * the checksum.
 *
 * Layout (`snapshotsTable`): partition key `s` = stream id, sort key `k` (S):
 * - a header per snapshot, `h#<version, 16 digits>#<ULID>`: part count `n`, byte length
 *   `z`, FNV-1a hash `h`, encoding `e` (`j` JSON, `g` gzip), schema version `w`, saved-at
 *   `t`, and the data itself (`b`) when it is at most 4 KB;
 * - otherwise the data in parts of at most 390,000 bytes, `p#<version>#<ULID>#<index, 5 digits>`.
 *
 * A save writes the parts first (`BatchWriteItem`, 25 per request) and the header last:
 * the header is the commit. A save interrupted half-way leaves parts without a header,
 * which no load ever sees: it returns the previous complete snapshot. Such orphans are
 * deleted by the retention of a later save once they are below the oldest kept snapshot and
 * older than `orphanGracePeriod` (15 minutes).
 *
 * Loading costs one `Query` over the (small) headers, newest first, plus one `Query` for
 * the parts of a large snapshot.
 *
 * @since 0.1.0
 */
import { type AttributeValue, PutItemCommand, type WriteRequest } from "@aws-sdk/client-dynamodb"
import { Errors, ReadModel, SnapshotStore } from "@dynamo-es/core"
import { Cause, Clock, Config, Duration, Effect, Exit, Layer, Option, Schema, Stream } from "effect"
import { decodeTime, monotonicFactory } from "ulid"
import { gunzipSync, gzipSync } from "node:zlib"
import { DynamoClient, unconditional } from "./DynamoClient.js"
import { writeAll } from "./internal/batchWrite.js"
import { queryItems } from "./internal/query.js"
import { checkTableName, ensuring, snapshotsTable, type TableMismatchError } from "./Tables.js"

/** Monotonic ULIDs: each snapshot's id, sorted by save time. */
const makeUlid = monotonicFactory()
/** The creation time (epoch ms) encoded in a ULID, or `undefined` when it is not one. */
const ulidTime = (id: string): number | undefined => {
  try {
    return decodeTime(id)
  } catch {
    return undefined
  }
}


/**
 * @since 0.1.0
 * @category models
 */
export interface DynamoSnapshotStoreOptions extends SnapshotStore.SnapshotStoreOptions {
  readonly tableName: string
  /**
   * Compress the encoded state with gzip before storing it. JSON states usually shrink
   * 3-10x, which cuts write and read units by as much, for some CPU. Default `"none"`.
   * Loads read either encoding, so this can be switched at any time.
   */
  readonly compression?: "gzip" | "none" | undefined
  /**
   * Parts without a header (left by interrupted saves) are deleted by retention once they
   * are older than this (default 15 minutes): younger ones may belong to a save in flight.
   */
  readonly orphanGracePeriod?: Duration.Input | undefined
  /** Bytes per part (default 390,000, at most 399,000). Exposed for tests. */
  readonly partBytes?: number | undefined
}

const INLINE_BYTES = 4_096
/** Part indexes have 5 digits in the sort key, so that they sort in order. */
const MAX_PARTS = 99_999
const pad = (n: number, width: number) => String(n).padStart(width, "0")
const headerPrefix = "h#"
const headerKey = (version: number, id: string) => `h#${pad(version, 16)}#${id}`
const partPrefix = (version: number, id: string) => `p#${pad(version, 16)}#${id}#`
const partKey = (version: number, id: string, index: number) => `${partPrefix(version, id)}${pad(index, 5)}`

/** FNV-1a (32 bit) over bytes: cheap, detects torn or mixed-up parts. */
const fnv1a = (bytes: Uint8Array): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i]!
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0).toString(16)
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

interface Header {
  readonly version: number
  readonly id: string
  readonly parts: number
  readonly bytes: number
  readonly hash: string
  readonly encoding: string
  readonly schemaVersion: number
  readonly savedAt: number
  readonly inline: Uint8Array | undefined
}

const parseHeader = (item: Record<string, AttributeValue>): Header | undefined => {
  const match = /^h#(\d{16})#(.+)$/.exec(item.k?.S ?? "")
  if (match === null) return undefined
  return {
    version: Number(match[1]),
    id: match[2]!,
    parts: Number(item.n?.N ?? NaN),
    bytes: Number(item.z?.N ?? NaN),
    hash: item.h?.S ?? "",
    encoding: item.e?.S ?? "",
    schemaVersion: Number(item.w?.N ?? NaN),
    savedAt: Number(item.t?.N ?? NaN),
    inline: item.b?.B
  }
}

/**
 * The options of {@link makeStorage}: how states are laid out in the table.
 *
 * @since 0.2.0
 * @category models
 */
export type DynamoSnapshotStorageOptions = Pick<DynamoSnapshotStoreOptions, "compression" | "orphanGracePeriod" | "partBytes">

/** The storage options as a Schema, decoded once by {@link makeStorage}. */
const StorageOptions = Schema.Struct({
  compression: Schema.optional(Schema.Literals(["gzip", "none"])),
  orphanGracePeriod: Schema.optional(Schema.Unknown.check(Schema.makeFilter((u: unknown) =>
    Option.isSome(Duration.fromInput(u as Duration.Input)) ? undefined : "must be a Duration input"
  ))),
  partBytes: Schema.optional(Schema.Number.check(Schema.makeFilter((n: number) =>
    Number.isSafeInteger(n) && n >= 1 && n <= 399_000 ? undefined : "must be an integer from 1 to 399000"
  )))
})
const decodeStorageOptions = Schema.decodeUnknownExit(StorageOptions)

/** What {@link makeStorage} hands out as a listed snapshot's `ref`. */
const headerOf = (s: SnapshotStore.StoredSnapshot): Header => s.ref as Header

/**
 * The snapshot store's storage on a DynamoDB table (see the module documentation for the
 * layout and the requests): `list` is one `Query` over the headers, `write` the parts
 * (`BatchWriteItem`) then the header (`PutItem`), `read` nothing more for an inline state or
 * one `Query` for the parts, `remove` deletes by key and sweeps orphan parts. For drivers
 * and tests; most code uses {@link make} or the layers. Dies with a message naming the
 * option when the table name or an option is invalid (`compression` not `"gzip"` or
 * `"none"`, `orphanGracePeriod` not a duration, `partBytes` not an integer from 1 to 399,000).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeStorage = (tableName: string, options: DynamoSnapshotStorageOptions = {}) =>
  Effect.gen(function*() {
    const client = yield* DynamoClient
    const table = yield* checkTableName("DynamoSnapshotStore", tableName)
    const checked = decodeStorageOptions(options)
    if (Exit.isFailure(checked)) {
      const error = Cause.squash(checked.cause)
      return yield* Effect.die(new Error(`DynamoSnapshotStore: invalid options: ${error instanceof Error ? error.message : String(error)}`))
    }
    const partBytes = options.partBytes ?? 390_000
    const compress = options.compression === "gzip"
    const orphanGraceMillis = Duration.toMillis(options.orphanGracePeriod ?? Duration.minutes(15))

    /** The items of a key range, strongly consistent, one Query per page. */
    const queryRange = (
      streamId: string,
      from: string,
      to: string,
      options: { readonly forward: boolean; readonly projection?: string }
    ) =>
      queryItems(client, table, {
        KeyConditionExpression: "s = :s AND k BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":s": { S: streamId }, ":from": { S: from }, ":to": { S: to } },
        ScanIndexForward: options.forward,
        ConsistentRead: true,
        ...(options.projection !== undefined ? { ProjectionExpression: options.projection } : {})
      })

    /** All items of a small key range (the headers, or one snapshot's parts). */
    const queryAll = (streamId: string, from: string, to: string, forward: boolean) =>
      Stream.runCollect(queryRange(streamId, from, to, { forward }))

    /** Writes in batches of 25, `UnprocessedItems` retried with the read models' backoff schedule. */
    const batchWrite = (requests: ReadonlyArray<WriteRequest>) =>
      writeAll(client, table, requests, { schedule: ReadModel.defaultUnprocessedRetrySchedule })

    /** Deletes in batches of 25; keys are read page by page, so memory stays flat. */
    const deleteKeys = (streamId: string, keys: ReadonlyArray<string>) =>
      batchWrite(keys.map((k) => ({ DeleteRequest: { Key: { s: { S: streamId }, k: { S: k } } } })))

    const list: SnapshotStore.Storage["list"] = (streamId, atOrBefore) => {
      const upper = atOrBefore === undefined ? "h#~" : `h#${pad(atOrBefore, 16)}#~`
      return queryAll(streamId, headerPrefix, upper, false).pipe(
        Effect.map((items) =>
          items.flatMap((item): Array<SnapshotStore.StoredSnapshot> => {
            const h = parseHeader(item)
            return h === undefined ? [] : [{ version: h.version, schemaVersion: h.schemaVersion, savedAtMillis: h.savedAt, ref: h }]
          })
        )
      )
    }

    const write: SnapshotStore.Storage["write"] = (streamId, s) =>
      Effect.gen(function*() {
        const id = makeUlid(s.savedAtMillis)
        const raw = encoder.encode(s.stateJson)
        const data = compress ? new Uint8Array(gzipSync(raw)) : raw
        const partCount = data.length <= INLINE_BYTES ? 0 : Math.ceil(data.length / partBytes)
        if (partCount > MAX_PARTS) {
          return yield* new Errors.StorageError({
            operation: "BatchWriteItem",
            reason: "Validation",
            resource: table,
            detail: `the compressed state needs ${partCount} parts of ${partBytes} bytes, more than ${MAX_PARTS}; nothing was written`
          })
        }
        if (partCount > 0) {
          yield* batchWrite(Array.from({ length: partCount }, (_, i) => ({
            PutRequest: {
              Item: {
                s: { S: streamId },
                k: { S: partKey(s.version, id, i) },
                b: { B: data.subarray(i * partBytes, (i + 1) * partBytes) }
              }
            }
          })))
        }
        // The header last: it is the commit.
        const header: Record<string, AttributeValue> = {
          s: { S: streamId },
          k: { S: headerKey(s.version, id) },
          n: { N: String(partCount) },
          z: { N: String(data.length) },
          h: { S: fnv1a(data) },
          e: { S: compress ? "g" : "j" },
          w: { N: String(s.schemaVersion) },
          t: { N: String(s.savedAtMillis) }
        }
        if (partCount === 0) header.b = { B: data }
        yield* unconditional(client.call("PutItem", table, (c, abortSignal) =>
          c.send(new PutItemCommand({ TableName: table, Item: header, ReturnConsumedCapacity: "TOTAL" }), { abortSignal })))
      })

    const read: SnapshotStore.Storage["read"] = (streamId, snapshot) =>
      Effect.gen(function*() {
        const header = headerOf(snapshot)
        const corrupted = (reason: string, cause?: unknown): SnapshotStore.ReadOutcome => ({ _tag: "Corrupted", reason, cause })
        let data: Uint8Array
        if (header.parts === 0) {
          if (header.inline === undefined) return corrupted("the inline data is missing")
          data = header.inline
        } else {
          const prefix = partPrefix(header.version, header.id)
          const parts = yield* queryAll(streamId, prefix, `${prefix}~`, true)
          if (parts.length !== header.parts) {
            // Deleted by a concurrent save's retention since the header was read: the store lists again.
            return { _tag: "Missing", reason: `${parts.length} of ${header.parts} parts are stored` } as const
          }
          data = new Uint8Array(header.bytes)
          let offset = 0
          for (const [i, part] of parts.entries()) {
            const bytes = part.b?.B
            if (part.k?.S !== partKey(header.version, header.id, i) || bytes === undefined || offset + bytes.length > data.length) {
              return corrupted(`part ${i} is missing or malformed`)
            }
            data.set(bytes, offset)
            offset += bytes.length
          }
          if (offset !== header.bytes) return corrupted(`the parts hold ${offset} of ${header.bytes} bytes`)
        }
        if (data.length !== header.bytes || fnv1a(data) !== header.hash) {
          return corrupted("the stored bytes do not match their checksum")
        }
        try {
          return { _tag: "Found", stateJson: decoder.decode(header.encoding === "g" ? gunzipSync(data) : data) } as const
        } catch (cause) {
          return corrupted("the stored bytes do not decode", cause)
        }
      })

    const remove: SnapshotStore.Storage["remove"] = (streamId, dropped, kept) =>
      Effect.gen(function*() {
        const drop = dropped.map(headerOf)
        const keep = kept.map(headerOf)
        // Headers first: a snapshot without its header is never read, whatever happens next.
        yield* deleteKeys(streamId, drop.map((h) => headerKey(h.version, h.id)))
        // Parts of dropped snapshots: their keys follow from the headers, no read needed.
        yield* deleteKeys(
          streamId,
          drop.flatMap((h) => (Number.isSafeInteger(h.parts) ? Array.from({ length: h.parts }, (_, i) => partKey(h.version, h.id, i)) : []))
        )
        // Orphans of interrupted saves below the oldest kept snapshot (usually none, so this
        // reads nothing). Parts younger than the grace period may belong to a save still in
        // flight and are left alone.
        const oldestKept = keep[keep.length - 1]
        if (oldestKept === undefined) return
        const now = yield* Clock.currentTimeMillis
        const keptPrefixes = keep.map((h) => partPrefix(h.version, h.id))
        const isOrphan = (k: string) => {
          if (k === "" || keptPrefixes.some((prefix) => k.startsWith(prefix))) return false
          const time = ulidTime(k.split("#")[2] ?? "")
          return time === undefined || now - time >= orphanGraceMillis
        }
        yield* queryRange(streamId, "p#", `p#${pad(oldestKept.version, 16)}#`, { forward: true, projection: "k" }).pipe(
          Stream.map((item) => item.k?.S ?? ""),
          Stream.filter(isOrphan),
          Stream.grouped(25),
          Stream.runForEach((keys) => deleteKeys(streamId, keys))
        )
      })

    return {
      // The 5-digit part index caps a state at 99,999 parts: 39 GB with the default part size,
      // so it only matters with a tiny `partBytes`. Compressed states are checked in `write`.
      maxStateBytes: compress ? undefined : partBytes * MAX_PARTS,
      list,
      write,
      read,
      remove
    } satisfies SnapshotStore.Storage
  })

/**
 * Builds the store on an existing table (see {@link layer} to also create it):
 * `SnapshotStore.make` over {@link makeStorage}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: DynamoSnapshotStoreOptions): Effect.Effect<SnapshotStore.SnapshotStoreShape, never, DynamoClient> =>
  Effect.flatMap(makeStorage(options.tableName, options), (storage) => SnapshotStore.make(storage, options))

/**
 * The DynamoDB snapshot store, creating its table when it does not exist.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: DynamoSnapshotStoreOptions
): Layer.Layer<SnapshotStore.SnapshotStore, Errors.StorageError | TableMismatchError, DynamoClient> =>
  Layer.effect(SnapshotStore.SnapshotStore, ensuring(snapshotsTable(options.tableName), make(options)))

/**
 * The DynamoDB snapshot store on a table that already exists.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerExisting = (options: DynamoSnapshotStoreOptions): Layer.Layer<SnapshotStore.SnapshotStore, never, DynamoClient> =>
  Layer.effect(SnapshotStore.SnapshotStore, make(options))

/**
 * The configuration {@link layerConfig} reads when called without one, through the current
 * `ConfigProvider` (environment variables unless you provide another):
 * `DYNAMO_ES_SNAPSHOTS_TABLE` (default `"snapshots"`), `DYNAMO_ES_SNAPSHOTS_KEEP` (an
 * integer >= 1, default 3), `DYNAMO_ES_SNAPSHOTS_COMPRESSION` (`gzip` or `none`, default
 * `none`).
 *
 * @since 0.2.0
 * @category config
 */
export const envConfig: Config.Config<DynamoSnapshotStoreOptions> = Config.all({
  tableName: Config.String("DYNAMO_ES_SNAPSHOTS_TABLE").pipe(Config.withDefault("snapshots")),
  keepLast: Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)), "DYNAMO_ES_SNAPSHOTS_KEEP").pipe(
    Config.withDefault(3)
  ),
  compression: Config.Literals(["gzip", "none"], "DYNAMO_ES_SNAPSHOTS_COMPRESSION").pipe(Config.withDefault("none" as const))
})

/**
 * {@link layer} with its options read through Effect `Config` (`Config.Wrap`: one `Config`
 * of the whole options, or a record with a `Config` per option). Without an argument it
 * reads {@link envConfig}. A missing or malformed value fails the layer with a
 * `ConfigError` that names it; a `keepLast` below 1 or a bad `partBytes` given otherwise
 * is a defect, as with {@link layer}.
 *
 * ```ts
 * DynamoSnapshotStore.layerConfig({ tableName: Config.String("SNAPSHOTS_TABLE"), keepLast: Config.Int("SNAPSHOTS_KEEP") })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<DynamoSnapshotStoreOptions> = envConfig
): Layer.Layer<SnapshotStore.SnapshotStore, Errors.StorageError | TableMismatchError | Config.ConfigError, DynamoClient> =>
  Layer.unwrap(Effect.map(Config.unwrap(config), layer))

export {
  /**
   * The table definition, also at `Tables.snapshotsTable` (where all three are defined).
   *
   * @since 0.1.0
   * @category definitions
   */
  snapshotsTable
}

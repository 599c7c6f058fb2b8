/**
 * The sequencer as a long-running process: takes the lease, loads the head of the log, then
 * reads the events table's DynamoDB Stream shard by shard (parents before children) and
 * indexes what it reads with the core. Expired iterators resume after the checkpoint;
 * trimmed records and vanished shards are repaired by a scan of the events table.
 */
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb"
// Type-only: the DynamoDB Streams SDK is an optional peer dependency, loaded when a runner
// starts (the Lambda handler and the core do not need it).
import type {
  DescribeStreamCommandOutput,
  GetRecordsCommandOutput,
  GetShardIteratorCommandOutput,
  Shard
} from "@aws-sdk/client-dynamodb-streams"
import type { Errors } from "@dynamo-es/core"
import { Duration, Effect, Fiber, Layer, Schedule, Semaphore } from "effect"
import { DynamoClient, unconditional } from "../../DynamoClient.js"
import { MAX_ENTRY_EVENTS } from "../../DynamoEventLog.js"
import type { StreamRecord } from "../../DynamoStreams.js"
import { type Core, makeCore, type SequencerOptions, type ShardRecord } from "./core.js"
import { acquireLease, releaseLease, renewLease } from "./lease.js"
import { repairScan } from "./repair.js"

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

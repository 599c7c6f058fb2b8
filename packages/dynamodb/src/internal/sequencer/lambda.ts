/**
 * The sequencer as a Lambda function on the events table's stream (an event source mapping):
 * the same core as the runner; the mapping's settings as a CloudFormation resource.
 */
import { Cause, Effect, Exit, Layer, ManagedRuntime } from "effect"
import type { DynamoClient } from "../../DynamoClient.js"
import type { LambdaStreamEvent } from "../../DynamoStreams.js"
import { type Core, makeCore, type SequencerOptions } from "./core.js"

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

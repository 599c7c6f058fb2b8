/**
 * Projections straight from the events table's DynamoDB Stream, for users who project on
 * Lambda without the global log: the records of an event source mapping's batch are decoded
 * (`DynamoStreams`), applied in order to a projection (`Projection.applyEvents` from
 * `@dynamo-es/core`), flushed, and what failed is reported as `batchItemFailures`.
 *
 * **Per-stream order only.** A shard delivers the records of one stream (partition key) in
 * version order; there is no order across streams and no global position. In `"guarded"`
 * mode the guard of a row is the stream version (the handler sees it as `position`), exact
 * for rows that one stream writes; rows fed by several streams need `"transactional"` (a
 * checkpoint per stream, written in one transaction with the rows: exactly once), or
 * `"atLeastOnce"` and an idempotent handler, or the global log (`Projection.run`).
 *
 * The event source mapping must have `FunctionResponseTypes: ["ReportBatchItemFailures"]`:
 * Lambda then retries from the first reported record, and a redelivered event is not applied
 * twice to a guarded row.
 *
 * @since 0.2.0
 */
import { type Errors, Projection, ReadModel } from "@dynamo-es/core"
import { Cause, Effect, Exit, type Layer, ManagedRuntime, Result } from "effect"
import { decodeRecord, type LambdaStreamEvent, type StreamRecord } from "./DynamoStreams.js"

/**
 * What a Lambda function on a DynamoDB Stream returns with `ReportBatchItemFailures`.
 *
 * @since 0.2.0
 * @category models
 */
export interface BatchResponse {
  readonly batchItemFailures: ReadonlyArray<{ readonly itemIdentifier: string }>
}

const failuresFrom = (records: ReadonlyArray<StreamRecord>, index: number): BatchResponse => ({
  batchItemFailures: records.slice(index).map((r) => ({ itemIdentifier: r.dynamodb?.SequenceNumber ?? "" }))
})

/**
 * Applies the records of one Lambda event to a projection, in record order: records that are
 * not events are skipped; the first record that does not decode (a `CorruptedEventError`
 * naming stream and version) or whose event the handler fails on stops the batch. Everything
 * before it is written; it and every record after it are returned in `batchItemFailures`
 * (and logged). A storage failure of the flush reports the whole batch.
 *
 * @since 0.2.0
 * @category lambda
 */
export const handleStreamEvent = <E, RM extends Record<string, Projection.ReadModelSpec<any>>, Err, R>(
  projection: Projection.Projection<E, RM, Err, R>,
  event: LambdaStreamEvent,
  options: { readonly mode?: "guarded" | "atLeastOnce" | "transactional" | undefined } = {}
): Effect.Effect<BatchResponse, never, ReadModel.ReadModelStore | R> =>
  Effect.gen(function*() {
    const records = event.Records
    const events: Array<{ readonly index: number; readonly envelope: Parameters<typeof Projection.applyEvents>[1][number] }> = []
    let stop: { readonly index: number; readonly error: Errors.CorruptedEventError } | undefined
    for (const [index, record] of records.entries()) {
      const decoded = decodeRecord(record)
      if (Result.isFailure(decoded)) {
        stop = { index, error: decoded.failure }
        break
      }
      if (decoded.success._tag === "Event") events.push({ index, envelope: decoded.success.envelope })
    }
    const result = yield* Projection.applyEvents(projection, events.map((e) => e.envelope), options)
    if (result.failure !== undefined) {
      yield* Effect.logError(`DynamoProjection: ${result.failure.error.message}; the batch is retried from that record`)
      return failuresFrom(records, events[result.failure.index]!.index)
    }
    if (stop !== undefined) {
      yield* Effect.logError(`DynamoProjection "${projection.name}": ${stop.error.message}; the batch is retried from that record`)
      return failuresFrom(records, stop.index)
    }
    return { batchItemFailures: [] }
  }).pipe(
    Effect.catchCause((cause) =>
      Effect.logError(`DynamoProjection "${projection.name}": the whole batch is retried`, cause).pipe(
        Effect.as(failuresFrom(event.Records, 0))
      )
    )
  )

/**
 * A Lambda handler running one projection on the events table's stream, with the read-model
 * store of the given layer (e.g. `DynamoReadModelStore.layerExisting(...)` on
 * `DynamoClient.layerConfig()`), built once per Lambda container.
 *
 * ```ts
 * export const handler = DynamoProjection.lambdaHandler(
 *   balances,
 *   DynamoReadModelStore.layerExisting({ tableName: "read-models" }).pipe(Layer.provide(DynamoClient.layerConfig()))
 * )
 * ```
 *
 * @since 0.2.0
 * @category lambda
 */
export const lambdaHandler = <E, RM extends Record<string, Projection.ReadModelSpec<any>>, Err, LE>(
  projection: Projection.Projection<E, RM, Err, never>,
  layer: Layer.Layer<ReadModel.ReadModelStore, LE>,
  options: { readonly mode?: "guarded" | "atLeastOnce" | "transactional" | undefined } = {}
): (event: LambdaStreamEvent) => Promise<BatchResponse> => {
  const runtime = ManagedRuntime.make(layer)
  return async (event) => {
    const exit = await runtime.runPromiseExit(handleStreamEvent(projection, event, options))
    if (Exit.isSuccess(exit)) return exit.value
    await runtime.runPromise(Effect.logError("DynamoProjection (Lambda): no read-model store", Cause.pretty(exit.cause))).catch(() => undefined)
    return failuresFrom(event.Records, 0)
  }
}

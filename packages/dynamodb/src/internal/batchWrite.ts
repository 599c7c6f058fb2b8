/**
 * The one `BatchWriteItem` writer of the DynamoDB drivers.
 *
 * - {@link writeBatch}: ONE request of at most 25 writes; it returns the writes DynamoDB
 *   left unprocessed (`UnprocessedItems`, under throttling) instead of failing. The
 *   read-model storage uses it as it is: core's `ReadModel.make` retries what is left, as it
 *   does for every driver.
 * - {@link writeAll}: any number of writes, 25 per request (a few requests in flight), with
 *   what is left unprocessed resent with backoff until nothing is left (core's one retry
 *   loop, `ReadModel.untilProcessed`); when the schedule runs out, a `StorageError`
 *   (`Throttled`) saying how many writes are left. The snapshot storage writes and deletes
 *   parts with it.
 *
 * Not a transaction: each request is applied item by item, and a failure leaves the writes
 * of earlier requests in place. Writes are sent without an abort signal (aborting cannot
 * undo a write).
 */
import { BatchWriteItemCommand, type WriteRequest } from "@aws-sdk/client-dynamodb"
import { Errors, ReadModel } from "@dynamo-es/core"
import { Effect, type Schedule } from "effect"
import { type DynamoClientShape, unconditional } from "../DynamoClient.js"
import { MAX_BATCH_WRITE } from "./sizes.js"

/**
 * One `BatchWriteItem` of at most {@link MAX_BATCH_WRITE} writes on `table`; succeeds with
 * the writes left unprocessed (empty when every write is applied).
 */
export const writeBatch = (
  client: DynamoClientShape,
  table: string,
  requests: ReadonlyArray<WriteRequest>
): Effect.Effect<ReadonlyArray<WriteRequest>, Errors.StorageError> =>
  unconditional(client.call("BatchWriteItem", table, (c) =>
    c.send(new BatchWriteItemCommand({ RequestItems: { [table]: [...requests] }, ReturnConsumedCapacity: "TOTAL" })))).pipe(
      Effect.map((r) => r.UnprocessedItems?.[table] ?? [])
    )

/**
 * Every write of `requests` on `table`: {@link MAX_BATCH_WRITE} per request, `concurrency`
 * requests in flight (default 4), unprocessed writes resent after each step of `schedule`
 * until none is left. Fails with a `StorageError` (`Throttled`) when the schedule ends first.
 */
export const writeAll = (
  client: DynamoClientShape,
  table: string,
  requests: ReadonlyArray<WriteRequest>,
  options: { readonly schedule: Schedule.Schedule<unknown>; readonly concurrency?: number | undefined }
): Effect.Effect<void, Errors.StorageError> =>
  Effect.forEach(
    ReadModel.chunksOf(requests, MAX_BATCH_WRITE),
    (batch) =>
      Effect.suspend(() => {
        let pending = batch
        return ReadModel.untilProcessed(
          options.schedule,
          Effect.suspend(() => writeBatch(client, table, pending)).pipe(
            Effect.map((left) => {
              pending = left
              return left.length
            })
          )
        ).pipe(
          Effect.catchTag("Unprocessed", () =>
            Effect.fail(
              new Errors.StorageError({
                operation: "BatchWriteItem",
                reason: "Throttled",
                resource: table,
                detail: `${pending.length} items stayed unprocessed after retries with backoff`
              })
            ))
        )
      }),
    { concurrency: options.concurrency ?? 4, discard: true }
  )

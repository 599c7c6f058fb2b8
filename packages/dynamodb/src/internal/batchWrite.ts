/**
 * The one `BatchWriteItem` writer of the DynamoDB drivers.
 *
 * - {@link writeBatch}: ONE request of at most 25 writes; it returns the writes DynamoDB
 *   left unprocessed (`UnprocessedItems`, under throttling) instead of failing. The
 *   read-model storage uses it as it is: core's `ReadModel.make` retries what is left, as it
 *   does for every driver.
 * - {@link writeAll}: any number of writes, 25 per request (a few requests in flight), with
 *   what is left unprocessed resent with backoff until nothing is left; when the schedule
 *   runs out, a `StorageError` (`Throttled`) saying how many writes are left. The snapshot
 *   storage writes and deletes parts with it.
 *
 * Not a transaction: each request is applied item by item, and a failure leaves the writes
 * of earlier requests in place. Writes are sent without an abort signal (aborting cannot
 * undo a write).
 */
import { BatchWriteItemCommand, type WriteRequest } from "@aws-sdk/client-dynamodb"
import { Errors } from "@dynamo-es/core"
import { Data, Effect, Predicate, type Schedule } from "effect"
import { type DynamoClientShape, unconditional } from "../DynamoClient.js"

/** DynamoDB's limit of writes per `BatchWriteItem`. */
export const MAX_BATCH_WRITE = 25

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

/** A batch still has unprocessed writes: drives `Effect.retry` with the backoff schedule. */
class Unprocessed extends Data.TaggedError("Unprocessed")<{ readonly left: number }> {}

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
    chunks(requests, MAX_BATCH_WRITE),
    (batch) =>
      Effect.suspend(() => {
        let pending = batch
        return Effect.suspend(() => writeBatch(client, table, pending)).pipe(
          Effect.flatMap((left) => {
            pending = left
            return left.length === 0 ? Effect.void : Effect.fail(new Unprocessed({ left: left.length }))
          }),
          Effect.retry({ schedule: options.schedule, while: (e) => Predicate.isTagged(e, "Unprocessed") }),
          Effect.catchTag("Unprocessed", (e) =>
            Effect.fail(
              new Errors.StorageError({
                operation: "BatchWriteItem",
                reason: "Throttled",
                resource: table,
                detail: `${e.left} items stayed unprocessed after retries with backoff`
              })
            ))
        )
      }),
    { concurrency: options.concurrency ?? 4, discard: true }
  )

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

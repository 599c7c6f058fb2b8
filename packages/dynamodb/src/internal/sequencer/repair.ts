/**
 * The repair scan: every event of the events table not yet in the log, indexed from a
 * parallel `Scan`. The repair after trimmed stream data, and the backfill of a table whose
 * history predates the log.
 */
import { type AttributeValue, ScanCommand } from "@aws-sdk/client-dynamodb"
// Errors: named in the emitted declarations (the inferred error types carry Errors.StorageError).
import type { Errors } from "@dynamo-es/core"
import { Effect, Semaphore } from "effect"
import { unconditional } from "../../DynamoClient.js"
import { fromItem } from "../../DynamoEventStore.js"
import type { Core } from "./core.js"

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

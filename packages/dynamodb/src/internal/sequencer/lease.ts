/**
 * The sequencer's lease: one instance works while the others wait. It is for liveness and
 * cost only: the chained entry keys keep the log right with any number of writers (see
 * `docs/global-log.md`, "Writing entries"). Acquire increments the fencing token `f`, which
 * the holder writes into each entry for audit.
 */
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb"
// Errors: named in the emitted declarations (the inferred error types carry Errors.StorageError).
import type { Errors } from "@dynamo-es/core"
import { Duration, Effect, Schema } from "effect"
import { unconditional } from "../../DynamoClient.js"
import { leaseKey } from "../../DynamoEventLog.js"
import type { Core } from "./core.js"

/**
 * This instance lost the sequencer lease (another one holds it): it stops.
 *
 * @since 0.2.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", { owner: Schema.String }) {}

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

/** Extends the lease while it is ours (owner and token); `LeaseLost` otherwise. */
export const renewLease = (core: Core, owner: string, token: number, duration: Duration.Duration) =>
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

/** Lets the lease expire at once, if it is still ours. */
export const releaseLease = (core: Core, owner: string, token: number) =>
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

/**
 * The one `Query` paginator of the DynamoDB drivers: the items of a query as a lazy Stream,
 * one request per page (1 MB, or `Limit`), the next page's key kept in the paginate state
 * so that the Stream can be run twice. Reads pass the abort signal to the SDK, so an
 * interrupted read stops its request.
 */
import type { AttributeValue, QueryCommandInput } from "@aws-sdk/client-dynamodb"
import { QueryCommand } from "@aws-sdk/client-dynamodb"
import type { Errors } from "@dynamo-es/core"
import { Effect, Option, Stream } from "effect"
import { type DynamoClientShape, unconditional } from "../DynamoClient.js"

type Item = Record<string, AttributeValue>

/** A query without its table and start key (both supplied by {@link queryItems}). */
export type QueryInput = Omit<QueryCommandInput, "TableName" | "ExclusiveStartKey" | "ReturnConsumedCapacity">

/** One `Query` request: a page of items and the key to start the next page from, if any. */
export const queryPage = (
  client: DynamoClientShape,
  table: string,
  input: QueryInput,
  startKey: Item | undefined
): Effect.Effect<{ readonly items: ReadonlyArray<Item>; readonly lastEvaluatedKey: Item | undefined }, Errors.StorageError> =>
  unconditional(client.call("Query", table, (c, abortSignal) =>
    c.send(
      new QueryCommand({
        ...input,
        TableName: table,
        ReturnConsumedCapacity: "TOTAL",
        ...(startKey !== undefined ? { ExclusiveStartKey: startKey } : {})
      }),
      { abortSignal }
    ))).pipe(Effect.map((r) => ({ items: r.Items ?? [], lastEvaluatedKey: r.LastEvaluatedKey })))

/** Every item a query matches, in the query's order, one `Query` request per page. */
export const queryItems = (
  client: DynamoClientShape,
  table: string,
  input: QueryInput
): Stream.Stream<Item, Errors.StorageError> =>
  Stream.paginate(undefined as Item | undefined, (startKey) =>
    queryPage(client, table, input, startKey).pipe(
      Effect.map((page) => [page.items, Option.fromUndefinedOr(page.lastEvaluatedKey)] as const)
    ))

import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb"
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record
} from "@aws-sdk/client-dynamodb-streams"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect } from "effect"

/** An SDK streams client and a plain client on the DynamoDB Local of the test run. */
export const streamClients = Effect.gen(function*() {
  const local = yield* DynamoDBLocal.DynamoDBLocal
  const config = Fixtures.sdkConfig(local)
  const streams = new DynamoDBStreamsClient(config)
  const raw = new DynamoDBClient(config)
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      streams.destroy()
      raw.destroy()
    })
  )
  return { streams, raw }
})

/** Every record currently in the table's stream, all shards, from the trim horizon. */
export const readWholeStream = (streams: DynamoDBStreamsClient, raw: DynamoDBClient, tableName: string) =>
  Effect.promise(async () => {
    const table = await raw.send(new DescribeTableCommand({ TableName: tableName }))
    const arn = table.Table!.LatestStreamArn!
    const description = await streams.send(new DescribeStreamCommand({ StreamArn: arn }))
    const records: Array<_Record> = []
    for (const shard of description.StreamDescription?.Shards ?? []) {
      let iterator = (await streams.send(
        new GetShardIteratorCommand({ StreamArn: arn, ShardId: shard.ShardId!, ShardIteratorType: "TRIM_HORIZON" })
      )).ShardIterator
      while (iterator !== undefined) {
        const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }))
        records.push(...(page.Records ?? []))
        // An open shard gives an iterator forever: stop at the first empty page.
        if ((page.Records ?? []).length === 0) break
        iterator = page.NextShardIterator
      }
    }
    return { arn, records }
  })

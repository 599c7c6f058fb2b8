import { DescribeTableCommand } from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Fixtures } from "@dynamo-es/dynamodb-local"
import { Cause, Effect, Exit } from "effect"
import { DynamoClient, Tables } from "../src/index.js"

describe("Tables.ensureTables", () => {
  it.live("checks every table name before any request: a bad one dies and no table is created", () =>
    Effect.gen(function*() {
      const good = Fixtures.uniqueTableName("tablesok")
      const exit = yield* Effect.exit(Tables.ensureTables([Tables.eventsTable(good), Tables.snapshotsTable("x")]))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      assert.match(String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : ""), /ensureTables: tableName must be 3 to 255 characters .* got "x"/)
      const client = yield* DynamoClient.DynamoClient
      const described = yield* client.call("DescribeTable", good, (sdk) => sdk.send(new DescribeTableCommand({ TableName: good }))).pipe(
        DynamoClient.unconditional,
        Effect.flip
      )
      assert.strictEqual(described.reason, "ResourceNotFound")
    }).pipe(Effect.provide(Fixtures.layerClient)), { timeout: 60_000 })
})

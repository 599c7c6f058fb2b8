/**
 * DynamoDB Local as a scoped Effect Layer: `DynamoDBLocal.layer()`, `DynamoDBLocal.DynamoDBLocal`.
 *
 * @since 0.1.0
 */
export * as DynamoDBLocal from "./DynamoDBLocal.js"
export * as Fixtures from "./Fixtures.js"

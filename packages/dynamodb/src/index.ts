/**
 * @dynamo-es/dynamodb: DynamoDB implementations of the @dynamo-es/core services.
 *
 * @since 0.1.0
 */
export * as DynamoClient from "./DynamoClient.js"
export * as DynamoEventStore from "./DynamoEventStore.js"
export * as Tables from "./Tables.js"
export * as DynamoSnapshotStore from "./DynamoSnapshotStore.js"
export * as DynamoReadModelStore from "./DynamoReadModelStore.js"
export * as DynamoStreams from "./DynamoStreams.js"
export * as DynamoEventLog from "./DynamoEventLog.js"
export * as DynamoSequencer from "./DynamoSequencer.js"
export * as DynamoProjection from "./DynamoProjection.js"

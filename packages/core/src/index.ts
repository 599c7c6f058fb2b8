/**
 * @dynamo-es/core: storage-independent event sourcing for Effect.
 *
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"
export * as EventStore from "./EventStore.js"
export * as SnapshotStore from "./SnapshotStore.js"
export * as Aggregate from "./Aggregate.js"
export * as ReadModel from "./ReadModel.js"
export * as Metrics from "./Metrics.js"
export * as EventLog from "./EventLog.js"
export * as Projection from "./Projection.js"
export * as Utf8 from "./Utf8.js"
export * as Retry from "./Retry.js"

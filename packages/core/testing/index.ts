/**
 * `@dynamo-es/core/testing`: what you need to test your own code and your own drivers.
 *
 * - `DeciderTest.given(aggregate, history).when(command).then(events)`: deciders without storage;
 * - the conformance suites of every service (`EventStoreConformance.eventStoreConformance(name,
 *   makeStore)`, `SnapshotStoreConformance`, `ReadModelConformance`, `AggregateConformance`, `EventLogConformance`,
 *   `ProjectionConformance`):
 *   run them against your own implementation, as this repository does against the memory and
 *   DynamoDB ones. They are Vitest suites (`vitest` and `@effect/vitest` are optional peer
 *   dependencies of `@dynamo-es/core`, needed only here);
 * - `ReadModelStorageTest.instrument(storage)`: any read-model `ReadModel.Storage` wrapped to
 *   record its requests and inject faults (no test runner needed).
 *
 * Each module is also importable alone: `@dynamo-es/core/testing/EventStoreConformance`.
 *
 * @since 0.2.0
 */
export * as AggregateConformance from "./AggregateConformance.js"
export * as DeciderTest from "./DeciderTest.js"
export * as EventStoreConformance from "./EventStoreConformance.js"
export * as ReadModelConformance from "./ReadModelConformance.js"
export * as ReadModelStorageTest from "./ReadModelStorageTest.js"
export * as SnapshotStoreConformance from "./SnapshotStoreConformance.js"
export * as TestUtils from "./utils.js"
export * as EventLogConformance from "./EventLogConformance.js"
export * as ProjectionConformance from "./ProjectionConformance.js"

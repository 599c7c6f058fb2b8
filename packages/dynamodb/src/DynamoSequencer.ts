/**
 * The sequencer of the global log: reads the events table's DynamoDB Stream and appends
 * what it sees to the log table as dense entries (see `docs/global-log.md` for the design
 * and the proof; `DynamoEventLog` for the layout).
 *
 * - Entry keys are the chain: the entry after `[a, b]` is written at `b + 1` with
 *   `attribute_not_exists(k)`, only by a sequencer whose state is the fold of every entry
 *   before it. When the put fails, someone else wrote that entry: the sequencer reads the
 *   entries from there (consistent `Query`), folds them, and plans its batch again. So the
 *   log stays dense and nothing is indexed twice even with two sequencers at once; the lease
 *   only keeps a second instance idle.
 * - Per stream, version `v` is indexed only after `v - 1`. The last indexed version of a
 *   stream is cached; the truth is the stream item of the log table together with the
 *   entries after the position its items were last raised for (`r` in each entry): items are
 *   raised lazily (`streamItemsEvery` entries or `streamItemsInterval`), and the entries since
 *   are kept in memory and read again at start. A hole (`v` above the next version) is
 *   repaired with a consistent `Query` of the events table (what the table no longer has was
 *   deleted, by TTL or by hand, and is not in the log either).
 * - The checkpoint (shard -> last sequence number) is in each entry: an entry and its
 *   checkpoint are one item. Redelivered records are dropped by sequence number and by version.
 * - `TrimmedDataAccessException` (the sequencer was down longer than the stream's 24 hours):
 *   a repair scan of the events table indexes whatever is missing, then reading resumes at
 *   the trim horizon. A backfill of a table that predates the log is the same scan.
 *
 * The parts live in `internal/sequencer/`: `core` (state, planning, entries), `streamItems`
 * (the last indexed version of each stream), `lease`, `runner` (the in-process entry
 * point), `lambda` (the Lambda entry point) and `repair` (the repair scan and backfill).
 *
 * @since 0.2.0
 */
export { type Core, makeCore, type SequencerOptions, type ShardRecord } from "./internal/sequencer/core.js"
export {
  type BatchResponse,
  eventSourceMapping,
  type EventSourceMappingOptions,
  handleLambdaEvent,
  lambdaHandler
} from "./internal/sequencer/lambda.js"
export { acquireLease, LeaseLost } from "./internal/sequencer/lease.js"
export { repairScan } from "./internal/sequencer/repair.js"
export { layer, run, type RunOptions, type StreamsClient, streamsClientFor } from "./internal/sequencer/runner.js"

/**
 * Projections: read models kept from the global log, exactly once in effect.
 *
 * A projection has a name, the events it handles (a Schema of their payloads) and a handler
 * from an event (with its log position) to read-model changes, made through the
 * repositories the runner gives it. {@link run} catches up from the projection's checkpoint
 * and follows the log live: events in batches, each batch one flush, then the checkpoint.
 *
 * ```ts
 * const Balance = Schema.Struct({ id: Schema.String, balance: Schema.Number })
 * const Deposited = Schema.Struct({ amount: Schema.Number })
 *
 * const balances = Projection.make({
 *   name: "balances",
 *   events: Deposited,
 *   readModels: { balances: Projection.readModel("balances", Balance) },
 *   handle: (event, { balances }) =>
 *     Effect.gen(function*() {
 *       const current = yield* balances.find(event.streamId)
 *       const balance = Option.match(current, { onNone: () => 0, onSome: (b) => b.balance })
 *       yield* balances.save({ id: event.streamId, balance: balance + event.payload.amount })
 *     })
 * })
 *
 * // Needs EventLog.EventLog and ReadModel.ReadModelStore.
 * const rebuilt = Projection.run(balances, { until: "caughtUp" })
 * ```
 *
 * Modes (see `docs/projections.md` for the design and the costs):
 * - `"guarded"` (default): every row carries the position of the last event applied to it;
 *   a write lands only when the stored position is lower, and an event is not applied to a
 *   row that already holds it. Replays, duplicates and stale runners change nothing.
 *   Removes become tombstones (invisible to readers). Rows are written 25 to a request
 *   where the storage batches guarded writes (DynamoDB: `BatchExecuteStatement`).
 * - `"atLeastOnce"`: batched flush (`BatchWriteItem`), then the checkpoint. A crash between
 *   the two replays the batch: for idempotent handlers only.
 * - `"transactional"`: the batch's rows and the checkpoint in one `TransactWriteItems` (a
 *   batch is cut at 99 changed rows or 4 MB; 2 WCU per KB per row).
 *
 * The checkpoint is a row of the read-models storage (repository `$projections`, id: the
 * projection's name), held by one runner at a time (a lease with a fencing token).
 *
 * Rebuilds without downtime: {@link rebuild} projects into a new version of the read models
 * (names suffixed `@version`) while the active one keeps serving, then switches the
 * projection's active version; {@link readers} read the active version, {@link runActive}
 * runs it live and follows switches, {@link drop} deletes an old version.
 *
 * @since 0.2.0
 */
import type { Schema } from "effect"
import type { Projection, ReadModelSpec } from "./internal/projection/model.js"

export { applyEvents } from "./internal/projection/apply.js"
export { CHECKPOINTS, CorruptedCheckpointError } from "./internal/projection/checkpoint.js"
export {
  ProjectionDecodeError,
  ProjectionFencedError,
  ProjectionHandlerError,
  ProjectionTransactionTooLargeError,
  ProjectionVersionError,
  type RunError
} from "./internal/projection/errors.js"
export { runActive } from "./internal/projection/live.js"
export { readers } from "./internal/projection/readers.js"
export { activeVersion, drop, rebuild } from "./internal/projection/rebuild.js"
export type {
  ApplyResult,
  Progress,
  Projection,
  Reader,
  Readers,
  ReadModelSpec,
  RebuildOptions,
  RebuildResult,
  Repositories,
  Repository,
  RunOptions,
  Status
} from "./internal/projection/model.js"
export { run } from "./internal/projection/run.js"
export { status } from "./internal/projection/status.js"
export { cleanTombstones } from "./internal/projection/tombstones.js"
export { versioned } from "./internal/projection/versions.js"

/**
 * A {@link ReadModelSpec}, with the model type inferred from the Schema.
 *
 * @since 0.2.0
 * @category constructors
 */
export const readModel = <A, I>(
  name: string,
  schema: Schema.Codec<A, I>,
  options: { readonly idOf?: ((model: A) => string) | undefined } = {}
): ReadModelSpec<A> => ({ name, schema, idOf: options.idOf })

/**
 * Defines a projection.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <E, RM extends Record<string, ReadModelSpec<any>>, Err = never, R = never>(
  definition: Projection<E, RM, Err, R>
): Projection<E, RM, Err, R> => definition


/** The errors of projections. */
import { Schema } from "effect"
import type { InvalidInputError, StorageError } from "../../Errors.js"
import type { LogReadError } from "../../EventLog.js"
import type { CorruptedReadModelError, ReadModelIdMismatchError } from "../readModel/errors.js"
import type { CorruptedCheckpointError } from "./checkpoint.js"

/**
 * A handler failed: the projection stopped at this event. Everything before it is applied
 * and checkpointed; nothing of it is. `cause` is the handler's error.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionHandlerError extends Schema.TaggedError<ProjectionHandlerError>()("ProjectionHandlerError", {
  projection: Schema.String,
  streamId: Schema.String,
  version: Schema.Number,
  position: Schema.Number,
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `Projection "${this.projection}" failed at ${this.streamId}@${this.version} (log position ${this.position}): ${
      String((this.cause as { message?: unknown })?.message ?? this.cause)
    }`
  }
}

/**
 * An event of a type the projection handles whose payload does not decode with its Schema.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionDecodeError extends Schema.TaggedError<ProjectionDecodeError>()("ProjectionDecodeError", {
  projection: Schema.String,
  streamId: Schema.String,
  version: Schema.Number,
  position: Schema.Number,
  reason: Schema.String
}) {}

/**
 * Another runner holds the projection's checkpoint now (this one's lease expired and was
 * claimed): this runner stopped without moving the checkpoint.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionFencedError extends Schema.TaggedError<ProjectionFencedError>()("ProjectionFencedError", {
  projection: Schema.String,
  owner: Schema.String,
  token: Schema.Number
}) {}

/**
 * Transactional mode: one event changes more rows than one transaction holds (99 rows and
 * the checkpoint, 4 MB). Everything before it is applied and checkpointed. Run this
 * projection in another mode.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionTransactionTooLargeError
  extends Schema.TaggedError<ProjectionTransactionTooLargeError>()("ProjectionTransactionTooLargeError", {
    projection: Schema.String,
    streamId: Schema.String,
    version: Schema.Number,
    position: Schema.Number,
    rows: Schema.Number,
    bytes: Schema.Number
  })
{}


/**
 * A version of a projection that cannot be used as asked: a rebuild into a version older
 * than the active one (or overtaken by a newer one while it ran), or a drop of the active
 * version. Nothing was switched or deleted.
 *
 * @since 0.2.0
 * @category errors
 */
export class ProjectionVersionError extends Schema.TaggedError<ProjectionVersionError>()("ProjectionVersionError", {
  projection: Schema.String,
  version: Schema.Number,
  active: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `Projection "${this.projection}" version ${this.version} (active: ${this.active}): ${this.reason}`
  }
}

/**
 * What {@link run} can fail with, besides the handler's own errors (wrapped in
 * {@link ProjectionHandlerError}).
 *
 * @since 0.2.0
 * @category errors
 */
export type RunError =
  | ProjectionHandlerError
  | ProjectionDecodeError
  | ProjectionFencedError
  | ProjectionTransactionTooLargeError
  | CorruptedCheckpointError
  | LogReadError
  | StorageError
  | InvalidInputError
  | CorruptedReadModelError
  | ReadModelIdMismatchError

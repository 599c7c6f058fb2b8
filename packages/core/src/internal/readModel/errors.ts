/**
 * The errors of read-model repositories (re-exported by `ReadModel`).
 */
import { Schema } from "effect"
import { type InvalidInputError, StorageError } from "../../Errors.js"

/**
 * A read model could not be encoded for storage: it fails its Schema, or its encoded
 * form is not JSON. Nothing was written (in deferred mode: nothing was staged).
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadModelEncodeError extends Schema.TaggedError<ReadModelEncodeError>()("ReadModelEncodeError", {
  repository: Schema.String,
  id: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    return `Read model "${this.id}" of repository "${this.repository}" cannot be encoded: ${this.reason}. Nothing was written.`
  }
}

/**
 * A read model is larger than one DynamoDB item may be (400 KB, names and values of
 * `Name`, `Id` and `Data`). Nothing was written. Split the read model, or keep large
 * parts elsewhere (e.g. S3) and store a reference.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadModelTooLargeError extends Schema.TaggedError<ReadModelTooLargeError>()("ReadModelTooLargeError", {
  repository: Schema.String,
  id: Schema.String,
  sizeBytes: Schema.Int,
  maxBytes: Schema.Int
}) {
  override get message(): string {
    return `Read model "${this.id}" of repository "${this.repository}" takes ${this.sizeBytes} bytes as a DynamoDB item; the limit is ${this.maxBytes}. Nothing was written: split the read model or store large parts elsewhere.`
  }
}

/**
 * A stored row cannot be read back: its `Data` is missing, is not JSON, or no longer
 * decodes with the repository's Schema. Names table, repository and id so that the row can
 * be found and repaired (or the Schema given a migration); never cast silently.
 *
 * @since 0.1.0
 * @category errors
 */
export class CorruptedReadModelError extends Schema.TaggedError<CorruptedReadModelError>()("CorruptedReadModelError", {
  table: Schema.String,
  repository: Schema.String,
  id: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    return `Stored read model "${this.id}" of repository "${this.repository}" in table "${this.table}" cannot be read: ${this.reason}. Repair the row or add a migration to the Schema.`
  }
}

/**
 * A stored row's key (`Id`) is not the id inside its payload. The repository does not
 * normalize such rows (which would hide a bug in whatever wrote them): repair them with
 * explicit tooling.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadModelIdMismatchError extends Schema.TaggedError<ReadModelIdMismatchError>()("ReadModelIdMismatchError", {
  table: Schema.String,
  repository: Schema.String,
  /** The row's key (`Id`). */
  storedId: Schema.String,
  /** The id of the decoded payload. */
  payloadId: Schema.String
}) {
  override get message(): string {
    return `Stored read model "${this.storedId}" of repository "${this.repository}" in table "${this.table}" holds a payload with id "${this.payloadId}". Rows are never normalized: repair the row with explicit tooling.`
  }
}

/**
 * A batched lookup by ids (`findBy({ id: [...] })`) could not get an answer for some ids:
 * storage kept returning them as unprocessed (DynamoDB `UnprocessedKeys`, i.e.
 * throttling) until the retry schedule ran out. `ids` are the ids without an answer; the
 * lookup can be retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnresolvedIdsError extends Schema.TaggedError<UnresolvedIdsError>()("UnresolvedIdsError", {
  table: Schema.String,
  repository: Schema.String,
  ids: Schema.Array(Schema.String),
  attempts: Schema.Int
}) {
  override get message(): string {
    return `${this.ids.length} read model(s) of repository "${this.repository}" in table "${this.table}" stayed unprocessed after ${this.attempts} attempts (throttling): ${
      this.ids.slice(0, 10).map((id) => JSON.stringify(id)).join(", ")
    }${this.ids.length > 10 ? ", ..." : ""}. Retry the lookup later.`
  }
}

/**
 * A deferred repository's `flush` could not write everything. What was written is no
 * longer pending; everything else (including `ids`) still is, so calling `flush` again
 * finishes the job, and writes nothing twice.
 *
 * - `operation`: what the failing batch did (`"save"` or `"remove"`);
 * - `ids`: the read models of that batch that were not written;
 * - `context`: what the caller passed to `flushWithContext` (tenant, projector, event id, ...);
 * - `written` / `pending`: read models written by this flush / still pending after it;
 * - `cause`: the storage failure (`isRetryable` tells whether trying again may help).
 *
 * A flush is a batching boundary, not a transaction: earlier batches stay written.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeferredFlushFailed extends Schema.TaggedError<DeferredFlushFailed>()("DeferredFlushFailed", {
  operation: Schema.Literals(["save", "remove"]),
  ids: Schema.Array(Schema.String),
  table: Schema.String,
  repository: Schema.String,
  /** The read model's name: the Schema's identifier, or the repository name. */
  model: Schema.String,
  context: Schema.Record(Schema.String, Schema.Unknown),
  written: Schema.Int,
  pending: Schema.Int,
  cause: StorageError
}) {
  override get message(): string {
    const ctx = Object.keys(this.context).length === 0 ? "" : ` (context: ${safeJson(this.context)})`
    return `Flushing repository "${this.repository}" (${this.model}) to table "${this.table}" failed to ${this.operation} ${this.ids.length} read model(s) [${
      this.ids.slice(0, 10).map((id) => JSON.stringify(id)).join(", ")
    }${this.ids.length > 10 ? ", ..." : ""}]${ctx}: ${this.cause.message} ${this.written} read model(s) were written and are no longer pending; ${this.pending} remain pending: call flush again to finish.`
  }
}

const safeJson = (u: unknown) => {
  try {
    return JSON.stringify(u)
  } catch {
    return String(u)
  }
}

/**
 * The errors `save` can fail with. In deferred mode only the first three (nothing is
 * sent before `flush`).
 *
 * @since 0.1.0
 * @category errors
 */
export type SaveError = InvalidInputError | ReadModelEncodeError | ReadModelTooLargeError | StorageError

/**
 * The errors a read can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type ReadError = InvalidInputError | CorruptedReadModelError | ReadModelIdMismatchError | StorageError

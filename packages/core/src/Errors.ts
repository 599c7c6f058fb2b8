/**
 * The typed errors of dynamo-es. Every error is a tagged class: catch one with
 * `Effect.catchTag("ConflictError", ...)`. Each carries the fields a caller needs to
 * decide what to do next (stream id, versions, operation, limits) and a `message`
 * that says what went wrong and what to do about it.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * What `append` expects the stream to be at: an integer >= 0 (`0` = the stream does not
 * exist yet), `"noStream"`, `"streamExists"` or `"any"`. The one definition: the type
 * `EventStore.ExpectedVersion`, the validation of `append`'s options and the field of
 * {@link ConflictError} all come from it.
 *
 * @since 0.1.0
 * @category models
 */
export const ExpectedVersionSchema = Schema.Union([
  Schema.Literals(["any", "noStream", "streamExists"]),
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
]).annotate({ message: `must be "any", "noStream", "streamExists" or an integer >= 0` })

/**
 * `append` found the stream at another version than the caller expected. Nothing was
 * written. Reload the stream (or aggregate), decide again and retry.
 *
 * `actualVersion` is the version the store saw (0 = the stream does not exist).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConflictError extends Schema.TaggedError<ConflictError>()("ConflictError", {
  streamId: Schema.String,
  expectedVersion: ExpectedVersionSchema,
  actualVersion: Schema.Int
}) {
  override get message(): string {
    return `Stream "${this.streamId}" is at version ${this.actualVersion}, but the append expected ${
      typeof this.expectedVersion === "number" ? `version ${this.expectedVersion}` : `"${this.expectedVersion}"`
    }. Nothing was written: reload the stream, decide again and retry.`
  }
}

/**
 * Something that must exist does not (e.g. reading a stream that has no events).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFoundError extends Schema.TaggedError<NotFoundError>()("NotFoundError", {
  /** What was looked for: `"stream"`, `"snapshot"`, `"readModel"`, ... */
  resource: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `No ${this.resource} with id "${this.id}" exists.`
  }
}

/**
 * An argument was refused before anything was sent to storage: an empty or over-long
 * id, a negative version, a limit that is not a positive integer, ...
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInputError extends Schema.TaggedError<InvalidInputError>()("InvalidInputError", {
  operation: Schema.String,
  /** The argument that was refused, e.g. `"streamId"` or `"options.limit"`. */
  field: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.operation}: invalid ${this.field}: ${this.reason}. Nothing was written.`
  }
}

/**
 * An event could not be encoded for storage: its payload failed the caller's Schema, or
 * its metadata is not JSON. Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventEncodeError extends Schema.TaggedError<EventEncodeError>()("EventEncodeError", {
  streamId: Schema.String,
  /** Position of the event in the `append` call (0-based). */
  index: Schema.Int,
  eventType: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    return `Event #${this.index} ("${this.eventType}") for stream "${this.streamId}" cannot be encoded: ${this.reason}. Nothing was written.`
  }
}

/**
 * One event is larger than the storage's item limit (`EventStore.Storage.limits`; DynamoDB's
 * and the memory store's: 400 KB, counted the way DynamoDB counts it, attribute names plus
 * values). Nothing was written. Store large payloads elsewhere (e.g. S3) and keep a
 * reference in the event.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventTooLargeError extends Schema.TaggedError<EventTooLargeError>()("EventTooLargeError", {
  streamId: Schema.String,
  index: Schema.Int,
  eventType: Schema.String,
  sizeBytes: Schema.Int,
  maxBytes: Schema.Int
}) {
  override get message(): string {
    return `Event #${this.index} ("${this.eventType}") for stream "${this.streamId}" takes ${this.sizeBytes} bytes as a stored item; the limit is ${this.maxBytes}. Nothing was written: keep large payloads outside the event store and store a reference.`
  }
}

/**
 * An `append` is larger than one atomic write of the storage allows
 * (`EventStore.Storage.limits`; on DynamoDB one transaction: 100 items, 4 MB), so it cannot
 * be atomic. Nothing was written. Split the events into several appends (each
 * atomic on its own, each with the previous one's version as expected version), which is
 * what `EventStore.appendBulk` does for you.
 *
 * @since 0.1.0
 * @category errors
 */
export class AppendTooLargeError extends Schema.TaggedError<AppendTooLargeError>()("AppendTooLargeError", {
  streamId: Schema.String,
  eventCount: Schema.Int,
  totalBytes: Schema.Int,
  maxEvents: Schema.Int,
  maxBytes: Schema.Int
}) {
  override get message(): string {
    return `An append of ${this.eventCount} events (${this.totalBytes} bytes) to stream "${this.streamId}" exceeds one atomic write (${this.maxEvents} events, ${this.maxBytes} bytes). Nothing was written: split it into several appends, each expecting the version the previous one returned, or use appendBulk (not atomic as a whole).`
  }
}

/**
 * `appendBulk` failed after some of its transactions were committed. The first `appended`
 * events are known to be stored and the stream is at `version` after them.
 *
 * Resume with the events in `remaining`, which carry the event ids `appendBulk` gave them:
 * `EventStore.appendBulk(streamId, error.remaining, { expectedVersion: error.version })`.
 * That is always safe, also when `unknownOutcome` is `true` (the next transaction may have
 * been applied although its response was lost): an append whose events are already stored
 * at the versions they would take is recognised as applied and not written twice.
 *
 * @since 0.1.0
 * @category errors
 */
export class AppendBulkInterrupted extends Schema.TaggedError<AppendBulkInterrupted>()("AppendBulkInterrupted", {
  streamId: Schema.String,
  /** How many of the events (from the start) are known to be stored. */
  appended: Schema.Int,
  /** The stream's version after them: the expected version to resume with. */
  version: Schema.Int,
  total: Schema.Int,
  /**
   * `true` when the transaction after the first `appended` events may have been applied
   * (its outcome could not be read back). Resuming with `remaining` is safe either way.
   */
  unknownOutcome: Schema.Boolean,
  /** The events not known to be stored, encoded, with their event ids: what to resume with. */
  remaining: Schema.Array(Schema.Unknown),
  cause: Schema.Defect()
}) {
  override get message(): string {
    const reason = typeof this.cause === "object" && this.cause !== null && "message" in this.cause ? String(this.cause.message) : String(this.cause)
    return `appendBulk to stream "${this.streamId}" stopped after ${this.appended} of ${this.total} events (stream at version ${this.version})${
      this.unknownOutcome ? "; the next transaction may have been applied" : ""
    }: ${reason}. Resume with EventStore.appendBulk(streamId, error.remaining, { expectedVersion: ${this.version} }): it is safe to retry.`
  }
}

/**
 * An event id of the append is already stored in the stream, but the append is not a
 * repeat of the one that stored it: the same id with other content (type, payload or
 * metadata), or only some of the append's events stored at the versions they would take.
 * Nothing was written.
 *
 * An append is recognised as already applied (and reports its original result) only when
 * every one of its event ids is stored with the same content at exactly the version it
 * would take. An event id names one event: derive it from the command (e.g.
 * `${commandId}-0`), never reuse it for another event.
 *
 * - `reason: "differentContent"`: the event at `version` has this id but another type,
 *   payload or metadata;
 * - `reason: "partiallyStored"`: the event at `version` is this append's event (same id,
 *   same content), but another of its events is missing or different at its version.
 *
 * @since 0.2.0
 * @category errors
 */
export class EventIdConflictError extends Schema.TaggedError<EventIdConflictError>()("EventIdConflictError", {
  streamId: Schema.String,
  /** The event id that was found. */
  eventId: Schema.String,
  /** The version at which it is stored. */
  version: Schema.Int,
  /** Position of the event in the `append` call (0-based). */
  index: Schema.Int,
  reason: Schema.Literals(["differentContent", "partiallyStored"]),
  /** What was found, in words. */
  detail: Schema.String
}) {
  override get message(): string {
    return `Event id "${this.eventId}" (event #${this.index} of the append) is already stored at version ${this.version} of stream "${this.streamId}", but the append is not a repeat of the one that stored it: ${this.detail}. Nothing was written: an event id names one event; give new events new ids.`
  }
}

/**
 * Stored data could not be read back: an item misses attributes, holds JSON that does not
 * parse, or a payload that no longer decodes with the caller's Schema. Names the stream
 * and the version so the item can be found and repaired; never cast silently.
 *
 * @since 0.1.0
 * @category errors
 */
export class CorruptedEventError extends Schema.TaggedError<CorruptedEventError>()("CorruptedEventError", {
  streamId: Schema.String,
  version: Schema.Int,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {
  override get message(): string {
    return `Stored event ${this.version} of stream "${this.streamId}" cannot be read: ${this.reason}. Fix the stored item or the event Schema (add a migration for old shapes).`
  }
}

/**
 * Why a storage request failed, classified once from the driver's native error.
 *
 * - `Throttled`: capacity exceeded or request rate too high (retryable)
 * - `Unavailable`: network error, timeout, 5xx, transaction conflict (retryable)
 * - `ResourceNotFound`: the table or index does not exist (run `ensureTables`)
 * - `AccessDenied`: credentials or IAM permissions
 * - `Validation`: the request was refused as malformed (a bug or an unsupported value)
 * - `Unknown`: anything else
 *
 * @since 0.1.0
 * @category models
 */
export type StorageErrorReason = "Throttled" | "Unavailable" | "ResourceNotFound" | "AccessDenied" | "Validation" | "Unknown"

/**
 * A storage request failed for a reason other than a business rule. `isRetryable`
 * says whether trying again may succeed; the stores already retry those with backoff
 * before this error reaches you.
 *
 * @since 0.1.0
 * @category errors
 */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  /** The storage operation, e.g. `"PutItem"` or `"Query"`. */
  operation: Schema.String,
  reason: Schema.Literals(["Throttled", "Unavailable", "ResourceNotFound", "AccessDenied", "Validation", "Unknown"]),
  /** The table (or other resource) the request went to, when known. */
  resource: Schema.optional(Schema.String),
  detail: Schema.String,
  /**
   * `true` when the request was a write that may have been applied although it failed (a
   * lost response, a timeout, a 5xx or an unrecognised error after it was sent). Retrying
   * an append with the same event ids and expected version is safe; read back otherwise.
   */
  unknownOutcome: Schema.optionalKey(Schema.Boolean),
  cause: Schema.optional(Schema.Defect())
}) {
  get isRetryable(): boolean {
    return this.reason === "Throttled" || this.reason === "Unavailable"
  }
  override get message(): string {
    const hint = this.reason === "ResourceNotFound"
      ? " Create the tables first (ensureTables) or check the table names."
      : this.reason === "AccessDenied"
      ? " Check the credentials and IAM permissions."
      : this.isRetryable
      ? " It was retried with backoff and kept failing."
      : ""
    const outcome = this.unknownOutcome === true
      ? " The write may have been applied: retrying is safe for an append with an exact expected version (a number or \"noStream\") and the same event ids, which is recognised if it was stored, and for read-model and snapshot writes, which are idempotent; with \"any\" or \"streamExists\", read the stream back first."
      : ""
    return `${this.operation}${this.resource ? ` on ${this.resource}` : ""} failed (${this.reason}): ${this.detail}.${hint}${outcome}`
  }
}

/**
 * The message of an expected failure on one line, for a command line or a log line: the
 * error's `message` with its line breaks folded, and for a `ConfigError` (a missing or
 * malformed variable) the text without its `SchemaError(...)` wrapper, with the variable
 * named: `AWS_REGION is not set ... (at "AWS_REGION")`. What the `dynamo-es` command and
 * the examples print instead of a stack trace.
 *
 * @since 0.2.0
 * @category formatting
 */
export const oneLine = (error: unknown): string => {
  const message = typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)
  const tag = typeof error === "object" && error !== null && "_tag" in error ? error._tag : undefined
  return tag === "ConfigError"
    ? message.replace(/^SchemaError\(([\s\S]*)\)$/, "$1").replace(/\s*\n\s*at \[(.*)\]$/, " (at $1)").replace(/\s*\n\s*/g, " ")
    : message.replace(/\s*\n\s*/g, " ")
}

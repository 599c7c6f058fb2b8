/**
 * Every argument of every operation, as a Schema: the one place where inputs are checked
 * before any request is sent. Every implementation (memory and DynamoDB) validates with
 * these, so they refuse exactly the same inputs with exactly the same errors.
 *
 * Key lengths are DynamoDB's where DynamoDB has one; where the library adds a limit (TTL
 * range, page size) it is documented in the README. Item sizes and the size of one write are
 * the storage's own (`EventStore.Storage.limits`), checked in `prepare.ts`.
 */
import { Cause, Duration, Effect, Exit, Option, Schedule, Schema, SchemaIssue } from "effect"
import { ExpectedVersionSchema, InvalidInputError } from "../Errors.js"
import { byteLength as utf8Length } from "../Utf8.js"

/** DynamoDB allows 2048 bytes for a partition key; we keep a margin for composite keys. */
export const MAX_STREAM_ID_BYTES = 1024
export const MAX_EVENT_ID_BYTES = 64
export const MAX_EVENT_TYPE_BYTES = 256
/** The largest `pageSize` a read accepts (DynamoDB's 1 MB page applies below it anyway). */
export const MAX_PAGE_SIZE = 10_000
/** The longest TTL an event accepts: 100 years. Longer means "keep": give no TTL. */
export const MAX_TTL_MILLIS = 100 * 365 * 24 * 60 * 60 * 1000

export { byteLength as utf8Length } from "../Utf8.js"

/**
 * Why `s` cannot be a key (or a value compared byte for byte), or `undefined`. Keys must be
 * well-formed Unicode: DynamoDB stores strings as UTF-8 and replaces a lone surrogate, so
 * `"a\uD800"` and `"a\uDC00"` would address the same item.
 */
export const keyProblem = (s: string, maxBytes: number): string | undefined => {
  if (s.length === 0) return "must be a non-empty string"
  if (!s.isWellFormed()) {
    return "must be well-formed Unicode: it contains a lone surrogate (\\uD800-\\uDFFF), which storage would replace, so two different ids would address the same data"
  }
  const bytes = utf8Length(s)
  if (bytes > maxBytes) return `is ${bytes} bytes long (UTF-8); the limit is ${maxBytes}`
  return undefined
}

/** A string usable as a key: non-empty, well-formed Unicode, at most `maxBytes` of UTF-8. */
export const KeyString = (maxBytes: number) =>
  Schema.String.check(Schema.makeFilter((s: string) => keyProblem(s, maxBytes)))

export const StreamId = KeyString(MAX_STREAM_ID_BYTES)
export const EventId = KeyString(MAX_EVENT_ID_BYTES)
export const EventType = KeyString(MAX_EVENT_TYPE_BYTES)

const isSafe = (n: number) => Number.isSafeInteger(n)
export const PositiveInt = Schema.Number.check(
  Schema.makeFilter((n: number) => (isSafe(n) && n >= 1 ? undefined : "must be an integer >= 1"))
)
export const NonNegativeInt = Schema.Number.check(
  Schema.makeFilter((n: number) => (isSafe(n) && n >= 0 ? undefined : "must be an integer >= 0"))
)

export const ExpectedVersion = ExpectedVersionSchema

const isPlainObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) &&
  (Object.getPrototypeOf(u) === Object.prototype || Object.getPrototypeOf(u) === null)

const METADATA_FIELDS = new Set(["actor", "correlationId", "causationId", "custom"])

/**
 * Event metadata: `actor`, `correlationId`, `causationId` (strings) and `custom` (a plain
 * object of your own JSON fields). `undefined` fields are left out. Any other field is
 * refused rather than dropped.
 */
export const Metadata = Schema.Unknown.check(Schema.makeFilter((m: unknown) => {
  if (!isPlainObject(m)) return "must be an object with actor, correlationId, causationId or custom"
  for (const key of Object.keys(m)) {
    const value = m[key]
    if (!METADATA_FIELDS.has(key)) {
      return { path: [key], issue: "is not a metadata field (actor, correlationId, causationId, custom): put your own fields in metadata.custom" }
    }
    if (value === undefined) continue
    if (key === "custom") {
      if (!isPlainObject(value)) return { path: [key], issue: "must be a plain object of your own JSON fields" }
    } else if (typeof value !== "string") {
      return { path: [key], issue: "must be a string" }
    }
  }
  return undefined
}))

const DURATION_FIELDS = new Set(["weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"])

/**
 * A TTL in milliseconds, or why the input is not one. Accepted: a number of milliseconds,
 * a string such as `"30 days"`, a `Duration`, a `[seconds, nanos]` tuple, or an object
 * such as `{ days: 30 }` with at least one field. Zero disables the TTL. `Duration.fromInput`
 * alone is too lenient here (it reads `{}`, `NaN` and unknown fields as zero).
 */
export const ttlMillis = (input: unknown): number | string => {
  const range = `must be a duration from 0 (no TTL) to 100 years, e.g. "30 days", 86400000 (ms) or { days: 30 }`
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) return range
  } else if (typeof input === "string") {
    if (!/^\s*-?\d+(\.\d+)?(e[+-]?\d+)?\s+[a-z]+\s*$/i.test(input)) return range
  } else if (Array.isArray(input)) {
    if (input.length !== 2 || !input.every((n) => typeof n === "number" && Number.isFinite(n) && n >= 0)) return range
  } else if (isPlainObject(input)) {
    const keys = Object.keys(input)
    if (keys.length === 0) return range
    for (const key of keys) {
      const n = input[key]
      if (!DURATION_FIELDS.has(key) || typeof n !== "number" || !Number.isFinite(n) || n < 0) return range
    }
  } else if (!Duration.isDuration(input)) {
    return range
  }
  const duration = Duration.fromInput(input as Duration.Input)
  if (Option.isNone(duration) || !Duration.isFinite(duration.value)) return range
  const ms = Duration.toMillis(duration.value)
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TTL_MILLIS) return range
  return ms
}

export const Ttl = Schema.Unknown.check(Schema.makeFilter((u: unknown) => {
  const ms = ttlMillis(u)
  return typeof ms === "string" ? ms : undefined
}))

export const NewEvent = Schema.Struct({
  type: EventType,
  payload: Schema.Unknown,
  metadata: Schema.optional(Metadata),
  ttl: Schema.optional(Ttl),
  eventId: Schema.optional(EventId)
})

export const NewEvents = Schema.Array(NewEvent).check(
  Schema.makeFilter((a: ReadonlyArray<unknown>) => (a.length === 0 ? "must be a non-empty array" : undefined))
)

export const AppendOptions = Schema.Struct({
  expectedVersion: ExpectedVersion,
  metadata: Schema.optional(Metadata)
})

const Consistency = Schema.optional(Schema.Boolean)

export const PageSize = PositiveInt.check(
  Schema.makeFilter((n: number) => (n <= MAX_PAGE_SIZE ? undefined : `must be at most ${MAX_PAGE_SIZE}`))
)

export const ReadOptions = Schema.UndefinedOr(
  Schema.Struct({
    from: Schema.optional(PositiveInt),
    to: Schema.optional(PositiveInt),
    direction: Schema.optional(Schema.Literals(["forward", "backward"])),
    limit: Schema.optional(PositiveInt),
    consistentRead: Consistency,
    pageSize: Schema.optional(PageSize),
    ifMissing: Schema.optional(Schema.Literals(["fail", "empty"]))
  }).check(Schema.makeFilter((o) =>
    o.from !== undefined && o.to !== undefined && o.to < o.from ? { path: ["to"], issue: "must be >= options.from" } : undefined
  ))
)

export const ConsistencyOptions = Schema.UndefinedOr(Schema.Struct({ consistentRead: Consistency }))

export const SaveSnapshot = Schema.Struct({
  version: PositiveInt,
  state: Schema.Unknown,
  schemaVersion: Schema.optional(NonNegativeInt)
})

export const LoadSnapshotOptions = Schema.UndefinedOr(Schema.Struct({
  atOrBefore: Schema.optional(PositiveInt),
  schemaVersion: Schema.optional(NonNegativeInt)
}))

export const RepositoryOptions = Schema.UndefinedOr(Schema.Struct({
  idOf: Schema.optional(Schema.Unknown.check(Schema.makeFilter((f: unknown) => (typeof f === "function" ? undefined : "must be a function")))),
  consistentRead: Schema.optional(Schema.Boolean),
  pageSize: Schema.optional(PageSize),
  modelName: Schema.optional(Schema.String)
}))

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const fieldOf = (prefix: string, path: ReadonlyArray<PropertyKey>): string => {
  let field = prefix
  for (const key of path) {
    field += typeof key === "number" ? `[${key}]` : field === "" ? String(key) : `.${String(key)}`
  }
  return field === "" ? "input" : field
}

/**
 * Decodes `input` with `schema`, or fails with an {@link InvalidInputError} naming the
 * first refused field (`field` is the name of the argument, e.g. `"options"`).
 */
export const validate = <S extends Schema.Decoder<unknown>>(schema: S) => {
  const decode = Schema.decodeUnknownExit(schema as Schema.Decoder<S["Type"]>)
  return (operation: string, field: string, input: unknown): Effect.Effect<S["Type"], InvalidInputError> => {
    const exit = decode(input)
    if (Exit.isSuccess(exit)) return Effect.succeed(exit.value)
    const reason = exit.cause.reasons.find(Cause.isFailReason)
    const issue = reason !== undefined ? formatter((reason.error as Schema.SchemaError).issue).issues[0] : undefined
    return Effect.fail(
      new InvalidInputError({
        operation,
        field: fieldOf(field, issue?.path?.map((p) => (typeof p === "object" ? p.key : p)) ?? []),
        reason: issue?.message ?? String(exit.cause)
      })
    )
  }
}

/**
 * A constructor's options checked against `schema`, once: the decoded options, or a defect
 * (constructor misuse is a programming error) that is an {@link InvalidInputError} naming
 * the constructor (`operation`), the option (`field`) and what is wrong, e.g.
 * `ReadModel.make: invalid options.writeConcurrency: must be an integer >= 1`.
 */
export const optionsOrDie = <S extends Schema.Decoder<unknown>>(constructor: string, schema: S) => {
  const check = validate(schema)
  return (input: unknown): Effect.Effect<S["Type"]> => Effect.orDie(check(constructor, "options", input))
}

const isScheduleValue = (u: unknown) => (Schedule.isSchedule(u) ? undefined : "must be a Schedule")

/** `ReadModel.make`'s options (`ReadModelStoreOptions`; other fields, e.g. a driver's, pass). */
export const ReadModelStoreOptions = Schema.UndefinedOr(Schema.Struct({
  skipUnchanged: Schema.optional(Schema.Boolean),
  snapshotCapacity: Schema.optional(NonNegativeInt),
  writeConcurrency: Schema.optional(PositiveInt),
  readConcurrency: Schema.optional(PositiveInt),
  unprocessedRetrySchedule: Schema.optional(Schema.Unknown.check(Schema.makeFilter(isScheduleValue)))
}))

/** `SnapshotStore.make`'s options (`SnapshotStoreOptions`; other fields, e.g. a driver's, pass). */
export const SnapshotStoreOptions = Schema.UndefinedOr(Schema.Struct({
  keepLast: Schema.optional(PositiveInt)
}))

/** `EventStore.make`'s options (`EventStoreOptions`; other fields, e.g. a driver's, pass). */
export const EventStoreOptions = Schema.UndefinedOr(Schema.Struct({
  defaultTtl: Schema.optional(Ttl),
  versionCacheSize: Schema.optional(NonNegativeInt),
  maxAppendAttempts: Schema.optional(PositiveInt)
}))

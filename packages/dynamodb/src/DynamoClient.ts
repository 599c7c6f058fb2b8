/**
 * The DynamoDB client as an Effect service. Every request goes through {@link DynamoClientShape.call},
 * which is the one place where SDK exceptions become typed errors:
 *
 * - a failed condition becomes {@link ConditionFailed} (with the existing item when the
 *   request asked for it), a cancelled transaction {@link TransactionCanceled} (with the
 *   reason of each item): the stores decide what they mean (usually a `ConflictError`);
 * - everything else becomes a core `StorageError` with the operation, the table, a
 *   classified `reason` and `isRetryable`; a write that may have been applied although it
 *   failed (lost response, timeout, 5xx, unrecognised error, on any attempt) has
 *   `unknownOutcome: true`. Retryable errors (throttling, 5xx, network,
 *   transaction conflicts) are retried with the client's `retrySchedule` before they
 *   reach you; condition failures are never retried.
 *
 * It is also the one place where requests are observed: each attempt of a request is a
 * span `DynamoDB.<Command>` (kind `client`, a child of the current span, e.g.
 * `EventStore.append`) with `db.system`, `db.operation` (the command),
 * `aws.dynamodb.table_names`, `dynamo_es.attempt` (1 for the first, 2 for the first retry,
 * ...), the capacity the response reports (`dynamo_es.consumed_read_units` /
 * `_write_units`) or, for a failed attempt, `error.type`; a retried request is several
 * spans, with the backoff between them. It records the request metrics of `Metrics` from
 * `@dynamo-es/core` (requests, consumed RCU/WCU, retries, throttles, duration) with a few
 * map lookups. Without a tracer (Effect's native one, which exports nothing) no span is
 * made: nothing could observe it.
 *
 * @since 0.1.0
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import type { AttributeValue, CancellationReason } from "@aws-sdk/client-dynamodb"
import { Errors, Metrics, Retry } from "@dynamo-es/core"
import { Config, Context, Effect, Layer, type Metric, Predicate, Schedule, Schema, Tracer } from "effect"
import { type DynamoClientOptions, envConfig, requireRegion, sdkClientConfig } from "./internal/clientConfig.js"

export {
  /** @since 0.1.0 */
  type DynamoClientOptions,
  /** @since 0.2.0 */
  envConfig,
  /** @since 0.2.0 */
  localDefaults
} from "./internal/clientConfig.js"

/**
 * A conditional write found its condition false. `item` is the item as it was, when the
 * request set `ReturnValuesOnConditionCheckFailure: "ALL_OLD"`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConditionFailed extends Schema.TaggedError<ConditionFailed>()("ConditionFailed", {
  operation: Schema.String,
  item: Schema.optional(Schema.Unknown)
}) {
  get oldItem(): Record<string, AttributeValue> | undefined {
    return this.item as Record<string, AttributeValue> | undefined
  }
}

/**
 * A transaction was cancelled because a condition of one of its items failed. `reasons`
 * has one entry per item, in request order.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransactionCanceled extends Schema.TaggedError<TransactionCanceled>()("TransactionCanceled", {
  reasons: Schema.Array(Schema.Unknown)
}) {
  get cancellationReasons(): ReadonlyArray<CancellationReason> {
    return this.reasons as ReadonlyArray<CancellationReason>
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DynamoClientShape {
  /** The SDK client, for requests the library does not wrap. */
  readonly sdk: DynamoDBClient
  /**
   * Sends one request, classifies its failure and retries retryable failures with the
   * client's schedule. `resource` (usually the table name) goes into error messages.
   */
  readonly call: <A>(
    operation: string,
    resource: string | undefined,
    send: (client: DynamoDBClient, abortSignal: AbortSignal) => Promise<A>
  ) => Effect.Effect<A, Errors.StorageError | ConditionFailed | TransactionCanceled>
}

/**
 * The default retry policy: exponential backoff from 50 ms, jittered, 8 retries at most
 * (about 13 s in the worst case, up to about 15 s with jitter).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultRetrySchedule: Schedule.Schedule<unknown, Errors.StorageError> = Schedule.exponential("50 millis").pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 8 })
)

const throttled = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "Throttling",
  "TooManyRequestsException"
])
const unavailable = new Set([
  "InternalServerError",
  "InternalFailure",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "TransactionConflictException",
  "TransactionInProgressException",
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND"
])
const denied = new Set([
  "AccessDeniedException",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "MissingAuthenticationTokenException",
  "ExpiredTokenException",
  "IncompleteSignatureException"
])
const invalid = new Set(["ValidationException", "SerializationException", "ItemCollectionSizeLimitExceededException"])

/** Requests that change data: a failure of one may hide a write that was applied. */
const writes = new Set(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"])
/** Failures that prove the request was not applied, although they are retryable. */
const notApplied = new Set(["TransactionConflictException", "TransactionInProgressException", "ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"])

/**
 * Whether a failed write may have been applied: a lost response, a timeout, a 5xx or an
 * unrecognised error. Throttling, validation, access and a condition or cancelled
 * transaction prove it was not.
 */
const mayHaveApplied = (operation: string, error: Errors.StorageError, name: string): boolean =>
  writes.has(operation) && (error.reason === "Unavailable" || error.reason === "Unknown") && !notApplied.has(name) &&
  !error.detail.startsWith("TransactionCanceledException")

const errorName = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return "Unknown"
  const e = error as { name?: unknown; code?: unknown; cause?: { code?: unknown } }
  if (typeof e.code === "string" && unavailable.has(e.code)) return e.code
  if (typeof e.cause?.code === "string" && unavailable.has(e.cause.code)) return e.cause.code
  return typeof e.name === "string" ? e.name : "Unknown"
}

/**
 * Classifies a native error (SDK exception, network error) into a `StorageError`.
 * The one place where this happens.
 *
 * @since 0.1.0
 * @category errors
 */
export const classify = (operation: string, resource: string | undefined, error: unknown): Errors.StorageError => {
  const name = errorName(error)
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode
  const reason: Errors.StorageErrorReason = throttled.has(name)
    ? "Throttled"
    : unavailable.has(name) || (status !== undefined && status >= 500)
    ? "Unavailable"
    : name === "ResourceNotFoundException"
    ? "ResourceNotFound"
    : denied.has(name)
    ? "AccessDenied"
    : invalid.has(name)
    ? "Validation"
    : "Unknown"
  const message = error instanceof Error ? error.message : String(error)
  return new Errors.StorageError({
    operation,
    reason,
    resource,
    detail: `${name}: ${message}`,
    cause: error
  })
}

const classifyCancellation = (
  operation: string,
  resource: string | undefined,
  error: { CancellationReasons?: ReadonlyArray<CancellationReason> } & Error
): Errors.StorageError | TransactionCanceled => {
  const reasons = error.CancellationReasons ?? []
  const codes = reasons.map((r) => r.Code ?? "None")
  if (codes.includes("ConditionalCheckFailed")) return new TransactionCanceled({ reasons })
  const reason: Errors.StorageErrorReason = codes.includes("ThrottlingError") || codes.includes("ProvisionedThroughputExceeded")
    ? "Throttled"
    : codes.includes("TransactionConflict")
    ? "Unavailable"
    : codes.includes("ValidationError") || codes.includes("ItemCollectionSizeLimitExceeded")
    ? "Validation"
    : "Unknown"
  return new Errors.StorageError({
    operation,
    reason,
    resource,
    detail: `TransactionCanceledException (${codes.join(", ")}): ${error.message}`,
    cause: error
  })
}

/**
 * For requests without conditions: a `ConditionFailed` or `TransactionCanceled` there is
 * a bug, not a business outcome, so it becomes a defect.
 *
 * @since 0.1.0
 * @category combinators
 */
export const unconditional = <A, E, R>(
  effect: Effect.Effect<A, E | ConditionFailed | TransactionCanceled, R>
): Effect.Effect<A, Exclude<E, ConditionFailed | TransactionCanceled>, R> =>
  Effect.catchIf(
    effect,
    (e): e is ConditionFailed | TransactionCanceled =>
      Predicate.isTagged(e, "ConditionFailed") || Predicate.isTagged(e, "TransactionCanceled"),
    (e) => Effect.die(e)
  ) as Effect.Effect<A, Exclude<E, ConditionFailed | TransactionCanceled>, R>

/**
 * How many times the SDK client sends one request by itself: its retry strategy's
 * `maxAttempts` (the SDK's standard and adaptive strategies), else its `maxAttempts`
 * setting; 1 when the client says neither.
 */
const sdkMaxAttempts = async (client: DynamoDBClient): Promise<number> => {
  const config = client.config as {
    readonly maxAttempts?: (() => Promise<number>) | undefined
    readonly retryStrategy?: (() => Promise<unknown>) | undefined
  } | undefined
  const strategy = (await config?.retryStrategy?.()) as { readonly maxAttemptsProvider?: () => Promise<number> } | undefined
  if (typeof strategy?.maxAttemptsProvider === "function") return strategy.maxAttemptsProvider()
  return (await config?.maxAttempts?.()) ?? 1
}

type Counter = Metric.Metric<number, unknown>

/** The span settings and metric series of one command on one table: built once, then reused. */
interface Instruments {
  readonly spanName: string
  readonly spanOptions: Tracer.SpanOptionsNoTrace
  readonly requests: Counter
  readonly retries: Counter
  readonly throttles: Counter
  readonly duration: Counter
}

const instrumentsCache = new Map<string, Map<string, Instruments>>()
const unitsCache = new Map<string, { readonly read: Counter; readonly write: Counter }>()
/** Bounds the caches should someone call with ever new table names. */
const MAX_CACHED = 1_000

const instrumentsFor = (operation: string, resource: string | undefined): Instruments => {
  const table = resource ?? ""
  let byOperation = instrumentsCache.get(table)
  if (byOperation === undefined) {
    if (instrumentsCache.size >= MAX_CACHED) instrumentsCache.clear()
    byOperation = new Map()
    instrumentsCache.set(table, byOperation)
  }
  let instruments = byOperation.get(operation)
  if (instruments === undefined) {
    const attributes = { command: operation, table }
    instruments = {
      spanName: `DynamoDB.${operation}`,
      spanOptions: {
        kind: "client",
        attributes: {
          "db.system": "dynamodb",
          "db.operation": operation,
          ...(resource !== undefined ? { "aws.dynamodb.table_names": [resource] } : {})
        }
      },
      requests: Metrics.tagged(Metrics.requests, attributes),
      retries: Metrics.tagged(Metrics.retries, attributes),
      throttles: Metrics.tagged(Metrics.throttles, attributes),
      duration: Metrics.tagged(Metrics.requestDuration, attributes)
    }
    byOperation.set(operation, instruments)
  }
  return instruments
}

const unitsFor = (table: string) => {
  let units = unitsCache.get(table)
  if (units === undefined) {
    if (unitsCache.size >= MAX_CACHED) unitsCache.clear()
    units = {
      read: Metrics.tagged(Metrics.consumedReadUnits, { table }),
      write: Metrics.tagged(Metrics.consumedWriteUnits, { table })
    }
    unitsCache.set(table, units)
  }
  return units
}

interface Capacity {
  readonly TableName?: string | undefined
  readonly CapacityUnits?: number | undefined
  readonly ReadCapacityUnits?: number | undefined
  readonly WriteCapacityUnits?: number | undefined
}

/**
 * The capacity a successful response reports (`ConsumedCapacity`: one object, or one per
 * table for batches and transactions), summed; `record` (when given) gets it by table.
 * With `ReturnConsumedCapacity: "TOTAL"` DynamoDB may report only `CapacityUnits`: the
 * units of a write command are then WCU, of any other command RCU. A failed request
 * reports none (a failed condition still costs DynamoDB's minimum, uncounted here).
 */
const consumedCapacity = (
  response: unknown,
  write: boolean,
  resource: string | undefined,
  record?: (table: string, rcu: number, wcu: number) => void
): { readonly read: number; readonly written: number } | undefined => {
  const consumed = (response as { readonly ConsumedCapacity?: Capacity | ReadonlyArray<Capacity> } | undefined)
    ?.ConsumedCapacity
  if (consumed === undefined || consumed === null) return undefined
  let read = 0
  let written = 0
  const add = (c: Capacity) => {
    const r = c.ReadCapacityUnits
    const w = c.WriteCapacityUnits
    const total = c.CapacityUnits ?? (r ?? 0) + (w ?? 0)
    const rcu = Math.max(0, r ?? (w !== undefined ? total - w : write ? 0 : total))
    const wcu = Math.max(0, w ?? (r !== undefined ? total - r : write ? total : 0))
    if (record !== undefined && (rcu > 0 || wcu > 0)) record(c.TableName ?? resource ?? "", rcu, wcu)
    read += rcu
    written += wcu
  }
  if (Array.isArray(consumed)) for (const c of consumed as ReadonlyArray<Capacity>) add(c)
  else add(consumed as Capacity)
  return { read, written }
}

/**
 * Builds the client service. The SDK client is destroyed when the scope closes, unless
 * it was given in `options.client` (then it belongs to the caller). A client that retries
 * by itself (`maxAttempts` above 1, see {@link DynamoClientOptions.client}) is refused with
 * a defect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: DynamoClientOptions = {}) =>
  Effect.gen(function*() {
    const sdk = options.client ?? (yield* Effect.acquireRelease(
      Effect.sync(() =>
        new DynamoDBClient(sdkClientConfig(options))
      ),
      (client) => Effect.sync(() => client.destroy())
    ))
    // The SDK's default logger discards everything, yet its logging middleware first copies
    // every input and response, field by field, to mask sensitive ones: for a Query page of
    // 200 events that is about as much CPU as the rest of the SDK's work (measured in
    // bench/cpu/command-cpu.ts: 1.7 -> 0.9 ms per command). Our own client without a logger
    // of yours skips that copy; a client you pass in is left as it is.
    if (options.client === undefined && options.sdkConfig?.logger === undefined) sdk.middlewareStack.remove("loggerMiddleware")
    // One retry policy only: ours. A client that retries by itself would multiply attempts
    // and hide attempts that may have been applied (unknownOutcome).
    const sdkAttempts = yield* Effect.promise(() => sdkMaxAttempts(sdk))
    if (sdkAttempts > 1) {
      return yield* Effect.die(
        new Error(
          `DynamoClient: the ${options.client !== undefined ? "given SDK client" : "SDK configuration (sdkConfig)"} retries by itself ` +
            `(maxAttempts ${sdkAttempts}). Create the client with maxAttempts: 1, e.g. new DynamoDBClient({ ...yourConfig, maxAttempts: 1 }): ` +
            `dynamo-es retries with its retrySchedule, the only retry policy it allows, so that a call is sent a bounded number of times ` +
            `and a write that may have been applied is reported as such (StorageError.unknownOutcome).`
        )
      )
    }
    const schedule = options.retrySchedule ?? defaultRetrySchedule

    type Failure = Errors.StorageError | ConditionFailed | TransactionCanceled
    const isRetryable = (e: Failure) => e._tag === "StorageError" && e.isRetryable
    /**
     * One call: the attempts under the retry schedule and the metrics; with `traced`, each
     * attempt is a span of its own (a child of the current span, i.e. of the public
     * operation), so that a throttled attempt, the backoff after it and the retry show as
     * what they are.
     */
    const run = <A>(
      instruments: Instruments,
      operation: string,
      resource: string | undefined,
      send: (client: DynamoDBClient, abortSignal: AbortSignal) => Promise<A>,
      context: Context.Context<never>,
      traced: boolean
    ): Effect.Effect<A, Failure> => {
      const write = writes.has(operation)
      const started = performance.now()
      let attempts = 0
      let lastError = ""
      // A write: remember whether any attempt may have been applied, so that the error
      // finally returned says so even when the last attempt was, say, throttled.
      let unknownOutcome = false
      const begin = () => {
        attempts++
        instruments.requests.updateUnsafe(1, context)
        if (attempts > 1) instruments.retries.updateUnsafe(1, context)
      }
      const sent = Effect.tryPromise({
        // Effect creates an AbortController only for a function that takes the signal:
        // callers that ignore it (writes) do not pay for one.
        try: send.length >= 2
          ? (signal: AbortSignal) => {
            begin()
            return send(sdk, signal)
          }
          : () => {
            begin()
            return send(sdk, undefined as never)
          },
        catch: (error): Failure => {
          const name = errorName(error)
          lastError = name
          if (name === "ConditionalCheckFailedException") {
            return new ConditionFailed({ operation, item: (error as { Item?: unknown }).Item })
          }
          const classified = name === "TransactionCanceledException"
            ? classifyCancellation(operation, resource, error as Error)
            : classify(operation, resource, error)
          if (classified._tag === "StorageError") {
            if (classified.reason === "Throttled") instruments.throttles.updateUnsafe(1, context)
            if (write && mayHaveApplied(operation, classified, name)) unknownOutcome = true
          }
          return classified
        }
      })
      const attempt: Effect.Effect<A, Failure> = !traced ? sent : Effect.suspend(() =>
        Effect.useSpan(
          instruments.spanName,
          {
            ...instruments.spanOptions,
            attributes: { ...instruments.spanOptions.attributes, "dynamo_es.attempt": attempts + 1 }
          },
          (span) =>
            Effect.onExit(sent, (exit) => {
              if (exit._tag === "Success") {
                const units = consumedCapacity(exit.value, write, resource)
                if (units !== undefined) {
                  span.attribute("dynamo_es.consumed_read_units", units.read)
                  span.attribute("dynamo_es.consumed_write_units", units.written)
                }
              } else if (lastError !== "") {
                span.attribute("error.type", lastError)
              }
              return Effect.void
            })
        )
      )
      // A write: the error finally returned says so when any attempt may have been applied.
      const outcomeOf = (e: Failure): Failure =>
        e._tag === "StorageError" && unknownOutcome && e.unknownOutcome !== true
          ? new Errors.StorageError({
            operation: e.operation,
            reason: e.reason,
            resource: e.resource,
            detail: e.detail,
            unknownOutcome: true,
            cause: e.cause
          })
          : e
      // The retry machinery (a schedule driver) is built only after a failed attempt.
      const retrying = Retry.afterFailure(attempt, { schedule: schedule as Schedule.Schedule<unknown, Failure>, while: isRetryable })
      const retried = write ? Effect.mapError(retrying, outcomeOf) : retrying
      return Effect.onExit(retried, (exit) => {
        instruments.duration.updateUnsafe(performance.now() - started, context)
        if (exit._tag === "Success") {
          consumedCapacity(exit.value, write, resource, (table, rcu, wcu) => {
            const units = unitsFor(table)
            if (rcu > 0) units.read.updateUnsafe(rcu, context)
            if (wcu > 0) units.write.updateUnsafe(wcu, context)
          })
        }
        return Effect.void
      })
    }

    const call: DynamoClientShape["call"] = (operation, resource, send) =>
      Effect.withFiber((fiber) =>
        // Without a tracer (Effect's native one: nothing exports spans) the spans could not
        // be observed: skip them, they are most of what observing a request costs.
        run(
          instrumentsFor(operation, resource),
          operation,
          resource,
          send,
          fiber.context,
          fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer
        )
      )

    return DynamoClient.of({ sdk, call })
  })

/**
 * The DynamoDB client service.
 *
 * @since 0.1.0
 * @category services
 */
export class DynamoClient extends Context.Service<DynamoClient, DynamoClientShape>()("@dynamo-es/dynamodb/DynamoClient") {}

/**
 * A layer with explicit options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: DynamoClientOptions = {}): Layer.Layer<DynamoClient> => Layer.effect(DynamoClient, make(options))

/**
 * {@link layer} with its options read through Effect `Config`, as Effect's own drivers take
 * them (`Config.Wrap`): one `Config` of the whole options, or a record with a `Config` (or
 * `Config.succeed(value)`) per option. Without an argument it reads {@link envConfig}
 * (`DYNAMODB_ENDPOINT`, `AWS_REGION`, `AWS_*` credentials). A missing or malformed value
 * fails the layer with a `ConfigError` that names it, and so does a client without a region
 * (neither the config nor your AWS profile names one).
 *
 * ```ts
 * // Your own names:
 * DynamoClient.layerConfig({
 *   region: Config.String("DDB_REGION"),
 *   credentials: { accessKeyId: Config.String("DDB_KEY_ID"), secretAccessKey: Config.Redacted("DDB_SECRET") }
 * })
 * // The environment variables above:
 * DynamoClient.layerConfig()
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<DynamoClientOptions> = envConfig
): Layer.Layer<DynamoClient, Config.ConfigError> =>
  Layer.effect(
    DynamoClient,
    Effect.gen(function*() {
      const client = yield* make(yield* Config.unwrap(config))
      yield* requireRegion(client.sdk)
      return client
    })
  )

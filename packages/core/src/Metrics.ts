/**
 * The metrics dynamo-es records, as Effect `Metric`s: what every storage request costs
 * (requests, consumed capacity, retries, throttles, duration) and how often appends lose
 * the optimistic-concurrency race (conflicts). They live in core so that you can read and
 * export them without depending on a driver; the DynamoDB driver (`DynamoClient.call`, the
 * one place every request goes through) records the request metrics, the event store
 * records conflicts.
 *
 * Effect keeps metrics in a registry per process (`Metric.MetricRegistry`); an exporter
 * such as `OtlpMetrics.layer` from `effect/observability` sends them wherever you want.
 * Each metric has one series per set of attributes:
 *
 * | metric | kind | attributes |
 * | --- | --- | --- |
 * | `dynamo_es_requests_total` | counter | `command`, `table` |
 * | `dynamo_es_consumed_read_units_total` | counter | `table` |
 * | `dynamo_es_consumed_write_units_total` | counter | `table` |
 * | `dynamo_es_retries_total` | counter | `command`, `table` |
 * | `dynamo_es_throttles_total` | counter | `command`, `table` |
 * | `dynamo_es_request_duration_ms` | histogram | `command`, `table` |
 * | `dynamo_es_conflicts_total` | counter | `operation` |
 *
 * ```ts
 * const puts = yield* Metrics.total(Metrics.requests, { command: "PutItem", table: "events" })
 * const wcu = yield* Metrics.total(Metrics.consumedWriteUnits) // every table
 * ```
 *
 * @since 0.2.0
 */
import { Effect, Metric } from "effect"

type Attributes = Readonly<Record<string, string>>

/** How to build a metric's series with fixed attributes (see {@link tagged}). */
const builders = new WeakMap<Metric.Metric<any, any>, (attributes: Attributes) => Metric.Metric<any, any>>()

/** A metric whose series with fixed attributes {@link tagged} can build: `make` builds a series. */
const withSeries = <M extends Metric.Metric<any, any>>(make: (attributes?: Attributes) => M): M => {
  const metric = make()
  builders.set(metric, make)
  return metric
}

const counter = (name: string, description: string): Metric.Counter<number> =>
  withSeries((attributes) => Metric.counter(name, { description, incremental: true, attributes }))

/**
 * Requests sent to storage, one per attempt: a request retried twice counts 3.
 * Attributes: `command` (`PutItem`, `Query`, ...) and `table`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const requests: Metric.Counter<number> = counter(
  "dynamo_es_requests_total",
  "Requests sent to DynamoDB, one per attempt (retries included), by command and table"
)

/**
 * Read capacity units consumed, as DynamoDB reports them in the responses
 * (`ReturnConsumedCapacity: "TOTAL"`). Attribute: `table`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const consumedReadUnits: Metric.Counter<number> = counter(
  "dynamo_es_consumed_read_units_total",
  "Read capacity units consumed, as reported by DynamoDB, by table"
)

/**
 * Write capacity units consumed, as DynamoDB reports them in the responses.
 * Attribute: `table`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const consumedWriteUnits: Metric.Counter<number> = counter(
  "dynamo_es_consumed_write_units_total",
  "Write capacity units consumed, as reported by DynamoDB, by table"
)

/**
 * Attempts after the first one of a request (retries of throttling, 5xx, network errors,
 * transaction conflicts). Attributes: `command`, `table`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const retries: Metric.Counter<number> = counter(
  "dynamo_es_retries_total",
  "Retried DynamoDB requests (attempts after the first), by command and table"
)

/**
 * Attempts that DynamoDB throttled (provisioned throughput exceeded, request limit,
 * throttled transaction items), retried or not. Attributes: `command`, `table`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const throttles: Metric.Counter<number> = counter(
  "dynamo_es_throttles_total",
  "Throttled DynamoDB attempts, by command and table"
)

/**
 * `ConflictError`s returned by the event store: the stream was not at the expected
 * version. Attribute: `operation` (`append`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const conflicts: Metric.Counter<number> = counter(
  "dynamo_es_conflicts_total",
  "Optimistic concurrency conflicts (ConflictError) returned by the event store, by operation"
)

const durationBoundaries = Metric.boundariesFromIterable([1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000])

const histogram = (name: string, description: string): Metric.Histogram<number> =>
  withSeries((attributes) => Metric.histogram(name, { description, boundaries: durationBoundaries, attributes }))

/**
 * How long a request took, in milliseconds, from its first attempt to its outcome (retries
 * and their backoff included): from the start of its first `DynamoDB.<Command>` span (one
 * per attempt) to the end of its last.
 * Attributes: `command`, `table`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const requestDuration: Metric.Histogram<number> = histogram(
  "dynamo_es_request_duration_ms",
  "Duration of DynamoDB requests in milliseconds, retries and backoff included, by command and table"
)

/**
 * The series of one of these metrics for the given attributes, as a metric of its own. It
 * is the same series as `Metric.withAttributes(metric, attributes)`, but updating it does
 * not add the attributes to the context on every update: build it once (a driver keeps
 * one per command and table) and update it on a hot path. For any other metric it is
 * `Metric.withAttributes`.
 *
 * @since 0.2.0
 * @category combinators
 */
export const tagged = <Input, State>(metric: Metric.Metric<Input, State>, attributes: Attributes): Metric.Metric<Input, State> => {
  const build = builders.get(metric)
  return build === undefined
    ? Metric.withAttributes(metric, attributes)
    : build({ ...(metric.attributes ?? {}), ...attributes }) as Metric.Metric<Input, State>
}

/**
 * The sum of a counter over its series whose attributes include `attributes` (every
 * series when omitted) in the current metric registry, e.g. every `PutItem` on every
 * table: `total(requests, { command: "PutItem" })`.
 *
 * @since 0.2.0
 * @category getters
 */
export const total = (
  metric: Metric.Counter<number>,
  attributes: Attributes = {}
): Effect.Effect<number> =>
  Effect.map(Metric.snapshot, (snapshots) => {
    let sum = 0
    for (const s of snapshots) {
      if (s.id !== metric.id || s.type !== "Counter") continue
      const own = s.attributes ?? {}
      if (Object.keys(attributes).every((k) => own[k] === attributes[k])) sum += Number(s.state.count)
    }
    return sum
  })

/**
 * Every dynamo-es series in the current metric registry (the metrics of this module), e.g.
 * to print or log what an operation cost.
 *
 * @since 0.2.0
 * @category getters
 */
export const snapshot: Effect.Effect<ReadonlyArray<Metric.Metric.Snapshot>> = Effect.map(
  Metric.snapshot,
  (snapshots) => snapshots.filter((s) => s.id.startsWith("dynamo_es_"))
)

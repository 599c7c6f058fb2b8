/**
 * Helpers of the outcome, fault-injection and agreement suites: an event store on a fresh
 * table whose SDK client injects faults around the real DynamoDB Local requests, a second
 * (uninstrumented) client to look at what is really stored, SDK-shaped failures, and a
 * seeded property runner that reports the seed and a replay token on failure.
 */
import { type AttributeValue, DynamoDBClient, PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb"
import { assert } from "@effect/vitest"
import { EventStore } from "@dynamo-es/core"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Arbitrary, Cause, Clock, Effect, Exit, Layer, Schedule, Schema } from "effect"
import { DynamoClient, DynamoEventStore, Tables } from "../src/index.js"
import { instrumentedClient, sdkError } from "./helpers.js"

export const local = DynamoDBLocal.layer()

// -----------------------------------------------------------------------------
// events
// -----------------------------------------------------------------------------

export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite })
export const Note = Schema.TaggedStruct("Note", { text: Schema.String })
export const TestEvent = Schema.Union([Deposited, Note])
export type TestEvent = typeof TestEvent.Type
export const Accounts = EventStore.typed(TestEvent)

export const deposit = (amount: number): TestEvent => ({ _tag: "Deposited", amount })

/** Untyped events with the caller's own ids, as a careful caller retries them. */
export const newEvents = (ids: ReadonlyArray<string>, start = 1): Array<EventStore.NewEvent> =>
  ids.map((eventId, i) => ({ type: "Deposited", payload: { _tag: "Deposited", amount: start + i }, eventId }))

let counter = 0
/** A stream id unique within the run. */
export const freshId = (prefix = "o") => `${prefix}-${Date.now().toString(36)}-${process.pid.toString(36)}-${(counter++).toString(36)}`

/** The integers from..to, inclusive. */
export const range = (from: number, to: number): Array<number> => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/** The typed error of a failed Exit; fails the test on success or on a defect. */
export const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) assert.fail(`expected a failure, got a success`)
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") {
    assert.fail(`expected a typed failure, got a defect: ${Cause.pretty(exit.cause).slice(0, 600)}`)
  }
  return reason.error
}

// -----------------------------------------------------------------------------
// faults
// -----------------------------------------------------------------------------

/** The response of a request that DynamoDB applied was lost. */
export const connectionReset = () => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })
/** A 5xx (retryable, may have been applied when it happens after sending). */
export const serverError = () => sdkError("InternalServerError", "injected 500", { $metadata: { httpStatusCode: 500 } })
/** An error the client does not recognise (not retryable, may have been applied). */
export const weirdError = () => sdkError("WeirdError", "injected unrecognised error")
export const throttled = () => sdkError("ProvisionedThroughputExceededException", "injected throttling")

/** Sends the request (DynamoDB applies it or refuses it), then loses whatever came back. */
export const sendThenThrow = async (proceed: () => Promise<any>, error: () => unknown) => {
  try {
    await proceed()
  } catch {
    // a condition failure of a retry is lost as well
  }
  throw error()
}

// -----------------------------------------------------------------------------
// raw access
// -----------------------------------------------------------------------------

export type Item = Record<string, AttributeValue>

/** Every stored item of a stream, ascending, strongly consistent, with a client that injects nothing. */
export const rawItems = (raw: DynamoDBClient, tableName: string, streamId: string) =>
  Effect.promise(async () => {
    const out: Array<Item> = []
    let startKey: Item | undefined
    do {
      const r = await raw.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: "s = :s",
          ExpressionAttributeValues: { ":s": { S: streamId } },
          ConsistentRead: true,
          ExclusiveStartKey: startKey
        })
      )
      out.push(...(r.Items ?? []))
      startKey = r.LastEvaluatedKey
    } while (startKey !== undefined)
    return out
  })

/** Version and event id of every stored item of a stream. */
export const storedIds = (raw: DynamoDBClient, tableName: string, streamId: string) =>
  Effect.map(rawItems(raw, tableName, streamId), (items) => items.map((item) => ({ version: Number(item.v?.N), eventId: item.i?.S })))

export const putRaw = (raw: DynamoDBClient, tableName: string, item: Item) =>
  Effect.promise(() => raw.send(new PutItemCommand({ TableName: tableName, Item: item })))

/** Asserts that a stream holds exactly versions 1..N with distinct ids; returns the ids. */
export const assertGapFree = (stored: ReadonlyArray<{ readonly version: number; readonly eventId: string | undefined }>, label = "") => {
  assert.deepStrictEqual(stored.map((s) => s.version), range(1, stored.length), `${label} versions are 1..N`)
  const ids = stored.map((s) => s.eventId)
  assert.strictEqual(new Set(ids).size, ids.length, `${label} no event id is stored twice`)
  return ids
}

// -----------------------------------------------------------------------------
// stores on fresh tables
// -----------------------------------------------------------------------------

/** Quick client retries (1 attempt + 3 retries), so that fault tests stay fast. */
export const quickRetries = Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 3 }))

export interface EventStoreTools extends ReturnType<typeof instrumentedClient> {
  readonly tableName: string
  /** A client on the same DynamoDB Local that injects nothing and records nothing. */
  readonly raw: DynamoDBClient
}

/**
 * A DynamoDB event store on a fresh table (deleted at the end) whose SDK client records
 * requests and can inject faults; `raw` sees what is really stored.
 */
export const withEventStore = <A, E>(
  body: (tools: EventStoreTools) => Effect.Effect<A, E, EventStore.EventStore | DynamoClient.DynamoClient>,
  options: Partial<DynamoEventStore.DynamoEventStoreOptions> = {},
  retrySchedule: Schedule.Schedule<unknown, any> = quickRetries
) =>
  Effect.gen(function*() {
    const connection = yield* DynamoDBLocal.DynamoDBLocal
    const tools = instrumentedClient(connection)
    const raw = new DynamoDBClient(Fixtures.sdkConfig(connection))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        tools.sdk.destroy()
        raw.destroy()
      })
    )
    const tableName = Fixtures.uniqueTableName("outcomes")
    const clientLayer = DynamoClient.layer({ client: tools.sdk, retrySchedule })
    const storeLayer = Layer.unwrap(
      Fixtures.scopedTable(Tables.eventsTable(tableName)).pipe(
        Effect.as(DynamoEventStore.layerExisting({ ...options, tableName }))
      )
    )
    return yield* Effect.suspend(() => {
      tools.recorder.clear()
      return body({ ...tools, tableName, raw })
    }).pipe(Effect.provide(Layer.provideMerge(storeLayer, clientLayer)))
  }).pipe(Effect.scoped, Effect.provide(local))

// -----------------------------------------------------------------------------
// property runner
// -----------------------------------------------------------------------------

/**
 * Runs a property with a fixed seed (override with `DYNAMO_ES_SEED`; replay one failure
 * with `DYNAMO_ES_REPLAY=<token>`). A failed assertion, a typed failure or a defect of the
 * property falsifies it; the test then fails with the seed, the shrunk input and the
 * replay token.
 */
export const checkProperty = <A, E, R>(
  name: string,
  arbitrary: Arbitrary.Arbitrary<A>,
  property: (value: A) => Effect.Effect<unknown, E, R>,
  options: { readonly runs: number; readonly seed: number; readonly maxShrinks?: number; readonly size?: number }
) =>
  Effect.gen(function*() {
    const seed = process.env.DYNAMO_ES_SEED !== undefined ? Number(process.env.DYNAMO_ES_SEED) : options.seed
    const replay = process.env.DYNAMO_ES_REPLAY
    const result = yield* Arbitrary.checkEffect(
      arbitrary,
      (value): Effect.Effect<boolean, Cause.Cause<E>, R> =>
        Effect.suspend(() => property(value)).pipe(
          Effect.as(true),
          Effect.catchCause((cause): Effect.Effect<never, Cause.Cause<E>> =>
            Cause.hasInterrupts(cause) ? Effect.failCause(cause as Cause.Cause<never>) : Effect.fail(cause)
          )
        ),
      {
        runs: options.runs,
        seed,
        maxShrinks: options.maxShrinks ?? 30,
        ...(options.size !== undefined ? { size: options.size } : {}),
        ...(replay !== undefined && replay !== "" ? { replay } : {})
      }
    )
    const message = Arbitrary.formatCheckFailure(result)
    if (message !== undefined) {
      assert.fail(`${name} (seed ${seed}; rerun with DYNAMO_ES_SEED=${seed}, or DYNAMO_ES_REPLAY=<Replay below>)\n${message}`)
    }
    return result
  })

/** Runs `effect` with a clock whose wall time stands still at `millis` (sleeps stay real). */
export const withFrozenTime = (millis: number) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.clockWith((live) => {
    const frozen: Clock.Clock = {
      currentTimeMillisUnsafe: () => millis,
      currentTimeMillis: Effect.succeed(millis),
      currentTimeNanosUnsafe: () => BigInt(millis) * 1_000_000n,
      currentTimeNanos: Effect.succeed(BigInt(millis) * 1_000_000n),
      monotonicTimeNanosUnsafe: () => live.monotonicTimeNanosUnsafe(),
      monotonicTimeNanos: live.monotonicTimeNanos,
      sleep: (duration) => live.sleep(duration)
    }
    return Effect.provideService(effect, Clock.Clock, frozen)
  })

/** Summary of an Exit for comparisons: value, or error tag (+ field), or the defect. */
export type Outcome<A> =
  | { readonly _tag: "Success"; readonly value: A }
  | { readonly _tag: "Failure"; readonly error: string; readonly field?: string; readonly raw: unknown }
  | { readonly _tag: "Defect"; readonly cause: string }

export const outcomeOf = <A, B, E>(exit: Exit.Exit<A, E>, summarise: (a: A) => B): Outcome<B> => {
  if (Exit.isSuccess(exit)) return { _tag: "Success", value: summarise(exit.value) }
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason !== undefined && reason._tag === "Fail") {
    const e = reason.error as { _tag?: unknown; field?: unknown }
    return {
      _tag: "Failure",
      error: String(e?._tag),
      ...(e?._tag === "InvalidInputError" ? { field: String(e.field) } : {}),
      raw: reason.error
    }
  }
  return { _tag: "Defect", cause: Cause.pretty(exit.cause) }
}

/**
 * The in-memory stores and the DynamoDB stores agree: the same call with the same
 * (generated, often hostile) inputs on a fresh memory store and on DynamoDB Local gives
 * the same outcome: success or failure, the error's tag (and for InvalidInputError the
 * refused field), the same versions, and the same stored events afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import { EventStore, SnapshotStore } from "@dynamo-es/core"
import { Fixtures } from "@dynamo-es/dynamodb-local"
import { Arbitrary, Effect, Layer, Option, Schema, Stream } from "effect"
import { DynamoSnapshotStore } from "../src/index.js"
import { checkProperty, freshId, local, type Outcome, outcomeOf, withEventStore, withFrozenTime } from "./faultHelpers.js"

// -----------------------------------------------------------------------------
// generated inputs: valid values mixed with hostile ones
// -----------------------------------------------------------------------------

const Small = Schema.Int.check(Schema.isBetween({ minimum: -3, maximum: 12 }))
const Hostile = Schema.Union([
  Schema.Null,
  Schema.Undefined,
  Schema.Boolean,
  Schema.Number, // NaN, Infinity, -0, 1e308, 5e-324, ...
  Schema.String, // empty, lone surrogates, ...
  Schema.Literals(["\uD800", "a\uDC00b", "", " ", "1", "NaN"]),
  Schema.Struct({}),
  Schema.Array(Schema.Json).check(Schema.isMaxLength(2))
])

/** A stream id: fresh and valid (by case), or hostile. */
const StreamIdInput = Schema.Union([
  Schema.Struct({ _tag: Schema.Literal("fresh") }),
  Schema.Struct({ _tag: Schema.Literal("fresh") }),
  Schema.Struct({ _tag: Schema.Literal("fresh") }),
  Schema.Struct({ _tag: Schema.Literal("suffix"), suffix: Schema.String.check(Schema.isMaxLength(8)) }),
  Schema.Struct({ _tag: Schema.Literal("tooLong") }),
  Schema.Struct({ _tag: Schema.Literal("hostile"), value: Hostile })
])
type StreamIdInput = typeof StreamIdInput.Type
const streamIdOf = (input: StreamIdInput, fresh: string): unknown => {
  switch (input._tag) {
    case "fresh":
      return fresh
    case "suffix":
      return `${fresh}-${input.suffix}` // lone surrogates make it invalid
    case "tooLong":
      return `${fresh}-${"x".repeat(1_100)}`
    case "hostile":
      return input.value
  }
}

const MetadataInput = Schema.Union([
  Schema.Undefined,
  Schema.Struct({
    actor: Schema.optional(Schema.String),
    correlationId: Schema.optional(Schema.String),
    causationId: Schema.optional(Schema.UndefinedOr(Schema.String)),
    custom: Schema.optional(Schema.Record(Schema.String, Schema.Json))
  }),
  Schema.Struct({ actor: Schema.optional(Schema.String), custom: Schema.optional(Schema.Record(Schema.String, Schema.Json)) }),
  Schema.Struct({ actor: Hostile }),
  Schema.Struct({ other: Schema.String }),
  Schema.Struct({ custom: Hostile }),
  Hostile
])

const TtlInput = Schema.Union([
  Schema.Undefined,
  Schema.Undefined,
  Schema.Literals(["1 hour", "30 days", "0 millis", "100 years", "101 years", "forever", "-1 days", "1e20 millis", "2 fortnights"]),
  Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 10_000_000 })),
  Schema.Literals([0, 1e20, -1, 3_153_600_000_000, 3_153_600_000_001]),
  Schema.Struct({ days: Schema.Number }),
  Schema.Struct({ hours: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 48 })) }),
  Schema.Struct({ years: Schema.Number }),
  Schema.Tuple([Schema.Number, Schema.Number]),
  Hostile
])

const EventIdInput = Schema.Union([
  Schema.Undefined,
  Schema.Undefined,
  Schema.Literals(["dup", "id-1", "id-2", "x".repeat(65), "\uD83D\uDE00".repeat(16), "\uD83D\uDE00".repeat(17)]),
  Schema.String.check(Schema.isMaxLength(12)),
  Hostile
])

const TypeInput = Schema.Union([
  Schema.Literals(["Deposited", "Note"]),
  Schema.Literals(["Deposited", "Note"]),
  Schema.Literals(["t".repeat(256), "t".repeat(257), "\uD800x"]),
  Hostile
])

const PayloadInput = Schema.Union([
  Schema.Json,
  Schema.Json,
  Schema.Struct({ _tag: Schema.Literal("Deposited"), amount: Schema.Number }),
  Schema.BigInt, // not JSON-serialisable
  Schema.Undefined,
  Schema.Struct({ nested: Schema.Struct({ big: Schema.BigInt }) }),
  Hostile
])

const EventInput = Schema.Union([
  Schema.Struct({
    type: Schema.Literals(["Deposited", "Note"]),
    payload: Schema.Json,
    eventId: Schema.optional(EventIdInput)
  }),
  Schema.Struct({
    type: TypeInput,
    payload: PayloadInput,
    metadata: Schema.optional(MetadataInput),
    ttl: Schema.optional(TtlInput),
    eventId: Schema.optional(EventIdInput)
  }),
  Hostile
])
const EventsInput = Schema.Union([
  Schema.Array(EventInput).check(Schema.isMinLength(1), Schema.isMaxLength(4)),
  Schema.Array(EventInput).check(Schema.isMinLength(1), Schema.isMaxLength(4)),
  Schema.Literal("empty"),
  Hostile
])
const eventsOf = (input: typeof EventsInput.Type): unknown => (input === "empty" ? [] : input)

const ExpectedInput = Schema.Union([
  Schema.Literals(["any", "noStream", "streamExists"]),
  Schema.Struct({ offset: Schema.Int.check(Schema.isBetween({ minimum: -2, maximum: 2 })) }),
  Schema.Struct({ offset: Schema.Literal(0) }),
  Schema.Literals([Number.MAX_SAFE_INTEGER, 2 ** 53, 1.5, -1]),
  Hostile
])
const expectedOf = (input: typeof ExpectedInput.Type, length: number): unknown =>
  typeof input === "object" && input !== null && "offset" in input ? length + (input.offset as number) : input

const AppendOptionsInput = Schema.Union([
  Schema.Struct({ expectedVersion: ExpectedInput }),
  Schema.Struct({ expectedVersion: ExpectedInput }),
  Schema.Struct({ expectedVersion: ExpectedInput, metadata: MetadataInput }),
  Hostile
])
const appendOptionsOf = (input: typeof AppendOptionsInput.Type, length: number): unknown =>
  typeof input === "object" && input !== null && "expectedVersion" in input
    ? { ...input, expectedVersion: expectedOf(input.expectedVersion, length) }
    : input

const Count = Schema.Union([Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 8 })), Schema.Literals([10_000, 10_001, 0]), Hostile])
const ReadOptionsInput = Schema.Union([
  Schema.Undefined,
  Schema.Struct({
    from: Schema.optional(Schema.Union([Small, Hostile])),
    to: Schema.optional(Schema.Union([Small, Hostile])),
    direction: Schema.optional(Schema.Union([Schema.Literals(["forward", "backward"]), Hostile])),
    limit: Schema.optional(Count),
    consistentRead: Schema.optional(Schema.Union([Schema.Boolean, Hostile])),
    pageSize: Schema.optional(Count),
    ifMissing: Schema.optional(Schema.Union([Schema.Literals(["fail", "empty"]), Hostile]))
  }),
  Schema.Struct({
    from: Schema.optional(Small),
    to: Schema.optional(Small),
    direction: Schema.optional(Schema.Literals(["forward", "backward"])),
    limit: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 }))),
    ifMissing: Schema.optional(Schema.Literals(["fail", "empty"]))
  }),
  Hostile
])
const ConsistencyInput = Schema.Union([
  Schema.Undefined,
  Schema.Struct({ consistentRead: Schema.optional(Schema.Union([Schema.Boolean, Hostile])) }),
  Hostile
])
/** Events already in the stream before the call (same ids and payloads on both stores). */
const Prefill = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))

// -----------------------------------------------------------------------------
// running a call on both stores
// -----------------------------------------------------------------------------

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/
/** What identifies an envelope across stores (generated ULIDs differ, so they are masked). */
const envelopeSummary = (e: EventStore.EventEnvelope) => ({
  version: e.version,
  eventId: ULID.test(e.eventId) ? "<ulid>" : e.eventId,
  type: e.type,
  payload: JSON.stringify(e.payload),
  metadata: JSON.stringify(e.metadata),
  expires: e.expiresAt !== undefined
})
const resultSummary = (r: EventStore.AppendResult) => ({ version: r.version, events: r.events.map(envelopeSummary) })

/** The comparable part of an outcome: the error's tag, its field or index or actual version. */
const comparable = <A>(o: Outcome<A>) => {
  if (o._tag !== "Failure") return o
  const e = o.raw as { index?: unknown; actualVersion?: unknown; reason?: unknown }
  return {
    _tag: o._tag,
    error: o.error,
    ...(o.field !== undefined ? { field: o.field } : {}),
    ...(typeof e.index === "number" ? { index: e.index } : {}),
    ...(typeof e.actualVersion === "number" ? { actualVersion: e.actualVersion } : {}),
    ...(o.error === "EventIdConflictError" ? { reason: e.reason } : {})
  }
}

const assertAgree = <A>(label: string, memory: Outcome<A>, dynamo: Outcome<A>) => {
  assert.notStrictEqual(memory._tag, "Defect", `${label}: the memory store died: ${memory._tag === "Defect" ? memory.cause : ""}`)
  assert.notStrictEqual(dynamo._tag, "Defect", `${label}: the DynamoDB store died: ${dynamo._tag === "Defect" ? dynamo.cause : ""}`)
  assert.deepStrictEqual(comparable(dynamo), comparable(memory), `${label}: DynamoDB (actual) vs memory (expected)`)
}

type Shape = EventStore.EventStoreShape

/** Both stores with the same stream prefilled with `prefill` events (same ids). */
const prefilled = (memory: Shape, dynamo: Shape, streamId: unknown, prefill: number) =>
  Effect.gen(function*() {
    if (typeof streamId !== "string" || prefill === 0) return
    const events = Array.from({ length: prefill }, (_, i): EventStore.NewEvent => ({
      type: "Deposited",
      payload: { _tag: "Deposited", amount: i + 1 },
      eventId: `pre-${i + 1}`,
      metadata: { actor: "setup" }
    }))
    for (const store of [memory, dynamo]) {
      // Fails (the same way) when the id is not valid: nothing to prefill then.
      yield* Effect.exit(store.append(streamId, events, { expectedVersion: "noStream" }))
    }
  })

/** The whole stream as both stores read it afterwards: must be equal too. */
const assertSameStreams = (label: string, memory: Shape, dynamo: Shape, streamId: unknown) =>
  Effect.gen(function*() {
    if (typeof streamId !== "string") return
    const read = (store: Shape) =>
      Effect.exit(Stream.runCollect(store.read(streamId, { ifMissing: "empty" })).pipe(Effect.map((es) => es.map(envelopeSummary))))
    assertAgree(`${label}, stored afterwards`, outcomeOf(yield* read(memory), (x) => x), outcomeOf(yield* read(dynamo), (x) => x))
  })

/**
 * An agreement property on a fresh DynamoDB table: `run` gets a fresh memory store, the
 * DynamoDB store and a fresh stream id for every case.
 */
const agreement = <I>(
  name: string,
  input: Schema.Codec<I, any>,
  run: (memory: Shape, dynamo: Shape, value: I, fresh: string) => Effect.Effect<void, unknown>,
  options: { readonly runs: number; readonly seed: number }
) =>
  withEventStore(() =>
    Effect.gen(function*() {
      const dynamo = yield* EventStore.EventStore
      yield* checkProperty(name, Arbitrary.schema(input), (value) =>
        Effect.gen(function*() {
          const memory = yield* EventStore.makeMemory()
          yield* run(memory, dynamo, value, freshId("agree"))
        }), { ...options, maxShrinks: 40 })
    })
  )

const Any = <A>(a: A): any => a

describe("memory and DynamoDB agree (property)", { timeout: 120_000 }, () => {
  it.live("append", () =>
    agreement(
      "append",
      Schema.Struct({
        stream: StreamIdInput,
        prefill: Prefill,
        events: EventsInput,
        options: AppendOptionsInput,
        /** The same call again (a retry: same ids, same expected version). */
        repeat: Schema.Boolean
      }),
      (memory, dynamo, input, fresh) =>
        Effect.gen(function*() {
          const streamId = streamIdOf(input.stream, fresh)
          yield* prefilled(memory, dynamo, streamId, input.prefill)
          const events = eventsOf(input.events)
          const options = appendOptionsOf(input.options, input.prefill)
          const call = (store: Shape) => Effect.exit(store.append(Any(streamId), Any(events), Any(options)))
          assertAgree("append", outcomeOf(yield* call(memory), resultSummary), outcomeOf(yield* call(dynamo), resultSummary))
          if (input.repeat) {
            assertAgree("append repeated", outcomeOf(yield* call(memory), resultSummary), outcomeOf(yield* call(dynamo), resultSummary))
          }
          yield* assertSameStreams("append", memory, dynamo, streamId)
        }),
      { runs: 100, seed: 9_101 }
    ))

  it.live("appendBulk", () =>
    agreement(
      "appendBulk",
      Schema.Struct({
        stream: StreamIdInput,
        prefill: Prefill,
        events: EventsInput,
        /** Pads the events up to this many valid ones: more than one transaction. */
        pad: Schema.Union([Schema.Literal(0), Schema.Literal(0), Schema.Literal(0), Schema.Int.check(Schema.isBetween({ minimum: 95, maximum: 210 }))]),
        options: AppendOptionsInput,
        repeat: Schema.Boolean
      }),
      (memory, dynamo, input, fresh) =>
        Effect.gen(function*() {
          const streamId = streamIdOf(input.stream, fresh)
          yield* prefilled(memory, dynamo, streamId, input.prefill)
          const given = eventsOf(input.events)
          const events = Array.isArray(given) && input.pad > 0
            ? [
              ...given,
              ...Array.from({ length: input.pad }, (_, i) => ({ type: "Note", payload: { _tag: "Note", text: `n${i}` }, eventId: `pad-${i}` }))
            ]
            : given
          const options = appendOptionsOf(input.options, input.prefill)
          const call = (store: Shape) =>
            Effect.exit(EventStore.appendBulk(Any(streamId), Any(events), Any(options)).pipe(Effect.provideService(EventStore.EventStore, store)))
          assertAgree("appendBulk", outcomeOf(yield* call(memory), resultSummary), outcomeOf(yield* call(dynamo), resultSummary))
          if (input.repeat) {
            assertAgree("appendBulk repeated", outcomeOf(yield* call(memory), resultSummary), outcomeOf(yield* call(dynamo), resultSummary))
          }
          yield* assertSameStreams("appendBulk", memory, dynamo, streamId)
        }),
      { runs: 50, seed: 9_102 }
    ))

  it.live("read", () =>
    agreement(
      "read",
      Schema.Struct({ stream: StreamIdInput, prefill: Prefill, options: ReadOptionsInput }),
      (memory, dynamo, input, fresh) =>
        Effect.gen(function*() {
          const streamId = streamIdOf(input.stream, fresh)
          yield* prefilled(memory, dynamo, streamId, input.prefill)
          const call = (store: Shape) => Effect.exit(Stream.runCollect(store.read(Any(streamId), Any(input.options))))
          assertAgree("read", outcomeOf(yield* call(memory), (es) => es.map(envelopeSummary)), outcomeOf(yield* call(dynamo), (es) => es.map(envelopeSummary)))
        }),
      { runs: 100, seed: 9_103 }
    ))

  it.live("readLast", () =>
    agreement(
      "readLast",
      Schema.Struct({ stream: StreamIdInput, prefill: Prefill, n: Count, options: ConsistencyInput }),
      (memory, dynamo, input, fresh) =>
        Effect.gen(function*() {
          const streamId = streamIdOf(input.stream, fresh)
          yield* prefilled(memory, dynamo, streamId, input.prefill)
          const call = (store: Shape) => Effect.exit(store.readLast(Any(streamId), Any(input.n), Any(input.options)))
          assertAgree("readLast", outcomeOf(yield* call(memory), (es) => es.map(envelopeSummary)), outcomeOf(yield* call(dynamo), (es) => es.map(envelopeSummary)))
        }),
      { runs: 100, seed: 9_104 }
    ))

  it.live("version", () =>
    agreement(
      "version",
      Schema.Struct({ stream: StreamIdInput, prefill: Prefill, options: ConsistencyInput }),
      (memory, dynamo, input, fresh) =>
        Effect.gen(function*() {
          const streamId = streamIdOf(input.stream, fresh)
          yield* prefilled(memory, dynamo, streamId, input.prefill)
          const call = (store: Shape) => Effect.exit(store.version(Any(streamId), Any(input.options)))
          assertAgree("version", outcomeOf(yield* call(memory), (v) => v), outcomeOf(yield* call(dynamo), (v) => v))
        }),
      { runs: 100, seed: 9_105 }
    ))
})

// -----------------------------------------------------------------------------
// snapshots
// -----------------------------------------------------------------------------

const StateInput = Schema.Union([
  Schema.Json,
  Schema.Json,
  Schema.Struct({ balance: Schema.Number, owner: Schema.String }),
  Schema.Struct({ text: Schema.Literal("large"), size: Schema.Int.check(Schema.isBetween({ minimum: 4_000, maximum: 30_000 })) }),
  Schema.BigInt,
  Schema.Undefined,
  Hostile
])
const stateOf = (s: typeof StateInput.Type): unknown =>
  typeof s === "object" && s !== null && "text" in s && s.text === "large" && "size" in s ? { text: "L".repeat(s.size as number) } : s

const VersionInput = Schema.Union([
  Schema.Struct({ _tag: Schema.Literal("next"), step: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 99 })) }),
  Schema.Struct({ _tag: Schema.Literal("next"), step: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 99 })) }),
  Schema.Literals([0, -1, 1.5, Number.MAX_SAFE_INTEGER, 2 ** 53]),
  Hostile
])
const SaveInput = Schema.Union([
  Schema.Struct({ version: VersionInput, state: StateInput }),
  Schema.Struct({
    version: VersionInput,
    state: StateInput,
    schemaVersion: Schema.Union([Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 })), Schema.Undefined, Hostile])
  }),
  Hostile
])
const LoadOptionsInput = Schema.Union([
  Schema.Undefined,
  Schema.Struct({
    atOrBefore: Schema.optional(Schema.Union([Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 500 })), Hostile])),
    schemaVersion: Schema.optional(Schema.Union([Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 })), Hostile]))
  }),
  Hostile
])

/** Distinct versions for the saves of one case: save i takes a version in (i*100, i*100+100). */
const saveOf = (input: typeof SaveInput.Type, index: number): unknown => {
  if (typeof input !== "object" || input === null || !("state" in input)) return input
  const v = input.version
  const version = typeof v === "object" && v !== null && "_tag" in v && v._tag === "next" ? (index + 1) * 100 + (v.step as number) : v
  return { ...input, version, state: stateOf(input.state) }
}

const snapshotSummary = (o: Option.Option<SnapshotStore.Snapshot>) =>
  Option.match(o, {
    onNone: () => "none",
    onSome: (s) => ({ version: s.version, schemaVersion: s.schemaVersion, state: JSON.stringify(s.state) })
  })

describe("memory and DynamoDB snapshot stores agree (property)", { timeout: 120_000 }, () => {
  const withSnapshotStore = <A, E>(body: (dynamo: SnapshotStore.SnapshotStoreShape) => Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const tableName = Fixtures.uniqueTableName("agree_snapshots")
      yield* Fixtures.scopedTable(DynamoSnapshotStore.snapshotsTable(tableName))
      const dynamo = yield* DynamoSnapshotStore.make({ tableName, partBytes: 10_000 })
      return yield* body(dynamo)
    }).pipe(Effect.scoped, Effect.provide(Fixtures.layerClientFor().pipe(Layer.provide(local))))

  it.live("save and load", () =>
    withSnapshotStore((dynamo) =>
      checkProperty(
        "snapshots",
        Arbitrary.schema(Schema.Struct({
          stream: StreamIdInput,
          saves: Schema.Array(SaveInput).check(Schema.isMaxLength(4)),
          loads: Schema.Array(LoadOptionsInput).check(Schema.isMinLength(1), Schema.isMaxLength(3))
        })),
        (input) =>
          Effect.gen(function*() {
            const memory = yield* SnapshotStore.makeMemory()
            const streamId = streamIdOf(input.stream, freshId("agree-snap"))
            for (const [i, save] of input.saves.entries()) {
              const snapshot = saveOf(save, i)
              const call = (store: SnapshotStore.SnapshotStoreShape) => Effect.exit(store.save(Any(streamId), Any(snapshot)))
              assertAgree(`save #${i}`, outcomeOf(yield* call(memory), () => "saved"), outcomeOf(yield* call(dynamo), () => "saved"))
            }
            for (const [i, options] of input.loads.entries()) {
              const call = (store: SnapshotStore.SnapshotStoreShape) => Effect.exit(store.load(Any(streamId), Any(options)))
              assertAgree(`load #${i}`, outcomeOf(yield* call(memory), snapshotSummary), outcomeOf(yield* call(dynamo), snapshotSummary))
            }
          }),
        { runs: 80, seed: 9_201, maxShrinks: 40 }
      )
    ))

  it.live("two saves of the same version: both stores load the newer one", () =>
    withSnapshotStore((dynamo) =>
      Effect.gen(function*() {
        const memory = yield* SnapshotStore.makeMemory()
        for (const [label, store] of [["DynamoDB", dynamo], ["memory", memory]] as const) {
          const id = freshId("same-version")
          yield* store.save(id, { version: 5, state: { n: "older" } })
          yield* store.save(id, { version: 5, state: { n: "newer" } })
          const loaded = Option.getOrThrow(yield* store.load(id))
          assert.deepStrictEqual(loaded.state, { n: "newer" }, `${label}: the snapshot saved last wins`)
        }
      }).pipe(withFrozenTime(1_750_000_000_000)) // both saves in the same millisecond
    ))
})

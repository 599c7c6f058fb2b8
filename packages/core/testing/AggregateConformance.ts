/**
 * Aggregate behaviour on top of an EventStore and a SnapshotStore, run against the
 * in-memory layers and the DynamoDB layers.
 */
import { assert, describe, it } from "./vitest.js"
import { Effect, Exit, Layer, Option, Schema, Stream } from "effect"
import { Aggregate, EventStore, SnapshotStore } from "../src/index.js"
import { failure } from "./utils.js"

export const Opened = Schema.TaggedStruct("Opened", { owner: Schema.String })
export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite })
export const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Finite })
export const AccountEvent = Schema.Union([Opened, Deposited, Withdrawn])
export type AccountEvent = typeof AccountEvent.Type

export const AccountState = Schema.Struct({ open: Schema.Boolean, balance: Schema.Finite, events: Schema.Int })
export type AccountState = typeof AccountState.Type

export type Command =
  | { readonly _tag: "Open"; readonly owner: string }
  | { readonly _tag: "Deposit"; readonly amount: number }
  | { readonly _tag: "Withdraw"; readonly amount: number }

export class NotOpen extends Schema.TaggedError<NotOpen>()("NotOpen", {}) {}
export class AlreadyOpen extends Schema.TaggedError<AlreadyOpen>()("AlreadyOpen", {}) {}
export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Finite,
  requested: Schema.Finite
}) {}

export const evolve = (s: AccountState, e: AccountEvent): AccountState => {
  switch (e._tag) {
    case "Opened":
      return { ...s, open: true, events: s.events + 1 }
    case "Deposited":
      return { ...s, balance: s.balance + e.amount, events: s.events + 1 }
    case "Withdrawn":
      return { ...s, balance: s.balance - e.amount, events: s.events + 1 }
  }
}

export type AccountError = NotOpen | AlreadyOpen | InsufficientFunds

const decide = (c: Command, s: AccountState): Effect.Effect<ReadonlyArray<AccountEvent>, AccountError> => {
  switch (c._tag) {
    case "Open":
      return s.open ? Effect.fail(new AlreadyOpen()) : Effect.succeed([{ _tag: "Opened", owner: c.owner }])
    case "Deposit":
      return !s.open ? Effect.fail(new NotOpen()) : Effect.succeed([{ _tag: "Deposited", amount: c.amount }])
    case "Withdraw":
      return !s.open
        ? Effect.fail(new NotOpen())
        : c.amount > s.balance
        ? Effect.fail(new InsufficientFunds({ balance: s.balance, requested: c.amount }))
        : Effect.succeed(c.amount === 0 ? [] : [{ _tag: "Withdrawn", amount: c.amount }])
  }
}

export const makeAccount = (options: { readonly every?: number; readonly schemaVersion?: number } = {}) =>
  Aggregate.make({
    events: AccountEvent,
    initialState: { open: false, balance: 0, events: 0 } as AccountState,
    evolve,
    decide,
    snapshots: { schema: AccountState, schemaVersion: options.schemaVersion ?? 1, every: options.every }
  })

let counter = 0
const streamId = () => `account-${Date.now().toString(36)}-${(counter++).toString(36)}`


/** A small deterministic PRNG so random histories are reproducible from their seed. */
const prng = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed / 0x7fffffff
}

export const aggregateConformance = (
  name: string,
  makeLayer: () => Layer.Layer<EventStore.EventStore | SnapshotStore.SnapshotStore, unknown>
) =>
  describe(`Aggregate: ${name}`, { timeout: 120_000 }, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, EventStore.EventStore | SnapshotStore.SnapshotStore>) =>
      effect.pipe(Effect.provide(makeLayer()))

    it.live("handles commands, loads state, and refuses a domain error without appending", () =>
      run(Effect.gen(function*() {
        const Account = makeAccount()
        const id = streamId()
        const missing = yield* Account.load(id)
        assert.deepInclude(missing, { version: 0, eventsRead: 0, snapshotVersion: undefined })
        assert.deepInclude(failure(yield* Effect.exit(Account.loadExisting(id))), { _tag: "NotFoundError", id })
        const deposit = failure(yield* Effect.exit(Account.handle(id, { _tag: "Deposit", amount: 5 })))
        assert.strictEqual(deposit._tag, "NotOpen")

        yield* Account.handle(id, { _tag: "Open", owner: "ada" })
        const h = yield* Account.handle(id, { _tag: "Deposit", amount: 50 }, { metadata: { actor: "teller" } })
        assert.strictEqual(h.version, 2)
        assert.deepStrictEqual(h.state, { open: true, balance: 50, events: 2 })
        assert.strictEqual(h.events[0]!.metadata.actor, "teller")
        const overdraft = failure(yield* Effect.exit(Account.handle(id, { _tag: "Withdraw", amount: 80 })))
        assert.deepInclude(overdraft, { _tag: "InsufficientFunds", balance: 50, requested: 80 })
        const nothing = yield* Account.handle(id, { _tag: "Withdraw", amount: 0 })
        assert.deepStrictEqual(nothing.events, [])
        const loaded = yield* Account.loadExisting(id)
        assert.deepInclude(loaded, { version: 2, eventsRead: 2 })
        assert.deepStrictEqual(loaded.state, { open: true, balance: 50, events: 2 })
      })))

    it.live("snapshots every N events and loads from the newest snapshot plus the events after it", () =>
      run(Effect.gen(function*() {
        const Account = makeAccount({ every: 10 })
        const id = streamId()
        yield* Account.handle(id, { _tag: "Open", owner: "ada" })
        for (let i = 1; i <= 25; i++) yield* Account.handle(id, { _tag: "Deposit", amount: i })
        const loaded = yield* Account.load(id)
        assert.strictEqual(loaded.version, 26)
        assert.strictEqual(loaded.snapshotVersion, 20)
        assert.strictEqual(loaded.eventsRead, 6)
        assert.deepStrictEqual(loaded.state, { open: true, balance: 325, events: 26 })
        const snapshot = yield* SnapshotStore.typed(AccountState, { schemaVersion: 1 }).load(id)
        assert.strictEqual(Option.getOrThrow(snapshot).version, 20)
      })))

    it.live("loading with a snapshot gives exactly the state a full replay gives, for random histories", () =>
      run(Effect.gen(function*() {
        for (let seed = 1; seed <= 12; seed++) {
          const random = prng(seed)
          const every = 1 + Math.floor(random() * 9)
          const Account = makeAccount({ every })
          const id = streamId()
          const length = Math.floor(random() * 60)
          for (let i = 0; i < length; i++) {
            const r = random()
            const command: Command = i === 0 || r < 0.05
              ? { _tag: "Open", owner: `o${i}` }
              : r < 0.6
              ? { _tag: "Deposit", amount: Math.round(random() * 1000) / 10 }
              : { _tag: "Withdraw", amount: Math.round(random() * 1500) / 10 }
            yield* Effect.exit(Account.handle(id, command))
          }
          const loaded = yield* Account.load(id)
          const all = length === 0
            ? []
            : yield* Stream.runCollect(Account.events.read(id)).pipe(Effect.catchTag("NotFoundError", () => Effect.succeed([])))
          const replayed = Account.fold(all.map((e) => e.payload))
          assert.deepStrictEqual(loaded.state, replayed, `seed ${seed}, every ${every}`)
          assert.strictEqual(loaded.version, all.length, `seed ${seed}`)
          if (loaded.snapshotVersion !== undefined) {
            assert.strictEqual(loaded.eventsRead, all.length - loaded.snapshotVersion, `seed ${seed}`)
            assert.isBelow(loaded.eventsRead, every + 1, `seed ${seed}: at most one snapshot interval is read`)
          }
        }
      })))

    it.live("a snapshot made by another schema version is ignored and the state rebuilt from events", () =>
      run(Effect.gen(function*() {
        const V1 = makeAccount({ every: 5, schemaVersion: 1 })
        const id = streamId()
        yield* V1.handle(id, { _tag: "Open", owner: "ada" })
        for (let i = 0; i < 6; i++) yield* V1.handle(id, { _tag: "Deposit", amount: 10 })
        assert.strictEqual((yield* V1.load(id)).snapshotVersion, 5)
        // V2 changes what the state means (a new reducer): old snapshots must not be used.
        const V2 = Aggregate.make({
          ...makeAccount({ schemaVersion: 2 }).definition,
          events: AccountEvent,
          evolve: (s: AccountState, e: AccountEvent) => ({ ...evolve(s, e), balance: evolve(s, e).balance * 1 + (e._tag === "Deposited" ? 1 : 0) }),
          snapshots: { schema: AccountState, schemaVersion: 2, every: 5 }
        } as Aggregate.Definition<AccountState, AccountEvent, unknown, Command, AccountError, unknown>)
        const loaded = yield* V2.load(id)
        assert.strictEqual(loaded.snapshotVersion, undefined)
        assert.strictEqual(loaded.eventsRead, 7)
        assert.strictEqual(loaded.state.balance, 66)
      })))

    it.live("a snapshot that does not decode falls back to a full replay, never to a wrong state", () =>
      run(Effect.gen(function*() {
        const Account = makeAccount({ every: 100 })
        const id = streamId()
        yield* Account.handle(id, { _tag: "Open", owner: "ada" })
        yield* Account.handle(id, { _tag: "Deposit", amount: 7 })
        const store = yield* SnapshotStore.SnapshotStore
        yield* store.save(id, { version: 2, state: { open: "yes", balance: 1e9 }, schemaVersion: 1 })
        const loaded = yield* Account.load(id)
        assert.strictEqual(loaded.snapshotVersion, undefined)
        assert.deepStrictEqual(loaded.state, { open: true, balance: 7, events: 2 })
      })))

    it.live("concurrent handles on one aggregate: every success is in the stream exactly once, no gaps", () =>
      run(Effect.gen(function*() {
        const Account = makeAccount({ every: 4 })
        const id = streamId()
        yield* Account.handle(id, { _tag: "Open", owner: "ada" })
        const exits = yield* Effect.all(
          Array.from({ length: 20 }, () => Effect.exit(Account.handle(id, { _tag: "Deposit", amount: 1 }))),
          { concurrency: "unbounded" }
        )
        const successes = exits.filter(Exit.isSuccess).length
        for (const exit of exits.filter(Exit.isFailure)) assert.strictEqual(failure(exit)._tag, "ConflictError")
        assert.isAtLeast(successes, 1)
        const events = yield* Stream.runCollect(Account.events.read(id))
        assert.deepStrictEqual(events.map((e) => e.version), Array.from({ length: successes + 1 }, (_, i) => i + 1))
        const loaded = yield* Account.load(id)
        assert.strictEqual(loaded.state.balance, successes)
        assert.strictEqual(loaded.version, successes + 1)
      })))
  })

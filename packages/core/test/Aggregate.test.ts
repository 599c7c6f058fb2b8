import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schema, Stream } from "effect"
import { Aggregate, Errors, EventStore, SnapshotStore } from "../src/index.js"
import * as DeciderTest from "../testing/DeciderTest.js"
import {
  AccountEvent,
  AccountState,
  aggregateConformance,
  evolve,
  InsufficientFunds,
  makeAccount,
  NotOpen
} from "../testing/AggregateConformance.js"

aggregateConformance("in-memory", () => Layer.merge(EventStore.layerMemory, SnapshotStore.layerMemory))

describe("Aggregate", () => {
  const Account = makeAccount()
  const opened = { _tag: "Opened", owner: "ada" } as const
  const deposited = (amount: number) => ({ _tag: "Deposited", amount }) as const

  it.effect("given/when/then: events", () =>
    DeciderTest.given(Account, [opened, deposited(10)])
      .when({ _tag: "Withdraw", amount: 4 })
      .then([{ _tag: "Withdrawn", amount: 4 }]))

  it.effect("given/when/then: errors, by value or predicate", () =>
    Effect.gen(function*() {
      yield* DeciderTest.given(Account, [opened, deposited(10)])
        .when({ _tag: "Withdraw", amount: 50 })
        .thenFails(new InsufficientFunds({ balance: 10, requested: 50 }))
      yield* DeciderTest.given(Account, []).when({ _tag: "Deposit", amount: 1 }).thenFails((e) => e._tag === "NotOpen")
    }))

  it.effect("given/when/then fails with a readable message when the expectation does not hold", () =>
    Effect.gen(function*() {
      const wrongEvents = yield* Effect.exit(
        DeciderTest.given(Account, [opened]).when({ _tag: "Deposit", amount: 1 }).then([deposited(2)])
      )
      assert.isTrue(Exit.isFailure(wrongEvents))
      const error = Exit.isFailure(wrongEvents) ? String(wrongEvents.cause) : ""
      assert.match(error, /"amount":2/)
      assert.match(error, /"amount":1/)
      const wrongError = yield* Effect.exit(
        DeciderTest.given(Account, [opened]).when({ _tag: "Withdraw", amount: 5 }).thenFails(new NotOpen())
      )
      assert.isTrue(Exit.isFailure(wrongError))
      const noError = yield* Effect.exit(
        DeciderTest.given(Account, [opened]).when({ _tag: "Deposit", amount: 5 }).thenFails(new NotOpen())
      )
      assert.isTrue(Exit.isFailure(noError))
      const result = yield* DeciderTest.given(Account, [opened]).when({ _tag: "Deposit", amount: 5 }).result
      assert.deepStrictEqual(result.state, { open: true, balance: 5, events: 2 })
    }))

  it.live("works without a SnapshotStore in the context (replays from events)", () =>
    Effect.gen(function*() {
      const A = makeAccount({ every: 1 })
      yield* A.handle("a-1", { _tag: "Open", owner: "ada" })
      yield* A.handle("a-1", { _tag: "Deposit", amount: 3 })
      const loaded = yield* A.load("a-1")
      assert.deepInclude(loaded, { version: 2, eventsRead: 2, snapshotVersion: undefined })
      assert.strictEqual((yield* Stream.runCollect(A.events.read("a-1"))).length, 2)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.live("a snapshot store that fails is not hidden behind a silent replay", () =>
    Effect.gen(function*() {
      const A = makeAccount({ every: 1 })
      const failing = SnapshotStore.SnapshotStore.of({
        save: () => Effect.void,
        load: () =>
          Effect.fail(new Errors.StorageError({ operation: "Query", reason: "ResourceNotFound", resource: "snapshots", detail: "no table" }))
      })
      yield* A.handle("a-2", { _tag: "Open", owner: "ada" }).pipe(Effect.exit)
      const exit = yield* Effect.exit(A.load("a-2").pipe(Effect.provideService(SnapshotStore.SnapshotStore, failing)))
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /ResourceNotFound/)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.live("handle retries a conflict caused by another writer and decides again on the fresh state", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.makeMemory()
      let raced = false
      // Another writer appends right between handle's load (version 1) and its append.
      const racing = EventStore.EventStore.of({
        ...inner,
        append: (streamId, events, options) =>
          Effect.gen(function*() {
            if (!raced && options?.expectedVersion === 1) {
              raced = true
              yield* inner.append(streamId, [{ type: "Deposited", payload: { _tag: "Deposited", amount: 100 } }], {
                expectedVersion: 1
              })
            }
            return yield* inner.append(streamId, events, options)
          })
      })
      const Account = makeAccount()
      yield* Effect.gen(function*() {
        yield* Account.handle("r-1", { _tag: "Open", owner: "ada" })
        const handled = yield* Account.handle("r-1", { _tag: "Deposit", amount: 5 })
        assert.isTrue(raced)
        assert.strictEqual(handled.version, 3)
        assert.deepStrictEqual(handled.state, { open: true, balance: 105, events: 3 })
      }).pipe(Effect.provideService(EventStore.EventStore, racing))
    }))

  it.live("handle's state and its snapshot equal a replay of the stored events, not of what decide returned", () =>
    Effect.gen(function*() {
      const Renamed = Schema.TaggedStruct("Renamed", { name: Schema.String })
      const State = Schema.Struct({ name: Schema.String, keys: Schema.Int })
      const Named = Aggregate.make({
        events: Renamed,
        initialState: { name: "", keys: 0 },
        // The state depends on the event's shape: a field the Schema does not keep must not count.
        evolve: (_s: typeof State.Type, e: typeof Renamed.Type) => ({ name: e.name, keys: Object.keys(e).length }),
        decide: (c: { readonly name: string }) => [{ _tag: "Renamed", name: c.name, draft: true } as typeof Renamed.Type],
        snapshots: { schema: State, schemaVersion: 1, every: 1 }
      })
      const handled = yield* Named.handle("n-1", { name: "ada" })
      const replayed = Named.fold((yield* Stream.runCollect(Named.events.read("n-1"))).map((e) => e.payload))
      assert.deepStrictEqual(replayed, { name: "ada", keys: 2 })
      assert.deepStrictEqual(handled.state, replayed)
      const snapshot = yield* SnapshotStore.typed(State, { schemaVersion: 1 }).load("n-1")
      assert.deepStrictEqual(Option.getOrThrow(snapshot).state, replayed)
    }).pipe(Effect.provide(Layer.merge(EventStore.layerMemory, SnapshotStore.layerMemory))))

  it.live("a multi-event command that jumps over a multiple of `every` takes a snapshot", () =>
    Effect.gen(function*() {
      const Account = Aggregate.make({
        events: AccountEvent,
        initialState: { open: false, balance: 0, events: 0 } as AccountState,
        evolve,
        decide: (command: "open" | "twice"): ReadonlyArray<AccountEvent> =>
          command === "open"
            ? [{ _tag: "Opened", owner: "ada" }, { _tag: "Deposited", amount: 1 }]
            : [{ _tag: "Deposited", amount: 1 }, { _tag: "Deposited", amount: 1 }],
        snapshots: { schema: AccountState, schemaVersion: 1, every: 3 }
      })
      yield* Account.handle("m-1", "open")
      const handled = yield* Account.handle("m-1", "twice")
      assert.strictEqual(handled.version, 4)
      const snapshot = yield* SnapshotStore.typed(AccountState, { schemaVersion: 1 }).load("m-1")
      assert.strictEqual(Option.getOrThrow(snapshot).version, 4, "versions 2 -> 4 cross 3")
      assert.strictEqual((yield* Account.load("m-1")).snapshotVersion, 4)
    }).pipe(Effect.provide(Layer.merge(EventStore.layerMemory, SnapshotStore.layerMemory))))

  it("refuses an invalid snapshot policy at definition time", () => {
    assert.throws(() => makeAccount({ every: 0 }), /every/)
  })
})

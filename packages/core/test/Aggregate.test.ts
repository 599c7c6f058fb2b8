import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Stream } from "effect"
import { Aggregate, Errors, EventStore, SnapshotStore } from "../src/index.js"
import { aggregateConformance, InsufficientFunds, makeAccount, NotOpen } from "./conformance/AggregateConformance.js"

aggregateConformance("in-memory", () => Layer.merge(EventStore.layerMemory, SnapshotStore.layerMemory))

describe("Aggregate", () => {
  const Account = makeAccount()
  const opened = { _tag: "Opened", owner: "ada" } as const
  const deposited = (amount: number) => ({ _tag: "Deposited", amount }) as const

  it.effect("given/when/then: events", () =>
    Aggregate.given(Account, [opened, deposited(10)])
      .when({ _tag: "Withdraw", amount: 4 })
      .then([{ _tag: "Withdrawn", amount: 4 }]))

  it.effect("given/when/then: errors, by value or predicate", () =>
    Effect.gen(function*() {
      yield* Aggregate.given(Account, [opened, deposited(10)])
        .when({ _tag: "Withdraw", amount: 50 })
        .thenFails(new InsufficientFunds({ balance: 10, requested: 50 }))
      yield* Aggregate.given(Account, []).when({ _tag: "Deposit", amount: 1 }).thenFails((e) => e._tag === "NotOpen")
    }))

  it.effect("given/when/then fails with a readable message when the expectation does not hold", () =>
    Effect.gen(function*() {
      const wrongEvents = yield* Effect.exit(
        Aggregate.given(Account, [opened]).when({ _tag: "Deposit", amount: 1 }).then([deposited(2)])
      )
      assert.isTrue(Exit.isFailure(wrongEvents))
      const error = Exit.isFailure(wrongEvents) ? String(wrongEvents.cause) : ""
      assert.match(error, /"amount":2/)
      assert.match(error, /"amount":1/)
      const wrongError = yield* Effect.exit(
        Aggregate.given(Account, [opened]).when({ _tag: "Withdraw", amount: 5 }).thenFails(new NotOpen())
      )
      assert.isTrue(Exit.isFailure(wrongError))
      const noError = yield* Effect.exit(
        Aggregate.given(Account, [opened]).when({ _tag: "Deposit", amount: 5 }).thenFails(new NotOpen())
      )
      assert.isTrue(Exit.isFailure(noError))
      const result = yield* Aggregate.given(Account, [opened]).when({ _tag: "Deposit", amount: 5 }).result
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

  it("refuses an invalid snapshot policy at definition time", () => {
    assert.throws(() => makeAccount({ every: 0 }), /every/)
  })
})

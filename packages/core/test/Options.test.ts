import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { Errors, EventStore, ReadModel, SnapshotStore } from "../src/index.js"

/** The defect message of an exit that died, or "" when it did not die. */
const defect = <A, E>(exit: Exit.Exit<A, E>): string =>
  Exit.isFailure(exit) && Cause.hasDies(exit.cause) ? String(Cause.squash(exit.cause)) : ""

describe("constructor options are decoded with a Schema, misuse is a defect naming the option", () => {
  it.effect("ReadModel.make", () =>
    Effect.gen(function*() {
      const make = (options: unknown) => Effect.exit(ReadModel.make(ReadModel.makeMemoryStorage(), options as ReadModel.ReadModelStoreOptions))
      assert.match(defect(yield* make({ writeConcurrency: "x" })), /ReadModel\.make: invalid options\.writeConcurrency/)
      assert.match(defect(yield* make({ writeConcurrency: 0 })), /ReadModel\.make: invalid options\.writeConcurrency: must be an integer >= 1/)
      assert.match(defect(yield* make({ readConcurrency: 1.5 })), /invalid options\.readConcurrency: must be an integer >= 1/)
      assert.match(defect(yield* make({ snapshotCapacity: -5 })), /invalid options\.snapshotCapacity: must be an integer >= 0/)
      assert.match(defect(yield* make({ skipUnchanged: "yes" })), /invalid options\.skipUnchanged/)
      assert.match(defect(yield* make({ unprocessedRetrySchedule: "50 millis" })), /invalid options\.unprocessedRetrySchedule: must be a Schedule/)
      // Valid options, fields of a driver's options beside them, and none at all are fine.
      for (const options of [{ writeConcurrency: 1, snapshotCapacity: 0, tableName: "t" }, undefined, {}]) {
        const exit = yield* make(options)
        assert.isTrue(Exit.isSuccess(exit))
      }
      const scheduled = yield* make({ unprocessedRetrySchedule: ReadModel.defaultUnprocessedRetrySchedule })
      assert.isTrue(Exit.isSuccess(scheduled))
    }))

  it.effect("SnapshotStore.make", () =>
    Effect.gen(function*() {
      const make = (options: unknown) =>
        Effect.exit(SnapshotStore.make(SnapshotStore.makeMemoryStorage(), options as SnapshotStore.SnapshotStoreOptions))
      assert.match(defect(yield* make({ keepLast: "3" })), /SnapshotStore\.make: invalid options\.keepLast/)
      assert.match(defect(yield* make({ keepLast: 0 })), /SnapshotStore\.make: invalid options\.keepLast: must be an integer >= 1/)
      assert.isTrue(Exit.isSuccess(yield* make({ keepLast: 1 })))
    }))

  it.effect("EventStore.make", () =>
    Effect.gen(function*() {
      const make = (options: unknown) => Effect.exit(EventStore.makeMemory(options as EventStore.EventStoreOptions))
      assert.match(defect(yield* make({ versionCacheSize: "10" })), /EventStore\.make: invalid options\.versionCacheSize/)
      assert.match(defect(yield* make({ versionCacheSize: -1 })), /EventStore\.make: invalid options\.versionCacheSize: must be an integer >= 0/)
      assert.match(defect(yield* make({ versionCacheSize: 1.5 })), /invalid options\.versionCacheSize: must be an integer >= 0/)
      assert.match(defect(yield* make({ maxAppendAttempts: 0 })), /EventStore\.make: invalid options\.maxAppendAttempts: must be an integer >= 1/)
      assert.match(defect(yield* make({ maxAppendAttempts: Number.POSITIVE_INFINITY })), /invalid options\.maxAppendAttempts: must be an integer >= 1/)
      assert.match(defect(yield* make({ defaultTtl: "forever" })), /EventStore\.make: invalid options\.defaultTtl/)
      for (const options of [{ versionCacheSize: 0, maxAppendAttempts: 1, defaultTtl: "1 day", tableName: "t" }, { defaultTtl: undefined, versionCacheSize: undefined }, undefined, {}]) {
        assert.isTrue(Exit.isSuccess(yield* make(options)))
      }
    }))

  it.effect("the defect is a typed InvalidInputError naming the constructor and the option", () =>
    Effect.gen(function*() {
      const exits: Array<Exit.Exit<unknown>> = [
        yield* Effect.exit(EventStore.makeMemory({ maxAppendAttempts: 0 })),
        yield* Effect.exit(SnapshotStore.makeMemory({ keepLast: 0 })),
        yield* Effect.exit(ReadModel.makeMemory({ writeConcurrency: 0 }))
      ]
      const expected: ReadonlyArray<readonly [string, string]> = [
        ["EventStore.make", "options.maxAppendAttempts"],
        ["SnapshotStore.make", "options.keepLast"],
        ["ReadModel.make", "options.writeConcurrency"]
      ]
      exits.forEach((exit, i) => {
        assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
        const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.instanceOf(error, Errors.InvalidInputError)
        const [operation, field] = expected[i]!
        assert.deepInclude(error, { operation, field })
      })
    }))
})

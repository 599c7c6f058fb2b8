/** A projection's checkpoint as stored, and its lag behind the log. */
import { Clock, Effect, Option } from "effect"
import type { StorageError } from "../../Errors.js"
import { EventLog } from "../../EventLog.js"
import { ReadModelStore } from "../../ReadModel.js"
import * as Checkpoint from "./checkpoint.js"
import type { CorruptedCheckpointError } from "./checkpoint.js"
import type { Status } from "./model.js"

/**
 * The status of a projection by name: one strongly consistent read of its checkpoint and one
 * of the log's head. What `dynamo-es projection status` shows.
 *
 * @since 0.2.0
 * @category running
 */
export const status = (
  name: string
): Effect.Effect<Status, StorageError | CorruptedCheckpointError, EventLog | ReadModelStore> =>
  Effect.gen(function*() {
    const store = yield* ReadModelStore
    const conditional = store.storage?.conditional
    if (conditional === undefined) {
      return yield* Effect.die(new Error(`Projection.status: the read-model store "${store.table}" has no conditional primitives`))
    }
    const checkpoint = yield* Checkpoint.read(conditional, name)
    const head = yield* (yield* EventLog).head
    const now = yield* Clock.currentTimeMillis
    const position = checkpoint?.data.position ?? 0
    const held = checkpoint !== undefined && checkpoint.data.expiresAt > now
    return {
      projection: name,
      position,
      head,
      lag: Math.max(0, head - position),
      owner: held ? Option.some(checkpoint.data.owner) : Option.none(),
      leaseExpiresAt: held ? Option.some(new Date(checkpoint.data.expiresAt)) : Option.none()
    }
  })

import { Context, Effect, Layer } from "effect"
import { EventStore } from "../src/index.js"
import { eventStoreConformance, StoreProbe } from "../testing/EventStoreConformance.js"

eventStoreConformance("in-memory", (options) =>
  Layer.effectContext(Effect.gen(function*() {
    const store = yield* EventStore.makeMemory(options)
    return Context.make(EventStore.EventStore, store).pipe(
      Context.add(StoreProbe, { countItems: store.eventCount })
    )
  })))

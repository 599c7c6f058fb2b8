import { Context, Effect, Layer } from "effect"
import { Errors, ReadModel } from "../src/index.js"
import { ReadModelProbe, readModelConformance } from "../testing/ReadModelConformance.js"

readModelConformance("in-memory", (options) =>
  Layer.effectContext(Effect.gen(function*() {
    const store = yield* ReadModel.makeMemory(options)
    const storage = store.storage
    let baseWrites = 0
    return Context.make(ReadModel.ReadModelStore, store).pipe(
      Context.add(ReadModelProbe, {
        operations: Effect.sync(() => [...storage.operations]),
        itemWrites: Effect.sync(() => storage.itemWrites() - baseWrites),
        reset: Effect.sync(() => {
          storage.operations.length = 0
          baseWrites = storage.itemWrites()
        }),
        rows: (name) => Effect.sync(() => storage.rows(name)),
        putRaw: (name, id, data) => Effect.sync(() => storage.putRaw(name, id, data)),
        dropAll: Effect.sync(() => storage.reset()),
        setFault: (fault) =>
          Effect.sync(() =>
            storage.setFault(fault === undefined ? undefined : (operation, name, ids) => {
              const f = fault(operation, name, ids)
              if (f?._tag !== "Fail") return f
              return {
                _tag: "Fail",
                applied: f.applied,
                error: new Errors.StorageError({ operation, reason: "AccessDenied", resource: storage.table, detail: "injected" })
              }
            })
          )
      })
    )
  })))

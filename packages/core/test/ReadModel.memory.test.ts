import { Context, Effect, Layer } from "effect"
import { makeMemoryTable } from "../src/internal/readModel/memoryStorage.js"
import { ReadModel } from "../src/index.js"
import { makeProbe, ReadModelProbe, readModelConformance } from "../testing/ReadModelConformance.js"
import * as ReadModelStorageTest from "../testing/ReadModelStorageTest.js"

readModelConformance("in-memory", (options) =>
  Layer.effectContext(Effect.gen(function*() {
    const table = makeMemoryTable()
    const instrumented = ReadModelStorageTest.instrument(table.storage)
    const store = yield* ReadModel.make(instrumented.storage, options)
    return Context.make(ReadModel.ReadModelStore, store).pipe(
      Context.add(
        ReadModelProbe,
        makeProbe(instrumented, {
          rows: table.storage.rows,
          putRaw: (name, id, data) => Effect.sync(() => table.putRaw(name, id, data)),
          dropAll: Effect.sync(() => table.reset())
        })
      )
    )
  })))

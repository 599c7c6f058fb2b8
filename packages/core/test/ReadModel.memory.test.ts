import { Context, Effect, Layer } from "effect"
import { ReadModel } from "../src/index.js"
import { makeProbe, ReadModelProbe, readModelConformance } from "../testing/ReadModelConformance.js"
import * as ReadModelStorageTest from "../testing/ReadModelStorageTest.js"

readModelConformance("in-memory", (options) =>
  Layer.effectContext(Effect.gen(function*() {
    // The store talks to `current` through this delegate: dropping every row is replacing
    // it with an empty memory storage, as if the table had been recreated.
    let current = ReadModel.makeMemoryStorage()
    const table: ReadModel.MemoryStorage = {
      table: current.table,
      get: (...args) => current.get(...args),
      getBatch: (...args) => current.getBatch(...args),
      queryPage: (...args) => current.queryPage(...args),
      put: (...args) => current.put(...args),
      delete: (...args) => current.delete(...args),
      writeBatch: (...args) => current.writeBatch(...args),
      rows: (...args) => current.rows(...args)
    }
    const instrumented = ReadModelStorageTest.instrument(table)
    const store = yield* ReadModel.make(instrumented.storage, options)
    return Context.make(ReadModel.ReadModelStore, store).pipe(
      Context.add(
        ReadModelProbe,
        makeProbe(instrumented, {
          rows: (name) => current.rows(name),
          // Straight to the memory storage, past the store's checks. The memory storage keeps
          // what it is given: `undefined` stands for a row without a `Data` attribute.
          putRaw: (name, id, data) => current.put(name, id, data as string),
          dropAll: Effect.sync(() => {
            current = ReadModel.makeMemoryStorage()
          })
        })
      )
    )
  })))

import { Effect } from "effect"
import { ReadModel } from "../src/index.js"
import { projectionConformance } from "../testing/ProjectionConformance.js"

projectionConformance("in-memory read models", () => Effect.sync(() => ReadModel.makeMemoryStorage()))

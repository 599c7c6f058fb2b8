import { SnapshotStore } from "../src/index.js"
import { snapshotStoreConformance } from "../testing/SnapshotStoreConformance.js"

snapshotStoreConformance("in-memory", (options) =>
  options === undefined ? SnapshotStore.layerMemory : SnapshotStore.layerMemoryWith(options))


import { EventLog } from "../src/index.js"
import { eventLogConformance } from "../testing/EventLogConformance.js"

eventLogConformance("in-memory", () => EventLog.layerMemory())

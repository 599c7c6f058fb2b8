import { eventLogConformance } from "@dynamo-es/core/testing/EventLogConformance"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Layer } from "effect"
import { layerLog } from "./logHelpers.js"

const local = DynamoDBLocal.layer()

eventLogConformance(
  "DynamoDB (sequencer on the table's stream)",
  () => layerLog().pipe(Layer.provideMerge(Layer.provideMerge(Fixtures.layerClientFor(), local))),
  { timeout: 60_000 }
)

// Tiny epochs and entries: reads cross epochs, resume inside entries that straddle an epoch
// boundary, and find the head through the epoch markers.
eventLogConformance(
  "DynamoDB with epochs of 7 positions and entries of at most 3 events",
  () => layerLog({ epochSize: 7, maxEntryEvents: 3 }).pipe(Layer.provideMerge(Layer.provideMerge(Fixtures.layerClientFor(), local))),
  { timeout: 60_000 }
)

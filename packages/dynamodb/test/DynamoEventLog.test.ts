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

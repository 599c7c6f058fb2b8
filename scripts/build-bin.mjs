// Makes the built `dynamo-es` command executable (tsc keeps the shebang, not the mode).
import { chmodSync } from "node:fs"

chmodSync(new URL("../packages/dynamodb/dist/bin/dynamo-es.js", import.meta.url), 0o755)

import { fileURLToPath } from "node:url"

const src = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url))

/**
 * Inside this repository the packages resolve to their sources, like `paths` in
 * tsconfig.base.json: tests run on the code as it is, without a build. Published packages
 * resolve through their `exports` (dist/ only).
 */
export const alias = [
  { find: /^@dynamo-es\/core$/, replacement: src("core/src/index.ts") },
  { find: /^@dynamo-es\/core\/testing$/, replacement: src("core/testing/index.ts") },
  { find: /^@dynamo-es\/core\/testing\/(.*)$/, replacement: src("core/testing/$1.ts") },
  { find: /^@dynamo-es\/dynamodb$/, replacement: src("dynamodb/src/index.ts") },
  { find: /^@dynamo-es\/dynamodb-local$/, replacement: src("dynamodb-local/src/index.ts") },
  { find: /^@dynamo-es\/dynamodb-local\/globalSetup$/, replacement: src("dynamodb-local/src/globalSetup.ts") }
]

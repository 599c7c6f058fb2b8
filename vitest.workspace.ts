import { defineConfig } from "vitest/config"
import { alias } from "./vitest.shared.js"

/**
 * The one place that lists the packages under test. Vitest 5 does not pick this file up
 * by itself: `npm test` runs `vitest run --config vitest.workspace.ts`.
 *
 * The global setup starts one DynamoDB Local for the whole run (unless DYNAMODB_ENDPOINT
 * is set) and stops it at the end; every worker inherits its endpoint.
 */
export default defineConfig({
  resolve: { alias },
  test: {
    globalSetup: ["packages/dynamodb-local/src/globalSetup.ts"],
    projects: [
      "packages/core",
      "packages/dynamodb",
      "packages/dynamodb-local"
    ]
  }
})

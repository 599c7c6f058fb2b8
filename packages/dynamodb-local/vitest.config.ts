import { defineConfig } from "vitest/config"
import { alias } from "../../vitest.shared.js"

export default defineConfig({
  resolve: { alias },
  test: {
    name: "dynamodb-local",
    root: import.meta.dirname,
    // The tests start and stop DynamoDB Local themselves; the package's globalSetup is for others.
    globalSetup: [],
    include: ["test/**/*.test.ts"]
  }
})

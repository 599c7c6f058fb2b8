import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    name: "dynamodb",
    include: ["test/**/*.test.ts"],
    globalSetup: ["../dynamodb-local/src/globalSetup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})

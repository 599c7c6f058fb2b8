import { defineConfig } from "vitest/config"
import { alias } from "../../vitest.shared.js"

export default defineConfig({
  resolve: { alias },
  test: {
    name: "dynamodb",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})

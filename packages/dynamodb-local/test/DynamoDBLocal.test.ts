import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Exit, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { spawnSync } from "node:child_process"
import * as Net from "node:net"
import { DynamoDBLocal } from "../src/index.js"

// Effect's default ConfigProvider copies process.env once per process, and the globalSetup of
// other projects may have set DYNAMODB_ENDPOINT for this worker: each test states its own env
// instead of editing process.env.
const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

const envWithoutEndpoint = () => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && name !== "DYNAMODB_ENDPOINT") env[name] = value
  }
  return env
}

const accepts = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
    return Effect.sync(() => socket.destroy())
  })

/** Pids of processes (java and its watchdog shell) whose command line names this port. */
const processesOnPort = (port: number): Array<string> => {
  const result = spawnSync("pgrep", ["-f", `DynamoDBLocal\\.jar .*-port ${port}( |$)`], { encoding: "utf8" })
  return result.stdout.split("\n").filter((line) => line.trim().length > 0)
}

describe("DynamoDBLocal.layer", () => {
  it.live("starts DynamoDB Local when DYNAMODB_ENDPOINT is unset and stops it on scope close", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))

      const context = yield* Layer.buildWithScope(DynamoDBLocal.layer(), scope).pipe(
        withEnv(envWithoutEndpoint()),
        // Startup must not depend on the clock a test provides (`layer(...)` of @effect/vitest).
        Effect.provide(TestClock.layer())
      )
      const connection = Context.get(context, DynamoDBLocal.DynamoDBLocal)
      expect(connection.started).toBe(true)
      expect(connection.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(connection.region).toBe("us-east-1")
      expect(connection.credentials).toEqual({ accessKeyId: "dynamoes", secretAccessKey: "local" })
      const port = Number(new URL(connection.endpoint).port)
      expect(processesOnPort(port).length).toBeGreaterThan(0)

      const client = new DynamoDBClient({
        endpoint: connection.endpoint,
        region: connection.region,
        credentials: connection.credentials
      })
      const tables = yield* Effect.promise(() => client.send(new ListTablesCommand({}))).pipe(
        Effect.ensuring(Effect.sync(() => client.destroy()))
      )
      expect(tables.TableNames).toEqual([])

      yield* Scope.close(scope, Exit.void)
      expect(yield* accepts(port)).toBe(false)
      expect(processesOnPort(port)).toEqual([])
    }), { timeout: 60_000 })

  it.live("uses DYNAMODB_ENDPOINT when it is set and starts nothing", () =>
    Effect.gen(function*() {
      const connection = yield* DynamoDBLocal.DynamoDBLocal.pipe(
        Effect.provide(DynamoDBLocal.layer()),
        withEnv({ DYNAMODB_ENDPOINT: "http://127.0.0.1:1", AWS_REGION: "eu-west-1", AWS_ACCESS_KEY_ID: "someone" })
      )
      expect(connection).toEqual({
        endpoint: "http://127.0.0.1:1",
        region: "eu-west-1",
        credentials: { accessKeyId: "someone", secretAccessKey: "local" },
        started: false
      })
    }))

  it.live("rejects an access key id DynamoDB Local would refuse, before starting anything", () =>
    Effect.gen(function*() {
      const error = yield* DynamoDBLocal.DynamoDBLocal.pipe(
        Effect.provide(DynamoDBLocal.layer({ accessKeyId: "not-valid" })),
        withEnv(envWithoutEndpoint()),
        Effect.flip
      )
      expect(error._tag === "DynamoDBLocalStartError" && error.reason).toBe("InvalidOptions")
    }))

  it.live("fails with a typed error when DynamoDB Local does not answer in time, and leaves no java", () =>
    Effect.gen(function*() {
      const error = yield* DynamoDBLocal.DynamoDBLocal.pipe(
        Effect.provide(DynamoDBLocal.layer({ startTimeout: "1 millis" })),
        withEnv(envWithoutEndpoint()),
        Effect.flip
      )
      expect(error._tag).toBe("DynamoDBLocalStartError")
      if (error._tag !== "DynamoDBLocalStartError") return
      expect(error.reason).toBe("Timeout")
      const port = Number(/port (\d+)/.exec(error.detail)?.[1])
      expect(processesOnPort(port)).toEqual([])
    }), { timeout: 30_000 })

  it.live("without java on the PATH: one JavaNotFoundError that says how to install it", () =>
    Effect.gen(function*() {
      const path = process.env["PATH"]
      process.env["PATH"] = "/nonexistent-dynamo-es-test"
      const error = yield* DynamoDBLocal.DynamoDBLocal.pipe(
        Effect.provide(DynamoDBLocal.layer()),
        withEnv(envWithoutEndpoint()),
        Effect.flip,
        Effect.ensuring(Effect.sync(() => {
          process.env["PATH"] = path
        }))
      )
      expect(error._tag).toBe("JavaNotFoundError")
      expect(error.message).toMatch(/openjdk-17-jre-headless/)
      expect(error.message).toMatch(/DYNAMODB_ENDPOINT/)
    }))
})

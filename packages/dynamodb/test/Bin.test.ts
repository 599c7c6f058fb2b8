/**
 * The `dynamo-es` command as a user runs it: a child process with only the environment it is
 * given. It reads the same configuration as every entry point (`DynamoClient.envConfig`),
 * refuses bad command lines before any request, and prints every failure on one line.
 */
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, inject, it } from "vitest"
import { DynamoClient, Tables } from "../src/index.js"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const tsx = join(root, "node_modules", "tsx", "dist", "cli.mjs")
const bin = join(root, "packages", "dynamodb", "src", "bin", "dynamo-es.ts")
/** A home without an AWS profile, so that nothing but the given variables configures the SDK. */
const home = mkdtempSync(join(tmpdir(), "dynamo-es-bin-home-"))
afterAll(() => rmSync(home, { recursive: true, force: true }))

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const dynamoEs = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [tsx, bin, ...args],
      { cwd: root, env: { PATH: process.env["PATH"] ?? "", HOME: home, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr })
    )
  })

/** The one line a failure prints, and the exit status 1. */
const failsWith = (run: Run, pattern: RegExp) => {
  expect(run.code).toBe(1)
  expect(run.stderr.trimEnd().split("\n")).toHaveLength(1)
  expect(run.stderr).toMatch(/^dynamo-es: /)
  expect(run.stderr).toMatch(pattern)
}

const client = Fixtures.layerClientFor().pipe(Layer.provide(DynamoDBLocal.layer()))
const exists = (name: string) =>
  Effect.runPromise(
    DynamoClient.DynamoClient.use((c) =>
      c.call("DescribeTable", name, (sdk) => sdk.send(new DescribeTableCommand({ TableName: name })))
    ).pipe(
      DynamoClient.unconditional,
      Effect.as(true),
      Effect.catchIf((e) => e.reason === "ResourceNotFound", () => Effect.succeed(false)),
      Effect.provide(client)
    )
  )

describe("dynamo-es", { timeout: 120_000 }, () => {
  it("tables create with only DYNAMODB_ENDPOINT set, on a host that is not loopback", async () => {
    const endpoint = inject("dynamodbEndpoint").replace("127.0.0.1", hostname())
    const names = ["events", "snapshots", "read-models", "log"].map((t) => Fixtures.uniqueTableName(`bin${t.replace("-", "")}`))
    const flags = ["--events", names[0]!, "--snapshots", names[1]!, "--read-models", names[2]!, "--log", names[3]!]
    const run = await dynamoEs(["tables", "create", ...flags], { DYNAMODB_ENDPOINT: endpoint })
    expect(run.stderr).toBe("")
    expect(run.stdout.trim()).toBe(`Created: ${names.join(", ")}`)
    expect((await dynamoEs(["tables", "create", ...flags], { DYNAMODB_ENDPOINT: endpoint })).stdout.trim()).toBe(
      "All tables exist already."
    )
    for (const name of names) expect(await exists(name)).toBe(true)
    await Effect.runPromise(Tables.deleteTables(names).pipe(Effect.provide(client)))
  })

  it("without an endpoint and without a region: one line naming AWS_REGION", async () => {
    failsWith(await dynamoEs(["tables", "create"]), /no AWS region: set AWS_REGION .*DYNAMODB_ENDPOINT/)
  })

  it("a malformed endpoint or half a key pair: one line naming the variable", async () => {
    failsWith(await dynamoEs(["tables", "create"], { DYNAMODB_ENDPOINT: "localhost:8000" }), /DYNAMODB_ENDPOINT must be an http\(s\) URL/)
    failsWith(
      await dynamoEs(["tables", "create"], { AWS_REGION: "eu-west-1", AWS_ACCESS_KEY_ID: "AKIDEXAMPLE" }),
      /AWS_SECRET_ACCESS_KEY is not set but AWS_ACCESS_KEY_ID is/
    )
  })

  it("refuses unknown flags, stray arguments and table names DynamoDB would refuse, before any request", async () => {
    const endpoint = inject("dynamodbEndpoint")
    failsWith(await dynamoEs(["tables", "print", "--bogus"]), /Unknown option '--bogus'; usage: dynamo-es tables/)
    failsWith(await dynamoEs(["tables", "create", "--events"]), /argument missing; usage: dynamo-es tables/)
    failsWith(await dynamoEs(["tables", "print", "extra"]), /^dynamo-es: usage: dynamo-es tables/)
    const name = Fixtures.uniqueTableName("binokay")
    const bad = await dynamoEs(["tables", "create", "--events", "x", "--snapshots", name], { DYNAMODB_ENDPOINT: endpoint })
    failsWith(bad, /--events: tableName must be 3 to 255 characters of \[A-Za-z0-9_.-\], got "x"/)
    expect(await exists(name)).toBe(false)
    failsWith(
      await dynamoEs(["tables", "print"], { DYNAMO_ES_READ_MODELS_TABLE: "no spaces" }),
      /--read-models: tableName must be .* got "no spaces"/
    )
  })

  it("tables print: the definitions, named by flags and DYNAMO_ES_* variables", async () => {
    const run = await dynamoEs(["tables", "print", "--events", "my-events"], {
      DYNAMO_ES_SNAPSHOTS_TABLE: "my-snapshots",
      DYNAMO_ES_LOG_TABLE: "my-log"
    })
    expect(run.code).toBe(0)
    const names = Object.values(JSON.parse(run.stdout).Resources as Record<string, { Properties: { TableName: string } }>)
      .map((r) => r.Properties.TableName)
    expect(names).toEqual(["my-events", "my-snapshots", "read-models", "my-log"])
  })
})

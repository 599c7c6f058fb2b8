// The packages as a user gets them. Packs every package (after `npm run build`), installs
// the tarballs into a fresh project outside the repository with only `effect`, the AWS SDK
// and what the tarballs themselves depend on (plus `@types/node`, see below), compiles a
// small consumer (event store, aggregate, read model, the testing subpath) with plain `tsc`
// under `strict: true` and `strict: false`, runs it with plain `node` against DynamoDB Local
// (started by the packed @dynamo-es/dynamodb-local, or DYNAMODB_ENDPOINT), runs the packed
// `dynamo-es` command (`tables print`, a usage error, and `tables create` against that
// DynamoDB Local with nothing but DYNAMODB_ENDPOINT set), checks that the Vitest-only part of
// `@dynamo-es/core/testing` says what to install when the runner is missing, that one copy of
// effect is installed, that no tarball ships tests and that the source maps carry their
// sources. Any failure exits non-zero.
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

// The consumer: what a new user writes first, compiled by their own tsc.
const consumer = `
import { Aggregate, EventStore, ReadModel } from "@dynamo-es/core"
// The deep path needs no test runner; the index also re-exports the Vitest conformance suites.
import * as DeciderTest from "@dynamo-es/core/testing/DeciderTest"
import { DynamoEventStore, DynamoReadModelStore, DynamoSnapshotStore } from "@dynamo-es/dynamodb"
import { DynamoDBLocal, Fixtures } from "@dynamo-es/dynamodb-local"
import { Effect, Layer, Schema, Stream } from "effect"

const Opened = Schema.TaggedStruct("Opened", { owner: Schema.String })
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite })
const AccountEvent = Schema.Union([Opened, Deposited])
type AccountEvent = typeof AccountEvent.Type
const Accounts = EventStore.typed(AccountEvent)

const State = Schema.Struct({ owner: Schema.String, balance: Schema.Finite })
type State = typeof State.Type
type Command = { readonly _tag: "Open"; readonly owner: string } | { readonly _tag: "Deposit"; readonly amount: number }

const Account = Aggregate.make({
  events: AccountEvent,
  initialState: { owner: "", balance: 0 } as State,
  evolve: (state: State, event: AccountEvent): State =>
    event._tag === "Opened" ? { ...state, owner: event.owner } : { ...state, balance: state.balance + event.amount },
  decide: (command: Command): ReadonlyArray<AccountEvent> =>
    command._tag === "Open" ? [{ _tag: "Opened", owner: command.owner }] : [{ _tag: "Deposited", amount: command.amount }],
  snapshots: { schema: State, schemaVersion: 1, every: 2 }
})

const Balance = Schema.Struct({ id: Schema.String, balance: Schema.Finite })

const program = Effect.gen(function*() {
  const id = "pack-" + Date.now().toString(36)
  const first = yield* Accounts.append(id, [{ _tag: "Opened", owner: "Ada" }], { expectedVersion: "noStream" })
  yield* Accounts.append(id, [{ _tag: "Deposited", amount: 5 }], { expectedVersion: first.version })
  const events = yield* Stream.runCollect(Accounts.read(id))
  if (events.length !== 2) throw new Error("expected 2 events, read " + events.length)

  const agg = "agg-" + id
  yield* Account.handle(agg, { _tag: "Open", owner: "Grace" })
  yield* Account.handle(agg, { _tag: "Deposit", amount: 7 })
  yield* Account.handle(agg, { _tag: "Deposit", amount: 3 })
  const loaded = yield* Account.load(agg)
  if (loaded.state.balance !== 10) throw new Error("expected balance 10, got " + loaded.state.balance)

  const balances = yield* ReadModel.deferred("balances", Balance)
  yield* balances.save({ id, balance: 5 })
  yield* balances.flush
  const found = yield* (yield* ReadModel.repository("balances", Balance)).get(id)
  if (found.balance !== 5) throw new Error("read model not stored")

  yield* DeciderTest.given(Account, [{ _tag: "Opened", owner: "Ada" }]).when({ _tag: "Deposit", amount: 1 }).then([
    { _tag: "Deposited", amount: 1 }
  ])
  console.log("consumer: ok (event store, aggregate with snapshots, read model, testing subpath)")
})

const Live = Layer.mergeAll(
  DynamoEventStore.layer({ tableName: "pack-events" }),
  DynamoSnapshotStore.layer({ tableName: "pack-snapshots" }),
  DynamoReadModelStore.layer({ tableName: "pack-read-models" })
).pipe(Layer.provide(Fixtures.layerClientFor()), Layer.provide(DynamoDBLocal.layer()))

const quick = process.argv.includes("--quick")
Effect.runPromise(quick ? Effect.void : program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
`

// The packed command against the DynamoDB Local the packed @dynamo-es/dynamodb-local provides,
// configured by DYNAMODB_ENDPOINT alone (no AWS_* variables, no AWS profile).
const binCheck = `
import { DynamoDBLocal } from "@dynamo-es/dynamodb-local"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"

const program = Effect.gen(function*() {
  const { endpoint } = yield* DynamoDBLocal.DynamoDBLocal
  const names = ["--events", "pack-bin-events", "--snapshots", "pack-bin-snapshots", "--read-models", "pack-bin-read-models", "--log", "pack-bin-log"]
  const env = { PATH: process.env.PATH ?? "", HOME: process.cwd(), DYNAMODB_ENDPOINT: endpoint }
  const run = () => execFileSync("node_modules/.bin/dynamo-es", ["tables", "create", ...names], { env, encoding: "utf8" }).trim()
  const first = run()
  if (!/^(Created: pack-bin-events, pack-bin-snapshots, pack-bin-read-models, pack-bin-log|All tables exist already\.)$/.test(first)) {
    throw new Error("dynamo-es tables create printed: " + first)
  }
  if (run() !== "All tables exist already.") throw new Error("dynamo-es tables create is not idempotent")
  console.log("bin-check: ok (" + first + ")")
})

Effect.runPromise(program.pipe(Effect.provide(DynamoDBLocal.layer()))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
`

const root = new URL("..", import.meta.url).pathname
const packages = ["core", "dynamodb", "dynamodb-local"]
const step = (message) => console.log(`pack-check: ${message}`)
const fail = (message) => {
  console.error(`pack-check: FAILED: ${message}`)
  process.exit(1)
}
const run = (command, args, options = {}) => {
  try {
    return execFileSync(command, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", ...options })
  } catch (error) {
    fail(`${command} ${args.join(" ")}\n${error.stdout ?? ""}${error.stderr ?? ""}`)
  }
}
const versionOf = (name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version

const work = mkdtempSync(join(tmpdir(), "dynamo-es-pack-check-"))
try {
  step(`packing into ${work}`)
  const tarballs = []
  for (const name of packages) {
    const out = run("npm", ["pack", "--json", "--pack-destination", work], { cwd: join(root, "packages", name) })
    const [info] = JSON.parse(out)
    const files = info.files.map((f) => f.path)
    const bad = files.filter((f) => /(^|\/)(test|tests)\/|\.test\.|vitest\.config|tsconfig|(^|\/)src\/.*\.ts$/.test(f) && !f.endsWith(".d.ts"))
    if (bad.length > 0) fail(`@dynamo-es/${name} ships files users must not get: ${bad.join(", ")}`)
    for (const needed of ["package.json", "README.md", "LICENSE"]) {
      if (!files.includes(needed)) fail(`@dynamo-es/${name} does not ship ${needed}`)
    }
    if (!files.some((f) => f.startsWith("dist/") && f.endsWith(".d.ts"))) fail(`@dynamo-es/${name} ships no dist/*.d.ts: run npm run build first`)
    // The sources are not shipped: a map must carry them, or lead nowhere.
    for (const map of files.filter((f) => f.endsWith(".map"))) {
      const parsed = JSON.parse(readFileSync(join(root, "packages", name, map), "utf8"))
      if (!Array.isArray(parsed.sourcesContent) || parsed.sourcesContent.length !== parsed.sources.length) {
        fail(`@dynamo-es/${name}/${map} points at ${parsed.sources.join(", ")} without sourcesContent`)
      }
    }
    tarballs.push(join(work, info.filename))
  }

  const app = join(work, "app")
  mkdirSync(join(app, "src"), { recursive: true })
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "pack-check-app", private: true, type: "module" }, null, 2))
  step("installing the tarballs, effect and the AWS SDK into a fresh project")
  run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
    `effect@${versionOf("effect")}`,
    `@aws-sdk/client-dynamodb@${versionOf("@aws-sdk/client-dynamodb")}`,
    // Not for the library (its .d.ts name no Node type): for the consumer's own code, which
    // uses `process` and `node:child_process` as any Node service does.
    `@types/node@${versionOf("@types/node")}`,
    ...tarballs
  ], { cwd: app })

  const effects = run("npm", ["ls", "effect", "--all", "--parseable"], { cwd: app }).trim().split("\n").filter(Boolean)
  if (new Set(effects).size !== 1) fail(`more than one copy of effect is installed:\n${effects.join("\n")}`)

  writeFileSync(join(app, "src", "consumer.ts"), consumer)
  writeFileSync(join(app, "src", "bin-check.ts"), binCheck)
  for (const strict of [true, false]) {
    const config = {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict,
        skipLibCheck: false,
        rootDir: "src",
        outDir: strict ? "out-strict" : "out-loose",
        types: ["node"]
      },
      include: ["src/*.ts"]
    }
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify(config, null, 2))
    step(`compiling the consumer with tsc, strict: ${strict}, skipLibCheck: false`)
    run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: app })
  }

  step("running the consumer with plain node against DynamoDB Local")
  const output = run(process.execPath, [join(app, "out-strict", "consumer.js")], { cwd: app, timeout: 120_000 })
  process.stdout.write(output.trimEnd().replace(/^/gm, "  | ") + "\n")
  if (!output.includes("consumer: ok")) fail("the consumer did not finish")
  run(process.execPath, [join(app, "out-loose", "consumer.js"), "--quick"], { cwd: app, timeout: 120_000 })

  step("running the packed dynamo-es command")
  const printed = run(join(app, "node_modules", ".bin", "dynamo-es"), ["tables", "print"], { cwd: app })
  if (!JSON.parse(printed).Resources) fail("dynamo-es tables print printed no Resources")
  try {
    execFileSync(join(app, "node_modules", ".bin", "dynamo-es"), ["nonsense"], { stdio: "pipe", encoding: "utf8" })
    fail("dynamo-es nonsense succeeded")
  } catch (error) {
    if (!/usage: dynamo-es tables/.test(error.stderr ?? "")) fail(`dynamo-es nonsense printed ${error.stderr}`)
  }

  const created = run(process.execPath, [join(app, "out-strict", "bin-check.js")], { cwd: app, timeout: 120_000 })
  process.stdout.write(created.trimEnd().replace(/^/gm, "  | ") + "\n")
  if (!created.includes("bin-check: ok")) fail("dynamo-es tables create did not finish")

  step("importing the Vitest suites of @dynamo-es/core/testing without Vitest installed")
  try {
    execFileSync(process.execPath, ["--input-type=module", "-e", `await import("@dynamo-es/core/testing")`], {
      cwd: app,
      stdio: "pipe",
      encoding: "utf8"
    })
    fail("@dynamo-es/core/testing loaded without @effect/vitest installed: the check is moot")
  } catch (error) {
    if (!/need the optional peer dependencies vitest and @effect\/vitest: npm install --save-dev vitest @effect\/vitest/.test(error.stderr ?? "")) {
      fail(`@dynamo-es/core/testing without @effect/vitest printed ${error.stderr}`)
    }
  }

  step("npm publish --dry-run of every package")
  for (const name of packages) run("npm", ["publish", "--dry-run", "--access", "public"], { cwd: join(root, "packages", name) })
  console.log("pack-check: passed")
} finally {
  rmSync(work, { recursive: true, force: true })
}


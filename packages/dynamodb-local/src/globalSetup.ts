/**
 * Vitest `globalSetup` that starts one DynamoDB Local for the whole test run.
 *
 * List it in a Vitest config (`test.globalSetup: ["@dynamo-es/dynamodb-local/globalSetup"]`, or
 * the path of this file). Unless `DYNAMODB_ENDPOINT` is already set, it starts DynamoDB Local
 * before any test file runs, stores its endpoint and credentials in `process.env`
 * (`DYNAMODB_ENDPOINT`, and `AWS_REGION` / `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` when
 * unset), which the test workers spawned afterwards inherit, and provides the endpoint as
 * `inject("dynamodbEndpoint")`. The teardown stops java.
 *
 * In the workers, `DynamoDBLocal.layer()` (and the DynamoDB client's Config-driven Layer) then
 * read `DYNAMODB_ENDPOINT` and start nothing.
 *
 * @since 0.1.0
 */
import { Cause, Context, Effect, Exit, Layer, Scope } from "effect"
import type { TestProject } from "vitest/node"
import * as DynamoDBLocal from "./DynamoDBLocal.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** The DynamoDB endpoint the run uses (set by `@dynamo-es/dynamodb-local`'s globalSetup). */
    dynamodbEndpoint: string
  }
}

/**
 * Starts DynamoDB Local unless `DYNAMODB_ENDPOINT` is set; returns the teardown that stops it.
 *
 * Gotchas: listed in the root config, it serves every project and `inject` works everywhere;
 * listed in one project, workers of all projects still inherit the env, but `inject` only works
 * in that project. Listed several times, only the first call starts java.
 *
 * @since 0.1.0
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env["DYNAMODB_ENDPOINT"]
  if (configured !== undefined && configured.trim().length > 0) {
    project.provide("dynamodbEndpoint", configured)
    return async () => {}
  }

  const scope = Effect.runSync(Scope.make())
  const exit = await Effect.runPromiseExit(
    Layer.buildWithScope(DynamoDBLocal.layer(), scope).pipe(
      Effect.map(Context.get(DynamoDBLocal.DynamoDBLocal))
    )
  )
  if (Exit.isFailure(exit)) {
    await Effect.runPromise(Scope.close(scope, exit))
    // JavaNotFoundError / DynamoDBLocalStartError carry a readable message (install hint,
    // java's output). Said first and once; the run goes on, so that the tests that need no
    // DynamoDB (the in-memory ones) still run, and each DynamoDB test file fails with the
    // same error when it tries to start DynamoDB Local itself.
    const error = Cause.squash(exit.cause)
    console.error(
      `\n@dynamo-es/dynamodb-local: DynamoDB Local did not start, so the tests that need it will fail:\n  ${
        error instanceof Error ? error.message : String(error)
      }\n`
    )
    return async () => {}
  }
  const connection = exit.value

  const assigned: Array<string> = []
  const assign = (name: string, value: string, overwrite: boolean) => {
    if (!overwrite && process.env[name] !== undefined) return
    process.env[name] = value
    assigned.push(name)
  }
  assign("DYNAMODB_ENDPOINT", connection.endpoint, true)
  assign("AWS_REGION", connection.region, false)
  assign("AWS_ACCESS_KEY_ID", connection.credentials.accessKeyId, false)
  assign("AWS_SECRET_ACCESS_KEY", connection.credentials.secretAccessKey, false)
  project.provide("dynamodbEndpoint", connection.endpoint)

  return async () => {
    for (const name of assigned) delete process.env[name]
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

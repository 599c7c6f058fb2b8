/**
 * A canned-answer DynamoDB endpoint for CPU measurements (run as a child process by
 * `command-cpu.ts`, so that its own CPU is not counted): every stream named
 * `<prefix>-<N>-...` holds N identical events of the aggregate bench; `Query` returns them
 * in one page (or the last one for a `Limit: 1` query), `PutItem` succeeds. It stores
 * nothing: every command sees the same N events.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import { EVENT_TYPE, NOTE } from "../account.js"

const itemJson = (streamId: string, version: number) =>
  JSON.stringify({
    s: { S: streamId },
    v: { N: String(version) },
    i: { S: `01J${String(version).padStart(23, "0")}` },
    y: { S: EVENT_TYPE },
    d: { S: JSON.stringify({ _tag: EVENT_TYPE, accountId: "acc-0042", amount: 1 + (version % 99_999), currency: "EUR", note: NOTE }) },
    t: { N: String(1_700_000_000_000 + version * 60_000) },
    m: { S: JSON.stringify({ correlationId: `corr-${String(version).padStart(6, "0")}` }) }
  })

const cache = new Map<string, Buffer>()
const queryAnswer = (streamId: string, last: boolean): Buffer => {
  const key = `${streamId}|${last}`
  let body = cache.get(key)
  if (body === undefined) {
    const n = Number(streamId.split("-")[1])
    const versions = last ? [n] : Array.from({ length: n }, (_, i) => i + 1)
    body = Buffer.from(
      `{"ConsumedCapacity":{"CapacityUnits":${Math.max(1, Math.ceil((n * 300) / 4096))},"TableName":"bench"},"Count":${versions.length},` +
        `"Items":[${versions.map((v) => itemJson(streamId, v)).join(",")}],"ScannedCount":${versions.length}}`
    )
    cache.set(key, body)
  }
  return body
}
const putAnswer = Buffer.from(`{"ConsumedCapacity":{"CapacityUnits":1,"TableName":"bench"}}`)

/** The answer to one request: `target` is the `X-Amz-Target` header, `body` the request's JSON. */
export const answer = (target: string, body: string): { readonly status: number; readonly body: Buffer } => {
  if (target.endsWith(".Query")) {
    const input = JSON.parse(body) as { ExpressionAttributeValues: Record<string, { S?: string }>; Limit?: number }
    return { status: 200, body: queryAnswer(input.ExpressionAttributeValues[":s"]!.S!, input.Limit === 1) }
  }
  if (target.endsWith(".PutItem")) return { status: 200, body: putAnswer }
  return {
    status: 400,
    body: Buffer.from(JSON.stringify({ __type: "com.amazon.coral.validate#ValidationException", message: `unsupported ${target}` }))
  }
}

/**
 * An SDK `requestHandler` that answers in this process, without HTTP: every SDK step but
 * the network (for measurements that HTTP timing would drown; an AbortSignal given to the
 * SDK costs nothing here, as no socket listens to it).
 */
export const inProcessHandler = {
  handle: async (request: { headers: Record<string, string>; body?: unknown }) => {
    const input = typeof request.body === "string" ? request.body : new TextDecoder().decode(request.body as Uint8Array)
    const { body, status } = answer(request.headers["x-amz-target"] ?? "", input)
    return {
      response: {
        statusCode: status,
        reason: undefined,
        headers: { "content-type": "application/x-amz-json-1.0", "content-length": String(body.length) },
        body: new Uint8Array(body)
      }
    }
  }
}

/** `FAKE_DELAY_MS`: how long the HTTP server waits before answering, like a real database. */
const delayMs = Number(process.env["FAKE_DELAY_MS"] ?? 0)

if (process.send !== undefined) {
  const server = Http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const { body, status } = answer(String(req.headers["x-amz-target"] ?? ""), Buffer.concat(chunks).toString("utf8"))
      const reply = () => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.0", "content-length": String(body.length) })
        res.end(body)
      }
      if (delayMs > 0) setTimeout(reply, delayMs)
      else reply()
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, "127.0.0.1", () => {
    const address = server.address() as { port: number }
    process.send?.({ port: address.port })
  })
  process.on("disconnect", () => process.exit(0))
}

/**
 * Starts this endpoint in a child process (its CPU is not the caller's) and returns an SDK
 * client for it (no SDK retries); with `inProcess` the client answers in the caller's
 * process instead, through {@link inProcessHandler}. `stop` ends both.
 */
export const startFake = async (inProcess: boolean) => {
  // Next to this file, or in the repository when the caller runs as a bundle (for readable profiles).
  const here = new URL("./fake-dynamodb.ts", import.meta.url).pathname
  const child = ChildProcess.fork(Fs.existsSync(here) ? here : "bench/cpu/fake-dynamodb.ts", [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const port = await new Promise<number>((resolve) => child.once("message", (m: { port: number }) => resolve(m.port)))
  const sdk = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
    maxAttempts: 1,
    ...(inProcess ? { requestHandler: inProcessHandler as never } : {})
  })
  return {
    sdk,
    stop: () => {
      sdk.destroy()
      child.disconnect()
    }
  }
}

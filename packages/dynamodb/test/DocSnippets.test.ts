/**
 * The TypeScript blocks of README.md and docs/*.md run, as a reader would run them: each
 * block that imports something is written to `.doc-snippets/` and run with `node --import
 * tsx` against the run's DynamoDB Local (a fresh database: its own access key id). `npm run
 * typecheck` compiles the same blocks; this proves they also work.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const out = join(root, ".doc-snippets")

const sources = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)]
const snippets = sources.flatMap((source) => {
  const text = readFileSync(join(root, source), "utf8")
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)]
    .filter((match) => /^import /m.test(match[1]!))
    .map((match) => ({
      name: `${source}:${text.slice(0, match.index).split("\n").length}`,
      file: join(out, `${source.replace(/[/.]/g, "_")}_${text.slice(0, match.index).split("\n").length}.ts`),
      code: match[1]!
    }))
})

const run = (file: string) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(process.execPath, ["--import", "tsx", file], {
      cwd: root,
      timeout: 60_000,
      env: {
        ...process.env,
        // Without -sharedDb, each access key id is its own database: a fresh one per run.
        AWS_ACCESS_KEY_ID: `snippets${Date.now().toString(36)}`,
        AWS_SECRET_ACCESS_KEY: "local",
        AWS_REGION: "us-east-1"
      }
    }, (error, stdout, stderr) => resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })))
    return Effect.sync(() => child.kill())
  })

describe("documentation snippets", { timeout: 120_000 }, () => {
  it("there are snippets to run", () => {
    assert.isAtLeast(snippets.length, 5)
  })

  for (const snippet of snippets) {
    it.live(`${snippet.name} runs`, () =>
      Effect.gen(function*() {
        // A snippet that defines a program runs it, so that copying it does something.
        if (/^const program = /m.test(snippet.code)) {
          assert.match(snippet.code, /Effect\.runPromise|runMain/, `${snippet.name} defines a program but never runs it`)
        }
        mkdirSync(out, { recursive: true })
        writeFileSync(snippet.file, `// ${snippet.name}\n${snippet.code}\nexport {}\n`)
        const result = yield* run(snippet.file)
        assert.strictEqual(result.code, 0, `${snippet.name} failed:\n${result.stderr}${result.stdout}`)
        assert.notMatch(result.stderr, /Error/, `${snippet.name} printed an error:\n${result.stderr}`)
      }))
  }
})

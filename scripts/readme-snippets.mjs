// Writes every ```ts block of README.md and docs/*.md into node_modules/.cache/doc-snippets/
// with a tsconfig, so that `npm run typecheck` proves the documented code compiles.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const root = new URL("..", import.meta.url).pathname
const out = join(root, "node_modules/.cache/doc-snippets")
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const sources = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)]
let count = 0
for (const source of sources) {
  const text = readFileSync(join(root, source), "utf8")
  for (const match of text.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const line = text.slice(0, match.index).split("\n").length
    // Snippets without imports are fragments of a larger example: only blocks that import compile alone.
    if (!/^import /m.test(match[1])) continue
    writeFileSync(join(out, `${source.replace(/[/.]/g, "_")}_${line}.ts`), `// ${source}:${line}\n${match[1]}\nexport {}\n`)
    count++
  }
}
writeFileSync(join(out, "tsconfig.json"), JSON.stringify({ extends: "../../../tsconfig.base.json", include: ["./*.ts"] }, null, 2))
console.log(`doc snippets: ${count} TypeScript blocks written to ${out}`)

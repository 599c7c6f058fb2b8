/**
 * No module of any package imports another in a cycle, type-only imports included: a cycle
 * makes the order in which modules initialise depend on who is imported first, and a
 * type-only one still ties two modules so that neither can be read or changed alone. Public
 * modules and their internals share types through model modules that both import.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const packagesDir = fileURLToPath(new URL("../../", import.meta.url))

/** Every `.ts` file under a directory, recursively. */
const sourcesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name)
    return entry.isDirectory() ? sourcesUnder(file) : file.endsWith(".ts") ? [file] : []
  })

/** The sources of every package: `packages/<name>/src` and, where there is one, `packages/<name>/testing`. */
const packageSources = (): Array<string> =>
  fs.readdirSync(packagesDir).flatMap((name) =>
    ["src", "testing"].flatMap((sub) => {
      const dir = path.join(packagesDir, name, sub)
      return fs.existsSync(dir) ? sourcesUnder(dir) : []
    })
  )

/**
 * The module specifiers a source names: `import ... from`, `import type ... from`,
 * `export ... from`, `export type ... from`, `import "..."` and `import("...")` (also in
 * types), comments left out.
 */
const specifiersOf = (source: string): Array<string> => {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s+["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g
  ]
  return patterns.flatMap((pattern) => Array.from(code.matchAll(pattern), (m) => m[1]!))
}

/** The file a relative specifier names (`./x.js` is `./x.ts`), or `undefined` for a package. */
const resolve = (from: string, specifier: string): string | undefined => {
  if (!specifier.startsWith(".")) return undefined
  const target = path.resolve(path.dirname(from), specifier)
  const candidates = [target.replace(/\.js$/, ".ts"), target, `${target}.ts`, path.join(target, "index.ts")]
  return candidates.find((file) => file.endsWith(".ts") && fs.existsSync(file))
}

type Graph = ReadonlyMap<string, ReadonlyArray<string>>

const graphOf = (files: ReadonlyArray<string>): Graph =>
  new Map(files.map((file) => {
    const deps = specifiersOf(fs.readFileSync(file, "utf8")).flatMap((s) => resolve(file, s) ?? [])
    return [file, Array.from(new Set(deps))] as const
  }))

/** Every import cycle of the graph, one per strongly connected component, as the path around it. */
const cyclesOf = (graph: Graph): Array<Array<string>> => {
  // Tarjan's strongly connected components.
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const components: Array<Array<string>> = []
  const visit = (v: string): void => {
    index.set(v, counter)
    low.set(v, counter)
    counter++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: Array<string> = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      const selfImport = component.length === 1 && (graph.get(v) ?? []).includes(v)
      if (component.length > 1 || selfImport) components.push(component)
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  // One concrete cycle per component: a shortest path back to its first module.
  return components.map((component) => {
    const inside = new Set(component)
    const start = component.slice().sort()[0]!
    const previous = new Map<string, string>()
    const queue = [start]
    while (queue.length > 0) {
      const v = queue.shift()!
      for (const w of graph.get(v) ?? []) {
        if (!inside.has(w)) continue
        if (w === start) {
          const cycle = [start]
          for (let at: string | undefined = v; at !== undefined && at !== start; at = previous.get(at)) cycle.unshift(at)
          cycle.unshift(start)
          return cycle
        }
        if (!previous.has(w)) {
          previous.set(w, v)
          queue.push(w)
        }
      }
    }
    return component
  })
}

describe("import cycles", () => {
  it("are found, type-only imports and re-exports included", () => {
    const graph: Graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["a.ts"]]
    ])
    assert.deepStrictEqual(cyclesOf(graph), [["a.ts", "b.ts", "c.ts", "a.ts"]])
    assert.deepStrictEqual(
      specifiersOf([
        `import type { A } from "./a.js"`,
        `import {\n  b,\n  type B\n} from "./b.js"`,
        `export type { C } from "./c.js"`,
        `export * as D from "./d.js"`,
        `import "./e.js"`,
        `type F = typeof import("./f.js")`,
        `// import { g } from "./g.js"`,
        `/** import { h } from "./h.js" */`,
        `import { Effect } from "effect"`
      ].join("\n")),
      ["./a.js", "./b.js", "./c.js", "./d.js", "effect", "./e.js", "./f.js"]
    )
  })

  it("none between the modules of any package", () => {
    const files = packageSources()
    assert.isAbove(files.length, 50)
    const cycles = cyclesOf(graphOf(files)).map((cycle) => cycle.map((file) => path.relative(packagesDir, file)).join(" -> "))
    assert.deepStrictEqual(cycles, [], `import cycles:\n${cycles.join("\n")}`)
  })
})

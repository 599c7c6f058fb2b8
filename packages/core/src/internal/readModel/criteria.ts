/**
 * `findBy` criteria: split into the id part (distinct, validated ids: key lookups) and
 * field predicates compared with `Equal.equals` (an array field matches when one element
 * does).
 */
import { Effect, Equal } from "effect"
import { InvalidInputError } from "../../Errors.js"
import type { Criteria } from "./model.js"
import { validateId } from "./validation.js"

export interface ParsedCriteria<A> {
  /** The distinct ids asked for, in first-seen order; `undefined` when `id` is not a criterion. */
  readonly ids: ReadonlyArray<string> | undefined
  /** No criterion at all: the answer is `[]` without a request. */
  readonly empty: boolean
  /** Whether a model matches every field criterion. */
  readonly matches: (model: A) => boolean
}

export const parseCriteria = <A>(criteria: Criteria<A>): Effect.Effect<ParsedCriteria<A>, InvalidInputError> =>
  Effect.gen(function*() {
    if (typeof criteria !== "object" || criteria === null) {
      return yield* new InvalidInputError({ operation: "findBy", field: "criteria", reason: "must be an object" })
    }
    const fields = Object.entries(criteria).filter(([key]) => key !== "id")
    let ids: Array<string> | undefined
    if (Object.prototype.hasOwnProperty.call(criteria, "id")) {
      const raw = (criteria as { readonly id?: unknown }).id
      const list: ReadonlyArray<unknown> = Array.isArray(raw) ? raw : [raw]
      if (!Array.isArray(raw) && typeof raw !== "string") {
        return yield* new InvalidInputError({ operation: "findBy", field: "criteria.id", reason: "must be an id or an array of ids" })
      }
      const seen = new Set<string>()
      ids = []
      for (let i = 0; i < list.length; i++) {
        const id = yield* validateId("findBy", list[i], Array.isArray(raw) ? `criteria.id[${i}]` : "criteria.id")
        if (!seen.has(id)) {
          seen.add(id)
          ids.push(id)
        }
      }
    }
    const matches = (model: A): boolean => {
      for (const [key, expected] of fields) {
        const actual = (model as Record<string, unknown>)[key]
        if (Equal.equals(actual, expected)) continue
        if (Array.isArray(actual) && actual.some((element) => Equal.equals(element, expected))) continue
        return false
      }
      return true
    }
    return { ids, empty: fields.length === 0 && ids === undefined, matches }
  })

/**
 * The input checks of read-model repositories that are not Schema-encoding: repository
 * names, ids and repository options. Ids and names are keys: the same rule as every key of
 * the library (`Inputs.keyProblem`).
 */
import { Effect } from "effect"
import { InvalidInputError } from "../../Errors.js"
import * as Inputs from "../inputs.js"
import { MAX_ID_BYTES } from "./limits.js"

/** The problem with a key-like text argument, as an `InvalidInputError`, or `undefined`. */
export const validateText = (operation: string, field: string, value: unknown, maxBytes: number): InvalidInputError | undefined => {
  if (typeof value !== "string") return new InvalidInputError({ operation, field, reason: "must be a non-empty string" })
  const problem = Inputs.keyProblem(value, maxBytes)
  return problem === undefined ? undefined : new InvalidInputError({ operation, field, reason: problem })
}

/** A read-model id argument, checked. */
export const validateId = (operation: string, id: unknown, field = "id"): Effect.Effect<string, InvalidInputError> => {
  const error = validateText(operation, field, id, MAX_ID_BYTES)
  return error === undefined ? Effect.succeed(id as string) : Effect.fail(error)
}

/** `RepositoryOptions`, checked by Schema. */
export const checkRepositoryOptions = Inputs.validate(Inputs.RepositoryOptions)

/**
 * A repository's row codec: a model to the row `save` stores (id checked, Schema-encoded
 * JSON, size within the storage's row limit), and a stored row back to a model (JSON, Schema,
 * and the row's key equal to the payload's id). Pure: no storage, no request.
 */
import { Effect, Predicate, Schema } from "effect"
import { InvalidInputError } from "../../Errors.js"
import type { StorageLimits, StoredRow } from "./model.js"
import { CorruptedReadModelError, ReadModelEncodeError, ReadModelIdMismatchError, ReadModelTooLargeError } from "./errors.js"
import { MAX_ID_BYTES } from "./limits.js"
import { validateText } from "./validation.js"

/** A model ready to store: its id and its exact JSON. */
export interface Prepared {
  readonly id: string
  readonly data: string
}

/** What a stored row can be besides a model. */
export type RowError = CorruptedReadModelError | ReadModelIdMismatchError

/**
 * @since 0.1.0
 */
export interface RowCodec<A> {
  /** The row `operation` would store for `model`, or why it cannot be stored. */
  readonly prepare: (operation: string, model: A) => Effect.Effect<Prepared, InvalidInputError | ReadModelEncodeError | ReadModelTooLargeError>
  /** The model of a stored row, or the typed error naming the row. */
  readonly decodeRow: (row: StoredRow) => Effect.Effect<A, RowError>
  /** The models of rows, in order; fails at the first bad row. */
  readonly decodeRows: (rows: ReadonlyArray<StoredRow>) => Effect.Effect<Array<A>, RowError>
}

const causeMessage = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

const schemaErrorMessage = (cause: { readonly reasons: ReadonlyArray<{ readonly _tag: string }> }): string => {
  const fail = cause.reasons.find((r) => r._tag === "Fail") as { readonly error?: { readonly message?: unknown } } | undefined
  const message = fail?.error?.message
  return typeof message === "string" ? message : String(cause)
}

const isRowError = (u: unknown): u is RowError =>
  Predicate.isTagged(u, "CorruptedReadModelError") || Predicate.isTagged(u, "ReadModelIdMismatchError")

/** The codec of repository `name` (in `table`) for `schema`, keyed by `idOf`. */
export const makeRowCodec = <A>(options: {
  readonly table: string
  readonly name: string
  readonly schema: Schema.Codec<A, unknown>
  readonly idOf: (model: A) => string
  /** The storage's row size formula and limit. */
  readonly limits: Pick<StorageLimits, "maxRowBytes" | "rowSize">
}): RowCodec<A> => {
  const { idOf, name, table } = options
  const { maxRowBytes, rowSize } = options.limits
  const codec = Schema.toCodecJson(options.schema)
  const encode = Schema.encodeExit(codec as unknown as Schema.Codec<A, unknown>)
  const decode = Schema.decodeUnknownExit(codec as unknown as Schema.Codec<A, unknown>)

  const prepare: RowCodec<A>["prepare"] = (operation, model) => {
    let id: unknown
    try {
      id = idOf(model)
    } catch (cause) {
      return Effect.fail(new InvalidInputError({ operation, field: "id", reason: `reading the model's id failed: ${causeMessage(cause)}` }))
    }
    const idError = validateText(operation, "id", id, MAX_ID_BYTES)
    if (idError !== undefined) return Effect.fail(idError)
    const modelId = id as string
    const exit = encode(model)
    if (exit._tag === "Failure") {
      return Effect.fail(
        new ReadModelEncodeError({
          repository: name,
          id: modelId,
          reason: `the model does not match its Schema: ${schemaErrorMessage(exit.cause)}`,
          cause: exit.cause
        })
      )
    }
    let data: string | undefined
    try {
      data = JSON.stringify(exit.value)
    } catch (cause) {
      return Effect.fail(
        new ReadModelEncodeError({ repository: name, id: modelId, reason: `its encoded form is not JSON (${causeMessage(cause)})`, cause })
      )
    }
    if (data === undefined) {
      return Effect.fail(new ReadModelEncodeError({ repository: name, id: modelId, reason: "its encoded form is not a JSON value" }))
    }
    const size = rowSize(name, modelId, data)
    if (size > maxRowBytes) {
      return Effect.fail(new ReadModelTooLargeError({ repository: name, id: modelId, sizeBytes: size, maxBytes: maxRowBytes }))
    }
    return Effect.succeed({ id: modelId, data })
  }

  const corrupted = (id: string, reason: string, cause?: unknown) =>
    new CorruptedReadModelError({ table, repository: name, id, reason, cause })

  const decodeRowSync = (row: StoredRow): A | RowError => {
    if (row.data === undefined) return corrupted(row.id, "the Data attribute is missing or not a string")
    let json: unknown
    try {
      json = JSON.parse(row.data)
    } catch (cause) {
      return corrupted(row.id, "Data is not valid JSON", cause)
    }
    const exit = decode(json)
    if (exit._tag === "Failure") {
      return corrupted(row.id, `Data does not match the Schema: ${schemaErrorMessage(exit.cause)}`, exit.cause)
    }
    let payloadId: unknown
    try {
      payloadId = idOf(exit.value)
    } catch (cause) {
      return corrupted(row.id, "reading the payload's id failed", cause)
    }
    if (payloadId !== row.id) {
      return new ReadModelIdMismatchError({ table, repository: name, storedId: row.id, payloadId: String(payloadId) })
    }
    return exit.value
  }

  const decodeRow: RowCodec<A>["decodeRow"] = (row) => {
    const result = decodeRowSync(row)
    return isRowError(result) ? Effect.fail(result) : Effect.succeed(result)
  }

  const decodeRows: RowCodec<A>["decodeRows"] = (rows) =>
    Effect.suspend(() => {
      const out: Array<A> = []
      for (const row of rows) {
        const result = decodeRowSync(row)
        if (isRowError(result)) return Effect.fail(result)
        out.push(result)
      }
      return Effect.succeed(out)
    })

  return { prepare, decodeRow, decodeRows }
}

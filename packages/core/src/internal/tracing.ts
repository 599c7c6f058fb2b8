/**
 * The spans of core's public operations (`EventStore.*`, `Aggregate.*`): made only when a
 * tracer is installed. Under Effect's native tracer nothing exports spans, so a span there
 * could not be observed, and making one (with its attributes and stack capture) is most of
 * what tracing costs on a command path.
 */
import { Effect, Stream, Tracer } from "effect"

/** `self` in a span `name` (no stack capture) when a tracer is installed; `self` as it is otherwise. */
export const withSpan = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  name: string,
  attributes: () => Record<string, unknown>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
      ? self
      : Effect.withSpan(self, name, { attributes: attributes(), captureStackTrace: false })
  )

/** {@link withSpan} for a Stream: the span covers the whole stream, when a tracer is installed. */
export const withStreamSpan = <A, E, R>(
  self: Stream.Stream<A, E, R>,
  name: string,
  attributes: () => Record<string, unknown>
): Stream.Stream<A, E, R> =>
  Stream.unwrap(Effect.withFiber((fiber) =>
    Effect.succeed(
      fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
        ? self
        : Stream.withSpan(self, name, { attributes: attributes(), captureStackTrace: false })
    )
  ))

/** {@link withSpan} as the pipeable of an `Effect.fnUntraced`, with attributes from its arguments. */
export const traced = <Args extends ReadonlyArray<any>>(name: string, attributes: (...args: Args) => Record<string, unknown>) =>
<A, E, R>(self: Effect.Effect<A, E, R>, ...args: Args): Effect.Effect<A, E, R> =>
  withSpan(self, name, () => attributes(...args))

/** Span attributes taken from raw arguments: only what is there and of the right kind. */
export const spanAttributes = (streamId: unknown, extra?: Record<string, unknown>): Record<string, unknown> => {
  const attributes: Record<string, unknown> = {}
  if (typeof streamId === "string") attributes["dynamo_es.stream_id"] = streamId
  if (extra !== undefined) {
    for (const key in extra) if (extra[key] !== undefined) attributes[key] = extra[key]
  }
  return attributes
}

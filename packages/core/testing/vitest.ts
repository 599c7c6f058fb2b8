/**
 * The Vitest API of the conformance suites, loaded so that a missing test runner says what
 * to install: `vitest` and `@effect/vitest` are optional peer dependencies of
 * `@dynamo-es/core`, needed by the suites only (`DeciderTest` and `ReadModelStorageTest`
 * need neither). A static import would fail with a bare `ERR_MODULE_NOT_FOUND` before any
 * code of this package runs.
 *
 * @internal
 */
type EffectVitest = typeof import("@effect/vitest")

const load = async (): Promise<EffectVitest> => {
  try {
    return await import("@effect/vitest")
  } catch (cause) {
    throw new Error(
      "@dynamo-es/core/testing: the conformance suites are Vitest suites and need the optional peer dependencies " +
        "vitest and @effect/vitest: npm install --save-dev vitest @effect/vitest. " +
        "DeciderTest and ReadModelStorageTest need neither: import @dynamo-es/core/testing/DeciderTest or " +
        "@dynamo-es/core/testing/ReadModelStorageTest.",
      { cause }
    )
  }
}

const vitest = await load()

export const assert: EffectVitest["assert"] = vitest.assert
export const describe: EffectVitest["describe"] = vitest.describe
export const it: EffectVitest["it"] = vitest.it

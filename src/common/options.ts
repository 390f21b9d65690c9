/**
 * Defaults for options objects. A caller that passes an optional value on writes
 * `{ image: maybeImage }`; a key present with the value `undefined` must mean "use the default",
 * which `{ ...defaults, ...options }` gets wrong (the `undefined` wins).
 */

/** `T` with the keys `K` filled in by defaults (never undefined). */
export type WithDefaults<T, K extends keyof T> =
  & Omit<T, K>
  & { [P in K]-?: Exclude<T[P], undefined> };

/**
 * `defaults` overridden by the values of `options` that are not `undefined`; keys of `options`
 * without a default are kept (undefined ones dropped).
 * @example
 * ```ts
 * import { withDefaults } from "./options.ts";
 * const options: { tail?: number | undefined; follow?: boolean } = { tail: undefined };
 * withDefaults({ tail: 200 }, options); // { tail: 200 }
 * ```
 */
export function withDefaults<T extends object, K extends keyof T>(
  defaults: { [P in K]: Exclude<T[P], undefined> },
  options: T | undefined,
): WithDefaults<T, K> {
  const merged: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(options ?? {})) {
    if (value !== undefined) merged[key] = value;
  }
  return merged as WithDefaults<T, K>;
}

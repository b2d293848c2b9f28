/**
 * `inner` as it is, except for the members `overrides` replaces: the test wrappers of a store or
 * a bus that count, record or change one or two calls. `inner`'s own methods stay bound to it.
 */
export function intercept<T extends object>(inner: T, overrides: Partial<T>): T {
  return new Proxy(inner, {
    get(target, key) {
      if (Object.hasOwn(overrides, key)) return (overrides as Record<PropertyKey, unknown>)[key];
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

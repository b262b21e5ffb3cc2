/**
 * pip-services references: finding the discovery service and the credential store, and asking
 * them for a connection or credentials. pip-services 3 components answer through callbacks,
 * pip-services 4 components through promises; both are accepted.
 *
 * @module
 */

/** The part of pip-services `IReferences` used here. */
interface ReferencesLike {
  getAllLocators?(): unknown[];
  getOneOptional?(locator: unknown): unknown;
}

/** A descriptor as pip-services writes it (`Descriptor` objects, or "group:type:kind:name:1.0"). */
interface DescriptorLike {
  getType?(): string | null;
  getVersion?(): string | null;
}

/**
 * The component registered under a descriptor matching `*:<type>:*:*:1.0`, if any. The
 * references are searched by their locators, so no pip-services class is needed here: the
 * referenced `Descriptor` objects themselves are matched (both pip-services 3 and 4 have them).
 *
 * @example
 * ```ts
 * const discovery = findReference(references, "discovery");
 * ```
 */
export function findReference(references: unknown, type: string): unknown {
  const refs = (references ?? {}) as ReferencesLike;
  for (const locator of refs.getAllLocators?.() ?? []) {
    const fields = typeof locator === "string" ? locator.split(":") : undefined;
    const descriptor = locator as DescriptorLike | null;
    const kind = fields ? fields[1] : descriptor?.getType?.();
    const version = fields ? fields[4] : descriptor?.getVersion?.();
    if (kind === type && version === "1.0") return refs.getOneOptional?.(locator) ?? undefined;
  }
  return undefined;
}

/** The parameters a discovery service or credential store returns: a flat map. */
export type ParamsLike = Record<string, unknown> & {
  getAsNullableString?: (key: string) => string | null;
};

/**
 * Calls `method(context, key)` on a pip-services component and resolves its answer, whether it
 * answers through a trailing callback (pip-services 3) or by returning a promise (4).
 */
export function ask(
  component: unknown,
  method: "resolveOne" | "lookup",
  context: unknown,
  key: string,
): Promise<ParamsLike | undefined> {
  const target = component as Record<string, unknown>;
  const fn = target[method];
  if (typeof fn !== "function") {
    return Promise.reject(new TypeError(`the referenced component has no ${method} method`));
  }
  return new Promise((resolve, reject) => {
    const callback = (error: unknown, result?: ParamsLike | null) => {
      if (error) reject(error);
      else resolve(result ?? undefined);
    };
    try {
      const returned: unknown = fn.call(component, context, key, callback);
      if (returned && typeof (returned as PromiseLike<unknown>).then === "function") {
        (returned as Promise<ParamsLike | null>).then((result) => callback(null, result), reject);
      }
    } catch (error) {
      reject(error);
    }
  });
}

/** A value of returned parameters by name, case-insensitively; undefined when absent or empty. */
export function param(params: ParamsLike | undefined, name: string): string | undefined {
  if (!params) return undefined;
  const direct = params.getAsNullableString?.(name);
  if (direct) return direct;
  for (const [key, value] of Object.entries(params)) {
    if (key.toLowerCase() === name && value !== null && value !== undefined && value !== "") {
      return String(value);
    }
  }
  return undefined;
}

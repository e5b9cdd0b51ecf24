/**
 * A copy without undefined fields: msgpackr would send them as an extension
 * other clients cannot read (merge conflicts leave `ours` / `theirs` undefined).
 */
export function dropUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropUndefined)
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value
  // fromEntries defines fields, so a user's "__proto__" field stays data.
  return Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (v === undefined ? [] : [[k, dropUndefined(v)]])))
}

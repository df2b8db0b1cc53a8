/**
 * Sensitive values (sensitive inputs and outputs, the connection's password) kept out of what a
 * run reports: the tail of its stderr and its plain outputs, which the server stores and shows.
 * Each value is replaced by `***` wherever it occurs, in each form a flow may print it (itself,
 * its JSON, its parts). A value shorter than four characters would garble ordinary text if it
 * were masked in it: where it occurs, the text is withheld whole instead.
 *
 * @module
 */

/** Sensitive values shorter than this are not masked in text: the text is withheld instead. */
export const SHORTEST_MASKED = 4
export const MASK = '***'

/** `text` with every sensitive value of masking length replaced by `***`. */
export function mask(text: string, secrets: readonly string[]): string {
  return (
    [...secrets]
      .filter((s) => s.length >= SHORTEST_MASKED)
      // Longest first: a value's JSON goes whole before its parts do.
      .sort((a, b) => b.length - a.length)
      .reduce((out, secret) => out.split(secret).join(MASK), text)
  )
}

/** Every form a sensitive value may take in what a flow prints: itself, its JSON, its parts. */
export function secretForms(value: unknown): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value]
  if (typeof value === 'number') return [String(value)]
  if (typeof value !== 'object' || value === null) return []
  return [JSON.stringify(value), ...Object.values(value).flatMap(secretForms)]
}

/**
 * A plain output's value with every sensitive value in it masked: in its text and in the text
 * of what it holds (names too), as in stderr; a text holding a value too short to mask, or a
 * number that is one, becomes `***` whole. Other values keep their type.
 *
 * @example
 * ```ts
 * maskValue({ note: 'token s3cr3t-v4lue used' }, ['s3cr3t-v4lue']) // { note: 'token *** used' }
 * ```
 */
export function maskValue(value: unknown, secrets: readonly string[]): unknown {
  const present = secrets.filter((secret) => secret !== '')
  const maskText = (text: string) =>
    present.some((secret) => secret.length < SHORTEST_MASKED && text.includes(secret))
      ? MASK
      : mask(text, present)
  const masked = (inner: unknown): unknown => {
    if (typeof inner === 'string') return maskText(inner)
    if (typeof inner === 'number') return present.includes(String(inner)) ? MASK : inner
    if (Array.isArray(inner)) return inner.map(masked)
    if (typeof inner === 'object' && inner !== null)
      return Object.fromEntries(Object.entries(inner).map(([k, v]) => [maskText(k), masked(v)]))
    return inner
  }
  return masked(value)
}

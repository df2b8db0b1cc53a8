/**
 * Waits until `check` holds, looking every 25 ms; throws, naming `what`, once `withinMs` passed.
 * For outcomes another process or thread brings about in its own time.
 */
export async function eventually(
  check: () => boolean,
  what: string,
  withinMs = 5000,
): Promise<void> {
  const until = Date.now() + withinMs
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${withinMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

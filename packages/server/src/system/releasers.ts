/**
 * Resources released in reverse order of acquisition, once, keeping the first error.
 *
 * @module
 */

export type Releaser = () => Promise<void> | void

export interface Releasers {
  add(name: string, release: Releaser): void
  /** Runs every releaser, last added first; rejects with the first failure after running all. */
  releaseAll(): Promise<void>
}

export function createReleasers(onError: (name: string, error: unknown) => void): Releasers {
  const stack: { name: string; release: Releaser }[] = []
  let released: Promise<void> | undefined
  return {
    add(name, release) {
      if (released) throw new TypeError(`Cannot acquire ${name} after release began`)
      stack.push({ name, release })
    },
    releaseAll() {
      released ??= (async () => {
        let first: unknown
        for (const { name, release } of stack.reverse()) {
          try {
            await release()
          } catch (error) {
            onError(name, error)
            first ??= error
          }
        }
        if (first !== undefined)
          throw first instanceof Error ? first : new Error('Release failed', { cause: first })
      })()
      return released
    },
  }
}

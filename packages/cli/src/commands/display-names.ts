/**
 * The names people read beside the ids a record holds (a run's machine, its caller, a
 * connection's run owner), read where the caller may read them. Someone who may see a run need
 * not see its connection or its run owner: then the id alone is shown, and nothing fails.
 *
 * @module
 */
import type { PrincipalType } from '@desklink/protocol'

import type { ApiClient } from '../client/api-client.ts'

const id = (value: string) => encodeURIComponent(value)

/** What a record read for its name holds: a name, or a username for users. */
export interface Named {
  readonly name?: string
  readonly username?: string
}

/** What `path` reads, or undefined when the caller may not read it (or it is gone). */
export async function tryRead<T>(client: ApiClient, path: string): Promise<T | undefined> {
  try {
    return await client.request<T>('GET', path)
  } catch {
    return undefined
  }
}

/** The name (or username) of what `path` reads, or undefined when the caller may not read it. */
export async function tryNameOf(client: ApiClient, path: string): Promise<string | undefined> {
  const found = await tryRead<Named>(client, path)
  return found?.username ?? found?.name
}

/** Where a user or service principal is read. */
export const principalPath = (type: PrincipalType, principalId: string): string =>
  type === 'user' ? `/users/${id(principalId)}` : `/service-principals/${id(principalId)}`

/** `user alice (id)`, or `user id` when the name could not be read. */
export function principalLabel(type: PrincipalType, principalId: string, name?: string): string {
  return name ? `${type} ${name} (${principalId})` : `${type} ${principalId}`
}

/** `name (id)`, or the id alone when the name could not be read. */
export const withName = (recordId: string, name: string | undefined): string =>
  name ? `${name} (${recordId})` : recordId

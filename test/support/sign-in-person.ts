/**
 * A person who signs in: an OS account and a tenant user of the same name, environment
 * administrator, as the connect-with-sign-in suites need.
 */
import { createOsUser, type OsUser } from './os-users.ts'
import { api } from './test-server.ts'

export async function createSignInPerson(
  url: string,
  adminToken: string,
  environmentId: string,
  options: { prefix: string; password: string },
): Promise<OsUser> {
  const person = createOsUser(options.prefix)
  const user = await api(url, adminToken, 'POST', '/users', {
    username: person.name,
    password: options.password,
  })
  if (user.status !== 201) throw new Error(`creating the user answered ${user.status}`)
  await api(url, adminToken, 'POST', `/environments/${environmentId}/role-assignments`, {
    principalType: 'user',
    principalId: user.body.id,
    role: 'EnvironmentAdmin',
  })
  return person
}

/**
 * The agent's HTTP calls to the server: JSON in and out, errors as `AgentError`s with the
 * server's code, machine assertion and principal token attached where a call needs them.
 *
 * @module
 */
import { MACHINE_ASSERTION_HEADER } from '@desklink/protocol'

import { AgentError } from './agent-error.ts'

export async function callServer<T>(
  fetchFn: typeof fetch,
  server: string,
  method: 'GET' | 'POST',
  path: string,
  options: { body?: unknown; machineAssertion?: string; principalToken?: string } = {},
): Promise<T> {
  let response: Response
  try {
    response = await fetchFn(`${server.replace(/\/$/, '')}/api/v1${path}`, {
      method,
      headers: {
        ...(options.body !== undefined && { 'content-type': 'application/json' }),
        ...(options.machineAssertion && { [MACHINE_ASSERTION_HEADER]: options.machineAssertion }),
        ...(options.principalToken && { authorization: `Bearer ${options.principalToken}` }),
      },
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    })
  } catch (cause) {
    throw new AgentError('ServerUnreachable', {
      message: `Cannot reach ${server}: ${(cause as Error).message}`,
      cause,
    })
  }
  if (response.status === 204) return undefined as T
  const payload = (await response.json().catch(() => undefined)) as
    { error?: { code?: string; message?: string; details?: unknown } } | undefined
  if (!response.ok) {
    throw new AgentError(payload?.error?.code ?? `Http${response.status}`, {
      message: payload?.error?.message ?? `The server answered HTTP ${response.status}.`,
      details: payload?.error?.details,
    })
  }
  return payload as T
}

/**
 * Runs through a connection whose identity is a credential kept in a vault (a protocol-level
 * fake of HashiCorp Vault on 127.0.0.1 over HTTPS): the secret is read when the run is offered
 * and travels sealed to the machine's group; with the vault down, the run fails with a coded
 * error, and the vault is asked once for it, not once at admission and again by the queue. A run
 * whose run owner may no longer read the credential is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openCredential } from '../../packages/agent/src/index.ts'
import { BACKENDS } from '../support/backends.ts'
import {
  type ChannelTestbed,
  startChannelTestbed,
  succeededMessage,
} from '../support/channel-testbed.ts'
import { createTestCa, type TestCa } from '../support/fakes/test-ca.ts'
import { startVaultFake, type VaultFake } from '../support/fakes/vault-fake.ts'
import { waitForRun } from '../support/runs.ts'
import { api, signIn } from '../support/test-server.ts'

const CANARY = 'canary-run-vault-secret-4e7d1'

describe.each(BACKENDS)('runs with a vault credential, on %s', (backend) => {
  let ca: TestCa
  let vault: VaultFake
  let bed: ChannelTestbed
  let connectionId: string
  let credentialId: string
  let tenantId: string

  /** How many requests the vault had while `work` ran (sign-ins and reads). */
  const vaultRequestsDuring = async (work: () => Promise<unknown>) => {
    const before = vault.requests.length
    await work()
    return vault.requests.length - before
  }

  beforeAll(async () => {
    ca = createTestCa()
    vault = await startVaultFake({ tls: ca.issueServerCertificate() })
    vault.addPolicy('payroll', ['secret/data/apps/payroll'])
    vault.addAppRole({ roleId: 'desklink', secretId: 'approle-secret', policies: ['payroll'] })
    vault.putSecret('secret', 'apps/payroll', { password: CANARY, user: 'runner' })
    bed = await startChannelTestbed(backend)
    const { t, token, environmentId, machine } = bed
    tenantId = (await api(t.url, token, 'GET', '/me')).body.tenant.id as string
    const store = await api(t.url, token, 'POST', `/environments/${environmentId}/secret-stores`, {
      name: 'vault',
      settings: {
        type: 'hashicorpVault',
        address: vault.url,
        auth: { method: 'approle', roleId: 'desklink', secretId: 'approle-secret' },
        caCertificate: ca.caPem,
      },
    })
    expect(store.status, store.text).toBe(201)
    const storeId = store.body.id as string
    const credential = await api(
      t.url,
      token,
      'POST',
      `/environments/${environmentId}/credentials`,
      {
        name: 'payroll',
        usage: 'connection',
        username: {
          fromStore: { store: 'hashicorpVault', storeId, path: 'apps/payroll', key: 'user' },
        },
        secret: { store: 'hashicorpVault', storeId, path: 'apps/payroll', key: 'password' },
      },
    )
    expect(credential.status, credential.text).toBe(201)
    credentialId = credential.body.id as string
    const connection = await api(
      t.url,
      token,
      'POST',
      `/environments/${environmentId}/connections`,
      {
        name: 'payroll',
        target: { machineId: machine.machineId },
        credentialId,
      },
    )
    expect(connection.body.status, connection.text).toBe('Connected')
    connectionId = connection.body.id as string
  })
  afterAll(async () => {
    await bed?.close()
    await vault?.stop()
    ca?.remove()
  })

  it('offers the secret read at dispatch, sealed to the machine group', async () => {
    const { t, token, flow, machine } = bed
    const requested = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
      connectionId,
    })
    expect(requested.status, requested.text).toBe(202)
    const offer = await bed.channel.next('runOffer')
    expect(offer.runId).toBe(requested.body.id)
    expect(JSON.stringify(offer)).not.toContain(CANARY)
    const credential = offer.credential as Parameters<typeof openCredential>[0]
    expect(await openCredential(credential, machine.standaloneGroupPrivateKey)).toEqual({
      username: 'runner',
      secret: CANARY,
    })
    bed.ws.send(succeededMessage(offer.runId))
    expect((await waitForRun(t.url, token, requested.body.id)).status).toBe('Succeeded')
  })

  it('fails the run with SecretStoreUnreachable while the vault is down, asking it once', async () => {
    const { t, token, flow, machine } = bed
    vault.setDown(true)
    try {
      // What one resolution of the credential asks of a vault that is down.
      const once = await vaultRequestsDuring(() =>
        t.server
          .resolveCredential({
            tenantId,
            credentialId,
            groupId: machine.standaloneGroupId,
          })
          .catch(() => undefined),
      )
      expect(once).toBeGreaterThan(0)

      let run: Record<string, unknown> = {}
      const asked = await vaultRequestsDuring(async () => {
        const requested = await api(t.url, token, 'POST', `/desktop-flows/${flow.id}/runs`, {
          connectionId,
        })
        expect(requested.status, requested.text).toBe(202)
        run = await waitForRun(t.url, token, requested.body.id)
      })
      expect(run.status).toBe('Failed')
      expect(run.error).toMatchObject({ code: 'SecretStoreUnreachable' })
      expect(asked).toBe(once)
      expect(await bed.channel.comes('runOffer', 200)).toBe(false)
    } finally {
      vault.setDown(false)
    }
  })
  it("refuses a run whose run owner may no longer read the connection's credential", async () => {
    const { t, token, environmentId, machine, flow } = bed
    const user = await api(t.url, token, 'POST', '/users', {
      username: 'payroll-runner',
      password: 'payroll-runner-password-1',
    })
    expect(user.status, user.text).toBe(201)
    const principal = { principalType: 'user', principalId: user.body.id }
    await api(t.url, token, 'POST', `/environments/${environmentId}/role-assignments`, {
      ...principal,
      role: 'EnvironmentMaker',
    })
    for (const path of [`/machines/${machine.machineId}`, `/desktop-flows/${flow.id}`]) {
      const shared = await api(t.url, token, 'POST', `${path}/shares`, {
        ...principal,
        access: 'user',
      })
      expect(shared.status, shared.text).toBe(201)
    }
    const shareCredential = () =>
      api(t.url, token, 'POST', `/credentials/${credentialId}/shares`, {
        ...principal,
        access: 'user',
      })
    const credentialShare = await shareCredential()
    expect(credentialShare.status, credentialShare.text).toBe(201)
    const runner = (await signIn(t.url, 'default', 'payroll-runner', 'payroll-runner-password-1'))
      .access_token
    // The user's own connection: the user is its run owner.
    const own = await api(t.url, runner, 'POST', `/environments/${environmentId}/connections`, {
      name: 'payroll-of-runner',
      target: { machineId: machine.machineId },
      credentialId,
    })
    expect(own.body.status, own.text).toBe('Connected')
    const request = () =>
      api(t.url, runner, 'POST', `/desktop-flows/${flow.id}/runs`, { connectionId: own.body.id })

    const unshared = await api(
      t.url,
      token,
      'DELETE',
      `/credentials/${credentialId}/shares/${credentialShare.body.id}`,
    )
    expect(unshared.status, unshared.text).toBe(204)
    const refused = await request()
    expect(refused.status, refused.text).toBe(403)
    expect(refused.body.error.code).toBe('RunOwnerLacksAccess')

    // Read again: the run goes.
    expect((await shareCredential()).status).toBe(201)
    const admitted = await request()
    expect(admitted.status, admitted.text).toBe(202)
    const offer = await bed.channel.next('runOffer')
    expect(offer.runId).toBe(admitted.body.id)
    bed.ws.send(succeededMessage(offer.runId))
    expect((await waitForRun(t.url, token, admitted.body.id)).status).toBe('Succeeded')
  })
})

/**
 * Which session an offer goes by, decided by the agent's run manager with its real journal
 * (the flows themselves are not run here): of a user's several sessions, an attended run goes
 * by the best one: active with a display, then active, then locked, then disconnected (remote
 * ones count as disconnected), not the first by id.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import {
  type AgentMessage,
  bestSessionOf,
  type FlowRuntime,
  NO_INPUTS,
  type ServerRunOffer,
  type SessionInfo,
} from '@desklink/protocol'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import type { FlowExecutor, FlowRunSpec } from '../../packages/agent/src/runs/flow-executor.ts'
import { createRunJournal } from '../../packages/agent/src/runs/run-journal.ts'
import { createRunManager } from '../../packages/agent/src/runs/run-manager.ts'
import { createRecordingLogger } from './recording-logger.ts'

const USER = 'alice'

/** One of the user's sessions. */
const session = (
  id: string,
  state: SessionInfo['state'],
  display: string | null = null,
): SessionInfo => ({ id, user: USER, uid: 4242, display, state, source: 'logind' })

const offerOf = (runtime: FlowRuntime, runMode: 'attended' | 'unattended'): ServerRunOffer => ({
  type: 'runOffer',
  runId: randomUUID(),
  groupId: randomUUID(),
  runMode,
  flow: { contentHash: 'a'.repeat(64), runtime, entry: 'main', needsDisplay: false },
  credential: { kind: 'signIn', accessToken: 'not-looked-at' },
  sealedInputs: NO_INPUTS,
  sensitive: [],
  timeoutSeconds: 30,
  reuseSessions: false,
})

describe("the machine's answer to a run offer", () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'desklink-offers-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  /** A run manager for USER's runs, whose executor records the runs it is asked to start. */
  const createTestbed = (options: { sessions?: SessionInfo[] } = {}) => {
    const passwdFile = join(dir, 'passwd')
    writeFileSync(passwdFile, `${USER}:x:4242:4242::/home/${USER}:/bin/sh\n`)
    const started: FlowRunSpec[] = []
    const executor: FlowExecutor = {
      run: (spec) => {
        started.push(spec)
        return Promise.resolve({ status: 'Succeeded', exitCode: 0, outputs: null, error: null })
      },
      discard: () => Promise.resolve(),
    }
    const sent: AgentMessage[] = []
    const fetched: string[] = []
    const journal = createRunJournal(join(dir, 'state'))
    const manager = createRunManager({
      journal,
      executor,
      packages: {
        get: (contentHash) => {
          fetched.push(contentHash)
          return Promise.resolve({
            manifest: {
              name: 'offered',
              description: '',
              runtime: 'shell',
              entry: 'main',
              inputs: [],
              outputs: [],
              needsDisplay: false,
            },
            files: [],
          })
        },
      },
      logger: createRecordingLogger(),
      send: (message) => sent.push(message) > 0,
      sessions: () => options.sessions ?? [],
      groupKey: () => 'a-group-key',
      identify: () => Promise.resolve({ ok: true, account: USER }),
      checkPassword: () => Promise.resolve({ ok: true }),
      passwdFile,
    })
    return { manager, started, sent, fetched, journal }
  }

  it("takes an attended run into the user's active session when an earlier one of theirs is disconnected", async () => {
    const { manager, started, sent } = createTestbed({
      sessions: [session('logind:1', 'disconnected'), session('logind:2', 'active', ':5')],
    })
    const offer = offerOf('shell', 'attended')
    await manager.offer(offer)
    expect(sent[0]).toEqual({ type: 'runAccepted', runId: offer.runId })
    expect(started.map((spec) => spec.display)).toEqual([':5'])
  })

  it("runs an attended run in the user's session with a display rather than in one without", async () => {
    const { manager, started } = createTestbed({
      sessions: [session('logind:1', 'active'), session('logind:2', 'active', ':7')],
    })
    await manager.offer(offerOf('shell', 'attended'))
    expect(started.map((spec) => spec.display)).toEqual([':7'])
  })
})

describe("the best of a user's sessions", () => {
  it('is active with a display, then active, then locked, then disconnected; the first by id among equals', () => {
    const ranked = [
      session('logind:9', 'active', ':1'),
      session('logind:8', 'active'),
      session('logind:7', 'locked', ':2'),
      session('logind:1', 'disconnected', ':3'),
      session('logind:2', 'disconnected'),
    ]
    for (let i = 0; i < ranked.length; i++)
      expect(bestSessionOf(ranked.slice(i).reverse(), USER)).toBe(ranked[i])
    const someoneElse = { ...session('logind:0', 'active', ':0'), user: 'bob' }
    expect(bestSessionOf([someoneElse], USER)).toBeUndefined()
  })
})

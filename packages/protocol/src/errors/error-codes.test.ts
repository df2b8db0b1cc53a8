import { readFileSync } from 'node:fs'

import { describe, expect, it } from 'vitest'

import { AGENT_ERROR_CODES } from './agent-error-codes.ts'
import { ERROR_CODES, isErrorCode } from './error-codes.ts'
import { RUN_CODES } from './run-codes.ts'

describe('the error code table', () => {
  const docs = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8')

  it('documents every code with its HTTP status in the API table of docs/errors.md', () => {
    // The API table comes first; the agent's own codes (no HTTP status) follow it.
    const apiTable = docs.slice(0, docs.indexOf('## Agent codes'))
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(apiTable, code).toMatch(
        new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${entry.status}\\s*\\|`),
      )
    }
  })

  it('documents no API code the server does not have', () => {
    const apiTable = docs.slice(0, docs.indexOf('## The CLI'))
    const documented = [...apiTable.matchAll(/^\|\s*`([A-Za-z0-9]+)`\s*\|\s*\d{3}\s*\|/gm)]
    expect(documented.length).toBeGreaterThan(0)
    for (const [, code] of documented) expect(isErrorCode(code), code).toBe(true)
  })

  it('uses PascalCase codes and client or server error statuses only', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Za-z0-9]+$/)
      expect(entry.status >= 400 && entry.status < 600).toBe(true)
      expect(entry.message.length).toBeGreaterThan(0)
      expect(entry.remediation.length).toBeGreaterThan(0)
    }
  })

  it('documents every run code in the run codes table of docs/errors.md, and each code in one table only', () => {
    const runTable = docs.slice(docs.indexOf('## Run codes'), docs.indexOf('## Agent codes'))
    for (const [code, entry] of Object.entries(RUN_CODES)) {
      expect(runTable, code).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|`))
      expect(entry.meaning.length * entry.remediation.length, code).toBeGreaterThan(0)
      expect(Object.hasOwn(ERROR_CODES, code) || Object.hasOwn(AGENT_ERROR_CODES, code), code).toBe(
        false,
      )
    }
  })

  it('recognises its own codes and nothing else', () => {
    expect(isErrorCode('ResourceNotFound')).toBe(true)
    expect(isErrorCode('toString')).toBe(false)
    expect(isErrorCode(404)).toBe(false)
  })
})

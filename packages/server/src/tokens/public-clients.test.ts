import { describe, expect, it } from 'vitest'

import { isLoopbackRedirect } from './public-clients.ts'

describe('loopback redirects for the CLI (RFC 8252 §7.3)', () => {
  it.each(['http://127.0.0.1:53123/callback', 'http://localhost:8080/cb', 'http://[::1]:1234/'])(
    'accepts %s',
    (uri) => {
      expect(isLoopbackRedirect(uri)).toBe(true)
    },
  )

  it.each([
    'https://127.0.0.1/callback',
    'http://127.0.0.2/callback',
    'http://evil.example/callback',
    'http://127.0.0.1.evil.example/callback',
    'http://user:pw@127.0.0.1/callback',
    'http://127.0.0.1/callback#fragment',
    'not a url',
  ])('refuses %s', (uri) => {
    expect(isLoopbackRedirect(uri)).toBe(false)
  })
})

/**
 * Keyed MACs derived from the master key (HKDF-SHA256 with a label per use, then
 * HMAC-SHA256), for values the server must recognise later without storing them.
 *
 * @module
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

export interface Mac {
  sign(data: string): string
  verify(data: string, mac: string): boolean
}

export function createMac(masterKey: Buffer, label: string): Mac {
  const key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `desklink:${label}`, 32))
  const sign = (data: string) => createHmac('sha256', key).update(data, 'utf8').digest('base64url')
  return {
    sign,
    verify(data, mac) {
      const expected = Buffer.from(sign(data))
      const given = Buffer.from(mac)
      return expected.length === given.length && timingSafeEqual(expected, given)
    },
  }
}

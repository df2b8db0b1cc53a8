/**
 * A throwaway certificate authority for the HTTPS fakes, made with the openssl CLI in a temp
 * directory: a self-signed root valid for one day, server certificates for 127.0.0.1 and
 * client certificates for mutual TLS. Two CAs from two calls do not trust each other, which is
 * what the negative TLS tests need.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface IssuedCertificate {
  readonly certPem: string
  readonly keyPem: string
}

export interface IssuedClientCertificate extends IssuedCertificate {
  /** Uppercase hex without separators or leading zeros, as Node reports a peer's serial. */
  readonly serial: string
  readonly commonName: string
}

export type KeyType = 'ec' | 'rsa'

export interface TestCa {
  readonly caPem: string
  issueServerCertificate(): IssuedCertificate
  /** RSA is needed where the client signs JWTs with PS256/RS256 (Entra certificate auth). */
  issueClientCertificate(
    commonName: string,
    options?: { keyType?: KeyType },
  ): IssuedClientCertificate
  remove(): void
}

export function createTestCa(options: { name?: string } = {}): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'desklink-test-ca-'))
  const caKey = join(dir, 'ca.key')
  const caCert = join(dir, 'ca.pem')
  let issued = 0

  const make = (
    file: string,
    subjectCn: string,
    extensions: string[],
    keyType: KeyType,
    signer?: { cert: string; key: string },
  ): { certPath: string; keyPath: string; serial: string } => {
    const config = join(dir, `${file}.cnf`)
    writeFileSync(
      config,
      [
        '[req]',
        'distinguished_name = dn',
        'x509_extensions = ext',
        'prompt = no',
        '[dn]',
        `CN = ${subjectCn}`,
        '[ext]',
        ...extensions,
        '',
      ].join('\n'),
    )
    const certPath = join(dir, `${file}.pem`)
    const keyPath = join(dir, `${file}.key`)
    const serial = randomSerial()
    const keyArgs =
      keyType === 'rsa'
        ? ['-newkey', 'rsa:2048']
        : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-config',
        config,
        ...keyArgs,
        '-noenc',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '1',
        '-sha256',
        '-set_serial',
        `0x${serial}`,
        ...(signer ? ['-CA', signer.cert, '-CAkey', signer.key] : []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    return { certPath, keyPath, serial }
  }

  const caName = options.name ?? `Desklink Test CA ${randomBytes(4).toString('hex')}`
  make(
    'ca',
    caName,
    [
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
    ],
    'ec',
  )
  const caPem = readFileSync(caCert, 'utf8')
  const signer = { cert: caCert, key: caKey }
  const leaf = (usage: 'serverAuth' | 'clientAuth'): string[] => [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    `extendedKeyUsage = ${usage}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ]

  return {
    caPem,
    issueServerCertificate() {
      const { certPath, keyPath } = make(
        `server-${++issued}`,
        'localhost',
        [...leaf('serverAuth'), 'subjectAltName = IP:127.0.0.1, DNS:localhost'],
        'ec',
        signer,
      )
      return { certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') }
    },
    issueClientCertificate(commonName, clientOptions = {}) {
      const { certPath, keyPath, serial } = make(
        `client-${++issued}`,
        commonName,
        leaf('clientAuth'),
        clientOptions.keyType ?? 'ec',
        signer,
      )
      return {
        certPem: readFileSync(certPath, 'utf8'),
        keyPem: readFileSync(keyPath, 'utf8'),
        serial,
        commonName,
      }
    },
    remove() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Normalises a serial written any common way (colons, lowercase, leading zeros). */
export function normalizeSerial(serial: string): string {
  return serial
    .replace(/[^0-9a-f]/gi, '')
    .toUpperCase()
    .replace(/^0+(?=.)/, '')
}

// 16 random bytes with the top byte in 0x10..0x7f: positive as a DER integer and never
// printed with a leading zero, so the hex here equals what a TLS peer reports.
function randomSerial(): string {
  const bytes = randomBytes(16)
  bytes[0] = 0x10 + (bytes[0] % 0x70)
  return bytes.toString('hex').toUpperCase()
}

/**
 * The issued certificate's identity, lifetime and strength (core/certificates/certificate.ts): the rules as data, with
 * certificates made by the real openssl command line (MD5, RSA-PSS over SHA-1, an EC curve below P-256, RSA-1024:
 * what WebCrypto cannot make). The same checks run at enrollment and renewal through the CLI
 * (integration/hostile-answers, enroll-e2e, scep).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { assertStrongChain, identityProblem, weakness } from '../../src-main/core/certificates/certificate.js';
import { tempDir } from '../support/agent.js';

const ID = '8a3f3c52-5b0e-4d8e-9a55-1c2b3d4e5f60';

describe('the floor for keys and signatures', () => {
  let dir: string;
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const cert = (f: string) => new X509Certificate(fs.readFileSync(path.join(dir, f)));

  before(() => {
    dir = tempDir('floor');
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=CA', '-days', '2', '-sha256');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${ID}`);
    for (const [out, extra] of [['sha256.pem', ['-sha256']], ['md5.pem', ['-md5']], ['sha1.pem', ['-sha1']], ['pss-sha1.pem', ['-sigopt', 'rsa_padding_mode:pss', '-sha1']], ['pss-sha256.pem', ['-sigopt', 'rsa_padding_mode:pss', '-sha256']]] as const) {
      ssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-days', '1', '-out', out, ...extra);
    }
    ssl('req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-keyout', 'r1024.key', '-out', 'rsa1024.pem', '-subj', '/CN=weak', '-days', '1', '-sha256');
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp224r1', '-nodes', '-keyout', 'p224.key', '-out', 'p224.pem', '-subj', '/CN=p224', '-days', '1');
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'p384.key', '-out', 'p384.pem', '-subj', '/CN=p384', '-days', '1');
    // The CA's key self-signed over SHA-1 (an old root): another RSA key would only cost time.
    ssl('req', '-x509', '-new', '-key', 'ca.key', '-out', 'root-sha1.pem', '-subj', '/CN=old root', '-days', '1', '-sha1');
  });

  for (const [file, expected] of [
    ['sha256.pem', undefined],
    ['pss-sha256.pem', undefined],
    ['p384.pem', undefined],
    ['md5.pem', /MD5 with RSA signature/],
    ['sha1.pem', /SHA-1 with RSA signature/],
    ['pss-sha1.pem', /RSA-PSS signature over SHA-1/],
    ['rsa1024.pem', /an RSA key of 1024 bits/],
    ['p224.pem', /EC key on curve secp224r1/],
    // A self-signed root's own signature protects nothing: only its key is judged.
    ['root-sha1.pem', undefined],
  ] as const) {
    test(`${file}: ${expected ? 'below the floor' : 'strong enough'}`, () => {
      const w = weakness(cert(file));
      if (expected) assert.match(w ?? '', expected);
      else assert.equal(w, undefined);
    });
  }

  test('a weak CA named before any request: CA_WEAK_CRYPTO, exit class bad-answer, nothing installed, what to do', () => {
    const pem = fs.readFileSync(path.join(dir, 'rsa1024.pem'), 'utf8');
    assert.throws(() => assertStrongChain([fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'), pem], 'the org https://x.example'),
      (e: any) => e.code === 'CA_WEAK_CRYPTO' && e.failure === 'bad-answer' && /The org https:\/\/x\.example names a certificate authority .*"CN=weak" has an RSA key of 1024 bits.*Nothing was requested or installed/.test(e.message) && /2048/.test(e.remedy));
    assert.doesNotThrow(() => assertStrongChain([fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8')], 'x'));
  });
});

describe('the identity a certificate names', () => {
  let dir: string;
  const make = (subj: string, san?: string) => {
    const out = path.join(dir, `c${Math.random().toString(36).slice(2)}.pem`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', out, '-subj', subj, '-days', '1',
      ...(san ? ['-addext', `subjectAltName=${san}`] : [])], { stdio: 'ignore' });
    return new X509Certificate(fs.readFileSync(out)).raw;
  };
  before(() => (dir = tempDir('ident')));

  test('exactly the device ID in the CN (other attributes allowed), no foreign SAN', async () => {
    assert.equal(await identityProblem(make(`/CN=${ID}/OU=Device Trust/O=Acme`), ID), undefined);
    assert.equal(await identityProblem(make(`/CN=${ID}`, `URI:urn:uuid:${ID}`), ID), undefined);
    assert.match((await identityProblem(make('/CN=2b1e0f4c-0000-4000-8000-000000000000'), ID))!, /the subject CN "2b1e0f4c-/);
    assert.match((await identityProblem(make('/O=Acme'), ID))!, /a subject without a CN/);
    assert.match((await identityProblem(make(`/CN=${ID}/CN=other`), ID))!, /the subject CN/);
    assert.match((await identityProblem(make(`/CN=${ID}`, 'DNS:login.other.example,email:a@b.example'), ID))!, /subject alternative names dns:"login\.other\.example", email:"a@b\.example"/);
  });
});

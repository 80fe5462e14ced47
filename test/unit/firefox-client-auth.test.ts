/**
 * Firefox's remembered client-certificate decisions (ClientAuthRememberList.bin, Gecko data_storage): the slots the
 * agent writes read back with valid checksums, the value is the certificate's NSS db key (issuer + serial, which
 * openssl confirms), the keys cover the host with and without the partition key, and decisions the user made for
 * other sites are kept while a renewal replaces ours.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { certDbKey, CLIENT_AUTH_FILE, decodeSlots, encodeSlot, entryKeys, rememberOrgCertificate } from '../../src-main/platform/firefox-client-auth.js';
import { firefoxOrigins, firefoxProfileRoots } from '../../src-main/platform/firefox.js';
import { tempDir } from '../support/agent.js';

function cert(serial: string): string {
  const dir = tempDir('ff-carl');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`, '-days', '2',
    '-subj', '/O=Lab Org/CN=device', '-set_serial', serial], { stdio: 'pipe' });
  return fs.readFileSync(`${dir}/c.pem`, 'utf8');
}

test('the db key is module 0, slot 0, serial and issuer lengths, the serial\'s DER content and the issuer\'s DER name', () => {
  const pem = cert('0x00c0ffee');
  const key = Buffer.from(certDbKey(pem), 'base64');
  assert.deepEqual([...key.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
  const serialLen = key.readUInt32BE(8);
  const issuerLen = key.readUInt32BE(12);
  assert.equal(key.subarray(16, 16 + serialLen).toString('hex'), '00c0ffee', 'DER INTEGER content, leading zero kept');
  const issuerDer = key.subarray(16 + serialLen, 16 + serialLen + issuerLen);
  assert.equal(key.length, 16 + serialLen + issuerLen);
  // openssl's own view of the issuer name, DER-encoded, is the same bytes.
  const dir = tempDir('ff-carl-issuer');
  fs.writeFileSync(path.join(dir, 'c.pem'), pem);
  const text = execFileSync('openssl', ['x509', '-in', path.join(dir, 'c.pem'), '-noout', '-issuer', '-nameopt', 'RFC2253'], { encoding: 'utf8' });
  assert.match(text, /CN=device,O=Lab Org/);
  assert.equal(issuerDer[0], 0x30, 'a SEQUENCE (Name)');
  assert.ok(issuerDer.includes(Buffer.from('Lab Org')));
});

test('slots round-trip with valid checksums; a corrupted slot is ignored', () => {
  const slot = encodeSlot({ key: 'mtls.example.com,,', value: 'AAAA' }, 20_000);
  assert.equal(slot.length, 1286);
  assert.deepEqual(decodeSlots(slot), [{ key: 'mtls.example.com,,', value: 'AAAA' }]);
  const bad = Buffer.from(slot);
  bad[10] = bad[10]! ^ 0xff;
  assert.deepEqual(decodeSlots(bad), []);
});

test('entry keys: the host alone and with the partition key (site, and the port when not 443)', () => {
  assert.deepEqual(entryKeys('https://mtls.acme.okta.com'), ['mtls.acme.okta.com,,', 'mtls.acme.okta.com,,^partitionKey=%28https%2Cokta.com%29']);
  assert.deepEqual(entryKeys('https://localhost:8443'), ['localhost,,', 'localhost,,^partitionKey=%28https%2Clocalhost%29', 'localhost,,^partitionKey=%28https%2Clocalhost%2C8443%29']);
});

test('a profile keeps the user\'s other decisions; a renewal replaces ours; an unchanged pass writes nothing', () => {
  const profile = tempDir('ff-profile');
  fs.writeFileSync(path.join(profile, CLIENT_AUTH_FILE), encodeSlot({ key: 'other.example,,', value: 'dXNlcg==' }, 20_000));
  const first = cert('0x01');
  assert.equal(rememberOrgCertificate(profile, ['https://mtls.example.com'], first), true);
  let entries = decodeSlots(fs.readFileSync(path.join(profile, CLIENT_AUTH_FILE)));
  assert.ok(entries.some((e) => e.key === 'other.example,,'), 'the user\'s decision stays');
  assert.ok(entries.filter((e) => e.key.startsWith('mtls.example.com,,')).every((e) => e.value === certDbKey(first)));
  assert.equal(rememberOrgCertificate(profile, ['https://mtls.example.com'], first), false, 'nothing to change');
  const renewed = cert('0x02');
  assert.equal(rememberOrgCertificate(profile, ['https://mtls.example.com'], renewed), true);
  entries = decodeSlots(fs.readFileSync(path.join(profile, CLIENT_AUTH_FILE)));
  assert.equal(entries.filter((e) => e.key.startsWith('mtls.example.com,,')).length, 2);
  assert.ok(entries.filter((e) => e.key.startsWith('mtls.example.com,,')).every((e) => e.value === certDbKey(renewed)), 'the renewed certificate');
  assert.equal(fs.statSync(path.join(profile, CLIENT_AUTH_FILE)).mode & 0o777, 0o600);
});

test('origins from host patterns; profiles are looked for in the XDG location too', () => {
  assert.deepEqual(firefoxOrigins(['https://[*.]acme.okta.com', 'https://mtls.example.com:8443', 'not a url']), ['https://acme.okta.com', 'https://mtls.example.com:8443']);
  assert.equal(firefoxProfileRoots('/home/u')[0], '/home/u/.config/mozilla/firefox');
  assert.equal(firefoxProfileRoots('/home/u', { XDG_CONFIG_HOME: '/cfg' })[0], '/cfg/mozilla/firefox');
  assert.ok(firefoxProfileRoots('/home/u').includes('/home/u/.mozilla/firefox'));
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { loadState, saveState, stateFile } from '../../src-main/core/state/state.js';
import { nssCommands, parseCertutilList } from '../../src-main/platform/nss.js';
import { tempDir } from '../support/agent.js';

test('certutil -L output is parsed into nicknames (with spaces) and trust flags', () => {
  const out = `
Certificate Nickname                                         Trust Attributes
                                                             SSL,S/MIME,JAR/XPI

Device Trust Lab Root CA                                     C,,
device-trust-4f3a9c                                          u,u,u
My Other Cert With Spaces                                    u,u,u
`;
  assert.deepEqual(parseCertutilList(out), [
    { nickname: 'Device Trust Lab Root CA', trust: 'C,,' },
    { nickname: 'device-trust-4f3a9c', trust: 'u,u,u' },
    { nickname: 'My Other Cert With Spaces', trust: 'u,u,u' },
  ]);
});

test('the PKCS#12 password never appears on a command line', () => {
  const cmd = nssCommands.makePkcs12('/s/key.pem', '/s/cert.pem', '/s/chain.pem', 'device-trust-1', '/s/b.p12');
  assert.equal(cmd.file, 'openssl');
  assert.deepEqual(cmd.args, ['pkcs12', '-export', '-inkey', '/s/key.pem', '-in', '/s/cert.pem', '-certfile', '/s/chain.pem', '-name', 'device-trust-1', '-passout', 'env:DTA_P12_PASSWORD', '-out', '/s/b.p12']);
  assert.deepEqual(nssCommands.importPkcs12('/db', '/s/b.p12', '/s/pw', '/s/dbpw').args, ['-i', '/s/b.p12', '-d', 'sql:/db', '-w', '/s/pw', '-k', '/s/dbpw']);
  assert.deepEqual(nssCommands.deleteKeyAndCert('/db', 'n', '/s/dbpw').args, ['-F', '-d', 'sql:/db', '-n', 'n', '-f', '/s/dbpw']);
});

test('a corrupt state file is moved aside, not lost, and a fresh state is used', () => {
  const dir = tempDir('state');
  const first = loadState(dir).state;
  saveState(dir, first);
  assert.equal(fs.statSync(stateFile(dir)).mode & 0o777, 0o600);
  assert.equal(loadState(dir).state.deviceId, first.deviceId, 'the device id persists');
  fs.writeFileSync(stateFile(dir), '{"version":1,"deviceId":"trunc');
  const recovered = loadState(dir);
  assert.ok(recovered.recoveredFrom);
  assert.equal(fs.readFileSync(recovered.recoveredFrom!, 'utf8'), '{"version":1,"deviceId":"trunc');
  assert.notEqual(recovered.state.deviceId, first.deviceId);
  assert.ok(!fs.existsSync(stateFile(dir)));
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

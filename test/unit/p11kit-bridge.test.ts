/**
 * The pieces that let Firefox reach the NSS software token through p11-kit, as data: the module file p11-kit's
 * server reads, where it goes, when it is rewritten, the client module's lookup and the unit's start command.
 * (Headless Firefox presenting the key through them is test/integration/firefox.test.ts.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { nssDbModuleConfig, p11KitClientModule, p11KitUserModuleDir, startServerUnit, writeNssDbModuleConfig } from '../../src-main/platform/p11kit-bridge.js';
import { tempDir } from '../support/agent.js';

test('the module file: softokn on the user\'s database, read-only, not offered through the proxy module', () => {
  const text = nssDbModuleConfig('/usr/lib/x86_64-linux-gnu/libsoftokn3.so', '/home/ann/.pki/nssdb');
  assert.match(text, /^module: \/usr\/lib\/x86_64-linux-gnu\/libsoftokn3\.so$/m);
  assert.match(text, /^x-init-reserved: configdir='sql:\/home\/ann\/\.pki\/nssdb' .*flags=readOnly$/m);
  assert.match(text, /^disable-in: p11-kit-proxy$/m);
});

test('written under XDG_CONFIG_HOME (else ~/.config) once; rewritten only when the database moves', () => {
  const home = tempDir('p11');
  assert.equal(p11KitUserModuleDir({ HOME: home }), path.join(home, '.config', 'pkcs11', 'modules'));
  assert.equal(p11KitUserModuleDir({ HOME: home, XDG_CONFIG_HOME: '/x' }), path.join('/x', 'pkcs11', 'modules'));
  const first = writeNssDbModuleConfig({ HOME: home }, '/lib/libsoftokn3.so', path.join(home, '.pki', 'nssdb'));
  assert.equal(first.changed, true);
  assert.equal(writeNssDbModuleConfig({ HOME: home }, '/lib/libsoftokn3.so', path.join(home, '.pki', 'nssdb')).changed, false, 'same content: left alone');
  assert.equal(writeNssDbModuleConfig({ HOME: home }, '/lib/libsoftokn3.so', '/elsewhere').changed, true);
  assert.match(fs.readFileSync(first.file, 'utf8'), /configdir='sql:\/elsewhere'/);
});

test('the client module is the first that exists; none when p11-kit-modules is missing', () => {
  const dir = tempDir('p11c');
  const lib = path.join(dir, 'p11-kit-client.so');
  assert.equal(p11KitClientModule([path.join(dir, 'missing.so'), lib]), undefined);
  fs.writeFileSync(lib, '');
  assert.deepEqual(p11KitClientModule([path.join(dir, 'missing.so'), lib])?.library, lib);
});

test('the server unit is started without waiting for it, with a deadline', () => {
  assert.deepEqual(startServerUnit('device-trust-agent-p11-kit.service'), { file: 'systemctl', args: ['--user', '--no-block', 'start', 'device-trust-agent-p11-kit.service'], timeoutMs: 5_000 });
});

/**
 * The whole agent (core + lab org on loopback) with the Windows CNG key store: it enrolls and renews with the key
 * made and used inside the (stand-in) provider, the org accepts the CSR and the renewal token signed there, and no
 * private key is ever written under the agent's state directory. The same with the macOS Secure Enclave identity.
 * Windows and macOS are played by test/support/win32-cng.ts and test/support/darwin-keys.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { runPass } from '../../src-main/core/enrollment/pass.js';
import { loadConfig } from '../../src-main/core/config.js';
import { getStatus } from '../../src-main/core/certificates/status.js';
import { Trace } from '../../src-main/base/trace.js';
import { createDarwinPlatform } from '../../src-main/platform/darwin.js';
import { createWin32Platform } from '../../src-main/platform/win32.js';
import { TPM_PROVIDER } from '../../src-main/platform/win32-store.js';
import { tempDir } from '../support/agent.js';
import { macStandIn } from '../support/darwin-keys.js';
import { windowsStandIn } from '../support/win32-cng.js';
import { EventSinks } from '../../src-main/core/context.js';

let lab: LabOrg;
before(async () => {
  lab = await startLabOrg({ allowLabSignIn: true });
});
after(async () => {
  await lab.close();
});

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

test('Windows: enrollment and renewal with the key in the TPM provider; the org accepts both; no key.pem, no private key on disk', async () => {
  const home = tempDir('winhome');
  const rootCa = path.join(home, 'root.pem');
  fs.writeFileSync(rootCa, lab.rootCaPem);
  const env = { HOME: home, DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed'), USER: 'alice' };
  const loaded = loadConfig({ env, cli: { orgUrl: lab.orgUrl, tlsCaFile: rootCa, labSignIn: 'true', browserPolicyDirs: [path.join(home, 'policy')] } });
  const win = windowsStandIn();
  const platform = createWin32Platform(loaded.config, { run: win.run, env });

  const first = await runPass({ loaded, platform, context: { events: EventSinks.none() }, side: 'user', force: true, trace: new Trace(undefined) });
  assert.equal(first.outcome, 'enrolled', first.message);
  assert.equal(win.keys.size, 1);
  const [name, key] = [...win.keys][0]!;
  assert.equal(key.provider, TPM_PROVIDER, 'the key was made in the TPM provider');
  assert.equal(win.my.size, 1);
  assert.ok([...win.my.values()][0]!.linked, 'the certificate is linked to the key (-repairstore)');

  const files = filesUnder(loaded.config.stateDir);
  assert.ok(!files.some((f) => path.basename(f) === 'key.pem'), `no key.pem: ${files.join(', ')}`);
  assert.ok(files.some((f) => path.basename(f) === 'key-ref.json' && fs.readFileSync(f, 'utf8').includes(`tpm:${name}`)), 'the state names the key by its CNG handle');
  for (const f of files) assert.doesNotMatch(fs.readFileSync(f, 'latin1'), /PRIVATE KEY/, `${f} holds no private key`);

  const status = await getStatus(loaded, { platform, context: { events: EventSinks.none() } });
  assert.equal(status.state, 'ENROLLED');
  assert.deepEqual([status.keyProtection?.protection, status.keyProtection?.reason], ['tpm', 'TPM 2.0 through the Microsoft Platform Crypto Provider'], 'status says where the key is and why');

  const repairs = () => win.calls.filter((c) => c.args.includes('-repairstore')).length;
  const before = repairs();
  const again = await runPass({ loaded, platform, context: { events: EventSinks.none() }, side: 'user', force: false, trace: new Trace(undefined) });
  assert.equal(again.outcome, 'nothing-to-do', again.message);
  assert.equal(repairs(), before, 'nothing re-attached on a pass with a valid certificate');

  const second = await runPass({ loaded, platform, context: { events: EventSinks.none() }, side: 'user', force: false, renewNow: true, trace: new Trace(undefined) });
  assert.equal(second.outcome, 'renewed', second.message);
  assert.equal(win.keys.size, 1, 'the previous key was deleted after the swap');
  assert.notEqual([...win.keys][0]![0], name, 'a new key');
  assert.equal(win.my.size, 1, 'one certificate in CurrentUser\\My');
  assert.ok(!filesUnder(loaded.config.stateDir).some((f) => path.basename(f) === 'key.pem'));
});

test('macOS: enrollment and renewal with the key in a Secure Enclave identity, signed through the keychain; no key.pem', async () => {
  const home = tempDir('machome');
  const rootCa = path.join(home, 'root.pem');
  fs.writeFileSync(rootCa, lab.rootCaPem);
  fs.mkdirSync(path.join(home, 'Library', 'Keychains'), { recursive: true });
  fs.writeFileSync(path.join(home, 'Library', 'Keychains', 'login.keychain-db'), '');
  const env = { HOME: home, DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed'), USER: 'alice' };
  const loaded = loadConfig({ env, cli: { orgUrl: lab.orgUrl, tlsCaFile: rootCa, labSignIn: 'true', browserPolicyDirs: [path.join(home, 'policy')] } });
  const mac = macStandIn();
  const platform = createDarwinPlatform(loaded.config, { run: mac.run, env });

  const first = await runPass({ loaded, platform, context: { events: EventSinks.none() }, side: 'user', force: true, trace: new Trace(undefined) });
  assert.equal(first.outcome, 'enrolled', first.message);
  assert.equal(mac.identities.size, 1, 'one Secure Enclave identity');
  const [hash, identity] = [...mac.identities][0]!;
  assert.ok(identity.cert, 'the issued certificate went to the identity');
  assert.ok(mac.calls.some((c) => c.env?.DTA_OP === 'sign' && c.env.DTA_WHERE === 'token'), 'the CSR was signed by the CTK key');
  const files = filesUnder(loaded.config.stateDir);
  assert.ok(!files.some((f) => path.basename(f) === 'key.pem'), `no key.pem: ${files.join(', ')}`);
  for (const f of files) assert.doesNotMatch(fs.readFileSync(f, 'latin1'), /PRIVATE KEY/, `${f} holds no private key`);

  const listed = await platform.store.list();
  assert.deepEqual(listed.map((c) => c.pem.trim()), [identity.cert!.trim()], 'the certificate store lists the Secure Enclave identity');
  const status = await getStatus(loaded, { platform, context: { events: EventSinks.none() } });
  assert.equal(status.state, 'ENROLLED');
  assert.deepEqual([status.keyProtection?.protection, status.keyProtection?.reason], ['tpm', 'Secure Enclave through a CryptoTokenKit identity (sc_auth)'], 'status says where the key is and why');

  const imports = () => mac.calls.filter((c) => c.args[0] === 'import-ctk-certificate').length;
  const before = imports();
  const again = await runPass({ loaded, platform, context: { events: EventSinks.none() }, side: 'user', force: false, trace: new Trace(undefined) });
  assert.equal(again.outcome, 'nothing-to-do', again.message);
  assert.equal(imports(), before, 'nothing re-attached: the Secure Enclave entry is seen as installed');

  const second = await runPass({ loaded, platform, context: { events: EventSinks.none() }, side: 'user', force: false, renewNow: true, trace: new Trace(undefined) });
  assert.equal(second.outcome, 'renewed', second.message);
  assert.equal(mac.identities.size, 1, 'the previous identity was deleted after the swap');
  assert.notEqual([...mac.identities][0]![0], hash, 'a new key');
  assert.ok(!filesUnder(loaded.config.stateDir).some((f) => path.basename(f) === 'key.pem'));

  const [current] = await platform.store.list();
  await platform.store.remove(current!.id);
  assert.equal(mac.identities.size, 0, 'removing the store entry deletes the Secure Enclave identity (uninstall)');
});

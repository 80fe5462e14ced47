/**
 * The TPM's one-time set-up moves to install time on the device side: `install --device` (root) creates the shared
 * persistent storage primary key users' TPM tokens go under, so no user's first enrollment creates one. Real swtpm
 * behind tpm2-abrmd, tpm2-tools, tpm2-pkcs11, the agent's command line, a real SCEP CA (scepserver) for the user's
 * enrollment. Also the cases where it must not fail the install: no TPM, SkipTPM, a TPM that does not answer, the
 * handle holding something else. The test registers the device task for real, as root, in a private mount namespace
 * where a directory of its own is /etc/systemd/system: the machine's units, and other tests' views of /etc (the RPM
 * test's overlay), never change.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SHARED_PRIMARY_HANDLE } from '../../src-main/platform/linux-keys.js';
import { SYSTEM_UNIT_DIR } from '../../src-main/platform/tasks/linux.js';
import { AGENT_BIN, makeProfile, REPO, runAgent, tempDir, type AgentResult, type Profile } from '../support/agent.js';
import { readState } from '../support/state.js';
import { scepUnavailable, startScepServer, type ScepServer } from '../support/scep.js';
import { startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';

const unitDir = tempDir('systemd-system');
const PRIVATE_UNITS = ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind "$0" ${SYSTEM_UNIT_DIR} && exec "$@"`, unitDir];
const namespace = process.getuid?.() === 0 && fs.existsSync(SYSTEM_UNIT_DIR) ? spawnSync('unshare', [...PRIVATE_UNITS, 'true'], { encoding: 'utf8' }) : undefined;
const skipReason = scepUnavailable() ?? tpmUnavailable()
  ?? (process.getuid?.() !== 0 ? 'skipped: install --device needs root' : undefined)
  ?? (namespace?.status !== 0 ? `skipped: a private mount namespace over ${SYSTEM_UNIT_DIR} (unshare -m, root) is not available: ${namespace?.stderr ?? 'no such directory'}` : undefined);

/** The agent as root with the device task's units in this test's directory (see above). */
function asRoot(args: string[], env: Record<string, string>): Promise<AgentResult> {
  return new Promise((resolve) => {
    execFile('unshare', [...PRIVATE_UNITS, process.execPath, AGENT_BIN, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 240_000 },
      (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }));
  });
}
if (skipReason) console.log(`# tpm-install ${skipReason}`);

const CHALLENGE = 'tpm-install-challenge';
const SLOW = { timeoutMs: 240_000 };

describe('install --device sets up the TPM once for every user', { skip: skipReason }, () => {
  let server: ScepServer;
  let tpm: SoftTpm;
  /** The environment of the root installer: no HOME or settings of any user. */
  let root: Record<string, string>;

  const tools = (args: string[], t: SoftTpm = tpm) => execFileSync(args[0]!, args.slice(1), { env: { ...process.env, ...t.env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const handles = (t: SoftTpm = tpm) => tools(['tpm2_getcap', 'handles-persistent'], t).match(/0x[0-9a-f]{8}/gi) ?? [];
  const install = (args: string[], env: Record<string, string>) => asRoot(['install', '--device', '--no-run', ...args], env);
  const profile = (): Profile => makeProfile({
    orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null',
    extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE },
  });

  before(async () => {
    server = await startScepServer({ challenge: CHALLENGE });
    tpm = await startSoftTpm();
    const home = tempDir('root-home');
    root = { HOME: home, DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed-config'), DTA_METRICS_DIR: 'off', DTA_PLATFORM_LOG: 'off' };
  });

  after(async () => {
    await server?.close();
    await tpm?.stop();
  });

  test('install --device --tpm-only, what the DEB/RPM postinst runs (their units are shipped): the primary and nothing else', async () => {
    const t = await startSoftTpm();
    try {
      const r = await install(['--tpm-only'], { ...root, ...t.env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, new RegExp(`^TPM: created the shared storage primary key at ${SHARED_PRIMARY_HANDLE} \\(RSA 2048, tpm2_ptool init's template\\) in [\\d.]+ s; users' first TPM enrollment adds its token under it\\.$`, 'm'));
      assert.deepEqual(handles(t), [SHARED_PRIMARY_HANDLE]);
      assert.deepEqual(fs.readdirSync(unitDir), [], 'no unit registered');
      const user = await runAgent(['install', '--user', '--tpm-only'], { ...root, ...t.env });
      assert.equal(user.code, 78, 'a usage error without --device (the configuration exit class, as the other option errors)');
      assert.match(user.stderr, /--tpm-only is a part of install --device/);
    } finally {
      await t.stop();
    }
    const postinst = fs.readFileSync(path.join(REPO, 'build', 'linux', 'after-install.sh'), 'utf8');
    assert.match(postinst, /if \[ -z "\$ROOT" \] && \[ -f \/usr\/lib\/systemd\/system\/device-trust-agent-device\.timer \]; then\n  agent install --device --tpm-only \|\| true\n/, 'the package\'s postinst runs it on the running system, never failing');
  });

  test('install creates the shared storage primary (and times it); re-install keeps it; a user\'s first enrollment goes under it; uninstall keeps it', async () => {
    assert.deepEqual(handles(), [], 'a fresh TPM');
    const first = await install(['--json'], { ...root, ...tpm.env });
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.ok(fs.readdirSync(unitDir).includes('device-trust-agent-device.service'), `the device task is registered: ${fs.readdirSync(unitDir).join(', ')}`);
    const out = JSON.parse(first.stdout);
    assert.equal(out.tpm.outcome, 'created', first.stdout);
    assert.equal(out.tpm.handle, SHARED_PRIMARY_HANDLE);
    assert.ok(out.tpm.ms > 0 && out.tpm.ms < 120_000, `timed: ${out.tpm.ms} ms`);
    assert.deepEqual(handles(), [SHARED_PRIMARY_HANDLE], 'the TPM holds the storage primary at the TCG SRK handle');
    const pub = tools(['tpm2_readpublic', '-c', SHARED_PRIMARY_HANDLE]);
    assert.match(pub, /value: fixedtpm\|fixedparent\|sensitivedataorigin\|userwithauth\|restricted\|decrypt\n/, 'a storage key, tpm2_ptool init\'s template');
    assert.match(pub, /bits: 2048/);

    // Re-install (an upgrade runs it again): kept, said so, no second handle.
    const again = await install([], { ...root, ...tpm.env });
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, new RegExp(`TPM: the shared storage primary key at ${SHARED_PRIMARY_HANDLE} is already there \\(RSA 2048, [^)]*\\): kept`));
    assert.deepEqual(handles(), [SHARED_PRIMARY_HANDLE]);

    // Two users' first enrollments: keys in the TPM, their tokens under the shared primary, no handle of their own.
    for (let i = 0; i < 2; i++) {
      const p = profile();
      const r = await runAgent(['run', '--user'], { ...p.env, ...tpm.env }, SLOW);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /Certificate enrolled/);
      assert.equal(readState(p).current.keyProtection, 'tpm');
      assert.deepEqual(handles(), [SHARED_PRIMARY_HANDLE], 'no new persistent handle');
      // The store's primary object is the persistent one (its serialized ESYS_TR starts with the TPM handle).
      const primaries = tools(['tpm2_ptool', 'listprimaries', '--path', path.join(p.home, '.tpm2_pkcs11')]);
      assert.match(primaries, new RegExp(`esys-tr: ${SHARED_PRIMARY_HANDLE.slice(2)}`), primaries);
      const status = await runAgent(['status'], { ...p.env, ...tpm.env }, SLOW);
      assert.match(status.stdout, /PASS +Live signing test with the device key: TPM key/, status.stdout);
    }

    const u = await asRoot(['uninstall', '--device'], { ...root, ...tpm.env });
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.match(u.stdout, new RegExp(`note: The TPM's shared storage primary key \\(persistent handle ${SHARED_PRIMARY_HANDLE}.*is kept: users' TPM tokens are under it`));
    assert.deepEqual(handles(), [SHARED_PRIMARY_HANDLE], 'uninstall leaves the users\' tokens usable');
  });

  test('no TPM, or SkipTPM: one line saying why, exit 0, nothing made', async () => {
    // No TCTI given and (in this container) no /dev/tpmrm0; when tpm2-pkcs11 were missing, that is the reason.
    const none = await install([], root);
    assert.equal(none.code, 0, none.stderr + none.stdout);
    assert.match(none.stdout, /^TPM: nothing to set up: no TPM token will be used here: (no TPM \(no \/dev\/tpmrm0|tpm2-pkcs11 is not installed)/m);
    assert.doesNotMatch(none.stdout, /warning/);
    const t = await startSoftTpm();
    try {
      const skipped = await install(['SkipTPM=true'], { ...root, ...t.env });
      assert.equal(skipped.code, 0, skipped.stderr + skipped.stdout);
      assert.match(skipped.stdout, /^TPM: nothing to set up: no TPM token will be used here: SkipTPM=true\.$/m);
      assert.deepEqual(handles(t), [], 'nothing persisted in the TPM');
    } finally {
      await t.stop();
    }
  });

  test('a TPM that does not answer, or the handle holding another object: a warning with what to do, exit 0, nothing changed; users still enroll in the TPM', async () => {
    const dead = await install([], { ...root, TPM2_PKCS11_TCTI: 'swtpm:host=127.0.0.1,port=1', TPM2TOOLS_TCTI: 'swtpm:host=127.0.0.1,port=1' });
    assert.equal(dead.code, 0, dead.stderr + dead.stdout);
    assert.match(dead.stdout, /^warning: TPM: the TPM's persistent handles could not be read \(tpm2_getcap: .+\) \([\d.]+ s\)\. What to do: .*run install --device again/m);
    assert.match(dead.stdout, /Registered the device task/, 'the rest of the install went on');

    const t = await startSoftTpm();
    try {
      // Someone else's signing key at the handle.
      const dir = tempDir('other-key');
      tools(['tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-c', path.join(dir, 'k.ctx')], t);
      tools(['tpm2_evictcontrol', '-C', 'o', '-c', path.join(dir, 'k.ctx'), SHARED_PRIMARY_HANDLE], t);
      const r = await install(['--json'], { ...root, ...t.env });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout);
      assert.equal(out.tpm.outcome, 'occupied');
      assert.match(out.tpm.detail, /holds another object \(ECC, [^)]*sign\), not a storage primary key: left as it is/);
      assert.match(out.tpm.remedy, /tpm2_evictcontrol -C o -c 0x81000001/);
      assert.deepEqual(handles(t), [SHARED_PRIMARY_HANDLE]);
      assert.match(tools(['tpm2_readpublic', '-c', SHARED_PRIMARY_HANDLE], t), /\|sign\n/, 'left as it was');
      // A user's first enrollment still gets its key in the TPM: its token under a primary of its own, as before.
      const p = profile();
      const enrolled = await runAgent(['run', '--user'], { ...p.env, ...t.env }, SLOW);
      assert.equal(enrolled.code, 0, enrolled.stderr + enrolled.stdout);
      assert.equal(readState(p).current.keyProtection, 'tpm');
      assert.equal(handles(t).length, 2, 'the other object stays; the user\'s primary took one more handle');
      assert.match(tools(['tpm2_readpublic', '-c', SHARED_PRIMARY_HANDLE], t), /\|sign\n/, 'still left as it was');
    } finally {
      await t.stop();
    }
  });
});

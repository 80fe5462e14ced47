/**
 * `diagnose` checks the TPM the device key lives in, against a real TPM 2.0 (swtpm behind tpm2-abrmd on a
 * private D-Bus): the resource manager answers, the dictionary-attack lockout counter (raised for real by
 * wrong passwords on a DA-protected key), the tpm2-pkcs11 store's permissions, an unreachable resource
 * manager, no TPM at all, and SkipTPM. Each problem comes with what to do.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LinuxKeyStore } from '../../src-main/platform/linux-keys.js';
import { makeProfile, runAgent, type Profile } from '../support/agent.js';
import { startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';

const tools = spawnSync('sh', ['-c', 'command -v tpm2_getcap && command -v tpm2_sign']).status === 0 ? undefined : 'skipped: tpm2-tools is not installed (apt install tpm2-tools)';
const skipReason = tpmUnavailable() ?? tools;
if (skipReason) console.log(`# tpm-diagnose ${skipReason}`);

interface Finding { code: string; severity: string; title: string; evidence: string[]; remedy: string }

describe('diagnose checks the TPM (swtpm + tpm2-abrmd)', { skip: skipReason }, () => {
  let tpm: SoftTpm;
  let profile: Profile;

  /** `diagnose --json` against an org that refuses at once: only the local checks matter here. */
  const diagnose = async (env: Record<string, string>) => {
    const r = await runAgent(['diagnose', '--json'], { ...profile.env, ...env });
    const report = JSON.parse(r.stdout) as { probes: { id: string; status: string; facts: Record<string, unknown> }[]; findings: Finding[] };
    return { report, tpm: report.probes.find((p) => p.id === 'tpm'), findings: report.findings.filter((f) => f.code.startsWith('TPM_')) };
  };
  const store = () => path.join(profile.home, '.tpm2_pkcs11');

  /** Wrong passwords on a DA-protected key of the TPM: each one raises TPM2_PT_LOCKOUT_COUNTER. */
  const failAuthorisations = (n: number) => {
    const env = { ...process.env, ...tpm.env };
    const d = tpm.dir;
    const run = (args: string[], ok = true) => {
      const r = spawnSync(args[0]!, args.slice(1), { env, encoding: 'utf8', timeout: 30_000 });
      if (ok) assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      return r;
    };
    if (!fs.existsSync(path.join(d, 'da.ctx'))) {
      run(['tpm2_createprimary', '-C', 'o', '-c', path.join(d, 'primary.ctx')]);
      run(['tpm2_create', '-C', path.join(d, 'primary.ctx'), '-p', 'right', '-G', 'ecc', '-u', path.join(d, 'da.pub'), '-r', path.join(d, 'da.priv')]);
      run(['tpm2_load', '-C', path.join(d, 'primary.ctx'), '-u', path.join(d, 'da.pub'), '-r', path.join(d, 'da.priv'), '-c', path.join(d, 'da.ctx')]);
      fs.writeFileSync(path.join(d, 'msg'), 'x');
    }
    for (let i = 0; i < n; i++) {
      const r = run(['tpm2_sign', '-c', path.join(d, 'da.ctx'), '-p', 'wrong', '-g', 'sha256', '-o', path.join(d, 'sig'), path.join(d, 'msg')], false);
      assert.match(r.stderr, /DA counter incremented|lockout/i);
    }
  };

  before(async () => {
    tpm = await startSoftTpm();
    profile = makeProfile({ orgUrl: 'https://127.0.0.1:1', rootCaFile: '/dev/null' });
    // The token is provisioned as an enrollment would (tpm2_ptool, seconds on swtpm), so diagnose only looks at it.
    // (tpm2-pkcs11 reads its TCTI and D-Bus address from this process's environment; the agents get theirs explicitly.)
    Object.assign(process.env, tpm.env);
    const keys = new LinuxKeyStore({ nssDbDir: profile.nssDb, home: profile.home, skipTpm: false, env: process.env });
    const info = await keys.info();
    assert.equal(info.protection, 'tpm', info.reason);
    await keys.close();
  });

  after(async () => {
    await tpm?.stop();
  });

  test('a healthy TPM: the resource manager answers, lockout counter 0 of MAX_AUTH_FAIL, the store 0700: no TPM finding', async () => {
    const { tpm: probe, findings } = await diagnose(tpm.env);
    assert.equal(probe?.status, 'ok', JSON.stringify(probe));
    assert.deepEqual(probe!.facts.lockout, { counter: 0, maxAuthFail: 3, intervalSeconds: 1000, recoverySeconds: 1000, inLockout: false });
    assert.match(String(probe!.facts.tcti), /tabrmd/);
    assert.deepEqual(findings, []);
    assert.equal(fs.statSync(store()).mode & 0o777, 0o700, 'the agent created the store owner-only');
  });

  test('a store readable by others (0755) is an error that says chmod 700', async () => {
    fs.chmodSync(store(), 0o755);
    const { findings } = await diagnose(tpm.env);
    const f = findings.find((x) => x.code === 'TPM_STORE_PERMISSIONS');
    assert.ok(f, JSON.stringify(findings));
    assert.equal(f.severity, 'error');
    assert.match(f.title, /readable by others \(mode 0755\)/);
    assert.match(f.remedy, new RegExp(`chmod 700 ${store().replace(/[.]/g, '\\.')}`));
    // The agent itself puts the store back to 0700 whenever it opens the token: the next diagnose is clean.
    assert.equal(fs.statSync(store()).mode & 0o777, 0o700);
    assert.deepEqual((await diagnose(tpm.env)).findings, []);
  });

  test('the resource manager unreachable (a D-Bus with no tpm2-abrmd): an error naming it and what to start', async () => {
    const { tpm: probe, findings } = await diagnose({ ...tpm.env, DBUS_SESSION_BUS_ADDRESS: `unix:path=${path.join(tpm.dir, 'no-such-bus.sock')}` });
    assert.equal(probe?.status, 'fail');
    const f = findings.find((x) => x.code === 'TPM_UNREACHABLE');
    assert.ok(f, JSON.stringify(findings));
    assert.match(f.remedy, /tpm2-abrmd/);
  });

  test('no TPM at all (no device, no TCTI): a note that the key is in the software token; SkipTPM: no TPM check', async (t) => {
    if (fs.existsSync('/dev/tpmrm0') || fs.existsSync('/dev/tpm0')) {
      t.skip('skipped: this machine has a TPM device');
      return;
    }
    const { findings } = await diagnose({});
    assert.deepEqual(findings.map((f) => [f.code, f.severity]), [['TPM_ABSENT', 'info']]);
    const skip = await diagnose({ ...tpm.env, DTA_SKIP_TPM: 'true' });
    assert.equal(skip.tpm?.status, 'skipped');
    assert.match(String(skip.tpm?.facts.skipped), /SkipTPM=true/);
    assert.deepEqual(skip.findings, []);
  });

  test('a raised dictionary-attack counter is a warning; at MAX_AUTH_FAIL the lockout is an error with the wait and the reset', async () => {
    failAuthorisations(1);
    const raised = await diagnose(tpm.env);
    assert.equal((raised.tpm!.facts.lockout as { counter: number }).counter, 1);
    const w = raised.findings.find((x) => x.code === 'TPM_DA_COUNTER_RAISED');
    assert.ok(w, JSON.stringify(raised.findings));
    assert.equal(w.severity, 'warning');
    assert.match(w.title, /1 failed authorisation of 3/);
    failAuthorisations(2);
    const locked = await diagnose(tpm.env);
    const e = locked.findings.find((x) => x.code === 'TPM_LOCKED_OUT');
    assert.ok(e, JSON.stringify(locked.findings));
    assert.equal(e.severity, 'error');
    assert.match(e.evidence.join(' '), /LOCKOUT_COUNTER 3 of TPM2_PT_MAX_AUTH_FAIL 3/);
    assert.match(e.remedy, /tpm2_dictionarylockout --clear-lockout/);
    assert.ok(!locked.findings.some((x) => x.code === 'TPM_DA_COUNTER_RAISED'), 'one finding for the lockout, not two');
  });
});

/**
 * A device key in a TPM token that this machine's TPM cannot open: the profile copied to another machine (a second
 * swtpm), and the same machine after its TPM was cleared (tpm2_clear). The agent's command line against a real
 * SCEP CA (scepserver): `status` names the TPM (not "no certificate yet"), the signing test FAILS, `run` says what
 * is wrong and what to do (not the NSS database), and `run --forceRenewal` sets the old token aside and enrolls a new
 * key in the TPM that is there. And the TPM's few persistent handles: token stores share one, and a refused
 * provisioning attempt gives back the one it took.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeProfile, runAgent, tempDir, type Profile } from '../support/agent.js';
import { filesWithPrivateKeys } from '../support/keyscan.js';
import { scepUnavailable, startScepServer, type ScepServer } from '../support/scep.js';
import { eventsText, readState } from '../support/state.js';
import { startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';

const skipReason = scepUnavailable() ?? tpmUnavailable();
if (skipReason) console.log(`# tpm-replaced ${skipReason}`);

const CHALLENGE = 'tpm-replaced-challenge';
const SLOW = { timeoutMs: 240_000 };

describe('a TPM token from another TPM, or from this one before it was cleared', { skip: skipReason }, () => {
  let server: ScepServer;
  let a: SoftTpm;
  let b: SoftTpm;

  const profile = (): Profile => makeProfile({
    orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null',
    extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE },
  });
  const handles = (t: SoftTpm) => execFileSync('tpm2_getcap', ['handles-persistent'], { env: { ...process.env, ...t.env }, encoding: 'utf8' }).match(/0x[0-9a-f]{8}/gi) ?? [];
  const run = (args: string[], p: Profile, t: SoftTpm, extra: Record<string, string> = {}) => runAgent(args, { ...p.env, ...t.env, ...extra }, SLOW);

  /** What a person meets on a machine whose TPM cannot open the token, and the forced renewal that fixes it. */
  async function assertNamedAndRepaired(p: Profile, t: SoftTpm, before: { serialNumber: string; thumbprint: string }): Promise<void> {
    const status = await run(['status'], p, t);
    const said = status.stdout + status.stderr;
    assert.doesNotMatch(said, /NOT_ENROLLED|no device-trust certificate yet/, said);
    assert.match(said, /KEY_MISSING: The device key is in a TPM token .* that this machine's TPM cannot open: the token was made by another TPM .*or this TPM was cleared/);
    assert.match(said, /FAIL +Live signing test with the device key: The device key is in a TPM token/, 'the signing test fails, it is not skipped');

    const r = await run(['run', '--user'], p, t);
    assert.equal(r.code, 40, r.stderr + r.stdout);
    assert.match(r.stderr, /this machine's TPM cannot open/);
    assert.match(r.stderr, /What to do: Run: device-trust-agent run --forceRenewal/);
    assert.doesNotMatch(r.stderr, /NSS Certificate DB|NSS database/, 'the NSS database is not blamed');
    assert.equal(readState(p).current.serialNumber, before.serialNumber, 'nothing changed');
    const after = JSON.parse((await run(['status', '--json'], p, t)).stdout);
    assert.equal(after.state, 'KEY_MISSING');
    assert.equal(after.schedule.state, 'KEY_MISSING', 'the agent state agrees: stuck until a forced renewal');
    assert.equal(after.schedule.stuck, true);

    const forced = await run(['run', '--user', '--forceRenewal'], p, t);
    assert.equal(forced.code, 0, forced.stderr + forced.stdout);
    const now = readState(p).current;
    assert.notEqual(now.serialNumber, before.serialNumber);
    assert.notEqual(now.thumbprint, before.thumbprint, 'a new key');
    assert.equal(now.keyProtection, 'tpm', 'in the TPM that is here');
    assert.deepEqual(fs.readdirSync(path.join(p.stateDir, 'credentials')), [now.thumbprint]);
    assert.ok(fs.readdirSync(p.home).some((f) => f.startsWith('.tpm2_pkcs11.unusable-')), 'the old token store is set aside, not deleted');
    const ok = await run(['status'], p, t);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /PASS +Live signing test with the device key: TPM key/);
    assert.ok(eventsText(p).includes('"code":"TPM_NOT_THIS_ONE"'));
    assert.deepEqual(filesWithPrivateKeys([p.home]), []);
  }

  before(async () => {
    server = await startScepServer({ challenge: CHALLENGE, validityDays: 1, allowRenewDays: 2 });
    a = await startSoftTpm();
    b = await startSoftTpm();
  });

  after(async () => {
    await server?.close();
    await a?.stop();
    await b?.stop();
  });

  test('a profile copied to a machine with another TPM: named, signing test FAIL, --forceRenewal enrolls in this TPM', async () => {
    const p = profile();
    const first = await run(['run', '--user'], p, a);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.equal(readState(p).current.keyProtection, 'tpm');
    const copy = tempDir('home-copy');
    fs.cpSync(p.home, copy, { recursive: true });
    const swap = (s: string) => s.split(p.home).join(copy);
    const q: Profile = { home: copy, stateDir: swap(p.stateDir), nssDb: swap(p.nssDb), chromiumEtc: swap(p.chromiumEtc), policyDir: swap(p.policyDir),
      env: Object.fromEntries(Object.entries(p.env).map(([k, v]) => [k, swap(v)])) };
    await assertNamedAndRepaired(q, b, readState(q).current);
    // The original on its own TPM is untouched.
    assert.equal((await run(['run', '--user'], p, a)).code, 10);
  });

  test('the same machine after its TPM was cleared: named, signing test FAIL, --forceRenewal enrolls again; one persistent handle', async () => {
    const t = await startSoftTpm();
    try {
      const p = profile();
      assert.equal((await run(['run', '--user'], p, t)).code, 0);
      const before = readState(p).current;
      // TPM2_Clear: new storage seed, every owner-hierarchy persistent object evicted.
      execFileSync('tpm2_clear', ['-c', 'p'], { env: { ...process.env, ...t.env }, stdio: 'pipe' });
      assert.deepEqual(handles(t), []);
      await assertNamedAndRepaired(p, t, before);
      assert.equal(handles(t).length, 1, 'the new token store took one persistent handle');
    } finally {
      await t.stop();
    }
  });

  test('token stores on one TPM share one persistent primary; a refused provisioning gives back the handle it took', async () => {
    const t = await startSoftTpm();
    try {
      // A tpm2_ptool whose addtoken is refused (the agent runs tpm2_ptool, a Python program, from a fixed path with
      // its arguments on stdin; the test hook names this one instead): the attempt created a primary, then failed.
      const shim = tempDir('ptool-shim');
      const real = execFileSync('sh', ['-c', 'command -v tpm2_ptool'], { encoding: 'utf8' }).trim();
      const shimTool = path.join(shim, 'tpm2_ptool');
      fs.writeFileSync(shimTool, `import runpy, sys\nif sys.argv[1:2] == ['addtoken']:\n    sys.stderr.write('refused for the test\\n')\n    sys.exit(1)\nsys.argv[0] = ${JSON.stringify(real)}\nrunpy.run_path(${JSON.stringify(real)}, run_name='__main__')\n`, { mode: 0o755 });
      const p1 = profile();
      const refused = await run(['run', '--user'], p1, t, { DTA_TEST_TPM2_PTOOL: shimTool });
      // The pass falls back to the NSS software token (and says why); the TPM keeps no handle of that attempt.
      assert.equal(refused.code, 0, refused.stderr + refused.stdout);
      assert.equal(readState(p1).current.keyProtection, 'software');
      assert.deepEqual(handles(t), [], 'the refused attempt gave its persistent handle back');
      // Three users' stores on one TPM: one persistent handle between them.
      for (let i = 0; i < 3; i++) {
        const p = profile();
        const r = await run(['run', '--user'], p, t);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.equal(readState(p).current.keyProtection, 'tpm');
      }
      assert.deepEqual(handles(t), ['0x81000001'], 'one shared storage primary, not one per store');
    } finally {
      await t.stop();
    }
  });
});

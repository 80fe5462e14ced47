/**
 * The admin API token in a real OS keyring (GNOME Keyring's Secret Service on a private D-Bus session), the
 * org's agent pools read with it, a wrong token, and the support bundle — through the real command line.
 * The token, the private key and the user token must appear in none of: --json output, event log, bundle.
 */
import { generateKeyPairSync } from 'node:crypto';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { DiagnoseReportSchema } from '../../src-main/core/diagnostics/types.js';
import { AGENT_BIN, makeProfile, runAgent, tempDir, type Profile } from '../support/agent.js';
import { hasCommand } from '../support/host.js';
import { readEvents, readState } from '../support/state.js';

const missing = ['dbus-run-session', 'gnome-keyring-daemon', 'unzip'].filter((c) => !hasCommand(c));
const skipReason = missing.length ? `skipped: ${missing.join(', ')} not installed (apt install dbus-x11 gnome-keyring unzip)` : undefined;
if (skipReason) console.log(`# keyring-bundle ${skipReason}`);

/** Every file under `dir`, as text. */
function allFiles(dir: string): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    out.push({ file, text: fs.readFileSync(file).toString('latin1') });
  }
  return out;
}

describe('admin token in the OS keyring, agent pools, support bundle', { skip: skipReason }, () => {
  let lab: LabOrg;
  let profile: Profile;
  let env: Record<string, string>;
  let out: string;
  let keyringError: string | undefined;

  /**
   * Runs `script` (sh) inside a private D-Bus session with an unlocked GNOME Keyring, as a desktop session has.
   * Asynchronously: this process serves the lab org the script talks to.
   */
  async function inKeyringSession(script: string): Promise<{ status: number | null; stderr: string }> {
    const child = spawn('dbus-run-session', ['--', 'sh', '-c', `echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>"$OUT/keyring.err" || exit 90\n${script}`], {
      env: { ...env, OUT: out, AGENT: AGENT_BIN, NODE: process.execPath }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(timer);
    if (status === 90) keyringError = `gnome-keyring-daemon did not start: ${fs.readFileSync(path.join(out, 'keyring.err'), 'utf8')}`;
    return { status, stderr };
  }
  const read = (f: string) => fs.readFileSync(path.join(out, f), 'utf8');

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    const dir = tempDir('keyring');
    const rootCaFile = path.join(dir, 'root.pem');
    fs.writeFileSync(rootCaFile, lab.rootCaPem);
    const krb5 = path.join(dir, 'krb5.conf');
    fs.writeFileSync(krb5, '# no realm: this test is about the keyring\n');
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', KRB5_CONFIG: krb5, DTA_PLATFORM_LOG: 'off' } });
    env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...profile.env, TOKEN: lab.apiToken };
    out = tempDir('keyring-out');
  });

  after(() => lab?.close());

  test('without a keyring the token is refused, loudly, and never lands in a file', async () => {
    const set = spawnSync(process.execPath, [AGENT_BIN, 'admin-token', 'set'], { env: { ...env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' }, input: lab.apiToken, encoding: 'utf8' });
    assert.equal(set.status, 40, set.stderr);
    assert.match(set.stderr, /OS keyring \(Secret Service\) cannot be used/);
    assert.match(set.stderr, /never keeps the token in a plain file/);
    const diag = await runAgent(['diagnose', '--json', '--timeout', '5'], { ...profile.env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' });
    const report = DiagnoseReportSchema.parse(JSON.parse(diag.stdout));
    assert.ok(report.findings.some((f) => f.code === 'KEYRING_UNAVAILABLE'), JSON.stringify(report.findings));
    for (const f of allFiles(profile.home)) assert.ok(!f.text.includes(lab.apiToken), `token found in ${f.file}`);
  });

  test('the token from the keyring reads the agent pools; all AD agents down gives the delegated-auth window', async (t) => {
    // Session 1: enroll (lab-only sign-in; --show-tokens prints the user token, as support would ask), store the token.
    const one = await inKeyringSession(`
"$NODE" "$AGENT" run --debug --show-tokens >"$OUT/run.out" 2>"$OUT/run.err"; echo $? >"$OUT/run.rc"
printf %s "$TOKEN" | "$NODE" "$AGENT" admin-token set >"$OUT/set.out" 2>"$OUT/set.err"; echo $? >"$OUT/set.rc"
"$NODE" "$AGENT" admin-token status --json >"$OUT/status.json" 2>&1
`);
    if (keyringError) {
      console.log(`# skipped: ${keyringError}`);
      t.skip(`skipped: ${keyringError}`);
      return;
    }
    assert.equal(one.status, 0, one.stderr);
    assert.equal(read('run.rc').trim(), '0', read('run.err'));
    assert.equal(read('set.rc').trim(), '0', read('set.err'));
    assert.match(read('set.out'), /Stored in the Secret Service/);
    assert.deepEqual(JSON.parse(read('status.json')), { ok: true, stored: true, store: 'Secret Service' });
    const userToken = /User token: (eyJ[\w-]+\.[\w-]+\.[\w-]+)/.exec(read('run.err'))?.[1];
    assert.ok(userToken, 'the user token was printed with --show-tokens');
    const state = readState(profile);
    // The device key is in the NSS token (never in a file): a private key pasted into the log by an older agent stands in.
    const keyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const keyLine = keyPem.split('\n')[1]!;
    // An older agent (or a careless caller) that wrote secrets into the log unredacted: the bundle must still not carry them.
    fs.appendFileSync(path.join(profile.stateDir, 'events.jsonl'), JSON.stringify({ time: new Date().toISOString(), id: 2099, level: 'error', title: 'Internal error', message: `debug dump: ${userToken} ${keyPem} SSWS ${lab.apiToken}` }) + '\n');

    // Session 2: the same keyring (same HOME), all AD agents down; diagnose, bundle; then a wrong token.
    lab.switches.adAgentsDown = true;
    const two = await inKeyringSession(`
"$NODE" "$AGENT" diagnose --json --timeout 5 >"$OUT/diag.json" 2>"$OUT/diag.err"; echo $? >"$OUT/diag.rc"
"$NODE" "$AGENT" support-bundle "$OUT/bundle.zip" >"$OUT/bundle.out" 2>"$OUT/bundle.err"; echo $? >"$OUT/bundle.rc"
printf %s "00wrongwrongwrongwrongwrongwrongwrongwrong" | "$NODE" "$AGENT" admin-token set >/dev/null 2>&1
"$NODE" "$AGENT" diagnose --json --timeout 5 >"$OUT/diag-wrong.json" 2>"$OUT/diag-wrong.err"; echo $? >"$OUT/diag-wrong.rc"
`);
    assert.equal(two.status, 0, two.stderr);
    const report = DiagnoseReportSchema.parse(JSON.parse(read('diag.json')));
    const pools = report.probes.find((p) => p.id === 'agent-pools')!;
    assert.equal(pools.status, 'ok', JSON.stringify(pools));
    assert.equal(report.agentPools?.find((p) => p.type === 'AD')?.operationalStatus, 'DISRUPTED');
    const ad = report.findings.find((f) => f.code === 'AD_AGENTS_DOWN')!;
    assert.ok(ad, JSON.stringify(report.findings));
    assert.equal(ad.severity, 'warning', 'the 5-day window is still open');
    const seen = ad.evidence.find((e) => e.startsWith('last successful sign-in this agent saw: '))!;
    const seenAt = Date.parse(/: (\S+) \(/.exec(seen)![1]!);
    assert.ok(Date.now() - seenAt < 120_000, seen);
    const ends = ad.evidence.find((e) => e.startsWith('delegated-authentication window ends '))!;
    assert.equal(/ends (\S+) /.exec(ends)![1], new Date(seenAt + 5 * 86_400_000).toISOString());
    assert.equal(read('diag.rc').trim(), '20', 'warnings only');

    const wrong = DiagnoseReportSchema.parse(JSON.parse(read('diag-wrong.json')));
    const rejected = wrong.findings.find((f) => f.code === 'ADMIN_TOKEN_REJECTED')!;
    assert.ok(rejected, JSON.stringify(wrong.findings));
    assert.match(rejected.evidence.join(' '), /HTTP 401: Invalid token provided/);
    assert.match(rejected.remedy, /admin-token set/);
    assert.equal(wrong.agentPools, null);
    const logged = readEvents(profile) as { id: number; message: string }[];
    assert.match(logged.find((e) => e.id === 2007)?.message ?? '', /refused the admin API token/, 'event 2007 recorded');

    assert.equal(read('bundle.rc').trim(), '0', read('bundle.err'));
    const unzipped = tempDir('bundle');
    execFileSync('unzip', ['-q', path.join(out, 'bundle.zip'), '-d', unzipped]);
    const entries = fs.readdirSync(unzipped).sort();
    assert.deepEqual(entries, ['README.txt', 'certificates.json', 'config.json', 'diagnostics.json', 'diagnostics.txt', 'environment.json', 'events.jsonl', 'krb5.conf', 'state.json']);
    const readme = fs.readFileSync(path.join(unzipped, 'README.txt'), 'utf8');
    for (const e of entries.filter((n) => n !== 'README.txt')) assert.match(readme, new RegExp(`^${e.replace('.', '\\.')}\\s`, 'm'), `README explains ${e}`);
    const bundledReport = DiagnoseReportSchema.parse(JSON.parse(fs.readFileSync(path.join(unzipped, 'diagnostics.json'), 'utf8')));
    assert.ok(bundledReport.findings.some((f) => f.code === 'AD_AGENTS_DOWN'));
    const certs = JSON.parse(fs.readFileSync(path.join(unzipped, 'certificates.json'), 'utf8'));
    assert.equal(certs.agentCopies[0].privateKeyFilePresent, false, 'the key is in the token, not in a file');
    assert.equal(certs.inStore[0].serialNumber, state.current.serialNumber);
    assert.match(fs.readFileSync(path.join(unzipped, 'events.jsonl'), 'utf8'), /\[private key redacted\]/);
    assert.equal(fs.statSync(path.join(out, 'bundle.zip')).mode & 0o777, 0o600);

    // No secret anywhere it must not be: the bundle (unzipped and raw), --json output, the event log.
    const secrets = { 'admin token': lab.apiToken, 'user token': userToken, 'private key': keyLine };
    const places = [...allFiles(unzipped), { file: 'bundle.zip', text: fs.readFileSync(path.join(out, 'bundle.zip')).toString('latin1') },
      { file: 'diag.json', text: read('diag.json') }, { file: 'diag-wrong.json', text: read('diag-wrong.json') },
      ...fs.readdirSync(profile.stateDir).filter((f) => f.startsWith('events')).map((f) => ({ file: f, text: fs.readFileSync(path.join(profile.stateDir, f), 'utf8').split('\n').filter((l) => !l.includes('debug dump')).join('\n') }))];
    for (const p of places) for (const [what, s] of Object.entries(secrets)) assert.ok(!p.text.includes(s), `${what} found in ${p.file}`);
    lab.switches.adAgentsDown = false;
  });
});

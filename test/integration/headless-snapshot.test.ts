/**
 * The headless program's start-up snapshot (issue 27, cli/snapshot-entry.ts): `status` started through the launcher
 * runs from a V8 snapshot built once by build/headless.mjs, every other command from the bundled script. What a user
 * sees must not change: the same report, the same exit code, nothing extra on stderr, for an enrolled device, one
 * that is not enrolled, a broken configuration file and `status --check` (handed to the bundle), compared with the
 * source checkout. The snapshot is built with no HOME and no agent settings in its environment, and run from a copy
 * in another directory, as a package installs it: anything read at build time would show here as a difference.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { AGENT_BIN, makeProfile, REPO, tempDir, type Profile } from '../support/agent.js';
import { labOrgForSuite } from '../support/lab-org.js';

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Asynchronously: the lab org answers from this process. */
function run(program: string[], args: string[], p: Profile): Promise<Run> {
  return new Promise((resolve) => {
    execFile(program[0]!, [...program.slice(1), ...args], { env: { PATH: process.env.PATH, ...p.env }, encoding: 'utf8', timeout: 90_000 }, (e, out, err) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, out, err }));
  });
}

/**
 * What differs from run to run in a status report: how long the live signing test took, and before the first pass
 * the device ID each run makes up and the first pass's moment (now); with --check, the org's request IDs and CRLs.
 */
const steady = (s: string) => s.replace(/\(\d+(\.\d+)? ms\)/g, '(… ms)').replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
  .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(first-run/g, '<now> (first-run').replace(/request ID [0-9a-f-]+/g, 'request ID …').replace(/CRL of [0-9TZ:.-]+/g, 'CRL of …');

describe('status from the start-up snapshot reads as status from the source checkout', () => {
  const org = labOrgForSuite();
  let launcher = '';

  before(() => {
    const built = tempDir('headless-snapshot');
    const b = spawnSync(process.execPath, [path.join(REPO, 'build', 'headless.mjs'), '--out', built], { cwd: REPO, encoding: 'utf8', timeout: 180_000 });
    assert.equal(b.status, 0, b.stderr);
    assert.doesNotMatch(b.stderr, /no start-up snapshot/, 'the build made its snapshot');
    // Installed elsewhere, as a package puts it: the snapshot finds the bundle beside its blob, not where it was built.
    const installed = path.join(tempDir('headless-installed'), 'device-trust-agent');
    fs.cpSync(built, installed, { recursive: true });
    fs.rmSync(built, { recursive: true, force: true });
    launcher = path.join(installed, 'device-trust-agent');
    assert.ok(fs.existsSync(path.join(installed, 'device-trust-agent.blob')), 'the blob is beside the launcher');
  });

  test('without a blob the launcher starts the bundled script', async () => {
    const dir = path.join(tempDir('headless-noblob'), 'device-trust-agent');
    fs.cpSync(path.dirname(launcher), dir, { recursive: true });
    fs.rmSync(path.join(dir, 'device-trust-agent.blob'));
    const p = makeProfile({ orgUrl: 'https://org.example.invalid', rootCaFile: '/dev/null' });
    const traced = await run(['sh', '-x', path.join(dir, 'device-trust-agent')], ['status', '--json'], p);
    assert.equal(JSON.parse(traced.out).state, 'NOT_ENROLLED', traced.err);
    assert.match(traced.err, /exec \S+ \S+device-trust-agent\.mjs status --json/);
  });

  const source = [process.execPath, AGENT_BIN];
  const same = async (args: string[], p: Profile) => {
    const fromSnapshot = await run([launcher], args, p);
    const fromSource = await run(source, args, p);
    assert.equal(fromSnapshot.code, fromSource.code, `exit code of ${args.join(' ')}\n${fromSnapshot.err}`);
    assert.equal(steady(fromSnapshot.out), steady(fromSource.out), `output of ${args.join(' ')}`);
    assert.equal(fromSnapshot.err, fromSource.err, `stderr of ${args.join(' ')}`);
    return fromSnapshot;
  };

  test('an enrolled device: the same named tests, headline and JSON', async () => {
    const p = org.profile();
    const enrolled = await run([launcher], ['run'], p);
    assert.equal(enrolled.code, 0, enrolled.err);
    const s = await same(['status'], p);
    assert.match(s.out, /^ENROLLED: /);
    assert.match(s.out, /PASS +Live signing test with the device key/);
    assert.equal(JSON.parse((await same(['status', '--json'], p)).out).state, 'ENROLLED');
    // The launcher's trace (sh -x) shows which start each command got: status the snapshot, run the bundled script.
    const traced = await run(['sh', '-x', launcher], ['status'], p);
    assert.match(traced.err, /exec \S+ --snapshot-blob \S+device-trust-agent\.blob -- status/);
    assert.match((await run(['sh', '-x', launcher], ['--debug', 'run'], p)).err, /exec \S+ \S+device-trust-agent\.mjs --debug run/);
  });

  test('a device not enrolled, and a configuration file that cannot be used', async () => {
    const p = org.profile();
    assert.match((await same(['status'], p)).out, /^NOT_ENROLLED: /);
    const config = path.join(p.home, 'broken.json');
    fs.writeFileSync(config, '{ "orgUrl": ');
    const broken = await same(['status', '--config', config], p);
    assert.match(broken.out, /FAIL +Configuration/);
  });

  test('status --check (the network libraries are not in the snapshot: the bundle runs it) and the other commands', async () => {
    const p = org.profile();
    assert.equal((await run([launcher], ['run'], p)).code, 0);
    assert.match((await same(['status', '--check'], p)).out, /PASS +Org reachable/);
    assert.equal((await same(['--version'], p)).out.trim(), JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version);
    assert.match((await same(['help'], p)).out, /^device-trust-agent — /);
  });
});


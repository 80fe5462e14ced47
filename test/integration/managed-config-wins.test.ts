/**
 * Managed configuration wins (issue 22.3): what an admin deployed in /etc/device-trust-agent/*.json (here a
 * directory of real files) survives a user's config file, environment variables and command-line flags that try
 * to change it, and `status` (text and --json), `--debug` and the support bundle name what was ignored, secrets
 * redacted.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { runAgent, tempDir } from '../support/agent.js';

const ADMIN_PROXY = 'http://admin:AdminPw-9z@proxy.corp.example:3128';
const USER_PROXY_PASSWORD = 'usr"pa@ss-77Q';

function setup() {
  const home = tempDir('mcw');
  const managed = path.join(home, 'managed');
  fs.mkdirSync(managed);
  fs.writeFileSync(path.join(managed, '10-org.json'), JSON.stringify({
    OktaURL: 'https://acme.okta.example', HttpProxy: ADMIN_PROXY,
    posture: { adminChecks: [{ name: 'edr', kind: 'file', target: '/opt/edr/running', mustExist: true }] },
  }));
  const userFile = path.join(home, 'config.json');
  // The user's file tries to drop the admin check and move the org and the proxy.
  fs.writeFileSync(userFile, JSON.stringify({ orgUrl: 'https://evil-file.example', httpProxy: 'http://evil-file.example:8080', posture: { adminChecks: [] , screenLockMaxSeconds: 600 } }));
  const env: Record<string, string> = {
    HOME: home, USER: 'alice', DTA_MANAGED_CONFIG_DIR: managed, DTA_CONFIG_FILE: userFile, DTA_METRICS_DIR: 'off', DTA_PLATFORM_LOG: 'off',
    DTA_ORG_URL: 'https://evil-env.example', DTA_HTTP_PROXY: `http://u:${encodeURIComponent(USER_PROXY_PASSWORD)}@evil-env.example:3128`,
    DTA_STATE_DIR: path.join(home, 'state'), DTA_NSS_DB: path.join(home, 'nssdb'), DTA_BROWSER_POLICY_DIRS: path.join(home, 'policies'),
    DTA_FIREFOX_POLICY_DIRS: path.join(home, 'ff'), KRB5_CONFIG: '/nonexistent',
  };
  return { home, env };
}

const CLI = ['--org-url', 'https://evil-cli.example', 'HttpProxy=http://evil-cli.example:1'];

test('managed orgUrl, proxy and posture.adminChecks survive a user config file, environment and flags; status and --debug name what was ignored', async () => {
  const { env } = setup();
  const s = await runAgent(['status', '--json', ...CLI], env);
  const report = JSON.parse(s.stdout) as { orgUrl: string; configuration: { managed: Record<string, string>; ignored: { setting: string; source: string; value: string; managedBy: string }[] } };
  assert.equal(report.orgUrl, 'https://acme.okta.example', s.stderr);
  assert.ok(report.configuration.managed.orgUrl?.endsWith('10-org.json'));
  assert.ok(report.configuration.managed.httpProxy);
  assert.ok(report.configuration.managed['posture.adminChecks']);
  const ignored = (setting: string, source: string) => report.configuration.ignored.find((i) => i.setting === setting && i.source === source);
  for (const src of ['file', 'env', 'cli']) {
    assert.ok(ignored('orgUrl', src), `orgUrl from ${src} is named as ignored`);
    assert.ok(ignored('httpProxy', src), `httpProxy from ${src} is named as ignored`);
  }
  assert.match(ignored('orgUrl', 'cli')!.value, /evil-cli/);
  assert.ok(ignored('posture.adminChecks', 'file'), 'the file\'s empty adminChecks is ignored');
  assert.ok(!report.configuration.ignored.some((i) => i.setting === 'posture.screenLockMaxSeconds'), 'a posture unit the admin left open is the user\'s');
  // The ignored proxy's password (with " and @ in it) appears nowhere, nor the admin's.
  for (const out of [s.stdout, s.stderr]) {
    assert.ok(!out.includes('AdminPw-9z'));
    assert.ok(!out.includes('pa@ss-77Q') && !out.includes('usr"pa') && !out.includes('usr\\"pa') && !out.includes(encodeURIComponent(USER_PROXY_PASSWORD)));
  }

  const text = await runAgent(['status', ...CLI], env);
  assert.match(text.stdout, /ignored: +orgUrl = "https:\/\/evil-cli\.example" from the command line \(managed by .*10-org\.json\)/);
  assert.match(text.stdout, /ignored: +orgUrl = "https:\/\/evil-env\.example" from the environment/);
  assert.match(text.stdout, /ignored: +posture\.adminChecks = \[\] from the config file/);

  const debug = await runAgent(['status', '--debug', ...CLI], env);
  assert.match(debug.stderr, /orgUrl = "https:\/\/acme\.okta\.example" +\[managed: .*10-org\.json\]/);
  assert.match(debug.stderr, /httpProxy = "http:\/\/admin:\[redacted\]@proxy\.corp\.example:3128" +\[managed/);
  assert.match(debug.stderr, /posture = .*"adminChecks":\[\{"name":"edr"/);
  assert.match(debug.stderr, /"screenLockMaxSeconds":600/);
  assert.match(debug.stderr, /ignored: +httpProxy = "http:\/\/u:\[redacted\]@evil-env\.example:3128" from the environment/);
  assert.ok(!debug.stderr.includes('AdminPw-9z') && !debug.stderr.includes('pa@ss-77Q') && !debug.stderr.includes('usr'));
});

test('posture runs the admin\'s check although the user\'s file empties the list', async () => {
  const { env } = setup();
  const r = await runAgent(['posture', '--json', ...CLI], env, { timeoutMs: 120_000 });
  assert.match(r.stdout, /"check": "admin:edr"/, `${r.stdout}\n${r.stderr}`);
});

test('the support bundle\'s config.json names the managed settings and the ignored values, redacted', async () => {
  const { env, home } = setup();
  const out = path.join(home, 'bundle.zip');
  const r = await runAgent(['support-bundle', out, '--no-diagnose', ...CLI], env, { timeoutMs: 120_000 });
  assert.ok(fs.existsSync(out), `${r.stdout}\n${r.stderr}`);
  const files = unzip(out);
  const cfg = JSON.parse(files['config.json']!) as { config: { orgUrl: string }; managed: Record<string, string>; ignored: { setting: string; source: string }[] };
  assert.equal(cfg.config.orgUrl, 'https://acme.okta.example');
  assert.ok(cfg.managed['posture.adminChecks']);
  assert.ok(cfg.ignored.some((i) => i.setting === 'orgUrl' && i.source === 'cli'));
  const all = Object.values(files).join('\n');
  assert.ok(!all.includes('AdminPw-9z') && !all.includes('pa@ss-77Q') && !all.includes('usr"pa') && !all.includes('usr\\"pa'));
});

function unzip(file: string): Record<string, string> {
  const dir = tempDir('mcw-zip');
  execFileSync('unzip', ['-q', file, '-d', dir]);
  return Object.fromEntries(fs.readdirSync(dir).map((n) => [n, fs.readFileSync(path.join(dir, n), 'utf8')]));
}

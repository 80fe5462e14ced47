/**
 * Secrets where others can read them (issue 23.3), against the real agent and the lab org:
 *  - `install … HttpProxy=http://user:pass@… ScepChallenge=…` puts neither into a unit file, the autostart entry or
 *    the daemon's argv (/proc/<pid>/cmdline), but into an owner-only settings file the units reference;
 *  - children (the platform log's `logger`, and every other descendant seen in /proc during a pass, at
 *    enrollment and at renewal) get neither the proxy password nor the challenge in their environment
 *    (/proc/<pid>/environ) or argv (/proc/<pid>/cmdline); the event text reaches `logger` on stdin;
 *  - a planted proxy password holding `"` and `@`, given with a scheme (DTA_HTTP_PROXY) and without one
 *    (HTTPS_PROXY=user:pass@host:port), and the SCEP challenge appear in no sink: stdout, stderr with --debug,
 *    events.jsonl, state.json, the support bundle, the remote syslog sink, the platform log.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { AGENT_BIN, makeProfile, runAgent, tempDir, writeRootCa, type AgentResult } from '../support/agent.js';
import { listenOnLoopback } from '../support/net.js';
import { eventsText, stateText } from '../support/state.js';

// Passwords with `"` and `@` (the forms a regex over JSON text half-leaks), with and without a scheme.
const PW1 = 'Qz"9k@Vt-Lm';
const PW2 = 'Wq"4r@Zx-Np';
const CHALLENGE = 'ChalSecret"7@Yb';
const PROXY_WITH_SCHEME = `http://proxyuser:${PW1}@127.0.0.1:9`;
const PROXY_NO_SCHEME = `proxyuser2:${PW2}@127.0.0.1:9`;
/** Every fragment that would betray a secret: whole, either side of `"` or `@`, encoded, JSON-escaped. */
const FRAGMENTS = [PW1, PW2, CHALLENGE].flatMap((s) => [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1), ...s.split(/["@]/).filter((x) => x.length >= 4)]);

function leaks(text: string): string[] {
  return [...new Set(FRAGMENTS.filter((f) => text.includes(f)))];
}

function assertClean(where: string, text: string): void {
  assert.deepEqual(leaks(text), [], `${where} shows a secret:\n${text.slice(0, 3000)}`);
}

/** Watches /proc for descendants of `root` while a command runs: their argv and environment, as the kernel has them. */
function watchDescendants(root: number): { stop(): { pid: number; cmdline: string; environ: string }[] } {
  const seen = new Map<number, { pid: number; cmdline: string; environ: string }>();
  const parents = new Map<number, number>();
  const tick = () => {
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (seen.has(pid) || pid === root) continue;
      try {
        const ppid = Number(/PPid:\s*(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
        parents.set(pid, ppid);
        let p = ppid;
        let depth = 0;
        while (p && p !== root && depth++ < 20) p = parents.get(p) ?? 0;
        if (p !== root) continue;
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        // The agent itself (seen under a launcher, or before its exec completes) has its own environment: not a child.
        if (cmdline.includes(AGENT_BIN)) continue;
        seen.set(pid, { pid, cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '), environ: fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').join('\n') });
      } catch {
        /* gone already */
      }
    }
  };
  const timer = setInterval(tick, 5);
  return { stop: () => { clearInterval(timer); tick(); return [...seen.values()]; } };
}

/** Runs the agent in a child process and watches its descendants while it runs. */
async function runWatched(args: string[], env: Record<string, string>): Promise<AgentResult & { children: { pid: number; cmdline: string; environ: string }[] }> {
  let watch: ReturnType<typeof watchDescendants> | undefined;
  const r = await runAgent(args, env, { timeoutMs: 180_000, onStart: (pid) => (watch = watchDescendants(pid)) });
  return { ...r, children: watch!.stop() };
}

/** A `logger` first on PATH that keeps what the platform log sink gives it: argv, environment, stdin. */
function fakeLogger(dir: string): { bin: string; received(): string } {
  const bin = path.join(dir, 'bin');
  const out = path.join(dir, 'logger-received');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'logger'), `#!/bin/sh\n{ echo "ARGV: $*"; echo "ENV:"; tr '\\0' '\\n' < /proc/$$/environ; echo "STDIN:"; cat; } >> "${out}"\n`, { mode: 0o755 });
  return { bin, received: () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '') };
}

describe('install: secrets go to an owner-only settings file, never to a unit, an entry or argv', () => {
  test('systemd user units and the XDG autostart entry reference --settings-file; the daemon\'s argv has no secret', async () => {
    const home = tempDir('sec-install');
    const env = { HOME: home, USER: 'alice', XDG_CONFIG_HOME: path.join(home, '.config'), DTA_STATE_DIR: path.join(home, 'state'), DTA_MANAGED_CONFIG_DIR: path.join(home, 'm'),
      DTA_METRICS_DIR: 'off', DTA_PLATFORM_LOG: 'off', PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const params = ['OktaURL=https://127.0.0.1:9', `HttpProxy=${PROXY_WITH_SCHEME}`, `ScepChallenge=${CHALLENGE}`];
    const r = await runAgent(['install', '--user', '--mode', 'systemd', '--no-run', '--no-start', ...params], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertClean('install output', r.stdout + r.stderr);
    const unitDir = path.join(home, '.config', 'systemd', 'user');
    const settingsFile = path.join(home, 'state', 'install-settings.json');
    for (const n of fs.readdirSync(unitDir).filter((f) => fs.statSync(path.join(unitDir, f)).isFile())) {
      const text = fs.readFileSync(path.join(unitDir, n), 'utf8');
      assertClean(`unit ${n}`, text);
      if (/ExecStart=.*daemon/.test(text)) assert.ok(text.includes(`--settings-file ${settingsFile}`), text);
    }
    const st = fs.statSync(settingsFile);
    assert.equal(st.mode & 0o777, 0o600, 'owner-only');
    assert.equal(st.uid, process.getuid!());
    assert.equal(fs.statSync(path.dirname(settingsFile)).mode & 0o077, 0, 'in an owner-only directory');
    const saved = JSON.parse(fs.readFileSync(settingsFile, 'utf8')) as Record<string, string>;
    assert.equal(saved.ScepChallenge, CHALLENGE);
    assert.equal(saved.HttpProxy, PROXY_WITH_SCHEME);
    assert.equal(saved.OktaURL, undefined, 'only secrets go there; the rest stays visible on the command line');

    // The file is what the registered command reads: the settings arrive (redacted in --debug).
    const dbg = await runAgent(['status', '--debug', '--settings-file', settingsFile], env);
    assert.match(dbg.stderr, /scepChallenge = "\[redacted\]" +\[cli\]/);
    assert.match(dbg.stderr, /httpProxy = "http:\/\/proxyuser:\[redacted\]@127\.0\.0\.1:9" +\[cli\]/);
    assertClean('status --debug with the settings file', dbg.stdout + dbg.stderr);
    // Anyone else's (or a readable) settings file is refused.
    fs.chmodSync(settingsFile, 0o644);
    const loose = await runAgent(['status', '--settings-file', settingsFile], env);
    assert.equal(loose.code, 78);
    assert.match(loose.stderr, /readable by no one else/);
    fs.chmodSync(settingsFile, 0o600);

    // Autostart: the entry is 0644 and the daemon is started now; neither carries a secret.
    const auto = await runAgent(['install', '--user', '--mode', 'autostart', '--no-run', ...params], env);
    assert.equal(auto.code, 0, auto.stderr + auto.stdout);
    const entry = fs.readFileSync(path.join(home, '.config', 'autostart', 'device-trust-agent.desktop'), 'utf8');
    assertClean('autostart entry', entry);
    assert.ok(entry.includes('--settings-file'));
    const pid = Number(/pid (\d+)/.exec(auto.stdout)?.[1]);
    assert.ok(pid > 0, auto.stdout);
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      assert.match(cmdline, /daemon/);
      assertClean('the daemon\'s argv', cmdline);
    } finally {
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    }
    const un = await runAgent(['uninstall', '--user'], env);
    assert.equal(un.code, 0, un.stderr + un.stdout);
    assert.ok(!fs.existsSync(settingsFile), 'uninstall removes the settings file');
  });

  test('the device task: the plan\'s units reference a settings file in root\'s 0700 state directory', async () => {
    const home = tempDir('sec-install-dev');
    const env = { HOME: home, USER: 'root', DTA_MANAGED_CONFIG_DIR: path.join(home, 'm'), DTA_METRICS_DIR: 'off', DTA_PLATFORM_LOG: 'off', PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const r = await runAgent(['install', '--device', '--dry-run', '--json', 'OktaURL=https://127.0.0.1:9', `HttpProxy=${PROXY_WITH_SCHEME}`, `ScepChallenge=${CHALLENGE}`], env);
    assert.equal(r.code, 0, r.stderr);
    assertClean('the device plan', r.stdout);
    const plan = JSON.parse(r.stdout) as { files: { path: string; content: string; mode: number }[] };
    const service = plan.files.find((f) => f.path.endsWith('device-trust-agent-device.service'))!;
    assert.match(service.content, /--settings-file \/var\/lib\/device-trust-agent\/install-settings\.json/);
    assert.match(service.content, /StateDirectoryMode=0700/);
  });
});

describe('a real pass: no secret in children\'s argv or environment, nor in any sink', () => {
  let lab: LabOrg;
  let rootCaFile: string;
  let syslog: net.Server;
  let syslogText = '';
  let syslogPort = 0;

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = writeRootCa(lab.rootCaPem);
    syslog = net.createServer((s) => s.on('data', (d) => (syslogText += d.toString())));
    syslogPort = await listenOnLoopback(syslog);
  });
  after(() => {
    lab?.close();
    syslog?.close();
  });

  test('enrollment and renewal with the secrets in the environment; then status, proxy-check and the support bundle', async () => {
    const dir = tempDir('sec-pass');
    const logger = fakeLogger(dir);
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: {
      DTA_LAB_SIGN_IN: 'true', DTA_SYSLOG_REMOTE: `tcp://127.0.0.1:${syslogPort}`,
      // The scheme-less form, for https URLs; the lab on loopback is reached directly.
      HTTPS_PROXY: PROXY_NO_SCHEME, NO_PROXY: '127.0.0.1,localhost',
      DTA_SCEP_CHALLENGE: CHALLENGE,
      PATH: `${logger.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    } });
    const children: { pid: number; cmdline: string; environ: string }[] = [];
    const outputs: [string, string][] = [];

    const enroll = await runWatched(['run', '--debug'], p.env);
    assert.equal(enroll.code, 0, enroll.stderr);
    const renew = await runWatched(['run', '--forceRenewal', '--debug'], p.env);
    assert.equal(renew.code, 0, renew.stderr);
    for (const r of [enroll, renew]) {
      children.push(...r.children);
      outputs.push(['run stdout', r.stdout], ['run stderr (--debug)', r.stderr]);
    }
    // With the explicit proxy (scheme form) too: these fail to reach it, and say so without its password.
    const withProxy = { ...p.env, DTA_HTTP_PROXY: PROXY_WITH_SCHEME };
    for (const args of [['status', '--debug'], ['status', '--json', '--debug'], ['proxy-check', '--debug'], ['proxy-check', '--json']]) {
      const r = await runWatched(args, withProxy);
      children.push(...r.children);
      outputs.push([`${args.join(' ')} stdout`, r.stdout], [`${args.join(' ')} stderr`, r.stderr]);
    }
    const scheme = await runWatched(['proxy-check', '--json'], { ...p.env, NO_PROXY: '' });
    outputs.push(['proxy-check (scheme-less HTTPS_PROXY) stdout', scheme.stdout]);
    assert.match(scheme.stdout, /proxyuser2:\[redacted\]@127\.0\.0\.1:9/, 'the scheme-less proxy is shown, its password not');
    const zip = path.join(dir, 'bundle.zip');
    const b = await runWatched(['support-bundle', zip], withProxy);
    assert.ok(fs.existsSync(zip), b.stderr);
    children.push(...b.children);

    for (const [where, text] of outputs) assertClean(where, text);
    assertClean('events.jsonl', eventsText(p));
    assertClean('state.json', stateText(p));
    const unz = tempDir('sec-unzip');
    execFileSync('unzip', ['-q', zip, '-d', unz]);
    const bundleFiles = fs.readdirSync(unz);
    assert.ok(bundleFiles.includes('environment.json') && bundleFiles.includes('config.json'));
    for (const n of bundleFiles) assertClean(`bundle ${n}`, fs.readFileSync(path.join(unz, n), 'utf8'));
    const envJson = fs.readFileSync(path.join(unz, 'environment.json'), 'utf8');
    assert.match(envJson, /proxyuser2:\[redacted\]@127\.0\.0\.1:9/);
    assert.match(envJson, /"DTA_HTTP_PROXY": "http:\/\/[^"@]*redacted\]@127\.0\.0\.1:9"/);
    for (let i = 0; i < 50 && !syslogText.includes('1000'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(syslogText.length > 0, 'the remote syslog collector got events');
    assertClean('the remote syslog sink', syslogText);

    // The platform log: the text on stdin, nothing secret in its argv or environment.
    const got = logger.received();
    assert.match(got, /STDIN:\n\[1000\]/, 'the event text arrives on stdin');
    assert.ok(!/ARGV: .*\[1000\]/.test(got), 'and not on argv');
    assertClean('the platform log (logger argv, environment, stdin)', got);
    assert.ok(!/DTA_SCEP_CHALLENGE|DTA_HTTP_PROXY|HTTPS_PROXY|DTA_ORG_URL/.test(got), 'no agent setting or proxy variable in a child\'s environment');

    // Every descendant seen during the passes.
    assert.ok(children.length > 0, 'children were seen');
    for (const c of children) {
      assertClean(`child ${c.pid} argv (${c.cmdline.slice(0, 80)})`, c.cmdline);
      assertClean(`child ${c.pid} environment (${c.cmdline.slice(0, 80)})`, c.environ);
      assert.ok(!/^(DTA_SCEP_CHALLENGE|DTA_HTTP_PROXY|HTTPS_PROXY)=/m.test(c.environ), `child ${c.cmdline}: ${c.environ}`);
    }
  });
});

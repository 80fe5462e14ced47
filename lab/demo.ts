/**
 * `npm run demo`: starts the lab org, enrolls an isolated demo profile with the real command line, checks
 * the certificate against the lab's mTLS endpoint and prints a short summary. Everything lives under
 * .demo/ in the working directory (never the user's own NSS database); run it twice and the second run
 * finds the device already enrolled.
 *
 * With MIT Kerberos installed (krb5-kdc, krb5-admin-server, krb5-user) and the kerberos module built, the demo
 * starts a throw-away KDC and the agent authenticates with real HTTP Negotiate. Without them it falls back
 * to the LAB-ONLY sign-in, which the agent accepts only from a lab org on this machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { electronBinary, installElectronBinary, runTrayApp } from './electron.js';
import { kerberosToolsAvailable, startKdc, type Kdc } from './kdc.js';
import { startLabOrg } from './org.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repo, 'bin', 'device-trust-agent.js');

async function kerberosModuleLoads(): Promise<boolean> {
  // A variable specifier: the module is optional (not built without libkrb5-dev), so tsc must not require it.
  const name = 'kerberos';
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

function agent(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** A tool the agent needs here, by name on PATH; undefined when it runs. */
function missingTool(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

async function main(): Promise<number> {
  if (missingTool('certutil', ['-H'])) {
    // The one part the demo cannot do without on Linux: the certificate goes into an NSS database with certutil.
    console.error('The demo needs the NSS tools (certutil, pk12util) to put the certificate where Chromium and Firefox find it,');
    console.error('and they are not installed. Install them, then run npm run demo again:');
    console.error('  Debian/Ubuntu: sudo apt install libnss3-tools    Fedora: sudo dnf install nss-tools');
    return 2;
  }
  const root = path.resolve(process.env.DTA_DEMO_DIR || '.demo');
  const home = path.join(root, 'profile');
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });

  const useKerberos = kerberosToolsAvailable() && (await kerberosModuleLoads()) && process.env.DTA_DEMO_LAB_SIGN_IN !== '1';
  let kdc: Kdc | undefined;
  const agentEnv: Record<string, string> = {
    HOME: home,
    XDG_STATE_HOME: path.join(home, '.local', 'state'),
    XDG_CONFIG_HOME: path.join(home, '.config'),
    DTA_MANAGED_CONFIG_DIR: path.join(root, 'managed-config'),
    // The demo's browser policy stays in .demo too, even when run as root.
    DTA_BROWSER_POLICY_DIRS: path.join(root, 'etc', 'chromium', 'policies', 'managed'),
    DTA_FIREFOX_POLICY_DIRS: path.join(root, 'etc', 'firefox', 'policies'),
    USER: 'alice',
  };
  if (useKerberos) {
    const kdcDir = path.join(root, 'kdc');
    fs.rmSync(kdcDir, { recursive: true, force: true });
    fs.mkdirSync(kdcDir, { recursive: true });
    kdc = await startKdc({ dir: kdcDir, users: ['alice'] });
    Object.assign(process.env, kdc.serverEnv());
    Object.assign(agentEnv, await kdc.kinit(kdc.users[0]!.principal), { DTA_DEVICE_KEYTAB: kdc.deviceKeytab, DTA_DEVICE_PRINCIPAL: kdc.devicePrincipal });
    console.log(`Kerberos: throw-away realm ${kdc.realm} on 127.0.0.1:${kdc.kdcPort}; signed in as ${kdc.users[0]!.principal}.`);
  } else {
    const why = !kerberosToolsAvailable() ? 'MIT Kerberos is not installed' : process.env.DTA_DEMO_LAB_SIGN_IN === '1' ? 'DTA_DEMO_LAB_SIGN_IN=1' : 'the kerberos module is not built';
    console.log(`Sign-in:  LAB-ONLY (${why}): accepted only from a lab org on this machine, never by a real org.`);
    console.log('          Real Kerberos: sudo apt install krb5-kdc krb5-admin-server krb5-user libkrb5-dev && npm rebuild kerberos');
  }

  const lab = await startLabOrg({ dataDir: path.join(root, 'lab'), allowLabSignIn: !useKerberos });
  const rootCa = path.join(root, 'lab-root-ca.pem');
  fs.writeFileSync(rootCa, lab.rootCaPem);
  // A config file in the profile, so `HOME=.demo/profile device-trust-agent status` works after the demo.
  const configFile = path.join(home, '.config', 'device-trust-agent', 'config.json');
  fs.mkdirSync(path.dirname(configFile), { recursive: true });
  fs.writeFileSync(configFile, JSON.stringify({ orgUrl: lab.orgUrl, tlsCaFile: rootCa, browserPolicyDirs: [path.join(root, 'chromium-policies', 'managed')], labSignIn: !useKerberos }, null, 2) + '\n');
  console.log(`Lab org:  ${lab.orgUrl} (IWA ${lab.iwaPrimaryUrl}, mTLS ${lab.mtlsUrl})`);
  console.log(`Profile:  ${home} (isolated: its own NSS database)\n`);

  try {
    console.log('$ device-trust-agent run --user');
    const run = await agent(['run', '--user'], agentEnv);
    process.stdout.write(run.stdout);
    process.stderr.write(run.stderr);
    if (run.code !== 0 && run.code !== 10) {
      console.error(`\nThe agent failed (exit ${run.code}).`);
      return 1;
    }
    if (run.code === 10) console.log('(second run: the device was already enrolled, so nothing was changed)');

    const status = await agent(['status', '--check', '--json'], agentEnv);
    const s = JSON.parse(status.stdout) as {
      state: string; deviceId: string; store: string;
      certificate?: { subject: string; issuer: string; notAfter: string; serialNumber: string; storeId: string };
      checks?: { mtls?: { ok: boolean; detail: string } };
      stateDir: string;
    };
    // A key in a PKCS#11 token is presented by the browsers, not by the agent's own TLS: then the lab's mTLS
    // endpoint judges the installed certificate directly (the same rules its handshake check applies).
    if (!s.checks?.mtls) {
      const state = JSON.parse(fs.readFileSync(path.join(s.stateDir, 'state.json'), 'utf8')) as { current?: { thumbprint: string } };
      const certFile = state.current ? path.join(s.stateDir, 'credentials', state.current.thumbprint, 'cert.pem') : undefined;
      if (certFile && fs.existsSync(certFile)) {
        const v = lab.judgeClientCertificate(fs.readFileSync(certFile, 'utf8'));
        s.checks = { ...s.checks, mtls: { ok: v.trusted, detail: v.trusted ? `the lab's mTLS endpoint trusts serial ${v.serialNumber}; browsers present the key from its token` : `not trusted (${v.reason})` } };
      }
    }
    console.log('\nSummary');
    console.log(`  state:        ${s.state}`);
    console.log(`  device:       ${s.deviceId}`);
    console.log(`  subject:      ${s.certificate?.subject ?? '-'}`);
    console.log(`  issuer:       ${s.certificate?.issuer ?? '-'}`);
    console.log(`  serial:       ${s.certificate?.serialNumber ?? '-'}`);
    console.log(`  valid until:  ${s.certificate?.notAfter ?? '-'}`);
    console.log(`  stored in:    ${s.store} as "${s.certificate?.storeId ?? '-'}"`);
    console.log(`  mTLS check:   ${s.checks?.mtls ? `${s.checks.mtls.ok ? 'TRUSTED' : 'NOT TRUSTED'} (${s.checks.mtls.detail})` : 'not run'}`);
    console.log(`  auth:         ${useKerberos ? 'Kerberos (HTTP Negotiate)' : 'LAB-ONLY sign-in'}`);
    console.log('\nTry: HOME=.demo/profile node bin/device-trust-agent.js status   ·   rm -rf .demo to start over');
    if (s.checks?.mtls?.ok) await trayApp(agentEnv);
    return s.checks?.mtls?.ok ? 0 : 1;
  } finally {
    await lab.close();
    await kdc?.stop();
  }
}

/**
 * The tray app and its dashboard on the demo profile, while the lab org runs. Electron downloads its binary
 * on first use; the demo asks for it only when someone is watching (a terminal, not CI).
 */
async function trayApp(env: Record<string, string>): Promise<void> {
  if (process.env.DTA_DEMO_APP === '0') return;
  let bin = electronBinary();
  if ('reason' in bin && process.stdout.isTTY && !process.env.CI) {
    console.log("\nTray app: fetching Electron's binary (npx install-electron)…");
    installElectronBinary();
    bin = electronBinary();
  }
  if ('reason' in bin) {
    console.log(`\nTray app: not started: no Electron binary. ${bin.reason}.`);
    console.log('          npm test proves the same dashboard in Chromium against the real IPC handlers.');
    return;
  }
  // The shell and the dashboard are built only now: esbuild's binary is an optional dependency, so a quick start
  // with --omit=optional builds (and needs) only what the command line uses.
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: repo, stdio: 'inherit' });
  if (build.status !== 0) {
    console.log('\nTray app: not started: the dashboard could not be built (npm run build failed above; esbuild is an optional');
    console.log('          dependency: npm install without --omit=optional).');
    return;
  }
  console.log('\nTray app: running on the demo profile; the dashboard opens. Quit from the tray menu to end the demo.');
  await runTrayApp(bin.path, ['--show'], { ...process.env, ...env });
}

process.exitCode = await main();

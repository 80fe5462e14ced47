/**
 * Bench section: the agent's SCEP enrollment against Debian's `scepclient` (micromdm's reference Go client),
 * the same enrollment against the same `scepserver` on loopback, interleaved, median of 20 each. Both generate
 * an RSA-2048 key, send GetCACert (pinned), GetCACaps and a PKCSReq with the challenge, and verify and decrypt
 * the answer. Prints the ratio, with each process's peak RSS beside its time; asserts nothing (timings are not tests).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpClient } from '../../src-main/core/net/http.js';
import { generateLocalKey, privateKeyPem } from '../../src-main/core/keys/keys.js';
import { ScepClient } from '../../src-main/core/scep/client.js';
import { Trace } from '../../src-main/base/trace.js';
import { AGENT_BIN, makeProfile, tempDir } from '../support/agent.js';
import { SCEPCLIENT, scepUnavailable, startScepServer } from '../support/scep.js';
import { median, runMeasured, table } from './util.js';

const N = 20;
const CHALLENGE = 'bench-challenge';
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const run = runMeasured;

/** The agent's SCEP enrollment inside a fresh Node process: includes Node's start-up and module loading. */
const ONE_SHOT = `
import fs from 'node:fs';
const [url, fp, challenge, cn, dir] = process.argv.slice(1);
const { HttpClient } = await import(${JSON.stringify(path.join(DIST, 'src-main/core/net/http.js'))});
const { generateLocalKey, privateKeyPem } = await import(${JSON.stringify(path.join(DIST, 'src-main/core/keys/keys.js'))});
const { ScepClient } = await import(${JSON.stringify(path.join(DIST, 'src-main/core/scep/client.js'))});
const { Trace } = await import(${JSON.stringify(path.join(DIST, 'src-main/base/trace.js'))});
const http = new HttpClient({ timeoutMs: 15000 });
const client = new ScepClient({ http, url, caFingerprint: fp, allowWeak: false, trace: new Trace(undefined), pendingWaitMs: 0 });
const [key] = await Promise.all([generateLocalKey('RSA-2048'), client.connect()]);
fs.writeFileSync(dir + '/key.pem', privateKeyPem(key), { mode: 0o600 });
const r = await client.enroll({ key, subject: 'CN=' + cn, challenge });
fs.writeFileSync(dir + '/cert.pem', r.certificatePem);
await http.close();
`;

function nodeOneShot(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', ONE_SHOT, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(0) : reject(new Error(`one-shot enrollment failed: ${err}`))));
  });
}

export default async function scepBench(): Promise<void> {
  const why = scepUnavailable();
  if (why) {
    console.log(why);
    return;
  }
  // -allowrenew 0: the CA allows any number of certificates per CN, so every sample is a plain enrollment.
  const server = await startScepServer({ challenge: CHALLENGE, allowRenewDays: 0 });
  const http = new HttpClient({ timeoutMs: 15000 });
  /** Peak RSS (MiB) of each whole process: scepclient and the two CLI programs. */
  const peaks = { scepclient: [] as number[], cli: [] as number[], cliHeadless: [] as number[] };
  const samples = { scepclient: [] as number[], inProcess: [] as number[], oneShot: [] as number[], cli: [] as number[], cliHeadless: [] as number[], refProtocol: [] as number[], agentProtocol: [] as number[] };
  const headless = path.join(DIST, '..', 'dist', 'headless', 'device-trust-agent.mjs');
  try {
    for (let i = 0; i < N; i++) {
      // scepclient: a fresh directory each time (it writes key, CSR and certificate to files, as the agent does).
      const dir = tempDir('scepclient');
      const ref = await run(SCEPCLIENT!, ['-server-url', server.url, '-challenge', CHALLENGE, '-ca-fingerprint', server.caFingerprint,
        '-private-key', path.join(dir, 'key.pem'), '-certificate', path.join(dir, 'cert.pem'), '-cn', `ref-${i}`], { cwd: dir });
      samples.scepclient.push(ref.ms);
      peaks.scepclient.push(ref.peakMiB);
      if (ref.code !== 0 || !fs.existsSync(path.join(dir, 'cert.pem'))) throw new Error(`scepclient failed: ${ref.out}`);

      const mine = tempDir('agent-scep');
      let t0 = performance.now();
      // As the agent does: the key is generated while GetCACert and GetCACaps are on the wire.
      const client = new ScepClient({ http, url: server.url, caFingerprint: server.caFingerprint, allowWeak: false, trace: new Trace(undefined), pendingWaitMs: 0 });
      const [key] = await Promise.all([generateLocalKey('RSA-2048'), client.connect()]);
      fs.writeFileSync(path.join(mine, 'key.pem'), privateKeyPem(key), { mode: 0o600 });
      const issued = await client.enroll({ key, subject: `CN=agent-${i}`, challenge: CHALLENGE });
      fs.writeFileSync(path.join(mine, 'cert.pem'), issued.certificatePem);
      samples.inProcess.push(performance.now() - t0);

      const once = tempDir('agent-once');
      t0 = performance.now();
      await nodeOneShot([server.url, server.caFingerprint, CHALLENGE, `once-${i}`, once]);
      samples.oneShot.push(performance.now() - t0);

      // Protocol only: both start from a key already generated (the key-generation lottery taken out).
      const pre = await generateLocalKey('RSA-2048');
      const refDir = tempDir('scepclient-key');
      fs.writeFileSync(path.join(refDir, 'key.pem'), pre.privateKey.export({ format: 'pem', type: 'pkcs1' }), { mode: 0o600 });
      t0 = performance.now();
      const refKeyed = await run(SCEPCLIENT!, ['-server-url', server.url, '-challenge', CHALLENGE, '-ca-fingerprint', server.caFingerprint,
        '-private-key', path.join(refDir, 'key.pem'), '-certificate', path.join(refDir, 'cert.pem'), '-cn', `refk-${i}`], { cwd: refDir });
      samples.refProtocol.push(performance.now() - t0);
      if (refKeyed.code !== 0 || !fs.existsSync(path.join(refDir, 'cert.pem'))) throw new Error(`scepclient (existing key) failed: ${refKeyed.out}`);
      const pre2 = await generateLocalKey('RSA-2048');
      t0 = performance.now();
      const c2 = new ScepClient({ http, url: server.url, caFingerprint: server.caFingerprint, allowWeak: false, trace: new Trace(undefined), pendingWaitMs: 0 });
      const got = await c2.enroll({ key: pre2, subject: `CN=agentk-${i}`, challenge: CHALLENGE });
      fs.writeFileSync(path.join(mine, 'cert2.pem'), got.certificatePem);
      samples.agentProtocol.push(performance.now() - t0);

      const p = makeProfile({ orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null', extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE } });
      const r = await run(process.execPath, [AGENT_BIN, 'run'], { env: { PATH: process.env.PATH, ...p.env } });
      samples.cli.push(r.ms);
      peaks.cli.push(r.peakMiB);
      if (r.code !== 0) throw new Error(`agent run failed: ${r.out}`);

      // The shipped headless program (esbuild bundle): what a scheduled task starts.
      if (fs.existsSync(headless)) {
        const h = makeProfile({ orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null', extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE } });
        const hr = await run(process.execPath, [headless, 'run'], { env: { PATH: process.env.PATH, ...h.env } });
        samples.cliHeadless.push(hr.ms);
        peaks.cliHeadless.push(hr.peakMiB);
        if (hr.code !== 0) throw new Error(`headless agent run failed: ${hr.out}`);
      }
    }
  } finally {
    await http.close();
    await server.close();
  }
  const ref = median(samples.scepclient);
  const row = (name: string, xs: number[], peak?: number[]) => [name, median(xs), Math.min(...xs), Math.max(...xs), median(xs) / ref, peak ? Math.max(...peak) : '—'];
  table(`SCEP enrollment against the same scepserver on loopback, interleaved (ms; median of ${N}; peak RSS of the whole process, GNU time)`, ['what', 'median', 'min', 'max', 'vs scepclient', 'peak RSS MiB'], [
    row('scepclient (Go reference client, one process per enrollment)', samples.scepclient, peaks.scepclient),
    row('agent SCEP client, in a running agent (keygen + GetCACert + GetCACaps + PKCSReq)', samples.inProcess),
    row('agent SCEP client, fresh Node process per enrollment', samples.oneShot),
    row('agent CLI `run` end to end (+ state, NSS install, browser policy)', samples.cli, peaks.cli),
    ...(samples.cliHeadless.length ? [row('headless program `run` end to end (dist/headless, what tasks start)', samples.cliHeadless, peaks.cliHeadless)] : []),
  ]);
  const refP = median(samples.refProtocol);
  table(`Protocol only, key generated beforehand (ms; median of ${N})`, ['what', 'median', 'min', 'max', 'vs scepclient'], [
    ['scepclient, existing key file', refP, Math.min(...samples.refProtocol), Math.max(...samples.refProtocol), 1],
    ['agent SCEP client, in a running agent', median(samples.agentProtocol), Math.min(...samples.agentProtocol), Math.max(...samples.agentProtocol), median(samples.agentProtocol) / refP],
  ]);
  const goal = (what: string, r: number, g: number) => console.log(`${what}: ${r.toFixed(2)}× scepclient (goal ≤ ${g}×: ${r <= g ? 'met' : 'NOT met'})`);
  if (samples.cliHeadless.length) goal('CLI enrollment, headless program', median(samples.cliHeadless) / ref, 1.5);
  goal('CLI enrollment, source checkout', median(samples.cli) / ref, 1.5);
  goal('in-process enrollment, key generated in the window', median(samples.inProcess) / ref, 1.0);
  // Against scepclient with an existing key too (it was compared with scepclient's keygen + protocol before).
  goal('in-process enrollment, key prepared ahead of the window (protocol only)', median(samples.agentProtocol) / refP, 1.0);
  const ratio = median(samples.inProcess) / ref;
  console.log(`ratio agent/scepclient (same enrollment, agent running): ${ratio.toFixed(2)} — ${ratio <= 1 ? 'goal met: the agent is no slower' : 'goal NOT met: the agent is slower'}`);
  console.log('RSA-2048 key generation dominates both and varies with the primes found; the other rows show what Node start-up and the NSS install add.');
  console.log('\nFindings (CLI `run` with SCEP; --cpu-prof of the source checkout, --debug step timings, strace -f):');
  for (const [where, what] of FINDINGS) console.log(`- ${where}: ${what}`);
}

const FINDINGS = [
  ['before the exchange', "Node start-up and the module graph of `run` are most of it: in a --cpu-prof of the source checkout about half the profile is ESM/CJS loading (undici alone ~190 ms, @peculiar/x509 ~130 ms on this loaded machine), then the TLS context (~50–110 ms) and the proxy decision (gsettings list-recursively, a child process, ~30–50 ms)"],
  ['@peculiar/x509', 'with reflect-metadata and its DI container it takes 150–800 ms to import in a fresh Node (this 2-core machine, shared): no longer loaded at start-up: the pass loads it before its first request when one will be made (a pass with nothing to do does not), and a ScepClient used on its own starts loading it with GetCACert; key usage and basic constraints are read with @peculiar/asn1-x509 (kept)'],
  ['device key', 'RSA-2048 in the NSS software token is 150–350 ms (prime search plus four SQLite write transactions): made on a libuv worker thread while GetCACert/GetCACaps were on the wire it left the step, but a renewal hung once under load in CI (see the enrollment section): not kept, made when needed'],
  ['TLS trust anchors', "the 145 bundled roots plus tlsCaFile were parsed from PEM for the context (≈75–110 ms in a fresh process here); Node's own root store plus the extra anchors gives the same anchors in ≈40–60 ms (kept; the exact list is still built when NODE_EXTRA_CA_CERTS or --use-openssl-ca changes Node's store)"],
  ['after the exchange', 'the certificate check, the NSS install (in-process PKCS#11, no child process), state and event writes are ~60–100 ms; the browser policy is rewritten only when its content changes (already so)'],
  ['not changed here (start-up is the lead\'s)', 'the rest of the gap to scepclient (a static Go binary: ~1 ms start-up, no module loading) is Node start-up and module loading; what would pay: loading undici and the proxy/PAC modules only for the first request (they are needed before the exchange, so only bundling and a code cache help), and the headless bundle for `run` (its row above)'],
];

/**
 * Device key in a PKCS#11 token, in-process: key generation + CSR + filing the certificate with the key,
 * for the NSS software token and for a TPM 2.0 token (swtpm behind tpm2-abrmd). Goal for the software token:
 * ≤ 50 ms (the pk12util/openssl store step it replaces took 659 ms of a 675 ms key + CSR + store).
 * And the TPM token's one-time set-up a user's first enrollment pays, without and with the storage primary key
 * `install --device` creates once per machine (issue 27).
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCsr, keyInStore, storeCrypto, webCryptoKeyPair } from '../../src-main/core/keys/keys.js';
import { x509 } from '../../src-main/core/certificates/x509.js';
import { ensureSharedPrimary, LinuxKeyStore, persistentHandles, provisionTpmToken, SHARED_PRIMARY_HANDLE, TPM_TOKEN_LABEL } from '../../src-main/platform/linux-keys.js';
import { tempDir } from '../support/agent.js';
import { startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';
import { median, table, time } from './util.js';

async function cycle(ks: LinuxKeyStore): Promise<{ gen: number; csr: number; install: number; cpu: number; remove: () => Promise<void> }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const key = await keyInStore(ks, await ks.generate('P-256', 'device-trust-key'));
  const t1 = performance.now();
  await createCsr(key, 'CN=bench-device');
  const t2 = performance.now();
  // A certificate for the key (self-signed by it: the store does not care who issued it).
  const { keys, signingAlgorithm } = await webCryptoKeyPair(key);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=bench-device', keys, signingAlgorithm, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) }, storeCrypto);
  const t3 = performance.now();
  await ks.attach(key.storeId!, { certPem: cert.toString('pem'), chainPem: [], label: 'device-trust-bench' });
  const t4 = performance.now();
  // CPU time of this process (the token runs in it): what is left of the wall time is waiting, mostly the NSS
  // database's sqlite commits (fdatasync) and, for the TPM, the simulator behind tpm2-abrmd.
  const c = process.cpuUsage(c0);
  return { gen: t1 - t0, csr: t2 - t1, install: t4 - t3, cpu: (c.user + c.system) / 1000, remove: () => ks.remove(key.storeId!) };
}

async function measure(ks: LinuxKeyStore, n: number): Promise<{ open: number; gen: number; csr: number; install: number; total: number; cpu: number }> {
  const t0 = performance.now();
  await ks.info();
  const open = performance.now() - t0;
  const rows: { gen: number; csr: number; install: number; cpu: number }[] = [];
  await time(n, async () => {
    const c = await cycle(ks);
    rows.push(c);
    await c.remove();
  });
  const gen = median(rows.map((r) => r.gen));
  const csr = median(rows.map((r) => r.csr));
  const install = median(rows.map((r) => r.install));
  return { open, gen, csr, install, total: median(rows.map((r) => r.gen + r.csr + r.install)), cpu: median(rows.map((r) => r.cpu)) };
}

/** Runs `fn` with process.env pointing at `tpm` (tpm2-pkcs11, tpm2_ptool and tpm2-tools read it), set and restored key
 * by key: process.env must stay the real environment, which tpm2-pkcs11 (loaded into this process) reads. */
async function withTpmEnv<T>(tpm: SoftTpm, fn: () => Promise<T> | T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(tpm.env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, tpm.env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** One user's first-enrollment token set-up in a fresh store: its time and the persistent handles it added. */
function tokenSetup(dir: string, i: number): { ms: number; added: string[] } {
  const store = path.join(dir, `store-${i}`);
  fs.mkdirSync(store, { recursive: true });
  const before = persistentHandles(process.env);
  const t0 = performance.now();
  provisionTpmToken(store);
  const ms = performance.now() - t0;
  return { ms, added: persistentHandles(process.env).filter((h) => !before.includes(h)) };
}

/** The same set-up as the agent did it before issue 27: one tpm2_ptool process per step, tpm2_getcap twice. */
function tokenSetupAsBefore(dir: string, i: number): number {
  const store = path.join(dir, `before-${i}`);
  fs.mkdirSync(store, { recursive: true });
  const run = (args: string[]) => execFileSync('tpm2_ptool', args, { env: { ...process.env, TPM2TOOLS_TCTI: process.env.TPM2_PKCS11_TCTI }, encoding: 'utf8' });
  const t0 = performance.now();
  run(['listprimaries', '--path', store]);
  persistentHandles(process.env);
  const pid = /id:\s*(\d+)/.exec(run(['init', `--primary-handle=${SHARED_PRIMARY_HANDLE}`, '--path', store]))![1]!;
  run(['addtoken', `--pid=${pid}`, `--label=${TPM_TOKEN_LABEL}`, '--userpin=', `--sopin=${crypto.randomBytes(12).toString('hex')}`, '--path', store]);
  return performance.now() - t0;
}

export default async function bench(): Promise<void> {
  const home = tempDir('bench-keys');
  const soft = new LinuxKeyStore({ nssDbDir: path.join(home, '.pki', 'nssdb'), home, skipTpm: true, env: {} });
  const s = await measure(soft, 15);
  await soft.close();
  let t: Awaited<ReturnType<typeof measure>> | undefined;
  /** The TPM token's one-time set-up a user's first enrollment pays: on a fresh TPM, and after install --device. */
  let without: number | undefined;
  let withPrimary: number | undefined;
  let asBefore: number | undefined;
  let install: ReturnType<typeof ensureSharedPrimary> | undefined;
  /** What the WITH rows added to the TPM (nothing, when the install-time primary was used). */
  let addedWith: string[] = [];
  let why = tpmUnavailable();
  const N = 5;
  if (!why) {
    const dir = tempDir('bench-tpm-setup');
    // Two fresh TPMs, measured in turns (so that the machine's load weighs on both rows alike): on `bare` nothing is
    // persisted, so each first token set-up creates the storage primary (evicted again after each run); `installed`
    // had the install-time step (install --device) first.
    const bare = await startSoftTpm();
    const installed = await startSoftTpm();
    try {
      install = await withTpmEnv(installed, () => ensureSharedPrimary({ skipTpm: false, env: process.env }));
      const rows = { without: [] as number[], with: [] as number[], asBefore: [] as number[] };
      for (let i = 0; i < N; i++) {
        await withTpmEnv(bare, () => {
          const r = tokenSetup(dir, i);
          rows.without.push(r.ms);
          for (const h of r.added) execFileSync('tpm2_evictcontrol', ['-C', 'o', '-c', h], { env: { ...process.env, TPM2TOOLS_TCTI: process.env.TPM2_PKCS11_TCTI }, stdio: 'ignore' });
        });
        await withTpmEnv(installed, () => {
          const r = tokenSetup(dir, 100 + i);
          rows.with.push(r.ms);
          addedWith.push(...r.added);
          rows.asBefore.push(tokenSetupAsBefore(dir, i));
        });
      }
      without = median(rows.without);
      withPrimary = median(rows.with);
      asBefore = median(rows.asBefore);
      // The key cycle, in a store whose token set-up the open row includes.
      await withTpmEnv(installed, async () => {
        const home2 = path.join(dir, 'home');
        const ks = new LinuxKeyStore({ nssDbDir: path.join(home2, '.pki', 'nssdb'), home: home2, skipTpm: false, env: { ...process.env, TPM2_PKCS11_STORE: path.join(home2, '.tpm2_pkcs11') } });
        try {
          t = await measure(ks, 5);
          const info = await ks.info();
          if (info.protection !== 'tpm') {
            why = info.reason;
            t = undefined;
          }
        } finally {
          await ks.close();
        }
      });
    } finally {
      await bare.stop();
      await installed.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  fs.rmSync(home, { recursive: true, force: true });
  const v = (x: number | undefined) => (x === undefined ? 'n/a' : x);
  table('Device key in a PKCS#11 token, in-process (median ms; P-256)', ['step', 'NSS software token', 'TPM 2.0 (swtpm)', 'goal (software)'], [
    ['open module + token (once per process; the TPM column includes the token set-up, after install --device)', s.open, v(t?.open), '—'],
    ['C_GenerateKeyPair', s.gen, v(t?.gen), '—'],
    ['CSR signed by the token', s.csr, v(t?.csr), '—'],
    ['certificate filed with the key (C_CreateObject)', s.install, v(t?.install), '—'],
    ['keygen + CSR + store install', s.total, v(t?.total), '≤ 50'],
    ['CPU time in this process (whole cycle, test certificate included)', s.cpu, v(t?.cpu), '—'],
  ]);
  if (why) console.log(`TPM column: ${why}`);
  // Met when the first enrollment after install --device created no primary: it added no persistent handle.
  const excluded = install?.outcome === 'created' && withPrimary !== undefined && addedWith.length === 0;
  const goal = 'report; set up once at install time';
  table(`TPM token set-up of a user's first enrollment (swtpm behind tpm2-abrmd; median of ${N}, ms)`, ['step', 'ms', 'goal', 'met'], [
    ['first enrollment\'s token set-up WITHOUT the install-time primary (fresh TPM: creates and persists the storage primary)', v(without), goal, '—'],
    ['install --device: the shared storage primary, once per machine (tpm2_createprimary + tpm2_evictcontrol)', v(install?.ms), goal, install ? install.outcome : 'n/a'],
    ['first enrollment\'s token set-up WITH the install-time primary (init --primary-handle + addtoken, one Python)', v(withPrimary), goal, withPrimary === undefined ? 'n/a' : excluded ? 'met' : 'NOT met'],
    ['  the WITH row as the agent did it before (a tpm2_ptool process per step, tpm2_getcap twice)', v(asBefore), '—', '—'],
  ]);
  if (withPrimary !== undefined && !excluded) console.log(`NOT met: the WITH rows added persistent handles ${addedWith.join(', ') || '(none)'}; the install-time step said: ${install?.outcome} ${install?.detail}`);
  console.log(`Load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs. NSS: each key generation is four sqlite write transactions in key4.db (two objects, then CKA_ID set on each), each with several fdatasync calls; the wall time beyond the CPU time is those commits. The TLS handshake by key location is in the tls-keys section. TPM set-up: on swtpm creating the RSA storage primary is cheap (0.1–0.2 s), so WITH and WITHOUT differ little here; on a real TPM chip it is an RSA prime search of seconds, which install --device now pays once per machine instead of each user. What each user still pays: one Python start importing tpm2_ptool and tpm2-pytss (about 0.4 s; it was one per step, three, before), two sealed objects, and addtoken's PSS probe, which creates an RSA key in the TPM for every token (0.3–0.7 s on swtpm, seconds on a chip; tpm2-pkcs11 1.9 has no way to skip it).`);
}

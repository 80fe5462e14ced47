/**
 * Device key in a PKCS#11 token, in-process: key generation + CSR + filing the certificate with the key,
 * for the NSS software token and for a TPM 2.0 token (swtpm behind tpm2-abrmd). Goal for the software token:
 * ≤ 50 ms (the pk12util/openssl store step it replaces took 659 ms of a 675 ms key + CSR + store).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCsr, keyInStore, storeCrypto, webCryptoKeyPair } from '../../src-main/core/keys/keys.js';
import { x509 } from '../../src-main/core/certificates/x509.js';
import { LinuxKeyStore, provisionTpmToken } from '../../src-main/platform/linux-keys.js';
import { tempDir } from '../support/agent.js';
import { startSoftTpm, tpmUnavailable } from '../support/tpm.js';
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

export default async function bench(): Promise<void> {
  const home = tempDir('bench-keys');
  const soft = new LinuxKeyStore({ nssDbDir: path.join(home, '.pki', 'nssdb'), home, skipTpm: true, env: {} });
  const s = await measure(soft, 15);
  await soft.close();
  let t: Awaited<ReturnType<typeof measure>> | undefined;
  /** The TPM token's one-time set-up (tpm2_ptool: storage primary key + token), which the first TPM enrollment pays. */
  let setup: number | undefined;
  let why = tpmUnavailable();
  if (!why) {
    const tpm = await startSoftTpm();
    const saved = { ...process.env };
    Object.assign(process.env, tpm.env);
    const home2 = tempDir('bench-tpm');
    const ks = new LinuxKeyStore({ nssDbDir: path.join(home2, '.pki', 'nssdb'), home: home2, skipTpm: false, env: { ...process.env, TPM2_PKCS11_STORE: path.join(home2, '.tpm2_pkcs11') } });
    try {
      t = await measure(ks, 5);
      // Alone, in a fresh store, as a device's first enrollment pays it (the shared primary key exists by now).
      const fresh = path.join(home2, 'fresh-store');
      fs.mkdirSync(fresh, { recursive: true });
      const s0 = performance.now();
      provisionTpmToken(fresh);
      setup = performance.now() - s0;
      const info = await ks.info();
      if (info.protection !== 'tpm') {
        why = info.reason;
        t = undefined;
      }
    } finally {
      await ks.close();
      process.env = saved;
      await tpm.stop();
      fs.rmSync(home2, { recursive: true, force: true });
    }
  }
  fs.rmSync(home, { recursive: true, force: true });
  const v = (x: number | undefined) => (x === undefined ? 'n/a' : x);
  table('Device key in a PKCS#11 token, in-process (median ms; P-256)', ['step', 'NSS software token', 'TPM 2.0 (swtpm)', 'goal (software)'], [
    ['open module + token (once per process; the TPM column includes the token set-up)', s.open, v(t?.open), '—'],
    ['TPM token set-up alone (tpm2_ptool init/addtoken; once per device)', 'n/a', v(setup), 'report'],
    ['C_GenerateKeyPair', s.gen, v(t?.gen), '—'],
    ['CSR signed by the token', s.csr, v(t?.csr), '—'],
    ['certificate filed with the key (C_CreateObject)', s.install, v(t?.install), '—'],
    ['keygen + CSR + store install', s.total, v(t?.total), '≤ 50'],
    ['CPU time in this process (whole cycle, test certificate included)', s.cpu, v(t?.cpu), '—'],
  ]);
  if (why) console.log(`TPM column: ${why}`);
  console.log(`Load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs. NSS: each key generation is four sqlite write transactions in key4.db (two objects, then CKA_ID set on each), each with several fdatasync calls; the wall time beyond the CPU time is those commits. The TLS handshake by key location is in the tls-keys section.`);
}

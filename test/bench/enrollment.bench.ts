/**
 * Bench section: where enrollment time goes. Key generation (Node native vs node-forge), CSR, each
 * network step and the store install, for P-256 and RSA-2048, measured against the lab org on loopback.
 * Prints tables; asserts nothing (timings are not tests).
 */
import fs from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { runPass } from '../../src-main/core/enrollment/pass.js';
import { loadConfig } from '../../src-main/core/config.js';
import { createCsr, generateLocalKey, type KeyAlgorithm } from '../../src-main/core/keys/keys.js';
import { Trace } from '../../src-main/base/trace.js';
import { startLabOrg } from '../../lab/org.js';
import { tempDir } from '../support/agent.js';
import { createLinuxPlatform } from '../../src-main/platform/linux.js';
import { median, table, time } from './util.js';
import { testContext } from '../support/context.js';

async function keygenTable(): Promise<void> {
  const nativeEc = await time(50, () => generateLocalKey('P-256'));
  const nativeRsa = await time(10, () => generateLocalKey('RSA-2048'));
  const forgeRsa = await time(5, () => new Promise((res, rej) => forge.pki.rsa.generateKeyPair({ bits: 2048, workers: -1 }, (e, k) => (e ? rej(e) : res(k)))));
  const keyEc = await generateLocalKey('P-256');
  const keyRsa = await generateLocalKey('RSA-2048');
  const csrEc = await time(50, () => createCsr(keyEc, 'CN=bench'));
  const csrRsa = await time(20, () => createCsr(keyRsa, 'CN=bench'));
  table('Key generation and CSR (median ms; n = samples)', ['operation', 'P-256', 'RSA-2048', 'n'], [
    ['keygen: Node native crypto (default)', median(nativeEc), median(nativeRsa), '50 / 10'],
    ['keygen: node-forge (pure JS)', NaN, median(forgeRsa), '- / 5'],
    ['CSR: @peculiar/x509 over WebCrypto', median(csrEc), median(csrRsa), '50 / 20'],
  ]);
  console.log('node-forge has no elliptic-curve key generation; for RSA it is the slower path, so native crypto is the default.');
}

async function enrollmentTable(): Promise<void> {
  const lab = await startLabOrg({ allowLabSignIn: true });
  const dir = tempDir('bench');
  const rootCa = path.join(dir, 'root.pem');
  fs.writeFileSync(rootCa, lab.rootCaPem);
  const runs = 5;
  const perAlg: Record<KeyAlgorithm, Map<string, number[]>> = { 'P-256': new Map(), 'RSA-2048': new Map() };
  const totals: Record<KeyAlgorithm, number[]> = { 'P-256': [], 'RSA-2048': [] };
  // The network + server parts of a pass: each exchange with the org or IWA, as the client waits for it.
  const NETWORK = /^(Discover the org|Get a device token|Get a user token|Ask the org to|Check revocation)/;
  const ratios: Record<KeyAlgorithm, number[]> = { 'P-256': [], 'RSA-2048': [] };
  try {
    for (const alg of ['P-256', 'RSA-2048'] as const) {
      const home = path.join(dir, alg);
      const env = { HOME: home, DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed'), USER: 'alice' };
      const loaded = loadConfig({ env, cli: { orgUrl: lab.orgUrl, tlsCaFile: rootCa, keyAlgorithm: alg, labSignIn: 'true', browserPolicyDirs: [path.join(home, 'policy')] } });
      for (let i = 0; i < runs; i++) {
        const trace = new Trace(undefined);
        const t0 = performance.now();
        await runPass({ loaded, platform: createLinuxPlatform(loaded.config), context: testContext(), side: 'user', force: true, trace });
        totals[alg].push(performance.now() - t0);
        const network = trace.steps.filter((s) => NETWORK.test(s.name)).reduce((a, s) => a + s.ms, 0);
        ratios[alg].push((performance.now() - t0) / network);
        for (const s of trace.steps) {
          const name = s.name.replace(/ \((P-256|RSA-2048)\)/, '').replace(/certificate [0-9a-f]+/, 'certificate').replace(/ into the .*/, ' into the store');
          perAlg[alg].set(name, [...(perAlg[alg].get(name) ?? []), s.ms]);
        }
      }
    }
  } finally {
    await lab.close();
  }
  const names = [...new Set([...perAlg['P-256'].keys(), ...perAlg['RSA-2048'].keys()])];
  table(`Enrollment against the lab org on loopback, lab sign-in (median ms over ${runs} forced enrollments)`, ['step', 'P-256', 'RSA-2048'], [
    ...names.map((n) => [n, median(perAlg['P-256'].get(n) ?? []), median(perAlg['RSA-2048'].get(n) ?? [])]),
    ['total (one pass)', median(totals['P-256']), median(totals['RSA-2048'])],
  ]);
  for (const alg of ['P-256', 'RSA-2048'] as const) {
    const r = median(ratios[alg]);
    console.log(`whole loopback enrollment / its network + server parts (${alg}): ${r.toFixed(2)}× (goal ≤ 1.5×: ${r <= 1.5 ? 'met' : 'NOT met'}); one pass ${median(totals[alg]).toFixed(0)} ms`);
  }
  // In-process (the lab org shares this process): the run pass's own peak as a program is in the startup section.
  console.log(`Peak RSS of this bench process (lab org + ${runs * 2} passes in it): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
}

export default async function bench(): Promise<void> {
  await keygenTable();
  await enrollmentTable();
}

import { childEnv } from '../base/exec.js';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';

/**
 * TPM key attestation on Linux (docs/PROTOCOL.md §11): a small Python helper (helpers/tpm-attest.py, on
 * python3-tpm2-pytss) run as a child process, JSON lines over stdin/stdout, kept alive across the two round trips with the org so the attestation
 * key (AK) it makes under the endorsement key never leaves the TPM. It finds the device key in the tpm2-pkcs11
 * store by CKA_ID and loads its SRK-wrapped blobs in memory: nothing is written to any file.
 */

import { helperScript } from './helper-scripts.js';
import { AttestationUnavailable, type AskChallenge, type KeyAttestationEvidence } from './keystore.js';
// The attestation contract lives with the key store interface (core sees only interfaces).
export { AttestationUnavailable, type AskChallenge, type AttestationChallenge, type KeyAttestationEvidence } from './keystore.js';

const PYTHONS = ['/usr/bin/python3', 'python3'];
const STEP_DEADLINE_MS = 30_000;

/** The python3 that has tpm2_pytss (the distribution's, normally), or why there is none. */
export function attestationPython(): { python: string } | { reason: string } {
  // Test hook (tpm-attest.test.ts): the python3 to use, e.g. one without tpm2-pytss on its path.
  const pythons = process.env.DTA_TEST_ATTEST_PYTHON ? [process.env.DTA_TEST_ATTEST_PYTHON] : PYTHONS;
  for (const p of pythons) {
    if (p.startsWith('/') && !fs.existsSync(p)) continue;
    const r = spawnSync(p, ['-c', 'import tpm2_pytss, yaml, cryptography'], { stdio: 'ignore', timeout: 10_000, env: childEnv() });
    if (r.status === 0) return { python: p };
  }
  const any = pythons.some((p) => spawnSync(p, ['-c', '0'], { stdio: 'ignore', timeout: 5_000, env: childEnv() }).status === 0);
  return { reason: any ? 'python3-tpm2-pytss is not installed (apt install python3-tpm2-pytss)' : 'python3 is not installed (apt install python3 python3-tpm2-pytss)' };
}

/**
 * Runs both rounds: the helper makes an AK under the EK and reads the EK certificate; `ask` gets the org's
 * challenge; the helper activates the credential and certifies the device key over the nonce.
 */
export async function attestTpmKey(opts: { store: string; keyId: string; tokenLabel: string; env: NodeJS.ProcessEnv; ask: AskChallenge }): Promise<KeyAttestationEvidence> {
  const py = attestationPython();
  if ('reason' in py) throw new AttestationUnavailable('TPM_ATTEST_UNAVAILABLE', py.reason);
  let helper: string;
  try {
    helper = helperScript('tpm-attest.py');
  } catch (e) {
    throw new AttestationUnavailable('TPM_ATTEST_UNAVAILABLE', (e as Error).message);
  }
  const child = spawn(py.python, ['-c', helper], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv({ TSS2_LOG: 'all+none', PYTHONDONTWRITEBYTECODE: '1' }, opts.env) });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString('utf8'); });
  child.stdin.on('error', () => undefined);
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const step = async (req: object, what: string): Promise<Record<string, unknown>> => {
    child.stdin.write(`${JSON.stringify(req)}\n`);
    let timer: NodeJS.Timeout | undefined;
    const line = await Promise.race([
      lines.next(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new AttestationUnavailable('TPM_ATTEST_TIMEOUT', `the TPM attestation helper did not answer within ${STEP_DEADLINE_MS / 1000} s (${what})`)), STEP_DEADLINE_MS); }),
    ]).finally(() => clearTimeout(timer));
    if (line.done) {
      await exited;
      throw new AttestationUnavailable('TPM_ATTEST_FAILED', `the TPM attestation helper stopped (${what})${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`);
    }
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line.value) as Record<string, unknown>;
    } catch {
      throw new AttestationUnavailable('TPM_ATTEST_FAILED', `the TPM attestation helper answered something that is not JSON (${what})`);
    }
    if (msg.ok !== true) throw new AttestationUnavailable(String(msg.code ?? 'TPM_ATTEST_FAILED'), String(msg.message ?? 'the TPM attestation helper failed'));
    return msg;
  };
  try {
    const begun = await step({ op: 'begin' }, 'creating the attestation key');
    const challenge = await opts.ask({ ekCert: String(begun.ekCert), akPublic: String(begun.akPublic) });
    const done = await step({ op: 'finish', ...challenge, store: opts.store, keyId: opts.keyId, token: opts.tokenLabel }, 'certifying the device key');
    return { challengeId: challenge.challengeId, secret: String(done.secret), tpmtPublic: String(done.tpmtPublic), certifyInfo: String(done.certifyInfo), signature: String(done.signature) };
  } finally {
    child.stdin.end();
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  }
}


/**
 * The lab org's TPM attestation verifier against forgeries made with a real TPM (swtpm with EK certificates from
 * its own local vendor CA, tpm2-abrmd, a tpm2-pkcs11 token and the agent's tpm2-pytss helper): each altered or
 * replayed proof is refused with its reason (docs/PROTOCOL.md §11). The agent's own flows: tpm-attest.test.ts.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { parseTpmtPublic, type Evidence } from '../../lab/attestation.js';
import { provisionTpmToken, TPM_TOKEN_LABEL } from '../../src-main/platform/linux-keys.js';
import { attestationPython, attestTpmKey, type AttestationChallenge } from '../../src-main/platform/tpm-attest.js';
import { tempDir } from '../support/agent.js';
import { softTpmEkCaPem, startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';

const py = attestationPython();
const skipReason = tpmUnavailable() ?? ('reason' in py ? `skipped: ${py.reason}` : undefined);
if (skipReason) console.log(`# tpm-attest-lab ${skipReason}`);

describe('the lab refuses forged, replayed and mismatched TPM attestations', { skip: skipReason }, () => {
  let lab: LabOrg;
  let tpm: SoftTpm;
  let ekCa: string;
  let store: string;
  let deviceKey: string;

  /** The agent's helper against a key of the token, with the lab's challenge (optionally altered on the way). */
  const evidenceFor = (keyId: string, alter: (r: { ekCert: string; akPublic: string }) => { ekCert: string; akPublic: string } = (r) => r): Promise<Evidence> =>
    attestTpmKey({ store, keyId, tokenLabel: TPM_TOKEN_LABEL, env: { ...process.env, ...tpm.env }, ask: async (r): Promise<AttestationChallenge> => lab.attestation.challenge(alter(r)) });
  const spkiOf = (ev: Evidence) => parseTpmtPublic(Buffer.from(ev.tpmtPublic, 'base64')).key.export({ format: 'der', type: 'spki' });
  const refusal = (fn: () => unknown): { code: string; message: string } => {
    try {
      fn();
    } catch (e) {
      return { code: (e as { code: string }).code, message: (e as Error).message };
    }
    assert.fail('the lab accepted it');
  };

  before(async () => {
    ekCa = path.join(tempDir('ekca'), 'ca');
    tpm = await startSoftTpm({ ekCa });
    lab = await startLabOrg({ trustedEkCaPem: softTpmEkCaPem(ekCa) });
    store = path.join(tempDir('store'), 'tpm2_pkcs11');
    fs.mkdirSync(store, { mode: 0o700 });
    const env = { ...process.env, ...tpm.env, TPM2_PKCS11_STORE: store };
    Object.assign(process.env, tpm.env);
    // The SO PIN never shows in any process's argv (`ps`): a watcher in its own process reads every
    // /proc/<pid>/cmdline while the token is made (tpm2_ptool takes PINs only as arguments).
    const seenFile = path.join(tempDir('argv-watch'), 'seen');
    const watcher = spawn(process.execPath, ['-e', `const fs=require('fs');const out=${JSON.stringify(seenFile)};const seen=new Set();
      const tick=()=>{for(const p of fs.readdirSync('/proc')){if(!/^\\d+$/.test(p)||p==process.pid)continue;try{const c=fs.readFileSync('/proc/'+p+'/cmdline','utf8').split('\\0').join(' ');if(/tpm2_ptool|addtoken/.test(c)&&!seen.has(c)){seen.add(c);fs.appendFileSync(out,c+'\\n');}}catch{}}};
      setInterval(tick,1);fs.writeFileSync(out+'.ready','1');`], { stdio: 'ignore' });
    while (!fs.existsSync(`${seenFile}.ready`)) await new Promise((r) => setTimeout(r, 20));
    provisionTpmToken(store);
    await new Promise((r) => setTimeout(r, 50));
    watcher.kill('SIGKILL');
    const seen = fs.existsSync(seenFile) ? fs.readFileSync(seenFile, 'utf8') : '';
    assert.ok(seen.includes('tpm2_ptool'), `the watcher saw tpm2_ptool run: ${seen}`);
    assert.doesNotMatch(seen, /sopin|userpin|addtoken/, 'no PIN and no tpm2_ptool arguments in any argv');
    // A key generated inside the TPM, as the agent makes it (tpm2_ptool here: no PKCS#11 session needed).
    const out = execFileSync('tpm2_ptool', ['addkey', `--label=${TPM_TOKEN_LABEL}`, '--key-label=device', '--userpin=', '--algorithm=ecc256', '--path', store], { env, encoding: 'utf8' });
    deviceKey = /CKA_ID:\s*'([0-9a-f]+)'/.exec(out)?.[1] ?? assert.fail(out);
  });

  after(async () => {
    await lab?.close();
    await tpm?.stop();
  });

  test('an EK certificate from a vendor CA the org does not trust is refused at the challenge', async () => {
    const trusted = lab.attestation.trustedEkCaPem;
    lab.attestation.trustedEkCaPem = [];
    try {
      await assert.rejects(evidenceFor(deviceKey), (e: Error & { code?: string }) => e.code === 'E0000_ATTESTATION_EK_UNTRUSTED' && /does not chain to a TPM vendor CA this org trusts/.test(e.message));
    } finally {
      lab.attestation.trustedEkCaPem = trusted;
    }
  });

  test('the lab refuses a replayed nonce, a tampered certification, an unbound AK, a different TPMT_PUBLIC or CSR key', async () => {
    const keyId = deviceKey;
    const spki = spkiOf(await evidenceFor(keyId));
    // The genuine evidence passes once; the same answer again is a replay.
    const good = await evidenceFor(keyId);
    assert.deepEqual(lab.attestation.verify(good, spki).attributes.slice(0, 3), ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin']);
    assert.equal(refusal(() => lab.attestation.verify(good, spki)).code, 'E0000_ATTESTATION_REPLAYED');

    // One byte of the signed TPMS_ATTEST changed (in its nonce): the AK signature no longer verifies.
    const e1 = await evidenceFor(keyId);
    const attest = Buffer.from(e1.certifyInfo, 'base64');
    attest[attest.length - 40]! ^= 0x01;
    const r1 = refusal(() => lab.attestation.verify({ ...e1, certifyInfo: attest.toString('base64') }, spki));
    assert.equal(r1.code, 'E0000_ATTESTATION_SIGNATURE');
    assert.match(r1.message, /signature does not verify/);

    // The TPMT_PUBLIC sent is not the one certified (an attribute bit changed, noDA): the certified name differs.
    const e2 = await evidenceFor(keyId);
    const altered = Buffer.from(e2.tpmtPublic, 'base64');
    altered[6]! ^= 0x04;
    const r2 = refusal(() => lab.attestation.verify({ ...e2, tpmtPublic: altered.toString('base64') }, spki));
    assert.equal(r2.code, 'E0000_ATTESTATION_NAME_MISMATCH');
    // A TPMT_PUBLIC (and certification) that does not match the key in the CSR.
    const e3 = await evidenceFor(keyId);
    const otherKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
    const r3 = refusal(() => lab.attestation.verify(e3, otherKey));
    assert.equal(r3.code, 'E0000_ATTESTATION_KEY_MISMATCH');
    assert.match(r3.message, /not the key in the certificate request/);

    // An AK from this TPM presented with the EK certificate of another TPM (same trusted vendor CA): the
    // credential is sealed to the other TPM's EK, so this TPM cannot open it, and a guessed secret is refused.
    const tpm2 = await startSoftTpm({ ekCa });
    try {
      const ekCert2 = execFileSync('tpm2_nvread', ['0x1c00002', '-C', 'o'], { env: { ...process.env, ...tpm2.env }, stdio: ['ignore', 'pipe', 'ignore'] }).toString('base64');
      await assert.rejects(evidenceFor(keyId, (r) => ({ ...r, ekCert: ekCert2 })), /refused to activate/);
    } finally {
      await tpm2.stop();
    }
    const e4 = await evidenceFor(keyId);
    const r4 = refusal(() => lab.attestation.verify({ ...e4, secret: crypto.randomBytes(32).toString('base64') }, spki));
    assert.equal(r4.code, 'E0000_ATTESTATION_AK_NOT_BOUND');
    assert.match(r4.message, /not bound to the endorsement key/);
  });

  test('a key imported into the TPM (no fixedTPM, no sensitiveDataOrigin) is certified by the TPM but refused by the lab', async () => {
    const dir = tempDir('imported');
    const pemFile = path.join(dir, 'k.pem');
    fs.writeFileSync(pemFile, crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const out = execFileSync('tpm2_ptool', ['import', `--label=${TPM_TOKEN_LABEL}`, '--key-label=imported', '--userpin=', `--privkey=${pemFile}`, '--algorithm=ecc', '--path', store],
      { env: { ...process.env, ...tpm.env, TPM2_PKCS11_STORE: store }, encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    const id = /CKA_ID:\s*'([0-9a-f]+)'/.exec(out)?.[1];
    assert.ok(id, out);
    const ev = await evidenceFor(id);
    const r = refusal(() => lab.attestation.verify(ev, spkiOf(ev)));
    assert.equal(r.code, 'E0000_ATTESTATION_KEY_NOT_FIXED');
    assert.match(r.message, /not generated inside the TPM/);
  });

});

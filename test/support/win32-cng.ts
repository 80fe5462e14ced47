import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command, CommandResult } from '../../src-main/base/exec.js';
import { spkiToCngPublicBlob, win32CngScripts } from '../../src-main/platform/win32-cng.js';
import { TPM_PROVIDER, win32Scripts } from '../../src-main/platform/win32-store.js';
import { tempDir } from './agent.js';
import { decodePowershell, fail, fixture, ok } from './commands.js';
import { rsaKeyPair } from './keys.js';

/** ECDSA over a digest the way CNG's SignHash does (no second hash): openssl pkeyutl signs the digest as given. */
function ecdsaSignDigest(privateKey: crypto.KeyObject, digest: Buffer): Buffer {
  const f = path.join(tempDir('cngsig'), 'k.pem');
  fs.writeFileSync(f, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return execFileSync('openssl', ['pkeyutl', '-sign', '-inkey', f], { input: digest });
}

function derToP1363(der: Buffer): Buffer {
  let p = 2;
  const int = () => {
    const len = der[p + 1]!;
    let v = der.subarray(p + 2, p + 2 + len);
    p += 2 + len;
    while (v.length > 32 && v[0] === 0) v = v.subarray(1);
    return Buffer.concat([Buffer.alloc(32 - v.length), v]);
  };
  return Buffer.concat([int(), int()]);
}

const spkiOf = (k: crypto.KeyObject) => k.export({ type: 'spki', format: 'der' });
const thumbprintOf = (pem: string) => crypto.createHash('sha1').update(new crypto.X509Certificate(pem).raw).digest('hex').toUpperCase();

export interface WindowsStandIn {
  run: (cmd: Command) => Promise<CommandResult>;
  calls: Command[];
  /** CNG keys by name. */
  keys: Map<string, { provider: string; privateKey: crypto.KeyObject; publicKey: crypto.KeyObject; algorithm: string }>;
  /** CurrentUser\My: thumbprint → PEM, with whether a key is linked (after -repairstore). */
  my: Map<string, { pem: string; linked: boolean }>;
}

/**
 * Plays Windows for the CNG key store: the providers (each script answered as its JSON envelope would, with keys
 * held here, public blobs in the BCRYPT layouts), certutil's -addstore/-repairstore/-store/-exportPFX, and the
 * certificate store's list/remove scripts. Failures come from recorded answers (test/fixtures/win32).
 * Commands of other adapters (registry, browsers) answer "not available here" with exit 1.
 */
export function windowsStandIn(opts: { tpm?: string; createAnswer?: (cmd: Command) => CommandResult | undefined; signAnswer?: (cmd: Command) => CommandResult | undefined; show?: string; repair?: CommandResult } = {}): WindowsStandIn {
  const keys: WindowsStandIn['keys'] = new Map();
  const my: WindowsStandIn['my'] = new Map();
  const calls: Command[] = [];
  let rsaMade = 0;
  const publicAnswer = (name: string) => {
    const k = keys.get(name)!;
    return { exists: true, name, provider: k.provider, algorithm: k.algorithm === 'P-256' ? 'ECDSA_P256' : 'RSA', exportPolicy: 'None', exportable: false, publicBlob: spkiToCngPublicBlob(k.publicKey).toString('base64') };
  };
  const json = (data: unknown) => ok(JSON.stringify({ ok: true, data }) + '\r\n');
  const keyFor = (pem: string) => [...keys].find(([, k]) => spkiOf(k.publicKey).equals(spkiOf(crypto.createPublicKey(pem))));
  const run = async (cmd: Command): Promise<CommandResult> => {
    calls.push(cmd);
    const env = cmd.env ?? {};
    if (cmd.file === 'powershell.exe') {
      const s = decodePowershell(cmd);
      if (s === win32CngScripts.probe) {
        if (env.DTA_PROVIDER === TPM_PROVIDER && opts.tpm) return fail('', 1, opts.tpm);
        return json({ provider: env.DTA_PROVIDER });
      }
      if (s === win32CngScripts.create) {
        const custom = opts.createAnswer?.(cmd);
        if (custom) return custom;
        const pair = env.DTA_ALGORITHM === 'RSA-2048' ? rsaKeyPair(rsaMade++) : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
        keys.set(env.DTA_KEY_NAME!, { provider: env.DTA_PROVIDER!, ...pair, algorithm: env.DTA_ALGORITHM! });
        return json(publicAnswer(env.DTA_KEY_NAME!));
      }
      const k = keys.get(env.DTA_KEY_NAME ?? '');
      if (s === win32CngScripts.find) return k && k.provider === env.DTA_PROVIDER ? json(publicAnswer(env.DTA_KEY_NAME!)) : ok(fixture('win32', 'cng-find-absent.json'));
      if (s === win32CngScripts.sign) {
        const custom = opts.signAnswer?.(cmd);
        if (custom) return custom;
        if (!k) return fail('', 1, fixture('win32', 'cng-sign-keyset-missing-fr.json'));
        const digest = Buffer.from(env.DTA_DIGEST!, 'base64');
        // What ECDsaCng.SignHash / RSACng.SignHash(…, Pkcs1) return: P1363 r‖s, or the PKCS#1 v1.5 signature.
        // RSACng.SignHash(digest, HashAlgorithmName(DTA_HASH), Pkcs1): the DigestInfo of that hash, padded.
        const digestInfo: Record<string, string> = { SHA1: '3021300906052b0e03021a05000414', SHA256: '3031300d060960864801650304020105000420', SHA512: '3051300d060960864801650304020305000440' };
        const sig = k.algorithm === 'P-256'
          ? derToP1363(ecdsaSignDigest(k.privateKey, digest))
          : crypto.privateEncrypt({ key: k.privateKey, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from(digestInfo[env.DTA_HASH!]!, 'hex'), digest]));
        return json({ signature: sig.toString('base64') });
      }
      if (s === win32CngScripts.decrypt) {
        if (!k) return fail('', 1, fixture('win32', 'cng-sign-keyset-missing-fr.json'));
        // RSACng.Decrypt(…, Pkcs1) in the provider; Node's PKCS#1 v1.5 private decryption is refused since CVE-2023-46809, so openssl plays it.
        const dir = tempDir('cngdec');
        fs.writeFileSync(path.join(dir, 'k.pem'), k.privateKey.export({ type: 'pkcs8', format: 'pem' }));
        const plain = execFileSync('openssl', ['pkeyutl', '-decrypt', '-inkey', path.join(dir, 'k.pem'), '-pkeyopt', 'rsa_padding_mode:pkcs1'], { input: Buffer.from(env.DTA_CIPHERTEXT!, 'base64') });
        return json({ plaintext: plain.toString('base64') });
      }
      if (s === win32CngScripts.remove) return json(keys.delete(env.DTA_KEY_NAME!) ? 'deleted' : 'absent');
      if (s === win32Scripts.list) {
        return ok(JSON.stringify({ ok: true, data: [...my].filter(([, c]) => c.linked).map(([t, c]) => ({ Thumbprint: t, HasPrivateKey: true, RawData: [...new crypto.X509Certificate(c.pem).raw] })) }));
      }
      if (s === win32Scripts.remove) {
        const c = my.get(env.DTA_THUMBPRINT!);
        my.delete(env.DTA_THUMBPRINT!);
        const linked = c?.linked ? keyFor(c.pem) : undefined;
        if (linked) keys.delete(linked[0]); // -DeleteKey
        return json('removed');
      }
      return fail('not available in this stand-in', 1);
    }
    if (cmd.file === 'certutil.exe') {
      const a = cmd.args;
      if (a.includes('-repairstore')) {
        if (opts.repair) return opts.repair;
        const c = my.get(a.at(-1)!);
        const key = c ? keyFor(c.pem) : undefined;
        if (!c || !key || key[1].provider !== a[a.indexOf('-csp') + 1]) return fail(fixture('win32', 'certutil-repairstore-no-key.txt'));
        c.linked = true;
        return ok(fixture('win32', 'certutil-repairstore-ok.txt'));
      }
      if (a.includes('-exportPFX')) return fail(fixture('win32', 'certutil-exportpfx-not-exportable.txt'));
      if (a.includes('-store')) return ok(opts.show ?? fixture('win32', 'certutil-store-tpm.txt'));
      if (a.includes('-addstore')) {
        if (a.includes('My')) {
          const pem = fs.readFileSync(a.at(-1)!, 'utf8');
          const t = thumbprintOf(pem);
          if (!my.has(t)) my.set(t, { pem, linked: false });
        }
        return ok('CertUtil: -addstore command completed successfully.\r\n');
      }
    }
    return fail('not available in this stand-in', 1);
  };
  return { run, calls, keys, my };
}

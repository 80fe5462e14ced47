import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command, CommandResult } from '../../src-main/base/exec.js';
import { hashOfSpki } from '../../src-main/platform/darwin-keys.js';
import { publicKeyHash } from '../../src-main/platform/darwin-store.js';
import { tempDir } from './agent.js';
import { fail, fixture, ok } from './commands.js';
import { rsaKeyPair } from './keys.js';

/** Plays sc_auth, osascript (the JXA program) and security with keys held here, in their documented output forms. */
export function macStandIn(opts: { arm64?: CommandResult; usage?: string; csrFails?: string; jxa?: (env: Record<string, string>) => CommandResult | undefined } = {}) {
  const identities = new Map<string, { label: string; privateKey: crypto.KeyObject; publicKey: crypto.KeyObject; cert?: string }>();
  const keychain = new Map<string, { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject; extractable: boolean }>();
  const certs: string[] = [];
  const calls: Command[] = [];
  let rsaMade = 0;
  const hashOf = (pub: crypto.KeyObject) => hashOfSpki(pub.export({ type: 'spki', format: 'der' }));
  const json = (data: unknown) => ok(JSON.stringify({ ok: true, data }) + '\n');
  const point = (pub: crypto.KeyObject) => { const j = pub.export({ format: 'jwk' }) as { x: string; y: string }; return Buffer.concat([Buffer.from([4]), Buffer.from(j.x, 'base64url'), Buffer.from(j.y, 'base64url')]); };
  const sha1 = (pem: string) => new crypto.X509Certificate(pem).fingerprint.replace(/:/g, '');
  const run = async (cmd: Command): Promise<CommandResult> => {
    calls.push(cmd);
    const a = cmd.args;
    if (cmd.file === '/usr/sbin/sysctl') return opts.arm64 ?? ok('1\n');
    if (cmd.file === '/usr/sbin/system_profiler') return ok(fixture('darwin', 'system_profiler-ibridge-none.json'));
    if (cmd.file === '/usr/sbin/sc_auth') {
      if (a.length === 0) return fail(opts.usage ?? fixture('darwin', 'sc_auth-usage.txt'));
      if (a[0] === 'create-ctk-identity') {
        const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
        identities.set(hashOf(pair.publicKey), { label: a[a.indexOf('-l') + 1]!, ...pair });
        return ok('');
      }
      if (a[0] === 'list-ctk-identities') {
        const rows = [...identities].map(([h, i]) => `p-256-ne ${h} none ${i.label} ${i.label}               01.12.27, 01:00 YES`);
        return ok([fixture('darwin', 'sc_auth-list-ctk-identities.txt').trimEnd(), ...rows].join('\n') + '\n');
      }
      if (a[0] === 'create-ctk-csr') {
        // sc_auth appends ".csr" to the -f path (issue 25.7).
        if (opts.csrFails) return fail(opts.csrFails);
        const id = identities.get(a[a.indexOf('-h') + 1]!);
        if (!id) return fail('identity not found\n');
        const dir = tempDir('ctk');
        fs.writeFileSync(path.join(dir, 'k.pem'), id.privateKey.export({ type: 'pkcs8', format: 'pem' }));
        execFileSync('openssl', ['req', '-new', '-key', path.join(dir, 'k.pem'), '-subj', `/CN=${a[a.indexOf('-N') + 1]}`, '-outform', 'DER', '-out', `${a[a.indexOf('-f') + 1]!}.csr`], { stdio: 'ignore' });
        return ok('');
      }
      if (a[0] === 'import-ctk-certificate') {
        const pem = new crypto.X509Certificate(fs.readFileSync(a[2]!)).toString();
        const id = identities.get(publicKeyHash(pem));
        if (!id) return fail('no identity for this certificate\n');
        id.cert = pem;
        return ok('');
      }
      if (a[0] === 'delete-ctk-identity') return identities.delete(a[2]!) ? ok('') : fail('not found\n');
    }
    if (cmd.file === '/usr/bin/osascript') {
      const env = cmd.env!;
      const custom = opts.jxa?.(env);
      if (custom) return custom;
      if (env.DTA_OP === 'certs') return json([...identities.values()].filter((i) => i.cert).map((i) => new crypto.X509Certificate(i.cert!).raw.toString('base64')));
      if (env.DTA_OP === 'create') {
        const pair = env.DTA_ALGORITHM === 'RSA-2048' ? rsaKeyPair(rsaMade++) : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
        keychain.set(hashOf(pair.publicKey), { ...pair, extractable: false });
        const pub = env.DTA_ALGORITHM === 'RSA-2048' ? pair.publicKey.export({ type: 'pkcs1', format: 'der' }) : point(pair.publicKey);
        return json({ exists: true, label: env.DTA_LABEL, publicKey: pub.toString('base64'), extractable: false });
      }
      const hash = Buffer.from(env.DTA_KEY_HASH_B64!, 'base64').toString('hex').toUpperCase();
      const k = env.DTA_WHERE === 'token' ? identities.get(hash) : keychain.get(hash);
      if (env.DTA_OP === 'delete') return json(keychain.delete(hash) ? 'deleted' : 'absent');
      if (!k) return json({ exists: false });
      if (env.DTA_OP === 'public') {
        const pub = k.publicKey.asymmetricKeyType === 'rsa' ? k.publicKey.export({ type: 'pkcs1', format: 'der' }) : point(k.publicKey);
        return json({ exists: true, label: '', publicKey: pub.toString('base64'), extractable: false });
      }
      if (env.DTA_OP === 'sign') {
        // SecKeyCreateSignature: X9.62 DER for ECDSA, PKCS#1 v1.5 for RSA, over SHA-256 of the message.
        return json({ signature: crypto.sign('sha256', Buffer.from(env.DTA_DATA_B64!, 'base64'), { key: k.privateKey, dsaEncoding: 'der' }).toString('base64') });
      }
    }
    if (cmd.file === '/usr/bin/security') {
      if (a[0] === 'import') {
        for (const pem of fs.readFileSync(a[1]!, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? []) certs.push(pem.trim() + '\n');
        return ok('1 certificate imported.\n');
      }
      if (a[0] === 'find-identity') {
        const mine = certs.filter((p) => keychain.has(publicKeyHash(p)));
        return ok(`\nPolicy: X509 Basic\n  Matching identities\n${mine.map((p, i) => `  ${i + 1}) ${sha1(p)} "device"`).join('\n')}\n     ${mine.length} identities found\n\n  Valid identities only\n`);
      }
      if (a[0] === 'find-certificate') return ok(certs.map((p) => `SHA-1 hash: ${sha1(p)}\nkeychain: "${a.at(-1)}"\n${p}`).join(''));
      if (a[0] === 'delete-identity') {
        const i = certs.findIndex((p) => sha1(p) === a[2]);
        if (i >= 0) certs.splice(i, 1);
        return ok('');
      }
    }
    return fail('not available in this stand-in');
  };
  return { run, calls, identities, keychain, certs };
}


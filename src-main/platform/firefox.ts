import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir } from '../base/fsutil.js';
import { emptyResult, type PolicyResult } from './browser-policy.js';
import { NssStore } from './nss.js';
import { oneTimePassword } from './pkcs12.js';
import type { CommandRunner } from '../base/exec.js';

/** Where Firefox keeps its profiles on Linux: the Debian/Mozilla package, the snap and the flatpak. */
export function firefoxProfileRoots(home: string): string[] {
  return [
    path.join(home, '.mozilla', 'firefox'),
    path.join(home, 'snap', 'firefox', 'common', '.mozilla', 'firefox'),
    path.join(home, '.var', 'app', 'org.mozilla.firefox', '.mozilla', 'firefox'),
  ];
}

/** Profile directories listed in a profiles.ini ([ProfileN] sections: Path=, IsRelative=). */
export function parseProfilesIni(text: string, root: string): string[] {
  const out: string[] = [];
  let section = '';
  let entry: { path?: string; relative?: boolean } = {};
  const flush = () => {
    if (/^Profile\d+$/i.test(section) && entry.path) out.push(entry.relative === false ? entry.path : path.join(root, entry.path));
    entry = {};
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      flush();
      section = s[1]!;
      continue;
    }
    const kv = /^([^=]+)=(.*)$/.exec(line);
    if (!kv) continue;
    if (kv[1] === 'Path') entry.path = kv[2]!;
    if (kv[1] === 'IsRelative') entry.relative = kv[2] !== '0';
  }
  flush();
  return [...new Set(out)];
}

export function findFirefoxProfiles(home: string): string[] {
  const out: string[] = [];
  for (const root of firefoxProfileRoots(home)) {
    const ini = path.join(root, 'profiles.ini');
    if (!fs.existsSync(ini)) continue;
    out.push(...parseProfilesIni(fs.readFileSync(ini, 'utf8'), root).filter((p) => fs.existsSync(p)));
  }
  return out;
}

/**
 * Firefox on Linux reads client certificates only from each profile's own NSS database, not from ~/.pki/nssdb, and
 * its policies cannot point it at another database. So the user task keeps a copy of our certificate and key in every
 * profile's database, in step with the agent's store: copied when missing, removed when the store no longer has it.
 */
export async function syncFirefoxProfiles(opts: { primary: NssStore; home: string; workDir: string; issuerCN: string; run?: CommandRunner }): Promise<PolicyResult> {
  const result = emptyResult();
  const profiles = findFirefoxProfiles(opts.home);
  if (!profiles.length) return result;
  const wanted = (await opts.primary.list()).filter((c) => c.info.issuerCN === opts.issuerCN);
  const wantedSha = new Set(wanted.map((c) => c.info.sha256));
  for (const profile of profiles) {
    const store = new NssStore(profile, opts.workDir, opts.run);
    try {
      const present = (await store.list()).filter((c) => c.info.issuerCN === opts.issuerCN);
      // Same-subject certificates share a nickname in NSS: a stale one goes with every copy of that nickname.
      const stale = present.filter((c) => !wantedSha.has(c.info.sha256));
      for (const id of new Set(stale.map((c) => c.id))) await store.remove(id);
      const have = new Set((stale.length ? await store.list() : present).map((c) => c.info.sha256));
      const missing = wanted.filter((c) => !have.has(c.info.sha256));
      for (const id of new Set(missing.map((c) => c.id))) await copyIdentity(opts.primary, store, id, opts.workDir);
      if (stale.length || missing.length || present.length) result.written.push(profile);
    } catch (e) {
      result.skipped.push({ dir: profile, reason: (e as Error).message });
    }
  }
  return result;
}

async function copyIdentity(from: NssStore, to: NssStore, id: string, workDir: string): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(workDir), 'ff-'));
  try {
    const p12 = path.join(tmp, 'identity.p12');
    const pwFile = path.join(tmp, 'password');
    fs.writeFileSync(pwFile, oneTimePassword(), { mode: 0o600 });
    await from.exportIdentity(id, p12, pwFile);
    await to.importIdentity(p12, pwFile);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

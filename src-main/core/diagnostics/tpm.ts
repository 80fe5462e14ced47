import fs from 'node:fs';
import os from 'node:os';
import { ProbeSkipped, runProbe, type ProbeRecorder } from './stages.js';
import type { ProbeContext } from './probes.js';
import type { Finding, ProbeResult } from './types.js';

/**
 * `diagnose` on Linux: can the device key live in the TPM, and will it keep working? The TPM device or its
 * resource manager (tpm2-abrmd, /dev/tpmrm0), the dictionary-attack lockout counter (tpm2-pkcs11's keys are
 * DA-protected: at MAX_AUTH_FAIL failed authorisations the TPM refuses every key until it recovers), and the
 * permissions of tpm2-pkcs11's store (its empty-PIN token means anyone who can read the store and reach the
 * TPM can sign: it must be the user's own, 0700).
 */

export interface TpmFacts {
  tcti?: string;
  device?: string;
  library?: string;
  lockout?: { counter: number; maxAuthFail: number; intervalSeconds: number; recoverySeconds: number; inLockout: boolean };
  store?: { path: string; exists: boolean; mode?: string; ownerUid?: number; uid?: number };
}

/** The TCTI the agent's key store would use (linux-keys.ts tpmAvailability), as tpm2-tools spell it. */
function tctiOf(env: NodeJS.ProcessEnv): { tcti: string; device?: string } | { none: string; device?: string } {
  const explicit = env.TPM2_PKCS11_TCTI || env.TSS2_TCTI || env.TPM2TOOLS_TCTI;
  if (explicit) return { tcti: explicit };
  if (fs.existsSync('/dev/tpmrm0')) return { tcti: 'device:/dev/tpmrm0', device: '/dev/tpmrm0' };
  if (fs.existsSync('/dev/tpm0')) return { none: 'a TPM is present (/dev/tpm0) but no resource manager (/dev/tpmrm0, tpm2-abrmd)', device: '/dev/tpm0' };
  return { none: 'no TPM (no /dev/tpmrm0, no /dev/tpm0, no TPM2_PKCS11_TCTI)' };
}

/** Reads `tpm2_getcap properties-variable`'s YAML: the DA counter, its limit and timers, and inLockout. */
export function parseLockout(out: string): TpmFacts['lockout'] | undefined {
  const num = (name: string) => {
    const m = new RegExp(`^${name}:\\s*(0x[0-9a-fA-F]+|\\d+)`, 'm').exec(out);
    return m ? Number(m[1]) : undefined;
  };
  const counter = num('TPM2_PT_LOCKOUT_COUNTER');
  const maxAuthFail = num('TPM2_PT_MAX_AUTH_FAIL');
  if (counter === undefined || maxAuthFail === undefined) return undefined;
  return {
    counter, maxAuthFail, intervalSeconds: num('TPM2_PT_LOCKOUT_INTERVAL') ?? 0, recoverySeconds: num('TPM2_PT_LOCKOUT_RECOVERY') ?? 0,
    inLockout: /^\s*inLockout:\s*1\b/m.test(out),
  };
}

async function checkStore(rec: ProbeRecorder, storePath: string): Promise<void> {
  await rec.stage('local', `permissions of ${storePath}`, async () => {
    let st: fs.Stats;
    try {
      st = fs.statSync(storePath);
    } catch {
      rec.facts.store = { path: storePath, exists: false };
      return 'not created yet (the first enrollment creates it, 0700)';
    }
    const uid = process.getuid?.();
    rec.facts.store = { path: storePath, exists: true, mode: (st.mode & 0o777).toString(8).padStart(4, '0'), ownerUid: st.uid, ...(uid !== undefined ? { uid } : {}) };
    return `mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${st.uid}`;
  });
}

export function probeTpm(ctx: ProbeContext): Promise<ProbeResult> {
  const env = ctx.env;
  const home = env.HOME || os.homedir();
  return runProbe({ id: 'tpm', kind: 'tpm', target: 'TPM 2.0', deadlineMs: Math.max(ctx.timeoutMs, 10_000) }, async (rec) => {
    if (process.platform !== 'linux') throw new ProbeSkipped('the TPM checks are for Linux (Windows and macOS keep the key through their own key stores)');
    if (ctx.config.skipTpm) throw new ProbeSkipped('SkipTPM=true: the device key is kept in the software token');
    // The TPM token's facts come with the platform (Linux); without one there is no token to look at.
    const tpm = ctx.platform?.tpm;
    if (!tpm) throw new ProbeSkipped('no platform key store to look at (the TPM checks need the Linux platform)');
    const storePath = tpm.storeDir(env, home);
    const library = tpm.libraries.find((l) => fs.existsSync(l));
    if (library) rec.facts.library = library;
    const t = tctiOf(env);
    if (t.device) rec.facts.device = t.device;
    await checkStore(rec, storePath);
    if ('none' in t) {
      rec.skip('local', 'TPM resource manager', t.none);
      rec.facts.absent = t.none;
      return;
    }
    rec.facts.tcti = t.tcti;
    const res = await rec.stage('local', `tpm2_getcap properties-variable (TCTI ${t.tcti})`, async () => {
      const r = await ctx.runner({ file: 'tpm2_getcap', args: ['properties-variable'], env: { TPM2TOOLS_TCTI: t.tcti } });
      if (r.code !== 0) {
        const why = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? `exit ${r.code}`;
        throw Object.assign(new Error(`the TPM did not answer through ${t.tcti}: ${why.slice(0, 300)}`), { code: 'TPM_UNREACHABLE' });
      }
      return r.stdout;
    }, () => 'answered').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        rec.facts.toolsMissing = true;
        return undefined;
      }
      throw e;
    });
    if (res === undefined) return;
    const lockout = parseLockout(res);
    if (lockout) rec.facts.lockout = lockout;
  });
}

/** What the TPM probe's result means for the user: each problem with what to do. */
export function tpmFindings(p: ProbeResult | undefined): Finding[] {
  if (!p || p.status === 'skipped') return [];
  const out: Finding[] = [];
  const f = p.facts as TpmFacts & { absent?: string; toolsMissing?: boolean };
  const add = (x: Omit<Finding, 'probes'>) => out.push({ ...x, probes: [p.id] });
  if (f.absent) {
    add({ code: 'TPM_ABSENT', severity: f.device ? 'warning' : 'info', title: f.device ? 'A TPM is present but has no resource manager' : 'No TPM: the device key is kept in the software token',
      evidence: [f.absent], cause: f.device ? 'The kernel\'s resource manager (/dev/tpmrm0, kernel 4.12+) is missing and tpm2-abrmd is not running; tpm2-pkcs11 needs one.' : 'This machine has no TPM 2.0 (or it is disabled in the firmware).',
      remedy: f.device ? 'Install and start tpm2-abrmd (apt install tpm2-abrmd; systemctl enable --now tpm2-abrmd), or use a kernel with /dev/tpmrm0; then run: device-trust-agent run --forceRenewal to move the key into the TPM.'
        : 'Nothing to do if that is expected. To use a TPM, enable it in the firmware setup; the next renewal moves the key into it.' });
  }
  if (p.status === 'fail' || p.status === 'timeout') {
    add({ code: 'TPM_UNREACHABLE', severity: 'error', title: 'The TPM does not answer', evidence: [p.error?.message ?? 'no answer'],
      cause: 'The resource manager (tpm2-abrmd) is not running or not reachable on its D-Bus, or /dev/tpmrm0 is not accessible to this user (group tss).',
      remedy: 'Start the resource manager (systemctl start tpm2-abrmd) or add the user to the tss group (usermod -aG tss $USER, then log in again). Until then the device key in the TPM cannot sign.' });
  }
  if (f.toolsMissing) {
    add({ code: 'TPM_TOOLS_MISSING', severity: 'info', title: 'tpm2-tools is not installed: the lockout counter was not read', evidence: ['tpm2_getcap: not found'],
      cause: 'The dictionary-attack counter is read with tpm2_getcap.', remedy: 'Install tpm2-tools (apt install tpm2-tools) for this check.' });
  }
  const l = f.lockout;
  if (l && (l.inLockout || l.counter >= l.maxAuthFail)) {
    add({ code: 'TPM_LOCKED_OUT', severity: 'error', title: 'The TPM is in dictionary-attack lockout: the device key cannot be used',
      evidence: [`TPM2_PT_LOCKOUT_COUNTER ${l.counter} of TPM2_PT_MAX_AUTH_FAIL ${l.maxAuthFail}${l.inLockout ? ', inLockout' : ''}; one failure is forgotten every ${l.intervalSeconds} s`],
      cause: 'Too many wrong passwords were given for TPM keys (another program, or a wrong PIN); the TPM refuses all DA-protected keys, the device key among them.',
      remedy: `Wait about ${Math.ceil((l.counter - l.maxAuthFail + 1) * l.intervalSeconds / 60)} min for the TPM to forget a failure, or have an administrator clear it: tpm2_dictionarylockout --clear-lockout (needs the lockout authorisation). Find and stop whatever sends wrong passwords.` });
  } else if (l && l.counter > 0) {
    add({ code: 'TPM_DA_COUNTER_RAISED', severity: 'warning', title: `The TPM counted ${l.counter} failed authorisation${l.counter === 1 ? '' : 's'} of ${l.maxAuthFail} before it locks out`,
      evidence: [`TPM2_PT_LOCKOUT_COUNTER ${l.counter} of TPM2_PT_MAX_AUTH_FAIL ${l.maxAuthFail}; one failure is forgotten every ${l.intervalSeconds} s`],
      cause: 'A program gave a wrong password for a TPM key. At the limit the TPM refuses every DA-protected key, the device key among them, until it recovers.',
      remedy: `Find what sends wrong TPM passwords (e.g. a misconfigured PIN); the counter drops by one every ${l.intervalSeconds} s. An administrator can reset it: tpm2_dictionarylockout --clear-lockout.` });
  }
  const s = f.store;
  if (s?.exists && s.mode && (Number.parseInt(s.mode, 8) & 0o077) !== 0) {
    add({ code: 'TPM_STORE_PERMISSIONS', severity: 'error', title: `The TPM key store ${s.path} is readable by others (mode ${s.mode})`,
      evidence: [`${s.path}: mode ${s.mode}, owner uid ${s.ownerUid}`],
      cause: 'The device key\'s token has an empty PIN (so browsers never prompt): anyone who can read its store and reach the TPM can sign as this device.',
      remedy: `Run: chmod 700 ${s.path} (the agent also sets 0700 each time it opens the token), then find what changed it: a backup restore or a copy made with another umask.` });
  }
  if (s?.exists && s.uid !== undefined && s.ownerUid !== s.uid) {
    add({ code: 'TPM_STORE_OWNER', severity: 'error', title: `The TPM key store ${s.path} belongs to another user`,
      evidence: [`${s.path}: owner uid ${s.ownerUid}, this user uid ${s.uid}`],
      cause: 'The store was created by another account (e.g. a run with sudo); that account can use this device\'s key, and this user may not be able to write it.',
      remedy: `Run: sudo chown -R $(id -u):$(id -g) ${s.path} && chmod 700 ${s.path}` });
  }
  return out;
}

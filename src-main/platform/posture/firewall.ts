import type { Command } from '../../base/exec.js';
import { hex, postureCommand, psFailure } from './powershell.js';
import { asArray, firstLine, parseJsonOr, result, tryRun, type PostureCheck, type PostureContext, type PostureResult } from './types.js';

const ID = 'firewall';
const TITLE = 'Firewall';

// ---------------------------------------------------------------- Linux: the kernel's ruleset (nftables, iptables); ufw/firewalld as frontends

export const linuxFirewallCommands = {
  /** The whole ruleset as JSON (needs CAP_NET_ADMIN: root). ufw and firewalld write theirs here too. */
  nftRuleset: (): Command => ({ file: 'nft', args: ['-j', 'list', 'ruleset'] }),
  /** The legacy/iptables-nft view of the INPUT chain. */
  iptablesInput: (): Command => ({ file: 'iptables', args: ['-S', 'INPUT'] }),
  /** firewalld answers its running state to any user over D-Bus: exit 0 running, 252 not running. */
  firewalldState: (): Command => ({ file: 'firewall-cmd', args: ['--state'] }),
};

/** ufw keeps its on/off switch in a world-readable file, so the user task can read it without root. */
export const UFW_CONF = '/etc/ufw/ufw.conf';

export interface InputFiltering {
  filtering: boolean;
  detail: string;
}

/**
 * Whether an nftables ruleset filters inbound traffic: a base chain on the input hook whose policy is drop, or
 * which has a rule that drops or rejects. An empty ruleset, or input chains that accept everything, do not.
 */
export function judgeNftRuleset(stdout: string): InputFiltering | undefined {
  const j = parseJsonOr<{ nftables?: Record<string, Record<string, unknown>>[] }>(stdout);
  if (!j?.nftables) return undefined;
  const chains = j.nftables.filter((e) => e.chain && e.chain.hook === 'input').map((e) => e.chain!);
  if (!chains.length) return { filtering: false, detail: 'no chain on the input hook' };
  const key = (c: Record<string, unknown>) => `${String(c.family)} ${String(c.table)} ${String(c.name ?? c.chain)}`;
  const inputKeys = new Set(chains.map(key));
  for (const c of chains) if (c.policy === 'drop') return { filtering: true, detail: `chain ${key(c)}: policy drop` };
  for (const e of j.nftables) {
    const rule = e.rule;
    if (rule && inputKeys.has(`${String(rule.family)} ${String(rule.table)} ${String(rule.chain)}`) && /"(drop|reject)"/.test(JSON.stringify(rule.expr ?? []))) {
      return { filtering: true, detail: `chain ${String(rule.family)} ${String(rule.table)} ${String(rule.chain)}: a rule drops or rejects` };
    }
  }
  return { filtering: false, detail: `${chains.length} input chain(s), all accepting` };
}

/** `iptables -S INPUT`: "-P INPUT DROP" or a rule jumping to DROP/REJECT (or a ufw/firewalld chain). */
export function judgeIptables(stdout: string): InputFiltering | undefined {
  if (!/^-P INPUT /m.test(stdout)) return undefined;
  if (/^-P INPUT DROP/m.test(stdout)) return { filtering: true, detail: 'INPUT policy DROP' };
  const m = /^-A INPUT .*-j (DROP|REJECT|ufw-\S+|INPUT_\S+)/m.exec(stdout);
  return m ? { filtering: true, detail: `INPUT rule -j ${m[1]}` } : { filtering: false, detail: 'INPUT policy ACCEPT, no dropping rule' };
}

export function ufwEnabled(conf: string | undefined): boolean | undefined {
  const m = conf ? /^\s*ENABLED\s*=\s*"?(yes|no)"?/mi.exec(conf) : null;
  return m ? m[1]!.toLowerCase() === 'yes' : undefined;
}

const LINUX_REMEDY = 'Turn the firewall on: "sudo ufw enable" (Ubuntu/Debian with ufw) or "sudo systemctl enable --now firewalld" (Fedora/RHEL), or ask IT.';

async function linux(ctx: PostureContext): Promise<PostureResult> {
  const evidence: string[] = [];
  const pass = (detail: string, via: string) => result({ check: ID, title: TITLE, status: 'PASS', summary: `The firewall filters incoming traffic (${via}).`, evidence, facts: { enabled: true, via } });
  const failed = (detail: string, via: string) => result({ check: ID, title: TITLE, status: 'FAIL', summary: `No firewall filters incoming traffic (${detail}).`, evidence, facts: { enabled: false, via }, remedy: LINUX_REMEDY });
  let denied = false;
  const nft = await tryRun(ctx, linuxFirewallCommands.nftRuleset());
  if (nft.code === 0) {
    const v = judgeNftRuleset(nft.stdout);
    if (v) {
      evidence.push(`nft list ruleset: ${v.detail}`);
      if (v.filtering) return pass(v.detail, 'nftables');
      // iptables-legacy keeps its own tables outside nftables: an empty nft ruleset is not the last word.
    }
  } else if (!nft.missing) {
    denied = /permission|not permitted/i.test(nft.stderr) || !ctx.privileged;
    evidence.push(`nft list ruleset: ${firstLine(nft.stderr) || `exit ${nft.code}`}`);
  } else evidence.push('nft: not installed');
  const ipt = await tryRun(ctx, linuxFirewallCommands.iptablesInput());
  if (ipt.code === 0) {
    const v = judgeIptables(ipt.stdout);
    if (v) {
      evidence.push(`iptables -S INPUT: ${v.detail}`);
      if (v.filtering) return pass(v.detail, 'iptables');
    }
  } else if (!ipt.missing) {
    denied ||= /permission|denied|must be root/i.test(ipt.stderr) || !ctx.privileged;
    evidence.push(`iptables -S INPUT: ${firstLine(ipt.stderr) || `exit ${ipt.code}`}`);
  }
  // Without root the ruleset cannot be read; the frontends' own switches can be.
  const ufw = ufwEnabled(ctx.readFile(UFW_CONF));
  if (ufw !== undefined) evidence.push(`${UFW_CONF}: ENABLED=${ufw ? 'yes' : 'no'}`);
  if (ufw) return pass('ufw enabled', 'ufw');
  const fwd = await tryRun(ctx, linuxFirewallCommands.firewalldState());
  if (!fwd.missing) evidence.push(`firewall-cmd --state: exit ${fwd.code}`);
  if (fwd.code === 0 && !fwd.missing) return pass('firewalld running', 'firewalld');
  if (denied && !ctx.privileged) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The firewall ruleset could not be read.', why: 'needs root: reading the kernel firewall ruleset (nft/iptables) needs CAP_NET_ADMIN; the device task reads it', needsPrivilege: true, evidence,
      remedy: 'Nothing to do if the device task is installed (device-trust-agent install --device); otherwise ask IT.' });
  }
  if (nft.missing && ipt.missing && ufw === undefined && fwd.missing) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'No firewall tool was found.', why: 'neither nft, iptables, ufw nor firewalld is installed', evidence, remedy: LINUX_REMEDY });
  }
  return failed(evidence.length ? 'empty or accepting ruleset' : 'nothing found', 'nftables');
}

// ---------------------------------------------------------------- Windows: Defender Firewall profiles

/** ActiveStore: the profiles in force (local settings merged with Group Policy), not just the local store. */
export const win32FirewallScripts = {
  profiles: 'Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name, Enabled | ConvertTo-Json -Compress',
};
export const win32FirewallCommands = { profiles: (): Command => postureCommand(win32FirewallScripts.profiles) };

/** GpoBoolean: False = 0, True = 1, NotConfigured = 2 (as a number, a name or a JSON boolean). */
export function parseFirewallProfiles(stdout: string): { name: string; enabled: boolean }[] | undefined {
  const j = parseJsonOr<unknown>(stdout.trim());
  if (j === undefined) return undefined;
  return asArray(j as Record<string, unknown>[]).map((p) => ({ name: String(p.Name), enabled: p.Enabled === true || p.Enabled === 1 || p.Enabled === 'True' }));
}

async function win32(ctx: PostureContext): Promise<PostureResult> {
  const r = await tryRun(ctx, win32FirewallCommands.profiles());
  const fail = psFailure(r);
  const profiles = fail ? undefined : parseFirewallProfiles(r.stdout);
  if (!profiles?.length) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The firewall profiles could not be read.', why: fail ? `Get-NetFirewallProfile failed: ${fail.error}${hex(fail.hresult)}` : 'Get-NetFirewallProfile gave no profiles',
      evidence: [`Get-NetFirewallProfile: ${fail ? fail.error : 'no answer'}`], remedy: 'Ask IT to check Windows Defender Firewall on this computer.' });
  }
  return judgeFirewallProfiles(profiles);
}

export function judgeFirewallProfiles(profiles: { name: string; enabled: boolean }[]): PostureResult {
  const evidence = [`Get-NetFirewallProfile: ${profiles.map((p) => `${p.name} ${p.enabled ? 'on' : 'off'}`).join(', ')}`];
  const off = profiles.filter((p) => !p.enabled).map((p) => p.name);
  if (!off.length) return result({ check: ID, title: TITLE, status: 'PASS', summary: 'Windows Defender Firewall is on for every network profile.', evidence, facts: { enabled: true } });
  return result({ check: ID, title: TITLE, status: 'FAIL', summary: `Windows Defender Firewall is off for: ${off.join(', ')}.`, evidence, facts: { enabled: false, off: off.join(',') },
    remedy: 'Turn it on: Settings → Privacy & security → Windows Security → Firewall & network protection → turn on each network (Domain, Private, Public).' });
}

// ---------------------------------------------------------------- macOS: the application firewall

export const darwinFirewallCommands = {
  globalState: (): Command => ({ file: '/usr/libexec/ApplicationFirewall/socketfilterfw', args: ['--getglobalstate'] }),
};

/** socketfilterfw prints "… (State = N)": 0 off, 1 on, 2 on and blocking all incoming. The number decides. */
export function parseSocketFilterState(stdout: string): number | undefined {
  const m = /State\s*=\s*(\d)/.exec(stdout);
  return m ? Number(m[1]) : undefined;
}

export function judgeSocketFilter(stdout: string): PostureResult {
  const state = parseSocketFilterState(stdout);
  const evidence = [`socketfilterfw --getglobalstate: ${firstLine(stdout) || '(no output)'}`];
  if (state === undefined) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The application firewall state could not be read.', why: 'socketfilterfw gave no "State = N"', evidence, remedy: 'Ask IT to check the macOS firewall.' });
  if (state >= 1) return result({ check: ID, title: TITLE, status: 'PASS', summary: state === 2 ? 'The macOS firewall is on and blocks all incoming connections.' : 'The macOS firewall is on.', evidence, facts: { enabled: true, state } });
  return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'The macOS firewall is off.', evidence, facts: { enabled: false, state }, remedy: 'Turn it on: System Settings → Network → Firewall → On.' });
}

async function darwin(ctx: PostureContext): Promise<PostureResult> {
  const r = await tryRun(ctx, darwinFirewallCommands.globalState());
  return judgeSocketFilter(r.stdout);
}

export const firewall: PostureCheck = {
  id: ID,
  title: TITLE,
  run: (ctx) => (ctx.platform === 'win32' ? win32(ctx) : ctx.platform === 'darwin' ? darwin(ctx) : linux(ctx)),
};

import type { Command } from '../../base/exec.js';
import { hex, postureCommand, psFailure } from './powershell.js';
import { asArray, parseJsonOr, result, tryRun, type PostureCheck, type PostureContext, type PostureResult } from './types.js';

const ID = 'endpoint-protection';
const TITLE = 'Endpoint protection';

// ---------------------------------------------------------------- Windows: Security Center's antivirus products, and Defender's own status

export const win32EndpointScripts = {
  /** SecurityCenter2 lists every registered antivirus (Defender or another); Get-MpComputerStatus adds Defender's detail. */
  status: [
    "$av = @(Get-CimInstance -Namespace 'root\\SecurityCenter2' -ClassName AntiVirusProduct -ErrorAction SilentlyContinue | Select-Object displayName, productState)",
    '$mp = $null',
    'try { $mp = Get-MpComputerStatus | Select-Object AMServiceEnabled, AntivirusEnabled, RealTimeProtectionEnabled, AntivirusSignatureAge, AMRunningMode } catch { }',
    '@{ products = $av; defender = $mp } | ConvertTo-Json -Compress -Depth 3',
  ].join('\n'),
};
export const win32EndpointCommands = { status: (): Command => postureCommand(win32EndpointScripts.status) };

/**
 * productState packs three bytes: the product type, the scanner state (0x10 = on, 0x00 = off, 0x01 snoozed, 0x11
 * on… as documented by Security Center consumers), and signature state (0x00 up to date, 0x10 out of date).
 */
export function decodeProductState(state: number): { enabled: boolean; upToDate: boolean } {
  const scanner = (state >> 8) & 0xff;
  const sig = state & 0xff;
  return { enabled: (scanner & 0x10) === 0x10, upToDate: sig === 0x00 };
}

export function judgeWin32Endpoint(stdout: string): PostureResult {
  const j = parseJsonOr<{ products?: unknown; defender?: Record<string, unknown> | null }>(stdout.trim());
  const remedy = 'Turn on real-time protection: Settings → Privacy & security → Windows Security → Virus & threat protection (or start the antivirus IT installed).';
  if (!j) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The antivirus status could not be read.', why: 'Security Center and Defender gave no JSON', evidence: [], remedy });
  const products = asArray(j.products as { displayName?: string; productState?: number }[] | null).filter((p) => typeof p?.productState === 'number');
  const evidence = products.map((p) => {
    const d = decodeProductState(p.productState!);
    return `SecurityCenter2: ${p.displayName ?? '?'} ${d.enabled ? 'on' : 'off'}${d.upToDate ? '' : ', signatures out of date'} (productState 0x${p.productState!.toString(16)})`;
  });
  const d = j.defender;
  if (d) evidence.push(`Get-MpComputerStatus: AntivirusEnabled=${String(d.AntivirusEnabled)}, RealTimeProtectionEnabled=${String(d.RealTimeProtectionEnabled)}, AMRunningMode=${String(d.AMRunningMode ?? '?')}, signature age ${String(d.AntivirusSignatureAge ?? '?')} d`);
  const on = products.filter((p) => decodeProductState(p.productState!).enabled).map((p) => p.displayName ?? 'antivirus');
  const defenderOn = d?.AntivirusEnabled === true && d?.RealTimeProtectionEnabled === true;
  if (on.length || defenderOn) {
    const names = on.length ? on : ['Microsoft Defender Antivirus'];
    return result({ check: ID, title: TITLE, status: 'PASS', summary: `Endpoint protection is running: ${names.join(', ')}.`, evidence, facts: { running: true, product: names.join(', ') } });
  }
  if (!products.length && !d) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'No antivirus status was available.', why: 'Security Center listed no product (a Windows Server has none) and Get-MpComputerStatus did not answer', evidence, remedy });
  return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'No antivirus has real-time protection on.', evidence, facts: { running: false }, remedy });
}

async function win32(ctx: PostureContext): Promise<PostureResult> {
  const r = await tryRun(ctx, win32EndpointCommands.status());
  const fail = psFailure(r);
  if (fail) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The antivirus status could not be read.', why: `${fail.error}${hex(fail.hresult)}`, evidence: [] });
  return judgeWin32Endpoint(r.stdout);
}

// ---------------------------------------------------------------- Linux and macOS: the admin's list of process names and services

export const serviceCommands = {
  /** Exit code 0 when the unit is active. */
  systemd: (unit: string): Command => ({ file: 'systemctl', args: ['is-active', '--quiet', unit] }),
  /** Exit code 0 when launchd knows the job in the system domain. */
  launchd: (label: string): Command => ({ file: '/bin/launchctl', args: ['print', `system/${label}`] }),
  /** Windows: exit code 0 when the service is running (structured: the Status enum's name). */
  win32: (name: string): Command => postureCommand(`if ((Get-Service -Name '${name.replace(/'/g, "''")}').Status -ne 'Running') { exit 1 }`),
};

async function listed(ctx: PostureContext): Promise<PostureResult> {
  const { endpointProcesses, endpointServices } = ctx.options;
  const running = new Set(ctx.processes());
  const evidence: string[] = [];
  const seen = endpointProcesses.filter((p) => running.has(p));
  evidence.push(`processes looked for: ${endpointProcesses.join(', ') || '(none)'} → ${seen.length ? `running: ${seen.join(', ')}` : 'none running'}`);
  for (const s of endpointServices) {
    const r = await tryRun(ctx, ctx.platform === 'darwin' ? serviceCommands.launchd(s) : serviceCommands.systemd(s));
    evidence.push(`service ${s}: ${r.code === 0 ? 'running' : r.missing ? 'no service manager' : 'not running'}`);
    if (r.code === 0) seen.push(s);
  }
  if (seen.length) return result({ check: ID, title: TITLE, status: 'PASS', summary: `Endpoint protection is running: ${seen.join(', ')}.`, evidence, facts: { running: true, product: seen.join(', ') } });
  if (!endpointProcesses.length && !endpointServices.length) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'No endpoint protection is configured to look for.', why: 'the posture settings name no process or service', evidence, remedy: 'IT sets posture.endpointProcesses / endpointServices in the managed configuration.' });
  }
  return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'None of the endpoint protection agents looked for is running.', evidence, facts: { running: false },
    remedy: `Start (or ask IT to install) the endpoint protection agent: one of ${[...endpointProcesses, ...endpointServices].slice(0, 6).join(', ')}.` });
}

export const endpointProtection: PostureCheck = {
  id: ID,
  title: TITLE,
  run: (ctx) => (ctx.platform === 'win32' ? win32(ctx) : listed(ctx)),
};

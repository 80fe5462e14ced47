import type { Command } from '../../base/exec.js';
import { serviceCommands } from './endpoint-protection.js';
import { result, tryRun, type AdminCheckSpec, type PostureContext, type PostureResult } from './types.js';

/** Commands whose exit code says whether the thing exists: 0 yes, non-zero no (reg.exe, plutil, systemctl, launchctl). */
export const adminCheckCommands = {
  /** reg.exe: exit 0 when the value (or, with no value name, the key) exists; /reg:64 sees the 64-bit view. */
  registry: (key: string, value?: string): Command => ({ file: 'reg.exe', args: ['query', key, ...(value ? ['/v', value] : ['/ve']), '/reg:64'] }),
  /** plutil -extract: exit 0 when the key path exists in the plist. */
  plist: (file: string, keyPath: string): Command => ({ file: '/usr/bin/plutil', args: ['-extract', keyPath, 'raw', '-o', '-', file] }),
};

export function commandFor(spec: AdminCheckSpec, platform: NodeJS.Platform): Command | undefined {
  switch (spec.kind) {
    case 'registry':
      return platform === 'win32' ? adminCheckCommands.registry(spec.target, spec.key) : undefined;
    case 'plist':
      return platform === 'darwin' ? adminCheckCommands.plist(spec.target, spec.key ?? '') : undefined;
    case 'service':
      return platform === 'win32' ? serviceCommands.win32(spec.target) : platform === 'darwin' ? serviceCommands.launchd(spec.target) : serviceCommands.systemd(spec.target);
    case 'file':
      return undefined;
  }
}

function describe(spec: AdminCheckSpec): string {
  const what = spec.kind === 'file' ? `file ${spec.target}` : spec.kind === 'service' ? `service ${spec.target}` : spec.kind === 'registry' ? `registry value ${spec.target}${spec.key ? `\\${spec.key}` : ''}` : `plist key ${spec.key ?? ''} in ${spec.target}`;
  return what;
}

export async function runAdminCheck(ctx: PostureContext, spec: AdminCheckSpec): Promise<PostureResult> {
  const check = `admin:${spec.name}` as const;
  const title = spec.title ?? spec.name;
  const mustExist = spec.mustExist ?? true;
  const what = describe(spec);
  const verb = spec.kind === 'service' ? (mustExist ? 'must be running' : 'must not be running') : mustExist ? 'must exist' : 'must not exist';
  let present: boolean;
  let evidence: string;
  if (spec.kind === 'file') {
    present = ctx.exists(spec.target);
    evidence = `${what}: ${present ? 'present' : 'absent'}`;
  } else {
    const cmd = commandFor(spec, ctx.platform);
    if (!cmd) return result({ check, title, status: 'UNKNOWN', summary: `A ${spec.kind} check does not apply on ${ctx.platform}.`, why: `${spec.kind} checks exist on ${spec.kind === 'registry' ? 'Windows' : 'macOS'} only`, evidence: [], remedy: 'IT: limit this check to the platform it is meant for.' });
    const r = await tryRun(ctx, cmd);
    if (r.missing) return result({ check, title, status: 'UNKNOWN', summary: `The ${what} could not be checked.`, why: `${cmd.file} is not available`, evidence: [`${cmd.file}: not found`] });
    present = r.code === 0;
    evidence = `${what}: ${present ? (spec.kind === 'service' ? 'running' : 'present') : spec.kind === 'service' ? 'not running' : 'absent'} (exit ${r.code})`;
  }
  const ok = present === mustExist;
  return result({ check, title, status: ok ? 'PASS' : 'FAIL', summary: ok ? `The ${what} ${mustExist ? (spec.kind === 'service' ? 'is running' : 'is present') : (spec.kind === 'service' ? 'is not running' : 'is absent')}, as required.` : `The ${what} ${verb}.`,
    evidence: [evidence], facts: { present }, ...(ok ? {} : { remedy: spec.remedy ?? `Ask IT about "${title}": the ${what} ${verb}.` }) });
}

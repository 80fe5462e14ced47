import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AgentError, ExitCode } from '../../base/errors.js';
import { ensurePrivateDir, writeFileAtomic } from '../../base/fsutil.js';
import { isSecretParameter, readSettingsFile } from '../../core/config.js';
import { createPassEngine } from '../../core/scheduler/create-pass-engine.js';
import { describeAttempt } from '../../core/scheduler/daemon.js';
import { Trace } from '../../base/trace.js';
import { applyInstall, defaultAgentCommand, tasksFor, type TaskRequest } from '../../platform/tasks/index.js';
import { ensureSharedPrimary, SHARED_PRIMARY_HANDLE, type SharedPrimarySetup } from '../../platform/linux-keys.js';
import type { Command, CommandContext } from '../command.js';
import { sideOf, stateDirOf } from '../side-option.js';

/** The owner-only file of install-time secrets, in the task's state directory (0700). */
export const INSTALL_SETTINGS_FILE = 'install-settings.json';

/**
 * What every registered invocation must repeat so it sees what this command line saw. Secrets (the SCEP
 * challenge, a proxy URL with a password) never go on a command line others can read (`ps`, a 0644 unit, a
 * plist, task XML): they go to `secrets`, written by `install` to an owner-only file the command references with
 * `--settings-file`.
 */
export function passThroughArgs(ctx: CommandContext, settingsFile?: string): { args: string[]; secrets: Record<string, string> } {
  const out: string[] = [];
  const secrets: Record<string, string> = {};
  if (typeof ctx.values.config === 'string') out.push('--config', path.resolve(ctx.values.config));
  for (const [k, v] of Object.entries(ctx.settings)) {
    const value = Array.isArray(v) ? v.join(path.delimiter) : String(v);
    if (isSecretParameter(k, value)) secrets[k] = value;
    else out.push(`${k}=${value}`);
  }
  if (Object.keys(secrets).length && settingsFile) out.push('--settings-file', settingsFile);
  else if (typeof ctx.values['settings-file'] === 'string') out.push('--settings-file', path.resolve(ctx.values['settings-file']));
  return { args: out, secrets };
}

/** Writes the install-time secrets owner-only (0600 in a 0700 directory: root's for the device task). */
export function writeInstallSecrets(file: string, secrets: Record<string, string>): void {
  ensurePrivateDir(path.dirname(file));
  writeFileAtomic(file, JSON.stringify(secrets, null, 2) + '\n', 0o600);
  fs.chmodSync(file, 0o600);
}

/** The user task's state directory, or the device task's (the registered commands pass it explicitly). */
export function taskStateDir(ctx: CommandContext, req: TaskRequest): string {
  if (req.scope === 'device' && typeof ctx.values['state-dir'] !== 'string' && !ctx.settings.stateDir) return tasksFor().deviceStateDir;
  return stateDirOf(ctx);
}

export function taskRequest(ctx: CommandContext): TaskRequest & { secrets: Record<string, string>; settingsFile: string } {
  const v = ctx.values;
  const scope = sideOf(ctx);
  const mode = v.mode;
  if (mode !== undefined && mode !== 'systemd' && mode !== 'autostart') throw new AgentError('config', 'USAGE', `--mode must be systemd or autostart, not "${String(mode)}".`);
  const settingsFile = path.resolve(taskStateDir(ctx, { scope } as TaskRequest), INSTALL_SETTINGS_FILE);
  const pass = passThroughArgs(ctx, settingsFile);
  return {
    scope,
    agent: typeof v.exec === 'string' ? [v.exec] : defaultAgentCommand(),
    extraArgs: pass.args,
    env: ctx.io.env,
    ...(mode ? { linuxMode: mode } : {}),
    secrets: pass.secrets,
    settingsFile,
  };
}

/**
 * The device side's one-time TPM set-up on Linux (the shared storage primary key users' TPM tokens go under), so
 * no user's first enrollment pays for creating it. Never fails the install: a problem is a warning with what to do.
 */
function deviceTpmSetup(ctx: CommandContext): SharedPrimarySetup {
  let skipTpm = false;
  try {
    skipTpm = ctx.freshConfig().config.skipTpm;
  } catch {
    /* an unreadable configuration is the install-time pass's to report; the TPM step assumes the default */
  }
  return ensureSharedPrimary({ skipTpm, env: ctx.io.env });
}

/** The install output's line for the TPM step (a warning when something is wrong). */
export function tpmSetupLine(t: SharedPrimarySetup): string {
  const secs = `${(t.ms / 1000).toFixed(2)} s`;
  switch (t.outcome) {
    case 'created':
      return `TPM: ${t.detail} in ${secs}; users' first TPM enrollment adds its token under it.`;
    case 'present':
      return `TPM: ${t.detail} (checked in ${secs}).`;
    case 'skipped':
      return `TPM: nothing to set up: ${t.detail}.`;
    default:
      return `warning: TPM: ${t.detail} (${secs}). What to do: ${t.remedy ?? ''}`;
  }
}

export const installCommand: Command = {
  name: 'install',
  summary: 'register the agent with the OS (logon, hourly, network change) and run the install-time pass',
  usage: `device-trust-agent install [--user | --device] [--mode systemd|autostart] [--exec PATH] [--no-run] [--no-start] [--dry-run] [--tpm-only]
  --user       the user task (default): Linux systemd user units (or XDG autostart without systemd),
               Windows Task Scheduler user task, macOS LaunchAgent
  --device     the device task (run as root/administrator): systemd system timer, Task Scheduler task as
               SYSTEM, macOS LaunchDaemon
  --mode M     Linux only: systemd (default where systemd runs) or autostart
  --exec PATH  the agent executable the OS should start (default: this Node and this package's bin)
  --no-run     do not run the install-time pass
  --no-start   do not start the daemon now (it starts at the next login)
  --dry-run    print the files and commands, change nothing
  --tpm-only   with --device, Linux: only the TPM set-up (the shared storage primary key users' TPM tokens go
               under, made once per machine; install --device does it too); the packages' postinst runs this
  Settings given here (OktaURL=…, --org-url, --state-dir, --config) are repeated in every registered command.`,
  options: {
    user: { type: 'boolean' },
    device: { type: 'boolean' },
    mode: { type: 'string' },
    exec: { type: 'string' },
    'no-run': { type: 'boolean' },
    'no-start': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    'tpm-only': { type: 'boolean' },
  },
  async run(ctx) {
    const req = taskRequest(ctx);
    if (ctx.values['tpm-only']) {
      if (req.scope !== 'device') throw new AgentError('config', 'USAGE', '--tpm-only is a part of install --device: give --device too.');
      const t = process.platform === 'linux' ? deviceTpmSetup(ctx) : undefined;
      if (ctx.json) ctx.io.out(JSON.stringify({ ok: true, scope: req.scope, ...(t ? { tpm: t } : {}) }, null, 2));
      else ctx.io.out(t ? tpmSetupLine(t) : `TPM: nothing to set up on ${process.platform} (the OS's key storage provider keeps the TPM's keys).`);
      return ExitCode.OK;
    }
    const plan = tasksFor().install(req);
    if (ctx.values['dry-run']) {
      if (ctx.json) ctx.io.out(JSON.stringify({ ...plan, files: plan.files.map((f) => ({ ...f, content: String(f.content) })) }, null, 2));
      else {
        ctx.io.out(`Would register the ${req.scope} task (${plan.platform}, ${plan.mode}):`);
        if (Object.keys(req.secrets).length) ctx.io.out(`  write ${req.settingsFile}  (owner-only settings: ${Object.keys(req.secrets).join(', ')})`);
        for (const f of plan.files) ctx.io.out(`  write ${f.path}  (${f.what})`);
        for (const c of plan.commands) ctx.io.out(`  run   ${[c.file, ...c.args].join(' ')}  (${c.what}${c.optional ? '; may be skipped' : ''})`);
        if (req.scope === 'device' && plan.platform === 'linux') ctx.io.out(`  tpm   create the shared TPM storage primary key at ${SHARED_PRIMARY_HANDLE} if a TPM is usable and the handle is free`);
      }
      return ExitCode.OK;
    }
    const stateDir = taskStateDir(ctx, req);
    if (Object.keys(req.secrets).length) {
      // Merged with a settings file given on this command line, so the registered command needs only ours.
      const given = typeof ctx.values['settings-file'] === 'string' && path.resolve(ctx.values['settings-file']) !== req.settingsFile
        ? readSettingsFile(ctx.values['settings-file']) : {};
      writeInstallSecrets(req.settingsFile, { ...(given as Record<string, string>), ...req.secrets });
    }
    // Before the install-time pass and the registration: whatever starts next finds the TPM set up.
    const tpm = req.scope === 'device' && plan.platform === 'linux' ? deviceTpmSetup(ctx) : undefined;
    let pass: unknown;
    let passLine: string | undefined;
    if (!ctx.values['no-run']) {
      const loadConfig = () => {
        const l = ctx.freshConfig();
        return { ...l, config: { ...l.config, stateDir } };
      };
      const { engine } = createPassEngine({ loadConfig, context: ctx.context, stateDir, side: req.scope, trace: () => new Trace(ctx.debug ? ctx.io.err : undefined), respectRenewalMoment: true });
      const r = await engine.attempt('install');
      passLine = `Install-time pass: ${describeAttempt(r)}`;
      pass = r.ran ? { trigger: r.trigger, outcome: r.report.outcome, code: r.report.code, message: r.report.message, state: r.state.state, stuck: r.state.stuck, next: r.state.next && new Date(r.state.next.at).toISOString() } : { skipped: r.why };
    }
    // Registered after the install-time pass, so that a daemon the registration starts finds it done.
    const steps = await applyInstall(plan);
    const lines = [`Registered the ${req.scope} task (${plan.platform}, ${plan.mode}):`, ...steps.map((s) => `  ✓ ${s.what}: ${s.detail}`), ...plan.notes.map((n) => `  note: ${n}`)];
    if (tpm) lines.push(tpmSetupLine(tpm));
    if (passLine) lines.push(passLine);
    let started: number | undefined;
    if (req.scope === 'user' && plan.mode === 'autostart' && !ctx.values['no-start']) {
      // Without systemd nothing starts the daemon until the next login: start it now, detached.
      ensurePrivateDir(stateDir);
      const log = fs.openSync(path.join(stateDir, 'daemon.log'), 'a', 0o600);
      const child = spawn(req.agent[0]!, [...req.agent.slice(1), 'daemon', '--trigger', 'logon', ...req.extraArgs], { detached: true, stdio: ['ignore', log, log], env: ctx.io.env });
      child.unref();
      fs.closeSync(log);
      started = child.pid;
      lines.push(`Started the daemon (pid ${child.pid}); it logs to ${path.join(stateDir, 'daemon.log')}.`);
    }
    if (ctx.json) ctx.io.out(JSON.stringify({ ok: true, platform: plan.platform, scope: req.scope, mode: plan.mode, steps, notes: plan.notes, ...(tpm ? { tpm } : {}), ...(pass ? { pass } : {}), ...(started ? { daemonPid: started } : {}) }, null, 2));
    else ctx.io.out(lines.join('\n'));
    return ExitCode.OK;
  },
};

import fs from 'node:fs';
import { ExitCode } from '../../base/errors.js';
import { daemonLockFile, holderAlive, readLock } from '../../core/state/lock.js';
import { removeBrowserSetup, removeCertificates } from '../../core/certificates/removal.js';
import { applyRemoval, tasksFor, type StepReport } from '../../platform/tasks/index.js';
import type { Command } from '../command.js';
import { taskRequest, taskStateDir } from './install.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stops the daemon of a state directory (whatever started it) and waits for it to let go of its lock. */
async function stopDaemon(stateDir: string): Promise<StepReport | undefined> {
  const file = daemonLockFile(stateDir);
  const held = readLock(file);
  if (!held?.info || !holderAlive(held.info, held.ageMs)) return undefined;
  const { pid } = held.info;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return undefined;
  }
  for (let i = 0; i < 100; i++) {
    const now = readLock(file);
    if (!now?.info || now.info.nonce !== held.info.nonce || !holderAlive(now.info, now.ageMs)) return { what: 'stop the daemon', ok: true, detail: `pid ${pid} stopped` };
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  return { what: 'stop the daemon', ok: true, detail: `pid ${pid} did not stop within 10 s and was killed` };
}

export const uninstallCommand: Command = {
  name: 'uninstall',
  summary: 'unregister the agent from the OS and stop its daemon; --purge also removes its certificate and state',
  usage: `device-trust-agent uninstall [--user | --device] [--purge]
  Removes what install registered (in every mode), stops the daemon, and prunes directories left empty.
  --purge  also remove the device-trust certificate from the store, the browser policy the agent wrote,
           and the agent's keys, state and event log`,
  options: {
    user: { type: 'boolean' },
    device: { type: 'boolean' },
    mode: { type: 'string' },
    exec: { type: 'string' },
    purge: { type: 'boolean' },
  },
  async run(ctx) {
    const req = taskRequest(ctx);
    const plan = tasksFor().uninstall(req);
    const steps = await applyRemoval(plan);
    const stateDir = taskStateDir(ctx, req);
    const stopped = await stopDaemon(stateDir);
    if (stopped) steps.push(stopped);
    if (fs.existsSync(req.settingsFile)) {
      fs.rmSync(req.settingsFile, { force: true });
      steps.push({ what: 'remove install settings', ok: true, detail: `removed ${req.settingsFile}` });
    }
    if (ctx.values.purge) {
      // The same removal as `remove-certificate` and `browser-setup --remove` (core/certificates/removal.ts), then the state.
      try {
        const loaded = ctx.config();
        const cfg = { ...loaded, config: { ...loaded.config, stateDir } };
        const certs = await removeCertificates(cfg, ctx.platform(), ctx.context.events);
        steps.push({ what: 'remove certificate', ok: true, detail: certs.removed.length ? `removed ${certs.removed.map((r) => r.serialNumber).join(', ')} from ${certs.store}` : `none in ${certs.store}` });
        const policy = await removeBrowserSetup(cfg, ctx.platform(), ctx.context.events);
        steps.push({ what: 'remove browser setup', ok: true, detail: `${policy.written.length ? `removed from ${policy.written.join(', ')}` : 'nothing of ours found'}${policy.skipped.length ? `; not removed: ${policy.skipped.map((x) => `${x.dir} (${x.reason})`).join(', ')}` : ''}` });
      } catch (e) {
        steps.push({ what: 'remove certificate and browser setup', ok: false, detail: (e as Error).message });
      }
      if (fs.existsSync(stateDir)) {
        fs.rmSync(stateDir, { recursive: true, force: true });
        steps.push({ what: 'remove state', ok: true, detail: `removed ${stateDir} (state, keys, event log)` });
      }
    }
    if (ctx.json) ctx.io.out(JSON.stringify({ ok: steps.every((s) => s.ok), steps, notes: plan.notes }, null, 2));
    else ctx.io.out([`Unregistered the ${req.scope} task (${plan.platform}):`, ...steps.map((s) => `  ${s.ok ? '✓' : '✗'} ${s.what}: ${s.detail}`), ...plan.notes.map((n) => `  note: ${n}`)].join('\n'));
    return steps.every((s) => s.ok) ? ExitCode.OK : ExitCode.LOCAL_ERROR;
  },
};

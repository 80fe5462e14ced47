import fs from 'node:fs';
import path from 'node:path';
import { ExitCode } from '../../core/errors.js';
import { daemonLockFile, holderAlive, readLock } from '../../core/lock.js';
import { POLICY_FILE } from '../../platform/browser-policy.js';
import { createPlatform } from '../../platform/index.js';
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
    if (ctx.values.purge) {
      try {
        const { config } = ctx.config();
        const store = createPlatform(config).store;
        for (const c of (await store.list()).filter((x) => x.info.issuerCN === config.issuerCN)) {
          await store.remove(c.id);
          steps.push({ what: 'remove certificate', ok: true, detail: `removed ${c.info.serialNumber} from ${store.description}` });
        }
        for (const dir of config.browserPolicyDirs) {
          const file = path.join(dir, POLICY_FILE);
          if (!fs.existsSync(file)) continue;
          try {
            fs.rmSync(file);
            steps.push({ what: 'remove browser policy', ok: true, detail: `removed ${file}` });
          } catch (e) {
            steps.push({ what: 'remove browser policy', ok: false, detail: `${file}: ${(e as Error).message} (the device task's uninstall, run as root, removes it)` });
          }
        }
      } catch (e) {
        steps.push({ what: 'remove certificate', ok: false, detail: (e as Error).message });
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

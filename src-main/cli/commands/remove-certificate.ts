import { ExitCode } from '../../base/errors.js';
import { removeCertificates } from '../../core/certificates/removal.js';
import type { Command } from '../command.js';
import { EventLog } from '../../core/events.js';
import { sweepTempDirs } from '../../core/state/temp-sweep.js';

export const removeCertificateCommand: Command = {
  name: 'remove-certificate',
  summary: "remove this user's device-trust certificate and key (uninstall, on request)",
  usage: `device-trust-agent remove-certificate [--json]
  Removes the device-trust certificates (issuer "MTLS Certificate Authority") and their keys from this user's
  store, the agent's key files, Firefox profile copies and temporary files an interrupted run left behind
  (they can hold key material). Other certificates are not touched. The device is no
  longer trusted until the next enrollment.`,
  async run(ctx) {
    const loaded = ctx.config();
    const res = await removeCertificates(loaded, ctx.platform(), ctx.context.events);
    const swept = sweepTempDirs(loaded.config.stateDir);
    if (swept.length) {
      try {
        new EventLog(loaded.config.stateDir, 'user', { sinks: ctx.context.events }).record('TEMP_SWEPT', `Removed ${swept.length} temporary director${swept.length === 1 ? 'y' : 'ies'} (${swept.join(', ')}) left by an interrupted run; they could hold key material.`);
      } catch {
        /* the removal itself is done; the event log may be read-only */
      }
    }
    if (ctx.json) ctx.io.out(JSON.stringify({ ...res, tempSwept: swept }, null, 2));
    else {
      ctx.io.out(res.removed.length ? `Removed ${res.removed.map((r) => r.serialNumber).join(', ')} from ${res.store}.` : `No device-trust certificate in ${res.store}.`);
      for (const s of res.copies.skipped) ctx.io.out(`  not changed: ${s.dir} (${s.reason})`);
      if (res.keysRemoved.length) ctx.io.out(`Removed ${res.keysRemoved.length} device key${res.keysRemoved.length === 1 ? '' : 's'} without a certificate (an interrupted enrollment or a pending request) from the key store.`);
      if (swept.length) ctx.io.out(`Removed ${swept.length} temporary director${swept.length === 1 ? 'y' : 'ies'} left by an interrupted run (they could hold key material).`);
    }
    return ExitCode.OK;
  },
};

import { ExitCode } from '../../base/errors.js';
import { removeCertificates } from '../../core/removal.js';
import type { Command } from '../command.js';

export const removeCertificateCommand: Command = {
  name: 'remove-certificate',
  summary: "remove this user's device-trust certificate and key (uninstall, on request)",
  usage: `device-trust-agent remove-certificate [--json]
  Removes the device-trust certificates (issuer "MTLS Certificate Authority") and their keys from this user's
  store, the agent's key files and Firefox profile copies. Other certificates are not touched. The device is no
  longer trusted until the next enrollment.`,
  async run(ctx) {
    const res = await removeCertificates(ctx.config(), ctx.platform());
    if (ctx.json) ctx.io.out(JSON.stringify(res, null, 2));
    else {
      ctx.io.out(res.removed.length ? `Removed ${res.removed.map((r) => r.serialNumber).join(', ')} from ${res.store}.` : `No device-trust certificate in ${res.store}.`);
      for (const s of res.copies.skipped) ctx.io.out(`  not changed: ${s.dir} (${s.reason})`);
    }
    return ExitCode.OK;
  },
};

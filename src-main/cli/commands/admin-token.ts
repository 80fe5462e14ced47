import { AgentError, ExitCode } from '../../base/errors.js';
import { adminTokenStatus, MAX_ADMIN_TOKEN, removeAdminToken, storeAdminToken } from '../../core/secrets/admin-token.js';
import type { Command } from '../command.js';


async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Paste the admin API token, then press Enter and Ctrl-D: ');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > MAX_ADMIN_TOKEN) throw new AgentError('config', 'USAGE', 'That is too long for an API token.');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** Keeps the org's admin API token (for reading agent pools) in the OS keyring; it is read from stdin, never argv. */
export const adminTokenCommand: Command = {
  name: 'admin-token',
  summary: 'store, check or remove the org admin API token (OS keyring) used to read AD/IWA agent status',
  usage: `device-trust-agent admin-token set | status | remove
  set      reads the token from standard input (never from the command line, where ps would show it)
           and stores it in the OS keyring for the configured org
  status   says whether a token is stored (never prints it)
  remove   deletes it from the keyring
A read-only administrator's API token is enough. It is never written to a plain file.`,
  takesArgs: true,
  async run(ctx) {
    const action = ctx.args[0];
    if (ctx.args.length !== 1 || !['set', 'status', 'remove'].includes(action ?? '')) {
      throw new AgentError('config', 'USAGE', 'Say what to do: admin-token set | status | remove.');
    }
    const loaded = ctx.config();
    if (action === 'set') {
      const r = await storeAdminToken(loaded, ctx.context, await readStdin(), 'admin-token');
      ctx.io.out(ctx.json ? JSON.stringify({ ok: true, stored: true, store: r.store }) : `Stored in the ${r.store} for ${r.org}.`);
    } else if (action === 'status') {
      const r = await adminTokenStatus(loaded, ctx.context);
      ctx.io.out(ctx.json ? JSON.stringify({ ok: true, stored: r.stored, store: r.store }) : r.stored ? `A token for ${r.org} is stored in the ${r.store}.` : `No token for ${r.org} in the ${r.store}.`);
    } else {
      const removed = await removeAdminToken(loaded, ctx.context, 'admin-token');
      ctx.io.out(ctx.json ? JSON.stringify({ ok: true, removed }) : removed ? 'Removed.' : 'There was none.');
    }
    return ExitCode.OK;
  },
};

import { AgentError, ExitCode } from '../../base/errors.js';
import { EventLog } from '../../core/events.js';
import { requireOrgUrl } from '../../core/config.js';
import { adminTokenName, openSecretStore } from '../../core/secrets/index.js';
import type { Command } from '../command.js';

const MAX_TOKEN = 4096;

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Paste the admin API token, then press Enter and Ctrl-D: ');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > MAX_TOKEN) throw new AgentError('config', 'USAGE', 'That is too long for an API token.');
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
    const { config } = ctx.config();
    const orgUrl = requireOrgUrl(config);
    const store = openSecretStore();
    const name = adminTokenName(orgUrl);
    const events = new EventLog(config.stateDir, 'admin-token');
    try {
      if (action === 'set') {
        const token = await readStdin();
        if (!token || /\s/.test(token)) throw new AgentError('config', 'USAGE', 'The token read from standard input is empty or contains spaces.');
        await store.set(name, token);
        events.record('ADMIN_TOKEN_STORED', `Admin API token for ${new URL(orgUrl).host} stored in the ${store.description}.`);
        ctx.io.out(ctx.json ? JSON.stringify({ ok: true, stored: true, store: store.description }) : `Stored in the ${store.description} for ${new URL(orgUrl).host}.`);
      } else if (action === 'status') {
        const token = await store.get(name);
        ctx.io.out(ctx.json ? JSON.stringify({ ok: true, stored: Boolean(token), store: store.description }) : token ? `A token for ${new URL(orgUrl).host} is stored in the ${store.description}.` : `No token for ${new URL(orgUrl).host} in the ${store.description}.`);
      } else {
        const removed = await store.delete(name);
        if (removed) events.record('ADMIN_TOKEN_REMOVED', `Admin API token for ${new URL(orgUrl).host} removed from the ${store.description}.`);
        ctx.io.out(ctx.json ? JSON.stringify({ ok: true, removed }) : removed ? 'Removed.' : 'There was none.');
      }
    } catch (e) {
      if (e instanceof AgentError && e.code === 'KEYRING_UNAVAILABLE') events.record('KEYRING_UNAVAILABLE', e.message);
      throw e;
    }
    return ExitCode.OK;
  },
};

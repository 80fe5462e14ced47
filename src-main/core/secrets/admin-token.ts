/**
 * The org admin API token (read-only admin; it lets diagnostics read the AD/IWA agent pools): stored, checked
 * and removed the same way from the command line and from the dashboard. Always in the secret store the
 * process was given (the OS keyring, or Electron safeStorage in the app) — never a plain file.
 */
import { AgentError } from '../../base/errors.js';
import { requireOrgUrl, type LoadedConfig } from '../config.js';
import { DEFAULT_HEALTH_POLICY } from '../diagnostics/health.js';
import { probeAgentPools } from '../diagnostics/probes.js';
import { runCommand } from '../../base/exec.js';
import { EventLog } from '../events.js';
import { HttpClient, rootCertificates } from '../net/http.js';
import { httpOptionsFor } from '../proxy/options.js';
import { adminTokenName } from './types.js';
import type { AgentContext } from '../context.js';

export const MAX_ADMIN_TOKEN = 4096;

export interface AdminTokenStatus {
  org: string;
  stored: boolean;
  store: string;
}

function orgHost(loaded: LoadedConfig): { orgUrl: string; host: string } {
  const orgUrl = requireOrgUrl(loaded.config);
  return { orgUrl, host: new URL(orgUrl).host };
}

/** Refuses what cannot be a token before it reaches the store: empty, spaces, control characters, too long. */
export function validAdminToken(token: string): string {
  const t = token.trim();
  if (!t || t.length > MAX_ADMIN_TOKEN || /[\s\x00-\x1f\x7f]/.test(t)) {
    throw new AgentError('config', 'ADMIN_TOKEN_INVALID', 'That does not look like an API token: it is empty, too long, or contains spaces or control characters.',
      'Copy the token again from the org admin console (Security → API → Tokens) and paste it without spaces.');
  }
  return t;
}

/** The context's part these need: its secret store, and its sinks for the events that say what happened. */
export type TokenContext = Pick<AgentContext, 'secrets' | 'events'>;

export async function adminTokenStatus(loaded: LoadedConfig, { secrets: store }: Pick<AgentContext, 'secrets'>): Promise<AdminTokenStatus> {
  const { orgUrl, host } = orgHost(loaded);
  return { org: host, stored: Boolean(await store.get(adminTokenName(orgUrl))), store: store.description };
}

export async function storeAdminToken(loaded: LoadedConfig, context: TokenContext, token: string, task: string): Promise<AdminTokenStatus> {
  const { orgUrl, host } = orgHost(loaded);
  const store = context.secrets;
  const events = new EventLog(loaded.config.stateDir, task, { sinks: context.events });
  await recordingKeyringTrouble(events, () => store.set(adminTokenName(orgUrl), validAdminToken(token)));
  events.record('ADMIN_TOKEN_STORED', `Admin API token for ${host} stored in the ${store.description}.`);
  return { org: host, stored: true, store: store.description };
}

export async function removeAdminToken(loaded: LoadedConfig, context: TokenContext, task: string): Promise<boolean> {
  const { orgUrl, host } = orgHost(loaded);
  const store = context.secrets;
  const events = new EventLog(loaded.config.stateDir, task, { sinks: context.events });
  const removed = await recordingKeyringTrouble(events, () => store.delete(adminTokenName(orgUrl)));
  if (removed) events.record('ADMIN_TOKEN_REMOVED', `Admin API token for ${host} removed from the ${store.description}.`);
  return removed;
}

async function recordingKeyringTrouble<T>(events: EventLog, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof AgentError && e.code === 'KEYRING_UNAVAILABLE') events.record('KEYRING_UNAVAILABLE', e.message);
    throw e;
  }
}

export interface AdminTokenCheck {
  ok: boolean;
  /** One sentence: what the org said. */
  message: string;
  code?: string | undefined;
  pools?: number | undefined;
}

/** Reads the agent pools with the stored token, as diagnostics will: the test behind the dashboard's "Test" button. */
export async function checkAdminToken(loaded: LoadedConfig, context: Pick<AgentContext, 'secrets' | 'systemProxy'>, env: NodeJS.ProcessEnv = process.env): Promise<AdminTokenCheck> {
  const { config } = loaded;
  const { orgUrl, host } = orgHost(loaded);
  const timeoutMs = DEFAULT_HEALTH_POLICY.timeoutMs;
  const http = new HttpClient({ ...httpOptionsFor(config, context, { env }), timeoutMs });
  try {
    const { result, pools } = await probeAgentPools({
      config, orgUrl: orgUrl.replace(/\/+$/, ''), http, roots: rootCertificates(config.tlsCaFile), timeoutMs, env, platform: undefined, secrets: context.secrets,
      runner: runCommand, ntpPort: 123, direct: () => false, now: () => new Date(),
    });
    if (pools) return { ok: true, message: `${host} accepted the token: ${pools.length} agent pool(s) read.`, pools: pools.length };
    const skipped = typeof result.facts.skipped === 'string' ? result.facts.skipped : undefined;
    const why = result.error?.message ?? skipped ?? `the check ended ${result.status}`;
    return { ok: false, message: `The token could not be used with ${host}: ${why}.`, code: result.error?.code ?? (result.status === 'skipped' ? 'ADMIN_TOKEN_NOT_CHECKED' : undefined) };
  } finally {
    await http.destroy();
  }
}

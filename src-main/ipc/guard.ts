/**
 * The gate every IPC call passes in the main process, whatever carries it (Electron's ipcMain, or the
 * Playwright binding in the Chromium tests): the sender must be the dashboard's own origin and its main
 * frame, the request must match the channel's schema, and the answer is stripped to the channel's schema.
 * Electron-free, so it runs and is tested under plain Node.
 */
import { isAgentError } from '../base/errors.js';
import { safeJson, safeText as redact } from '../base/safe-text.js';
import { CHANNELS, type Channel, type IpcResult, type Request, type Response } from './contract.js';

/** Who sent a call: the URL of the sending frame (undefined once it navigated away or was destroyed). */
export interface IpcSender {
  frameUrl: string | undefined;
  isMainFrame: boolean;
}

export type Handlers = { [C in Channel]: (request: Request<C>) => Promise<Response<C>> };

export interface GuardOptions {
  /** Origins (scheme://host[:port]) the dashboard is served from, e.g. app://dashboard. */
  allowedOrigins: string[];
  /** Told about every refused call (the shell logs them; they mean a bug or an attack). */
  onRefused?: (reason: string, channel: string) => void;
}

/** scheme://host[:port] of a URL, also for custom schemes (where WHATWG `origin` is "null"). */
export function originOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (!u.host) return undefined;
    return `${u.protocol}//${u.host}`;
  } catch {
    return undefined;
  }
}

/** Why a sender is refused, or undefined when it is the dashboard's main frame. */
export function senderProblem(sender: IpcSender, allowedOrigins: string[]): string | undefined {
  if (!sender.frameUrl) return 'the sending frame is gone';
  if (!sender.isMainFrame) return 'the call came from a sub-frame';
  const origin = originOf(sender.frameUrl);
  if (!origin || !allowedOrigins.includes(origin)) return `the sender's origin ${origin ?? '(none)'} is not the dashboard`;
  return undefined;
}

const REFUSED = { code: 'IPC_REFUSED', message: 'The request was refused.' } as const;

export function isChannel(name: unknown): name is Channel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(CHANNELS, name);
}

/** Checks, validates, runs and strips one call. Never throws: the answer is always an envelope. */
export async function dispatch(channel: unknown, request: unknown, sender: IpcSender, handlers: Handlers, opts: GuardOptions): Promise<IpcResult<unknown>> {
  const name = typeof channel === 'string' ? channel.slice(0, 100) : String(typeof channel);
  if (!isChannel(channel)) {
    opts.onRefused?.('unknown channel', name);
    return { ok: false, error: REFUSED };
  }
  const problem = senderProblem(sender, opts.allowedOrigins);
  if (problem) {
    opts.onRefused?.(problem, name);
    return { ok: false, error: REFUSED };
  }
  const spec = CHANNELS[channel];
  const parsed = spec.request.safeParse(request);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    opts.onRefused?.('malformed request', name);
    return { ok: false, error: { code: 'IPC_INVALID_REQUEST', message: `The request to ${channel} is not valid${first ? ` (${first.path.join('.') || 'request'}: ${first.message})` : ''}.` } };
  }
  let value: unknown;
  try {
    value = await (handlers[channel] as (r: unknown) => Promise<unknown>)(parsed.data);
  } catch (e) {
    if (isAgentError(e)) return { ok: false, error: { code: e.code, message: redact(e.message), ...(e.remedy ? { remedy: redact(e.remedy) } : {}) } };
    return { ok: false, error: { code: 'INTERNAL', message: redact(`Unexpected failure: ${(e as Error).message}`) } };
  }
  // Only what the contract names leaves the main process (zod drops unknown keys).
  const out = spec.response.safeParse(value);
  if (!out.success) return { ok: false, error: { code: 'INTERNAL', message: `The answer to ${channel} did not match the contract.` } };
  // Defence in depth: a token or key that slipped into a message is redacted on its way out.
  // (reports and event lists are long, so strings are capped generously here; every server string was capped where it entered).
  return { ok: true, value: safeJson(out.data, { max: 100_000 }) as unknown };
}

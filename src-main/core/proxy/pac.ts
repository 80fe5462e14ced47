/**
 * PAC files: fetched (http, https or file URL; never through a proxy), then evaluated by `pac-resolver`
 * inside a QuickJS sandbox (`quickjs-wasi`, WebAssembly: no access to Node, the file system or the
 * network beyond the PAC helper functions). Each script gets its own VM, a memory limit and a time limit
 * enforced by QuickJS's interrupt handler, so a script that loops forever is stopped, not waited for.
 */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createPacResolver } from 'pac-resolver';
import { QuickJS } from 'quickjs-wasi';
import { Agent, request } from 'undici';
import { AgentError } from '../../base/errors.js';
import { parseProxyUrl } from './env.js';
import type { Route } from './types.js';

/** How long one evaluation (compiling the script, or one FindProxyForURL call) may run. */
export const PAC_TIME_LIMIT_MS = 3000;
const PAC_MEMORY_LIMIT = 32 * 1024 * 1024;
const PAC_MAX_BYTES = 1024 * 1024;

export interface PacFetchOptions {
  ca: string[];
  timeoutMs: number;
}

/** Reads the PAC file. Network failures are "retry later"; a PAC the server refuses is a configuration error. */
export async function fetchPac(location: string, opts: PacFetchOptions): Promise<string> {
  const u = new URL(location);
  if (u.protocol === 'file:') {
    try {
      const text = await fs.readFile(fileURLToPath(u), 'utf8');
      if (text.length > PAC_MAX_BYTES) throw new Error(`larger than ${PAC_MAX_BYTES} bytes`);
      return text;
    } catch (e) {
      throw new AgentError('config', 'PAC_UNREADABLE', `The PAC file ${location} cannot be read: ${(e as Error).message}.`,
        'Check HttpProxyPacLocation= (httpProxyPacLocation) and the file.');
    }
  }
  // The PAC file itself is always fetched directly: a PAC cannot be needed to find the PAC.
  const dispatcher = new Agent({ connect: { ca: opts.ca, rejectUnauthorized: true, timeout: opts.timeoutMs }, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
  try {
    const res = await request(location, { dispatcher, headers: { accept: 'application/x-ns-proxy-autoconfig, */*' } });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > PAC_MAX_BYTES) {
        res.body.destroy();
        throw new AgentError('config', 'PAC_INVALID', `The PAC file at ${location} is larger than ${PAC_MAX_BYTES} bytes; it was not used.`);
      }
      chunks.push(chunk as Buffer);
    }
    if (res.statusCode !== 200) {
      throw new AgentError(res.statusCode >= 500 ? 'retry-later' : 'config', 'PAC_UNAVAILABLE', `The PAC file at ${location} could not be fetched (HTTP ${res.statusCode}).`,
        'Check HttpProxyPacLocation= (httpProxyPacLocation) and that the server publishes the PAC file.');
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (e) {
    if (e instanceof AgentError) throw e;
    const err = e as { code?: string; message?: string };
    throw new AgentError('retry-later', 'PAC_UNREACHABLE', `The PAC file at ${location} could not be fetched: ${err.code ?? err.message}.`,
      'Check the network connection and HttpProxyPacLocation=; the agent tries again later.', { cause: e });
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

/**
 * Turns a FindProxyForURL answer into routes: `PROXY h:p` and `HTTP h:p` (plain proxies), `HTTPS h:p` (a TLS
 * proxy), `DIRECT`. SOCKS entries are skipped (not supported); an answer with nothing usable is an error.
 */
export function parsePacResult(answer: unknown, location: string): { routes: Route[]; skipped: string[] } {
  if (answer === null || answer === undefined || answer === '') return { routes: [{ kind: 'direct' }], skipped: [] };
  if (typeof answer !== 'string') {
    throw new AgentError('config', 'PAC_INVALID', `The PAC file ${location} returned ${typeof answer} instead of a proxy list.`, 'Fix FindProxyForURL in the PAC file: it must return a string such as "PROXY host:port; DIRECT".');
  }
  const routes: Route[] = [];
  const skipped: string[] = [];
  for (const part of answer.split(';')) {
    const entry = part.trim();
    if (!entry) continue;
    const [kind, target] = entry.split(/\s+/, 2) as [string, string | undefined];
    const k = kind.toUpperCase();
    if (k === 'DIRECT') routes.push({ kind: 'direct' });
    else if ((k === 'PROXY' || k === 'HTTP' || k === 'HTTPS') && target) {
      routes.push({ kind: 'proxy', proxy: parseProxyUrl(`${k === 'HTTPS' ? 'https' : 'http'}://${target}`, `the PAC file ${location}`) });
    } else skipped.push(entry);
  }
  if (routes.length === 0) {
    throw new AgentError('config', 'PAC_UNUSABLE', `The PAC file ${location} returned "${answer}", which has no route the agent can use (SOCKS is not supported).`,
      'Return PROXY, HTTPS or DIRECT entries for the identity provider\'s hosts.');
  }
  return { routes, skipped };
}

/** One loaded PAC script in its own sandbox. Calls are serialized: the time limit is per call. */
export class PacScript {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly location: string,
    private readonly vm: QuickJS,
    private readonly find: (url: string, host?: string) => Promise<string>,
    private readonly clock: { deadline: number },
    private readonly timeLimitMs: number,
  ) {}

  static async compile(location: string, source: string, opts: { timeLimitMs?: number; log?: (line: string) => void } = {}): Promise<PacScript> {
    const timeLimitMs = opts.timeLimitMs ?? PAC_TIME_LIMIT_MS;
    // The interrupt handler runs about once per bytecode instruction: it only compares two numbers.
    const clock = { deadline: Date.now() + timeLimitMs };
    const vm = await QuickJS.create({ memoryLimit: PAC_MEMORY_LIMIT, interruptHandler: () => Date.now() > clock.deadline });
    clock.deadline = Date.now() + timeLimitMs;
    try {
      // alert() goes to the trace, never to stdout (it would corrupt --json output).
      const find = createPacResolver(vm, source, { sandbox: { alert: (m: unknown = '') => opts.log?.(`PAC alert: ${String(m)}`) } });
      return new PacScript(location, vm, find, clock, timeLimitMs);
    } catch (e) {
      vm.dispose?.();
      throw pacError(e, location, timeLimitMs, 'loading');
    }
  }

  /** FindProxyForURL(url, host) within the time limit; the host-side helpers (dnsResolve) count too. */
  evaluate(url: string): Promise<unknown> {
    const run = async () => {
      this.clock.deadline = Date.now() + this.timeLimitMs;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error('interrupted')), this.timeLimitMs + 100);
      });
      try {
        return await Promise.race([this.find(url), late]);
      } catch (e) {
        throw pacError(e, this.location, this.timeLimitMs, 'running');
      } finally {
        clearTimeout(timer);
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  dispose(): void {
    try {
      this.vm.dispose?.();
    } catch {
      /* a VM stopped mid-call may refuse; it is garbage either way */
    }
  }
}

function pacError(e: unknown, location: string, timeLimitMs: number, phase: 'loading' | 'running'): AgentError {
  if (e instanceof AgentError) return e;
  const err = e as { name?: string; message?: string };
  const message = err.message ?? String(e);
  if (/interrupted/i.test(message)) {
    return new AgentError('config', 'PAC_TIMEOUT', `The PAC file ${location} did not finish within ${timeLimitMs} ms (${phase} it was stopped); it looks like an endless loop.`,
      'Fix the PAC file, or set HttpProxy= instead of HttpProxyPacLocation=.');
  }
  if (/out of memory/i.test(message)) {
    return new AgentError('config', 'PAC_INVALID', `The PAC file ${location} used more than ${PAC_MEMORY_LIMIT / 1024 / 1024} MiB while ${phase}; it was stopped.`, 'Fix the PAC file.');
  }
  const syntax = /^Line \d+:|SyntaxError|Unexpected token/i.test(message) || err.name === 'SyntaxError';
  const missing = /Expected a "function" named `FindProxyForURL`|FindProxyForURL is not defined/.test(message);
  const what = syntax ? 'is not valid JavaScript' : missing ? 'does not define FindProxyForURL(url, host)' : `failed while ${phase}`;
  return new AgentError('config', 'PAC_INVALID', `The PAC file ${location} ${what}: ${message.split('\n')[0]}.`,
    'Fix the PAC file (it must define FindProxyForURL(url, host) returning e.g. "PROXY host:port; DIRECT"), or set HttpProxy= instead.');
}

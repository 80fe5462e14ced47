/**
 * PAC files: fetched (http, https or file URL; never through a proxy), then evaluated by `pac-resolver`
 * inside a QuickJS sandbox (`quickjs-wasi`, WebAssembly: no access to Node, the file system or the
 * network beyond the PAC helper functions), in a worker thread (pac-worker.ts). Each VM has a memory limit and
 * a time limit enforced by QuickJS's interrupt handler; past the limit the worker is terminated, so a script
 * that loops, recurses or waits on DNS forever is stopped, not waited for, and cannot crash the agent.
 */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Agent, request } from 'undici';
import { AgentError } from '../../base/errors.js';
import { parseProxyUrl } from './env.js';
import type { PacWorkerData, PacWorkerReply, PacWorkerRequest, WasmModule } from './pac-worker.js';
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
      // Size first: a 50 MB file is refused without being read.
      const { size } = await fs.stat(fileURLToPath(u));
      if (size > PAC_MAX_BYTES) throw new Error(`it is larger than ${PAC_MAX_BYTES} bytes`);
      return await fs.readFile(fileURLToPath(u), 'utf8');
    } catch (e) {
      throw new AgentError('config', 'PAC_UNREADABLE', `The PAC file ${location} cannot be read: ${(e as Error).message}.`,
        'Check HttpProxyPacLocation= (httpProxyPacLocation) and the file.');
    }
  }
  // The PAC file itself is always fetched directly: a PAC cannot be needed to find the PAC.
  const dispatcher = new Agent({ connect: { ca: opts.ca, rejectUnauthorized: true, timeout: opts.timeoutMs }, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
  try {
    // One deadline for the whole fetch (connect, headers and body): a trickling server cannot stretch it.
    const signal = AbortSignal.timeout(opts.timeoutMs);
    const res = await request(location, { dispatcher, signal, headers: { accept: 'application/x-ns-proxy-autoconfig, */*' } });
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
    const err = e as { code?: string; message?: string; name?: string };
    const why = err.name === 'TimeoutError' || err.name === 'AbortError' ? `no complete answer within ${opts.timeoutMs} ms` : err.code ?? err.message;
    throw new AgentError('retry-later', 'PAC_UNREACHABLE', `The PAC file at ${location} could not be fetched: ${why}.`,
      'Check the network connection and HttpProxyPacLocation=; the agent tries again later.', { cause: e });
  } finally {
    await dispatcher.destroy().catch(() => undefined);
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

/** At most this many evaluations of one PAC file run at once (each in its own worker); more wait their turn. */
export const PAC_MAX_WORKERS = 4;
/** Grace past the time limit before the worker is terminated (QuickJS's own interrupt normally fires first). */
const HARD_STOP_GRACE_MS = 250;
/** An evaluation running longer than this gets a second worker started for the ones waiting behind it. */
const SLOW_EVALUATION_MS = 200;
/** How long a worker may take to start its thread and VM before it is given up. */
const WORKER_START_LIMIT_MS = 15_000;

let quickjsModule: Promise<WasmModule> | undefined;
/** The QuickJS WebAssembly module, compiled once per process and shared with every PAC worker. */
function quickjsWasm(): Promise<WasmModule> {
  quickjsModule ??= fs.readFile(new URL('../quickjs.wasm', import.meta.resolve('quickjs-wasi'))).then((b) => (globalThis as unknown as { WebAssembly: { compile(b: Uint8Array): Promise<WasmModule> } }).WebAssembly.compile(b));
  quickjsModule.catch(() => (quickjsModule = undefined));
  return quickjsModule;
}

interface PacJob {
  url: string;
  /** Until when it may wait for a worker (the caller's own request deadline usually ends it sooner). */
  queuedUntil: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** One worker thread holding a compiled copy of the script. */
class PacWorker {
  readonly worker: Worker;
  busy = false;
  busySince = 0;
  dead = false;
  started = false;
  private pending: { id: number; job: PacJob; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  readonly ready: Promise<void>;

  constructor(source: string, wasm: WasmModule, private readonly timeLimitMs: number, owner: PacScript, log: ((line: string) => void) | undefined) {
    // The worker's own heap is bounded too: a script building huge strings dies there, not here.
    this.worker = new Worker(new URL('./pac-worker.js', import.meta.url), {
      workerData: { source, timeLimitMs, memoryLimit: PAC_MEMORY_LIMIT, wasm } satisfies PacWorkerData,
      resourceLimits: { maxOldGenerationSizeMb: 96, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
      stdout: true,
      stderr: true,
    });
    this.worker.unref();
    let settle: { ok: () => void; fail: (e: unknown) => void } | undefined;
    this.ready = new Promise<void>((ok, fail) => (settle = { ok, fail }));
    const stop = () => {
      settle?.fail(new Error('interrupted'));
      this.kill();
    };
    // Starting a thread, its VM and the PAC helpers' own compiler can take seconds on a busy machine: that is
    // not the script's time. A script that loops while loading is stopped by QuickJS's interrupt in the worker;
    // this is the backstop. Callers are bounded by their own request deadline meanwhile.
    const loadTimer = setTimeout(stop, WORKER_START_LIMIT_MS + timeLimitMs);
    this.worker.on('message', (m: PacWorkerReply) => {
      if (m.type === 'vm') {
        /* the VM is up; compiling the script follows */
      } else if (m.type === 'ready') {
        clearTimeout(loadTimer);
        this.started = true;
        settle?.ok();
        owner.pump();
      } else if (m.type === 'load-error') {
        clearTimeout(loadTimer);
        settle?.fail(Object.assign(new Error(m.message), { name: m.name }));
        this.kill();
      } else if (m.type === 'alert') {
        // alert() goes to the trace, never to stdout (it would corrupt --json output).
        log?.(`PAC alert: ${m.message}`);
      } else if (m.type === 'result' && this.pending?.id === m.id) {
        const { job, timer } = this.pending;
        clearTimeout(timer);
        this.pending = undefined;
        this.busy = false;
        if (m.ok) {
          if (m.kind === 'string' || m.kind === 'null' || m.kind === 'undefined') job.resolve(m.value);
          else job.reject(new AgentError('config', 'PAC_INVALID', `The PAC file ${owner.location} returned ${m.kind} instead of a proxy list.`,
            'Fix FindProxyForURL in the PAC file: it must return a string such as "PROXY host:port; DIRECT".'));
        } else {
          job.reject(Object.assign(new Error(m.message), { name: m.name }));
          // After a failed call (a WebAssembly trap, a stack overflow) the VM is not trusted again: a fresh one.
          this.kill();
        }
        owner.pump();
      }
    });
    const gone = (e: unknown) => {
      clearTimeout(loadTimer);
      this.dead = true;
      settle?.fail(e);
      if (this.pending) {
        clearTimeout(this.pending.timer);
        this.pending.job.reject(e);
        this.pending = undefined;
      }
      owner.forget(this);
    };
    this.worker.on('error', (e) => gone(/memory|heap/i.test(e.message) ? new Error('out of memory') : e));
    this.worker.on('exit', () => gone(new Error('interrupted')));
  }

  run(job: PacJob): void {
    this.busy = true;
    this.busySince = Date.now();
    const id = this.nextId++;
    // The hard stop: whatever the script is doing (a host call such as dnsResolve still pending included), the
    // worker is terminated at the caller's deadline and its answer, if any, is never read.
    const timer = setTimeout(() => {
      if (this.pending?.id !== id) return;
      this.pending = undefined;
      job.reject(new Error('interrupted'));
      this.kill();
    }, this.timeLimitMs + HARD_STOP_GRACE_MS);
    this.pending = { id, job, timer };
    this.worker.postMessage({ id, url: job.url } satisfies PacWorkerRequest);
  }

  kill(): void {
    this.dead = true;
    void this.worker.terminate().catch(() => undefined);
  }
}

/**
 * One loaded PAC script. Evaluations run in worker threads (up to PAC_MAX_WORKERS at once, each with the
 * script compiled in its own QuickJS VM), so a slow evaluation does not hold up the others, and each has its
 * own time limit counted from when it was asked for. A worker that overruns is terminated, never disposed
 * under a pending call.
 */
export class PacScript {
  private readonly workers = new Set<PacWorker>();
  private readonly queue: PacJob[] = [];
  private closed = false;

  private constructor(
    readonly location: string,
    private readonly source: string,
    private readonly wasm: WasmModule,
    private readonly timeLimitMs: number,
    private readonly log: ((line: string) => void) | undefined,
  ) {}

  static async compile(location: string, source: string, opts: { timeLimitMs?: number; log?: (line: string) => void } = {}): Promise<PacScript> {
    const timeLimitMs = opts.timeLimitMs ?? PAC_TIME_LIMIT_MS;
    let wasm: WasmModule;
    try {
      wasm = await quickjsWasm();
    } catch (e) {
      throw new AgentError('internal', 'PAC_ENGINE', `The PAC engine (QuickJS) cannot be loaded: ${(e as Error).message}.`, 'Reinstall the agent.');
    }
    const script = new PacScript(location, source, wasm, timeLimitMs, opts.log);
    const first = script.spawn();
    try {
      await first.ready;
    } catch (e) {
      script.dispose();
      throw pacError(e, location, timeLimitMs, 'loading');
    }
    return script;
  }

  private spawn(): PacWorker {
    const w = new PacWorker(this.source, this.wasm, this.timeLimitMs, this, this.log);
    this.workers.add(w);
    return w;
  }

  /** @internal a worker that exited or was terminated. */
  forget(w: PacWorker): void {
    this.workers.delete(w);
    this.pump();
  }

  /** @internal starts queued evaluations on idle workers, adding workers up to the limit. */
  pump(): void {
    while (!this.closed && this.queue.length) {
      const job = this.queue[0]!;
      if (Date.now() >= job.queuedUntil) {
        this.queue.shift();
        job.reject(new Error('interrupted'));
        continue;
      }
      // Jobs wait for whichever worker is free first, a started one or one still starting.
      const w = [...this.workers].find((x) => x.started && !x.busy && !x.dead);
      if (!w) {
        // Another worker only for an evaluation that is slow (a loop, a DNS lookup that hangs), and one
        // starting at a time: starting one costs more CPU than most evaluations take.
        const live = [...this.workers].filter((x) => !x.dead);
        const starting = live.some((x) => !x.started);
        const slow = live.filter((x) => x.started && x.busy).every((x) => Date.now() - x.busySince >= SLOW_EVALUATION_MS);
        if (!starting && slow && this.workers.size < PAC_MAX_WORKERS) this.spawn().ready.catch(() => undefined);
        else if (!starting && this.workers.size < PAC_MAX_WORKERS) setTimeout(() => this.pump(), SLOW_EVALUATION_MS).unref();
        return;
      }
      this.queue.shift();
      w.run(job);
    }
  }

  /** FindProxyForURL(url, host) within the time limit; host-side helpers (dnsResolve) count too. */
  evaluate(url: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error('interrupted'));
        return;
      }
      // The time limit is the script's: it starts when a worker takes the call. Waiting for a worker is bounded
      // by the caller's request deadline, and here by the worker start limit.
      const job: PacJob = { url, queuedUntil: Date.now() + WORKER_START_LIMIT_MS + this.timeLimitMs, resolve, reject: (e) => reject(pacError(e, this.location, this.timeLimitMs, 'running')) };
      this.queue.push(job);
      const t = setTimeout(() => this.pump(), WORKER_START_LIMIT_MS + this.timeLimitMs + 1);
      t.unref();
      this.pump();
    });
  }

  dispose(): void {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('interrupted'));
    for (const w of this.workers) w.kill();
    this.workers.clear();
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

/**
 * One PAC script, evaluated in a worker thread (see PacScript in pac.ts). Whatever the script does — loop,
 * recurse, throw, return garbage, keep calling dnsResolve() after its time is up — stays in here: the main
 * thread terminates this worker at the deadline, which also drops any host call still pending, so nothing
 * can touch a disposed VM on the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createPacResolver } from 'pac-resolver';
import { QuickJS } from 'quickjs-wasi';

/** A compiled WebAssembly.Module (structured-cloneable to workers); typed loosely: no DOM lib here. */
export type WasmModule = object;

export interface PacWorkerData {
  source: string;
  timeLimitMs: number;
  memoryLimit: number;
  /** QuickJS compiled once by the main thread (compiling it in every worker costs a second on a busy machine). */
  wasm: WasmModule;
}

export type PacWorkerRequest = { id: number; url: string };
export type PacWorkerReply =
  | { type: 'vm' }
  | { type: 'ready' }
  | { type: 'load-error'; name: string; message: string }
  | { type: 'result'; id: number; ok: true; value: string | null; kind: string }
  | { type: 'result'; id: number; ok: false; name: string; message: string }
  | { type: 'alert'; message: string };

/** A FindProxyForURL answer longer than this is garbage; it is cut before it leaves the worker. */
const MAX_ANSWER_CHARS = 4096;

const port = parentPort!;
const data = workerData as PacWorkerData;
const clock = { deadline: Date.now() + data.timeLimitMs };

function describe(e: unknown): { name: string; message: string } {
  const err = e as { name?: unknown; message?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return { name: typeof err?.name === 'string' ? err.name : 'Error', message: message.slice(0, 500) };
}

async function main(): Promise<void> {
  let find: (url: string) => Promise<unknown>;
  try {
    // The interrupt handler runs about once per bytecode instruction: it only compares two numbers.
    const vm = await QuickJS.create({ wasm: data.wasm as never, memoryLimit: data.memoryLimit, interruptHandler: () => Date.now() > clock.deadline });
    // The time limit counts from here: starting the thread and the VM is not the script's doing. Loading also
    // runs the PAC helpers' compiler on this (cold) thread, hence twice the limit for it.
    port.postMessage({ type: 'vm' } satisfies PacWorkerReply);
    clock.deadline = Date.now() + 2 * data.timeLimitMs;
    find = createPacResolver(vm, data.source, {
      sandbox: { alert: (m: unknown = '') => port.postMessage({ type: 'alert', message: String(m).slice(0, 500) } satisfies PacWorkerReply) },
    });
  } catch (e) {
    port.postMessage({ type: 'load-error', ...describe(e) } satisfies PacWorkerReply);
    return;
  }
  port.postMessage({ type: 'ready' } satisfies PacWorkerReply);
  // One call at a time per worker (the main thread only sends the next when this one has answered).
  port.on('message', (req: PacWorkerRequest) => {
    clock.deadline = Date.now() + data.timeLimitMs;
    find(req.url).then(
      (value) => {
        const kind = value === null ? 'null' : typeof value;
        const text = typeof value === 'string' ? value.slice(0, MAX_ANSWER_CHARS) : value === null || value === undefined ? null : null;
        port.postMessage({ type: 'result', id: req.id, ok: true, value: text, kind } satisfies PacWorkerReply);
      },
      (e) => port.postMessage({ type: 'result', id: req.id, ok: false, ...describe(e) } satisfies PacWorkerReply),
    );
  });
}

void main();

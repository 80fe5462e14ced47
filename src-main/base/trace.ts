import { redact } from './safe-text.js';
import { testPausePoint } from './test-hooks.js';

/**
 * Milliseconds on a monotonic clock, for durations. Not `monotonicMs()`: its first use loads Node's perf_hooks,
 * a tenth of what `status` costs (issue 27).
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The step-by-step account `--debug` prints: each step with its duration, secrets redacted by default. */
export class Trace {
  private readonly start = monotonicMs();
  readonly steps: { name: string; ms: number; ok: boolean; detail?: string }[] = [];

  constructor(private readonly sink: ((line: string) => void) | undefined, private readonly showSecrets = false) {}

  log(message: string): void {
    testPausePoint(`log:${message}`);
    if (!this.sink) return;
    const t = (monotonicMs() - this.start).toFixed(0).padStart(6);
    this.sink(`[${t} ms] ${this.showSecrets ? message : redact(message)}`);
  }

  /** Prints a secret only when asked to (`--show-tokens`), e.g. the user token for support. */
  secret(label: string, value: string): void {
    if (this.showSecrets) this.log(`${label}: ${value}`);
    else this.log(`${label}: ${redact(value)} (use --show-tokens to print it)`);
  }

  async step<T>(name: string, fn: () => Promise<T>, describe?: (r: T) => string): Promise<T> {
    const t0 = monotonicMs();
    this.log(`→ ${name}`);
    testPausePoint(`before:${name}`);
    try {
      const r = await fn();
      testPausePoint(`after:${name}`);
      const ms = monotonicMs() - t0;
      const detail = describe?.(r);
      this.steps.push({ name, ms, ok: true, ...(detail ? { detail } : {}) });
      this.log(`✓ ${name} (${ms.toFixed(1)} ms)${detail ? `: ${detail}` : ''}`);
      return r;
    } catch (e) {
      const ms = monotonicMs() - t0;
      this.steps.push({ name, ms, ok: false, detail: (e as Error).message });
      this.log(`✗ ${name} (${ms.toFixed(1)} ms): ${(e as Error).message}`);
      throw e;
    }
  }
}

import { AgentError } from '../../base/errors.js';
import { EventLog } from '../../core/events.js';
import { runDiagnostics } from '../../core/diagnostics/run-diagnostics.js';
import { DEFAULT_HEALTH_POLICY, HealthPolicySchema } from '../../core/diagnostics/health.js';
import { DiagnoseWatch } from '../../core/diagnostics/watch.js';
import { renderHealth, renderReport } from '../../core/diagnostics/report.js';
import type { DiagnoseReport } from '../../core/diagnostics/types.js';
import type { Command, CommandContext } from '../command.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function seconds(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new AgentError('config', 'USAGE', `${name} must be a positive number of seconds, not "${String(v)}".`);
  return Math.round(n * 1000);
}

export const diagnoseCommand: Command = {
  name: 'diagnose',
  summary: 'probe everything device trust depends on and say what is broken and what to do',
  usage: `device-trust-agent diagnose [--json] [--watch [--interval S] [--count N] [--retries N]] [--timeout S]
  --json          the report as JSON (schema "device-trust-agent/diagnose", version 1; docs/DIAGNOSTICS.md);
                  with --watch, one JSON document per line and check
  --watch         keep checking every interval; targets go ONLINE / DEGRADED / OFFLINE by the health
                  policy (failure threshold 3, success threshold 2, recovery cool-down 360 s)
  --interval S    seconds between checks with --watch (default 60)
  --count N       stop after N checks (default: until interrupted)
  --retries N     with --watch, retries of a failed check before it counts (default 3)
  --timeout S     per-probe timeout (default 3)
Exit code: 0 no problem (notes only) · 20 warnings · 30 errors (the worst finding decides), except a fault
with a written-down class, which exits as run and status --check do for it (README "Exit codes").`,
  options: {
    watch: { type: 'boolean' },
    interval: { type: 'string' },
    count: { type: 'string' },
    retries: { type: 'string' },
    timeout: { type: 'string' },
  },
  async run(ctx) {
    const policy = HealthPolicySchema.parse({
      ...DEFAULT_HEALTH_POLICY,
      ...(ctx.values.interval !== undefined ? { intervalMs: seconds(ctx.values.interval, '--interval') } : {}),
      ...(ctx.values.timeout !== undefined ? { timeoutMs: seconds(ctx.values.timeout, '--timeout') } : {}),
      ...(ctx.values.retries !== undefined ? { maxRetries: Number(ctx.values.retries) } : {}),
    });
    const loaded = ctx.config();
    if (!ctx.values.watch) {
      const report = await runDiagnostics({ loaded, policy, env: ctx.io.env, context: ctx.context });
      ctx.io.out(ctx.json ? JSON.stringify(report, null, 2) : renderReport(report));
      return report.exitCode;
    }
    return watch(ctx, policy);
  },
};

async function watch(ctx: CommandContext, policy: ReturnType<typeof HealthPolicySchema.parse>): Promise<number> {
  const loaded = ctx.config();
  const count = ctx.values.count !== undefined ? Number(ctx.values.count) : Infinity;
  if (!(count >= 1)) throw new AgentError('config', 'USAGE', `--count must be a positive whole number, not "${String(ctx.values.count)}".`);
  const events = new EventLog(loaded.config.stateDir, 'diagnose', { sinks: ctx.context.events });
  const watch = new DiagnoseWatch(policy);
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let report: DiagnoseReport | undefined;
  try {
    for (let i = 0; i < count && !stop; i++) {
      const started = Date.now();
      const cycle = await watch.cycle(() => runDiagnostics({ loaded, policy, env: ctx.io.env, context: ctx.context, events, recordOutcome: false }), events, { stop: () => stop });
      report = cycle.report;
      if (ctx.json) ctx.io.out(JSON.stringify(report));
      else if (i === 0) ctx.io.out(renderReport(report));
      else {
        ctx.io.out(`${report.generatedAt} ${report.worst.toUpperCase()}${cycle.findingsChanged ? ` findings now: ${cycle.codes || 'none'}` : ''}`);
        for (const t of cycle.transitions) ctx.io.out(renderHealth(report.health!.find((h) => h.target === t.target)!));
      }
      if (i + 1 < count) {
        const until = started + policy.intervalMs;
        while (!stop && Date.now() < until) await sleep(Math.min(250, until - Date.now()));
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return report?.exitCode ?? 0;
}

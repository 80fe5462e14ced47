import { ExitCode } from '../../base/errors.js';
import { metricsText, writeMetricsFile } from '../../core/fleet/metrics-writer.js';
import type { Command } from '../command.js';

export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'print the Prometheus metrics the agent writes for node_exporter\'s textfile collector',
  usage: `device-trust-agent metrics [--write]
  Prints device_trust_agent.prom as every pass writes it into metricsDir (DTA_METRICS_DIR; default
  /var/lib/prometheus/node-exporter, "off" to disable). See docs/MONITORING.md.
  --write   also write the file now (a pass does this by itself)`,
  options: { write: { type: 'boolean' } },
  async run(ctx) {
    const loaded = ctx.config();
    if (ctx.values.write) {
      const r = writeMetricsFile(loaded, ctx.context.events);
      if ('failed' in r) {
        ctx.io.err(`The metrics file could not be written: ${r.failed}`);
        return ExitCode.LOCAL_ERROR;
      }
      if ('written' in r) ctx.io.err(`Written: ${r.written}`);
    }
    ctx.io.out(metricsText(loaded).trimEnd());
    return ExitCode.OK;
  },
};

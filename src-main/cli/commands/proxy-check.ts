import { ExitCode, exitCodeForFault, worstExitCode } from '../../base/errors.js';
import { proxyCheck, type ProxyCheckReport } from '../../core/proxy/check.js';
import type { Command } from '../command.js';

export const proxyCheckCommand: Command = {
  name: 'proxy-check',
  summary: 'for each server the agent uses: which proxy rule chose which route, whether it works, each step\'s time',
  usage: `device-trust-agent proxy-check [--json]
  Checks the org, the IWA web apps (primary and backups), the revocation list and the mTLS endpoint: the rule
  that decided the route (HttpProxy=, PAC file, HTTPS_PROXY/NO_PROXY, OS settings), the route (PROXY/DIRECT),
  and the time of each step (route decision, TCP or CONNECT tunnel, TLS handshake, HTTP answer).`,
  async run(ctx) {
    const report = await proxyCheck(ctx.config().config, ctx.context, ctx.io.env, ctx.platform().keys, ctx.config().sources.serverTlsPins === 'managed');
    if (ctx.json) ctx.io.out(JSON.stringify(report, null, 2));
    else ctx.io.out(describe(report));
    if (report.ok) return ExitCode.OK;
    // The class of each fault is written down once (base/errors.ts FAULT_CLASSES); a route that failed otherwise is "try again later".
    const failed = report.checks.filter((c) => !c.ok);
    return failed.length ? worstExitCode(failed.map((c) => exitCodeForFault(c.code, ExitCode.RETRY_LATER))) : ExitCode.RETRY_LATER;
  },
};

function describe(r: ProxyCheckReport): string {
  const lines: string[] = [];
  const s = r.settings;
  lines.push(`Proxy settings: HttpProxy=${s.httpProxy ?? '(none)'}  HttpProxyPacLocation=${s.httpProxyPacLocation ?? '(none)'}`);
  const env = Object.entries(s.environment).map(([k, v]) => `${k}=${v}`).join('  ');
  lines.push(`Environment:    ${env || '(no proxy variables)'}`);
  for (const c of r.checks) {
    lines.push('', `${c.ok ? 'OK    ' : 'FAILED'} ${c.what}: ${c.url}`);
    if (c.rule) lines.push(`       rule:   ${c.rule}`);
    if (c.routes) lines.push(`       routes: ${c.routes.join('; ')}${c.route ? `  (used: ${c.route})` : ''}`);
    for (const st of c.steps) lines.push(`       ${st.ok ? '✓' : '✗'} ${st.name.padEnd(58)} ${st.ms.toFixed(1).padStart(8)} ms${st.detail ? `  ${st.detail}` : ''}`);
    lines.push(`       ${c.detail}`);
  }
  lines.push('', r.ok ? 'Every route works.' : 'Some routes do not work: see FAILED above.');
  return lines.join('\n');
}

import type { DiagnoseReport, HealthSnapshot, ProbeResult } from './types.js';

const MARK = { ok: '✓', fail: '✗', timeout: '⧗', skipped: '–' } as const;
const SEV = { error: 'ERROR', warning: 'WARNING', info: 'info' } as const;

function probeLine(p: ProbeResult): string[] {
  const head = `${MARK[p.status]} ${p.id.padEnd(24)} ${p.status.padEnd(8)} ${String(p.ms.toFixed(0)).padStart(6)} ms  ${p.target}`;
  const lines = [head];
  for (const s of p.stages) {
    lines.push(`      ${MARK[s.status]} ${s.name.padEnd(8)} ${String(s.ms.toFixed(0)).padStart(6)} ms  ${s.label}${s.detail ? ` — ${s.detail}` : ''}`);
  }
  if (p.status === 'skipped' && typeof p.facts.skipped === 'string') lines.push(`      (${p.facts.skipped})`);
  else if (p.error && !p.stages.some((s) => s.status === 'fail' || s.status === 'timeout')) lines.push(`      ${p.error.message}`);
  return lines;
}

/** The readable report `diagnose` prints: findings first (what to do), then every probe stage by stage. */
export function renderReport(r: DiagnoseReport): string {
  const out: string[] = [];
  const counts = { error: 0, warning: 0, info: 0 };
  for (const f of r.findings) counts[f.severity]++;
  out.push(`Device Trust diagnostics — ${r.generatedAt} (${r.durationMs} ms)`);
  out.push(`Org: ${r.orgUrl ?? '(not configured)'}${r.org ? ` — ${r.org.orgName}, IWA failover ${r.org.failoverMode}${r.org.readOnly ? ', READ-ONLY' : ''}${r.org.fromCache ? ' (last known settings)' : ''}` : ''}`);
  out.push('');
  if (r.findings.length === 0) out.push('No problem found.');
  else out.push(`Findings: ${counts.error} error(s), ${counts.warning} warning(s), ${counts.info} note(s)`);
  for (const f of r.findings) {
    out.push('', `[${SEV[f.severity]}] ${f.code}: ${f.title}`);
    for (const e of f.evidence) out.push(`    evidence: ${e}`);
    out.push(`    likely cause: ${f.cause}`, `    what to do: ${f.remedy}`);
  }
  if (r.agentPools?.length) {
    out.push('', 'Directory agents (from the org):');
    for (const p of r.agentPools) {
      out.push(`  ${p.type.padEnd(5)} ${p.name}: ${p.operationalStatus}`);
      for (const a of p.agents) {
        out.push(`        ${a.name}: ${a.operationalStatus}, last connection ${a.lastConnection ? new Date(a.lastConnection).toISOString() : 'never'}${a.version ? `, v${a.version}` : ''}${a.updateStatus ? `, update ${a.updateStatus}` : ''}`);
      }
    }
  }
  if (r.health?.length) out.push('', 'Health:', ...r.health.map(renderHealth));
  out.push('', 'Probes (stage by stage):');
  for (const p of r.probes) out.push(...probeLine(p));
  return out.join('\n');
}

export function renderHealth(h: HealthSnapshot): string {
  const last = h.transitions.at(-1);
  return `  ${h.target.padEnd(24)} ${h.state.padEnd(9)} since ${h.since ?? '-'}${h.recoveringUntil ? ` (recovering; ONLINE at ${h.recoveringUntil} if no failure)` : ''}${last ? ` — ${last.reason}` : ''}`;
}

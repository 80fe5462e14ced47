/**
 * axe-core (the accessibility engine behind Lighthouse and most independent checkers) run inside the page,
 * with the WCAG 2.0/2.1 A and AA rules plus best practices. Injected through Playwright's evaluate, which the
 * page's CSP does not govern, so the dashboard is checked exactly as it ships.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; summary: string }[];
}

/** Every violation on the page as it is now (an open dialog included), one line per rule and element. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (tags) => {
    const w = globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[]; failureSummary?: string }[] }[] }> } };
    const r = await w.axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, summary: (n.failureSummary ?? '').slice(0, 300) })) }));
  }, AXE_TAGS);
}

/** A readable account of violations for an assertion message: rule, impact, each element and why. */
export function describeViolations(label: string, violations: AxeViolation[]): string {
  return `${label}: ${violations.length} axe rule(s) violated\n` + violations.map((v) => `- ${v.id} (${v.impact}): ${v.help}\n` + v.nodes.map((n) => `    ${n.target.join(' ')} — ${n.summary.replace(/\n/g, ' ')}`).join('\n')).join('\n');
}

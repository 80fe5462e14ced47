/**
 * The Posture card in Debian's Chromium, over the real IPC handlers and guard: this machine's real posture
 * results with the org's verdict (a grace period) as the agent stores it, each failing check with its fix,
 * and "Check again" running a real pass through the posture:run channel. Screenshot: test-results/dashboard/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { runAgent, tempDir } from '../support/agent.js';
import { dashboardUnavailable, launchChromium, openDashboard, screenshot, type DashboardHarness } from '../support/dashboard.js';

const skip = dashboardUnavailable();

describe('the Posture card', { skip }, () => {
  let browser: Browser;
  let h: DashboardHarness;
  const home = tempDir('posture-home');
  const stateDir = path.join(home, 'state');
  const env = { HOME: home, DTA_STATE_DIR: stateDir, DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed'), DTA_PLATFORM_LOG: 'off' };
  const deadline = '2026-12-14T17:00:00.000Z';

  before(async () => {
    await runAgent(['posture'], env);
    // What the agent keeps after the org answered a report (posture-org.test.ts drives that exchange for real).
    const file = path.join(stateDir, 'posture.json');
    const data = JSON.parse(fs.readFileSync(file, 'utf8'));
    const failing = data.results.filter((r: { status: string }) => r.status === 'FAIL').slice(0, 2).map((r: { check: string; summary: string }) => ({ check: r.check, reason: `FAIL: ${r.summary}` }));
    data.report = { at: data.at, ok: true, compliance: { status: 'non-compliant', mode: 'grace', failing, deadline, message: `Fix by ${deadline} to keep access.` } };
    fs.writeFileSync(file, JSON.stringify(data));
    browser = await launchChromium();
    h = await openDashboard(browser, env);
  });

  after(async () => {
    await browser?.close();
  });

  test('every check with its status; failing ones say how to fix; the org\'s deadline is shown', async () => {
    const { page } = h;
    const card = page.locator('[data-panel="posture"]');
    await card.locator('[data-check]').first().waitFor({ timeout: 30_000 });
    const stored = JSON.parse(fs.readFileSync(path.join(stateDir, 'posture.json'), 'utf8')) as { results: { check: string; status: string; remedy?: string; why?: string }[] };
    assert.equal(await card.locator('[data-check]').count(), stored.results.length);
    for (const r of stored.results) {
      const item = card.locator(`[data-check="${r.check}"]`);
      assert.equal((await item.locator('.badge').textContent())?.toUpperCase(), r.status === 'PASS' ? 'PASS' : r.status);
      if (r.status === 'FAIL') assert.match((await item.locator('.posture-fix').textContent()) ?? '', /^How to fix: .{10,}/);
      if (r.status === 'UNKNOWN') assert.match((await item.textContent()) ?? '', /Why unknown: /);
    }
    const verdict = card.locator('[data-compliance="non-compliant"]');
    assert.match((await verdict.textContent()) ?? '', /Fix this by .*2026.* to keep access\./);
    // Failing checks come first: what to fix is at the top.
    const first = await card.locator('[data-check] .badge').first().textContent();
    if (stored.results.some((r) => r.status === 'FAIL')) assert.equal(first, 'Fail');
    const shot = await screenshot(page, 'posture-card');
    assert.ok(fs.statSync(shot).size > 10_000);
  });

  test('"Check again" runs a real pass through posture:run and keeps the org\'s verdict', async () => {
    const { page } = h;
    const before = JSON.parse(fs.readFileSync(path.join(stateDir, 'posture.json'), 'utf8')).at;
    await page.getByRole('button', { name: 'Check again' }).click();
    await page.getByRole('button', { name: 'Check again' }).waitFor({ timeout: 60_000 });
    const after = JSON.parse(fs.readFileSync(path.join(stateDir, 'posture.json'), 'utf8'));
    assert.notEqual(after.at, before, 'a new pass was stored');
    assert.equal(after.report.compliance.deadline, deadline);
    assert.equal(h.refused.length, 0, 'the guard refused nothing');
  });
});

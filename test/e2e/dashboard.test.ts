/**
 * The dashboard in Debian's Chromium, bridged to the real main-process IPC handlers (through the guard)
 * against the lab org: a user enrolled by the agent sees their certificate, an IWA outage shows as OFFLINE
 * cards with a finding, "Renew now" renews, force renewal asks first, and the event log's filters and
 * export work. Screenshots of each view go to test-results/dashboard/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, type Profile, runAgent, tempDir, writeRootCa } from '../support/agent.js';
import { checkView, dashboardUnavailable, launchChromium, openDashboard, type DashboardHarness } from '../support/dashboard.js';
import { holdPassLock } from '../support/lock-holder.js';
import { nssUserCerts } from '../support/nss.js';
import { readEvents, readState } from '../support/state.js';

// Page-side code (page.evaluate) runs in the browser; the project's Node build has no DOM types.
declare const document: any;
declare const window: any;
declare function getComputedStyle(el: unknown): { backgroundColor: string };


const skip = dashboardUnavailable();
if (skip) console.log(skip);

describe('the dashboard in Chromium, bridged to the real IPC handlers against the lab org', { skip }, () => {
  let lab: LabOrg;
  let profile: Profile;
  let browser: Browser;
  let h: DashboardHarness;
  const stateOf = () => readState(profile) as { current: { serialNumber: string; subject: string } };
  const events = () => readEvents(profile) as { id: number; level: string; message: string }[];
  const serialShown = () => h.page.getByTestId('serial').innerText();
  const card = (id: string) => h.page.locator(`[data-target="${id}"]`);

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    const rootCaFile = writeRootCa(lab.rootCaPem);
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
    // The agent enrolled this device (as at install time), with the real command line.
    const r = await runAgent(['run'], profile.env);
    assert.equal(r.code, 0, r.stderr);
    browser = await launchChromium();
    h = await openDashboard(browser, profile.env);
  });

  after(async () => {
    await browser?.close();
    await lab?.close();
  });

  test('the header says the device is trusted and shows the enrolled certificate', async () => {
    const { page } = h;
    const cur = stateOf().current;
    await page.getByRole('heading', { level: 1, name: 'This device is trusted' }).waitFor();
    assert.equal(await serialShown(), cur.serialNumber);
    const header = await page.locator('.status-header').innerText();
    assert.match(header, /MTLS Certificate Authority/);
    assert.match(header, new RegExp(cur.subject.split(',')[0]!.replace('CN=', '')), 'the subject (device ID) is shown');
    assert.match(header, /in 36[45] days/, 'days until expiry');
    assert.match(header, /Renewal planned\s*from /i);
    // The same named tests as `status`, with the live signing test passing.
    await page.getByTestId('test-signing_test').waitFor();
    assert.match(await page.getByTestId('test-signing_test').innerText(), /PASS\s+Live signing test with the device key/);
    assert.match(await page.getByTestId('test-certificate_chains').innerText(), /PASS/);
    assert.match(header, /Tests: \d+ passed, 0 failed/);
    // The first diagnostics run starts by itself when the dashboard opens.
    await card('org').locator('.badge', { hasText: 'ONLINE' }).waitFor();
    await card('iwa:primary').locator('.badge', { hasText: 'ONLINE' }).waitFor();
    // The key is in the NSS token: the agent presents it through openssl + libp11 and the endpoint accepts it.
    await card('mtls').locator('.badge', { hasText: 'ONLINE' }).waitFor();
    assert.equal(await page.locator('.finding.sev-critical').count(), 0, 'no critical finding while everything answers');
    await checkView(page, 'overview-trusted');
    assert.deepEqual(h.cspViolations, [], 'the dashboard runs under its CSP without violations');
    assert.deepEqual(h.refused, []);
  });

  test('an IWA outage turns the IWA cards OFFLINE with a finding, and force renewal then fails safely', async () => {
    const { page } = h;
    const before = stateOf().current.serialNumber;
    lab.switches.iwaPrimaryDown = true;
    lab.switches.iwaBackupDown = true;
    try {
      // One failed check makes a target DEGRADED; the health policy's failure threshold (3) makes it OFFLINE.
      const run = page.getByRole('button', { name: 'Run diagnostics' });
      await run.click();
      await card('iwa:primary').locator('.badge', { hasText: 'DEGRADED' }).waitFor();
      const finding = page.locator('[data-finding="IWA_ALL_DOWN"]');
      await finding.waitFor();
      assert.match(await finding.innerText(), /No IWA web app answers/);
      assert.match(await finding.innerText(), /What to do:/);
      for (let i = 0; i < 2; i++) {
        await run.waitFor({ state: 'visible' });
        await page.getByRole('button', { name: 'Run diagnostics', disabled: false }).click();
        await page.getByRole('button', { name: 'Run diagnostics', disabled: false }).waitFor();
      }
      await card('iwa:primary').locator('.badge', { hasText: 'OFFLINE' }).waitFor();
      await card('iwa:backup:1').locator('.badge', { hasText: 'OFFLINE' }).waitFor();
      assert.match(await card('org').innerText(), /ONLINE/, 'the org itself still answers');
      // The history chart: the good check from when the dashboard opened, then three failed ones.
      assert.match((await card('iwa:primary').locator('svg.sparkline').getAttribute('aria-label')) ?? '', /1 answered, 3 failed/);
      await checkView(page, 'overview-outage');
      // Findings with their evidence opened.
      for (const d of await page.locator('.finding details').all()) await d.locator('summary').click();
      await checkView(page, 'findings-expanded');

      // Stage-by-stage detail, with the failover mode explained.
      await card('iwa:primary').click();
      const dialog = page.getByRole('dialog', { name: 'IWA web app (primary)' });
      await dialog.waitFor();
      assert.match(await dialog.innerText(), /Failover mode: redirect to a backup/);
      assert.match(await dialog.innerText(), /HTTP: .*\s+failed/);
      assert.match(await dialog.innerText(), /OFFLINE since .*: 3 consecutive failed check/);
      await checkView(page, 'target-detail', { fullPage: false });
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });

      // Force renewal needs IWA: it fails with the agent's own words and the certificate stays.
      await page.getByRole('button', { name: 'Force renewal…' }).click();
      await page.getByRole('button', { name: 'Remove and re-enroll' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      assert.match(await alert.innerText(), /No IWA web app answered/);
      assert.match(await alert.innerText(), /What to do:/);
      assert.equal(stateOf().current.serialNumber, before);
      assert.deepEqual(nssUserCerts(profile.nssDb).map((c) => c.serial), [before]);
      await page.getByRole('button', { name: 'Dismiss message' }).click();
    } finally {
      lab.switches.iwaPrimaryDown = false;
      lab.switches.iwaBackupDown = false;
    }
    // The failed force renewal was kept as a request: the next pass (the IWA is back) completes it.
    const next = await runAgent(['run'], profile.env);
    assert.equal(next.code, 0, next.stderr + next.stdout);
    assert.notEqual(stateOf().current.serialNumber, before);
  });

  test('"Renew now" renews: a new serial is shown, with progress while it runs', async () => {
    const { page } = h;
    const old = stateOf().current.serialNumber;
    lab.switches.delayMs = 700; // slow answers, so the progress can be seen
    try {
      await page.getByRole('button', { name: 'Renew now' }).click();
      const bar = page.getByRole('progressbar', { name: 'Renewing the certificate' });
      await bar.waitFor();
      assert.equal(await page.getByRole('button', { name: 'Renew now' }).isDisabled(), true, 'no second run while one is in progress');
      await page.locator('.progress').filter({ hasText: /Renewing the certificate: / }).waitFor();
      await checkView(page, 'overview-renewing', { fullPage: false });
    } finally {
      lab.switches.delayMs = 0;
    }
    await page.getByRole('status').filter({ hasText: 'Certificate renewed' }).waitFor();
    const renewed = stateOf().current.serialNumber;
    assert.notEqual(renewed, old);
    await page.getByTestId('serial').filter({ hasText: renewed }).waitFor();
    assert.ok(lab.issued().some((r) => r.serialNumber === renewed), 'the lab issued the serial the dashboard shows');
    assert.deepEqual(nssUserCerts(profile.nssDb).map((c) => c.serial), [renewed]);
    assert.ok(events().some((e) => e.id === 1001), 'event 1001 recorded');
    const steps = h.emitted.filter((e) => e.type === 'progress' && e.activity === 'renew').map((e) => (e.type === 'progress' ? `${e.phase}:${e.step ?? ''}` : ''));
    assert.equal(steps[0], 'start:');
    assert.ok(steps.some((s) => /Generate the device key/.test(s)), `progress steps: ${steps.join(' | ')}`);
    assert.equal(steps.at(-1), 'done:');
  });

  test('"Renew now" while another process holds the pass lock: "another pass is running", nothing written', async () => {
    const { page } = h;
    const stateFile = path.join(profile.stateDir, 'state.json');
    const before = { text: fs.readFileSync(stateFile, 'utf8'), mtimeMs: fs.statSync(stateFile).mtimeMs };
    const issued = lab.issued().length;
    // A real second process holds the lock, as a pass of the daemon or a `run` in a terminal would.
    const holder = await holdPassLock(profile.stateDir, 'daily pass');
    try {
      await page.getByRole('button', { name: 'Renew now' }).click();
      const alert = page.getByRole('alert');
      await alert.filter({ hasText: 'Another pass is running' }).waitFor();
      assert.match(await alert.innerText(), new RegExp(`pid ${holder.pid}`));
      assert.deepEqual({ text: fs.readFileSync(stateFile, 'utf8'), mtimeMs: fs.statSync(stateFile).mtimeMs }, before, 'state.json untouched');
      assert.equal(lab.issued().length, issued, 'nothing was asked of the org');
      await page.getByRole('button', { name: 'Dismiss message' }).click();
    } finally {
      await holder.release();
    }
  });

  test('force renewal explains itself and does nothing until confirmed; confirmed, it re-enrolls', async () => {
    const { page } = h;
    const old = stateOf().current.serialNumber;
    await page.getByRole('button', { name: 'Force renewal…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Force renewal?' });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /removes this device's certificate and its private key/);
    await checkView(page, 'force-renewal-dialog', { fullPage: false });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(stateOf().current.serialNumber, old, 'cancel changes nothing');

    // A launch with --forceRenewal asks the same question (the shell sends this event).
    await h.emit({ type: 'confirm-force-renewal' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Remove and re-enroll' }).click();
    await page.getByRole('status').filter({ hasText: 'Certificate enrolled' }).waitFor();
    const fresh = stateOf().current.serialNumber;
    assert.notEqual(fresh, old);
    await page.getByTestId('serial').filter({ hasText: fresh }).waitFor();
    assert.ok(events().some((e) => e.id === 1004), 'event 1004 (forced renewal) recorded');
  });

  test('the event log filters by level, event ID, time and text, and exports what it shows', async () => {
    const { page } = h;
    await page.getByRole('tab', { name: 'Event log' }).click();
    const count = page.getByTestId('event-count');
    const rows = page.locator('.tbody [role="row"]');
    const all = events();
    await count.filter({ hasText: `Showing ${all.length} of ${all.length} events` }).waitFor();
    assert.equal(await rows.count(), all.length);
    await checkView(page, 'events');

    // Level: warnings and errors only (the failed force renewal left a 2000).
    await page.getByRole('checkbox', { name: 'Info' }).uncheck();
    const notInfo = all.filter((e) => e.level !== 'info');
    assert.ok(notInfo.length > 0);
    await count.filter({ hasText: `Showing ${notInfo.length} of` }).waitFor();
    assert.deepEqual(new Set(await rows.locator('.badge').allInnerTexts()), new Set(notInfo.map((e) => e.level)));
    await page.getByRole('checkbox', { name: 'Info' }).check();

    // Event ID.
    await page.getByLabel('Event ID', { exact: true }).selectOption('1001');
    await count.filter({ hasText: `Showing ${all.filter((e) => e.id === 1001).length} of` }).waitFor();
    assert.deepEqual([...new Set(await rows.locator('[role="gridcell"]:nth-child(3)').allInnerTexts())], ['1001']);
    await page.getByLabel('Event ID', { exact: true }).selectOption('');

    // Search: the serial of the current certificate.
    const serial = stateOf().current.serialNumber;
    await page.getByLabel('Search', { exact: true }).fill(serial);
    const withSerial = all.filter((e) => e.message.includes(serial));
    await count.filter({ hasText: `Showing ${withSerial.length} of` }).waitFor();
    await checkView(page, 'events-filtered');

    // Export what is shown (CSV), through the main side's save.
    await page.getByRole('button', { name: 'Export CSV' }).click();
    await page.getByRole('status').filter({ hasText: `Exported ${withSerial.length} event` }).waitFor();
    const [file] = fs.readdirSync(h.exportDir);
    const csv = fs.readFileSync(path.join(h.exportDir, file!), 'utf8').trim().split('\r\n');
    assert.equal(csv[0], 'time,id,level,title,message,task');
    assert.equal(csv.length, 1 + withSerial.length);
    assert.ok(csv.slice(1).every((l) => l.includes(serial)));
    await page.getByLabel('Search', { exact: true }).fill('');

    // Time: a range in the future matches nothing; "Last hour" matches everything written by this test.
    await page.getByLabel('Time', { exact: true }).selectOption('custom');
    await page.getByLabel('From', { exact: true }).fill('2099-01-01T00:00');
    await page.getByText('No events match these filters.').waitFor();
    await page.getByLabel('Time', { exact: true }).selectOption('1h');
    await count.filter({ hasText: `Showing ${all.length} of ${all.length}` }).waitFor();

    // Keyboard: the rows are reachable and the arrow keys move the selection.
    await page.getByRole('grid', { name: /^Events/ }).focus();
    await page.keyboard.press('End');
    assert.equal(await page.getByRole('grid', { name: /^Events/ }).getAttribute('aria-activedescendant'), `event-row-${all.length - 1}`);
    assert.match(await page.locator('.event-detail').innerText(), new RegExp(String(all[0]!.id)), 'the oldest event is last');
  });

  test('keyboard and assistive technology: tabs move with the arrow keys, every control has a name', async () => {
    const { page } = h;
    await page.getByRole('tab', { name: 'Event log' }).focus();
    await page.keyboard.press('ArrowLeft');
    assert.equal(await page.getByRole('tab', { name: 'Overview' }).getAttribute('aria-selected'), 'true');
    assert.ok(await page.getByRole('tab', { name: 'Overview' }).evaluate((el) => el === document.activeElement));
    await page.getByRole('heading', { level: 1, name: 'This device is trusted' }).waitFor();
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('button, input, select, [role="tab"], [role="progressbar"]')]
        .filter((el) => !(el as any).closest('[hidden], dialog:not([open])'))
        .filter((el) => {
          const label = el.getAttribute('aria-label') || (el as any).innerText?.trim() || (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label')?.textContent?.trim();
          return !label;
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unnamed, []);
  });

  test('the page runs under the strict CSP: no inline script or style, no network', async () => {
    const { page } = h;
    await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inlineRan = true';
      document.head.append(s);
      document.body.setAttribute('style', 'background: red');
    });
    assert.equal(await page.evaluate(() => (window as unknown as { __inlineRan?: boolean }).__inlineRan ?? false), false);
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(255, 0, 0)');
    const fetched = await page.evaluate(() => fetch('https://example.invalid/').then(() => 'fetched', (e: Error) => e.name));
    assert.equal(fetched, 'TypeError');
    await page.waitForTimeout(100);
    for (const directive of ['script-src', 'style-src', 'connect-src']) {
      assert.ok(h.cspViolations.some((v) => v.startsWith(directive)), `${directive} violation expected: ${h.cspViolations.join('; ')}`);
    }
  });

  test('calls from a sub-frame are refused by the guard', async () => {
    const { page } = h;
    const before = h.refused.length;
    const answer = await page.evaluate(async () => {
      const f = document.createElement('iframe');
      f.srcdoc = '<p>x</p>';
      document.body.append(f);
      await new Promise((r) => (f.onload = r));
      const w = f.contentWindow as unknown as { __deviceTrustInvoke?: (c: string, r: unknown) => Promise<unknown> };
      const r = w.__deviceTrustInvoke ? await w.__deviceTrustInvoke('status:get', {}) : 'no binding in the frame';
      f.remove();
      return r;
    });
    // Playwright exposes the binding to every frame, as a compromised page could reach ipcRenderer from one.
    assert.deepEqual(answer, { ok: false, error: { code: 'IPC_REFUSED', message: 'The request was refused.' } });
    assert.equal(h.refused.length, before + 1);
    assert.match(h.refused.at(-1)!.reason, /sub-frame|origin/);
  });

  test('a dashboard opened for the event log (tray menu, --debug) starts there', async () => {
    const second = await openDashboard(browser, profile.env, { pending: [{ type: 'navigate', view: 'events' }] });
    try {
      await second.page.getByRole('tab', { name: 'Event log', selected: true }).waitFor();
      await second.page.getByTestId('event-count').filter({ hasText: /Showing \d+ of \d+ events/ }).waitFor();
    } finally {
      await second.page.close();
    }
  });

  test('the event log stays responsive with thousands of events: only the visible rows are in the page', async () => {
    const big = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: path.join(tempDir('ca'), 'none.pem') });
    fs.mkdirSync(big.stateDir, { recursive: true, mode: 0o700 });
    const n = 5000;
    const t0 = Date.now() - n * 60_000;
    const lines = Array.from({ length: n }, (_, i) =>
      JSON.stringify({ time: new Date(t0 + i * 60_000).toISOString(), id: i % 2 ? 1002 : 2000, level: i % 2 ? 'info' : 'warning', title: i % 2 ? 'Valid certificate present; nothing to do' : 'Enrollment postponed; will retry', message: `pass number ${i}`, task: 'user' }));
    fs.writeFileSync(path.join(big.stateDir, 'events.jsonl'), lines.join('\n') + '\n', { mode: 0o600 });
    const second = await openDashboard(browser, big.env, { pending: [{ type: 'navigate', view: 'events' }] });
    try {
      const { page } = second;
      await page.getByTestId('event-count').filter({ hasText: `Showing ${n} of ${n} events` }).waitFor();
      const rendered = await page.locator('.tbody [role="row"]').count();
      assert.ok(rendered > 5 && rendered < 80, `${rendered} rows in the DOM for ${n} events`);
      await page.getByRole('grid', { name: /^Events/ }).focus();
      await page.keyboard.press('End');
      await page.locator('#event-row-4999').waitFor();
      assert.match(await page.locator('.event-detail').innerText(), /pass number 0\b/, 'the oldest event, at the end');
      await page.getByRole('checkbox', { name: 'Warning' }).uncheck();
      await page.getByTestId('event-count').filter({ hasText: `Showing ${n / 2} of ${n} events` }).waitFor();
    } finally {
      await second.page.close();
    }
  });
});

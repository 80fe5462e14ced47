/**
 * The dashboard for people who do not use a mouse or do not see the screen, and for the help-desk person who
 * must do from it everything it asks for: axe-core finds nothing on the not-trusted overview and on Settings
 * (both themes; dashboard.test.ts checks every other view the same way), the keyboard reaches every control with
 * a visible focus, the virtualised event grid has table semantics Chromium's accessibility tree exposes, results
 * are announced in a live region, and the admin API token is entered, tested and removed from Settings — kept
 * in a real Secret Service (GNOME Keyring on a private D-Bus), refused with a clear message where none runs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { KeyringSecretStore } from '../../src-main/core/secrets/keyring.js';
import { makeProfile, type Profile, tempDir, writeRootCa } from '../support/agent.js';
import { checkView, dashboardUnavailable, launchChromium, openDashboard, type DashboardHarness } from '../support/dashboard.js';
import { hasCommand } from '../support/host.js';
import { eventsText } from '../support/state.js';

// Page-side code (page.evaluate) runs in the browser; the project's Node build has no DOM types.
declare const document: any;
declare function getComputedStyle(el: unknown): { outlineStyle: string; outlineWidth: string; boxShadow: string };

const skip = dashboardUnavailable();
if (skip) console.log(skip);
const keyringMissing = ['dbus-daemon', 'gnome-keyring-daemon'].filter((c) => !hasCommand(c));
const keyringSkip = keyringMissing.length ? `skipped: ${keyringMissing.join(', ')} not installed (apt install dbus-daemon gnome-keyring)` : undefined;
if (keyringSkip) console.log(`# settings with a real keyring ${keyringSkip}`);

/** A private D-Bus session with an unlocked GNOME Keyring (what a desktop session has), for this process. */
async function startKeyring(): Promise<{ address: string; stop(): void }> {
  const dir = tempDir('dbus');
  const socket = path.join(dir, 'bus');
  const dbus: ChildProcess = spawn('dbus-daemon', ['--session', '--nofork', `--address=unix:path=${socket}`], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  const address = `unix:path=${socket}`;
  const env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: address, HOME: dir, XDG_RUNTIME_DIR: dir };
  const unlock = spawnSync('gnome-keyring-daemon', ['--unlock', '--components=secrets'], { env, input: 'pw', encoding: 'utf8', timeout: 20_000 });
  if (unlock.status !== 0) throw new Error(`gnome-keyring-daemon did not start: ${unlock.stderr}`);
  return { address, stop: () => dbus.kill('SIGTERM') };
}

async function focusedOutline(page: Page): Promise<{ what: string; visible: boolean; kbd?: string }> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return { what: 'body', visible: true };
    const s = getComputedStyle(el);
    const visible = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || (s.boxShadow && s.boxShadow !== 'none');
    return { what: `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${(el.getAttribute('aria-label') || el.innerText || '').trim().slice(0, 40)}"`, visible: Boolean(visible), kbd: el.dataset?.kbd };
  });
}

describe('the dashboard is accessible and complete', { skip }, () => {
  let lab: LabOrg;
  let browser: Browser;
  let profile: Profile;
  let h: DashboardHarness;

  let savedBus: string | undefined;
  let keyring: { address: string; stop(): void } | undefined;

  before(async () => {
    // The keyring library keeps the first session bus it connects to for the life of the process: the Secret
    // Service starts before anything asks it (dashboard-no-keyring.test.ts covers a session without one).
    savedBus = process.env.DBUS_SESSION_BUS_ADDRESS;
    if (!keyringSkip) {
      keyring = await startKeyring();
      process.env.DBUS_SESSION_BUS_ADDRESS = keyring.address;
    } else {
      process.env.DBUS_SESSION_BUS_ADDRESS = `unix:path=${path.join(tempDir('nobus'), 'none')}`;
    }
    lab = await startLabOrg({ allowLabSignIn: true });
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
    browser = await launchChromium();
    // Not enrolled yet: the view a user has before the first run, or after a failure.
    h = await openDashboard(browser, profile.env, { secrets: new KeyringSecretStore() });
  });

  after(async () => {
    if (savedBus === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
    else process.env.DBUS_SESSION_BUS_ADDRESS = savedBus;
    await browser?.close();
    await lab?.close();
    keyring?.stop();
  });

  test('not trusted: the overview says so and what to do, with no accessibility violation in either theme', async () => {
    const { page } = h;
    await page.getByRole('heading', { level: 1, name: /not (yet )?trusted|not enrolled/i }).waitFor();
    await page.locator('.cards [data-target="org"] .badge').waitFor();
    await checkView(page, 'overview-not-trusted');
  });

  test('keyboard only: Tab reaches every control of every view with a visible focus, in a sensible order', async () => {
    const { page } = h;
    const views = ['Overview', 'Event log', 'Settings'];
    for (const view of views) {
      await page.getByRole('tab', { name: view }).click();
      await page.getByRole('tab', { name: view, selected: true }).focus();
      // Number every control of the view, then Tab until the focus comes round again.
      const controls: string[] = await page.evaluate(() =>
        [...document.querySelectorAll('[role="tabpanel"]:not([hidden]) :is(button:not(:disabled), input:not(:disabled), select, [tabindex="0"], summary)')]
          .filter((el: any) => !el.closest('dialog:not([open])'))
          .map((el: any, i: number) => {
            el.dataset.kbd = String(i);
            return `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') || el.innerText || el.id || '').trim().split('\n')[0].slice(0, 40)}"`;
          }));
      const reached = new Set<string>();
      const invisible: string[] = [];
      let first: string | undefined;
      for (let i = 0; i < 80; i++) {
        await page.keyboard.press('Tab');
        const f = await focusedOutline(page);
        const key = f.kbd ?? f.what;
        if (key === first) break;
        first ??= key;
        if (f.kbd !== undefined) reached.add(f.kbd);
        if (!f.visible) invisible.push(f.what);
      }
      assert.deepEqual(invisible, [], `${view}: controls focused without a visible focus indicator`);
      const missed = controls.filter((_c, i) => !reached.has(String(i)));
      assert.deepEqual(missed, [], `${view}: controls the keyboard never reaches`);
    }
    // The views themselves move with the arrow keys (the tab pattern), and Settings has its level-one heading.
    await page.getByRole('tab', { name: 'Settings' }).focus();
    await page.keyboard.press('Home');
    await page.getByRole('tab', { name: 'Overview', selected: true }).waitFor();
    await page.keyboard.press('End');
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
  });

  test('the event grid exposes rows and positions to assistive technology, and the arrow keys move the announced row', async () => {
    const { page } = h;
    await page.getByRole('tab', { name: 'Event log' }).click();
    await page.getByRole('heading', { level: 1, name: 'Event log' }).waitFor();
    const grid = page.getByRole('grid', { name: /^Events/ });
    await page.getByTestId('event-count').filter({ hasText: /Showing \d+ of \d+ events/ }).waitFor();
    const total = Number(/Showing (\d+) of/.exec(await page.getByTestId('event-count').innerText())![1]);
    assert.ok(total > 0, 'the first diagnostics run wrote events');
    // Chromium's accessibility tree, as a screen reader gets it.
    const tree = await grid.ariaSnapshot();
    assert.match(tree, /grid "Events/);
    assert.match(tree, /columnheader "Time"/);
    assert.match(tree, /row "/);
    assert.equal(await grid.getAttribute('aria-rowcount'), String(total + 1), 'the row count includes the rows not rendered');
    await grid.focus();
    await page.keyboard.press('End');
    const last = page.locator(`#event-row-${total - 1}`);
    await last.waitFor();
    assert.equal(await grid.getAttribute('aria-activedescendant'), `event-row-${total - 1}`);
    assert.equal(await last.getAttribute('aria-rowindex'), String(total + 1));
    assert.equal(await last.getAttribute('aria-selected'), 'true');
    await checkView(page, 'events-keyboard');
  });

  test('results are announced: a diagnostics run ends with a sentence in the live region', async () => {
    const { page } = h;
    await page.getByRole('tab', { name: 'Overview' }).click();
    await page.getByRole('button', { name: 'Run diagnostics', disabled: false }).click();
    const announcer = page.getByTestId('announcer');
    await announcer.filter({ hasText: /Diagnostics finished: \d+ targets checked/ }).waitFor();
    assert.equal(await announcer.getAttribute('aria-live'), 'polite');
  });

  describe('with a Secret Service', { skip: keyringSkip }, () => {

    test('from the AD-agent finding to Settings: the admin token is stored, tested against the org, and removed', async () => {
      const { page } = h;
      // Diagnostics say the agents were not read and offer the way forward.
      await page.getByRole('button', { name: 'Run diagnostics', disabled: false }).click();
      const finding = page.locator('[data-finding="NO_ADMIN_TOKEN"]');
      await finding.waitFor();
      await finding.getByRole('button', { name: 'Enter the admin token…' }).click();
      await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
      await page.getByTestId('token-state').filter({ hasText: /No token for .* is stored/ }).waitFor();
      await checkView(page, 'settings-empty');

      // A wrong token is stored but the test says the org refused it.
      await page.getByLabel('API token', { exact: true }).fill('00wrongwrongwrongwrongwrongwrongwrongwrong');
      await page.getByRole('button', { name: 'Save token' }).click();
      await page.getByTestId('token-state').filter({ hasText: /A token for .* is stored/ }).waitFor();
      assert.equal(await page.getByLabel('API token', { exact: true }).inputValue(), '', 'the field is cleared: the token is never shown again');
      await page.getByRole('button', { name: 'Test token' }).click();
      await page.getByTestId('token-outcome').filter({ hasText: /could not be used.*refused/ }).waitFor();

      // The right one works: the org answers with its agent pools.
      await page.getByLabel('API token', { exact: true }).fill(lab.apiToken);
      await page.getByRole('button', { name: 'Replace token' }).click();
      await page.getByTestId('token-outcome').filter({ hasText: /Token stored in the Secret Service/ }).waitFor();
      await page.getByRole('button', { name: 'Test token' }).click();
      await page.getByTestId('token-outcome').filter({ hasText: /accepted the token: \d+ agent pool/ }).waitFor();
      await page.getByTestId('announcer').filter({ hasText: /accepted the token/ }).waitFor();
      await checkView(page, 'settings-stored');
      // Stored in the keyring, where the command line finds it too; in no file of the agent's.
      assert.equal(await new KeyringSecretStore().get(`admin-api-token@${new URL(lab.orgUrl).host}`), lab.apiToken);
      for (const e of fs.readdirSync(profile.stateDir, { recursive: true, withFileTypes: true })) {
        if (!e.isFile()) continue;
        const file = path.join(e.parentPath, e.name);
        assert.ok(!fs.readFileSync(file, 'latin1').includes(lab.apiToken), `the token is in ${file}`);
      }
      // The guard's answers never carried it back either.
      assert.ok(!JSON.stringify(h.emitted).includes(lab.apiToken));

      // Removal.
      await page.getByRole('button', { name: 'Remove token' }).click();
      await page.getByTestId('token-outcome').filter({ hasText: 'Token removed.' }).waitFor();
      await page.getByTestId('token-state').filter({ hasText: /No token for .* is stored/ }).waitFor();
      assert.equal(await new KeyringSecretStore().get(`admin-api-token@${new URL(lab.orgUrl).host}`), undefined);
      const events = eventsText(profile);
      assert.match(events, /Admin API token for .* stored/);
      assert.match(events, /Admin API token for .* removed/);
    });
  });
});

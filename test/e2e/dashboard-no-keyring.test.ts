/**
 * Settings in a session with no Secret Service (a server login, a broken desktop): the dashboard refuses to take
 * the admin API token and says what to do, rather than keep it anywhere weaker — no accessibility violation.
 * A file of its own: the keyring library keeps the first session bus a process connects to.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { KeyringSecretStore } from '../../src-main/core/secrets/keyring.js';
import { makeProfile, type Profile, tempDir, writeRootCa } from '../support/agent.js';
import { checkView, dashboardUnavailable, launchChromium, openDashboard, type DashboardHarness } from '../support/dashboard.js';

const skip = dashboardUnavailable();
if (skip) console.log(skip);

describe('Settings without a keyring', { skip }, () => {
  let lab: LabOrg;
  let browser: Browser;
  let profile: Profile;
  let h: DashboardHarness;

  before(async () => {
    // A session bus address that leads nowhere: no Secret Service can answer.
    process.env.DBUS_SESSION_BUS_ADDRESS = `unix:path=${path.join(tempDir('nobus'), 'none')}`;
    lab = await startLabOrg({ allowLabSignIn: true });
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
    browser = await launchChromium();
    h = await openDashboard(browser, profile.env, { secrets: new KeyringSecretStore(), pending: [{ type: 'navigate', view: 'settings' }] });
  });

  after(async () => {
    await browser?.close();
    await lab?.close();
  });

  test('without a keyring the token field is refused with what to do, and the overview finding says the same', async () => {
    const { page } = h;
    await page.getByRole('tab', { name: 'Settings', selected: true }).waitFor();
    const alert = page.getByRole('alert').filter({ hasText: /keyring/i });
    await alert.waitFor();
    assert.match(await alert.innerText(), /never keeps the token in a plain file/);
    assert.equal(await page.getByLabel('API token', { exact: true }).isDisabled(), true, 'nothing can be entered where it could not be kept safely');
    assert.equal(await page.getByRole('button', { name: 'Save token' }).isDisabled(), true);
    await checkView(page, 'settings-no-keyring');
    await page.getByRole('tab', { name: 'Overview' }).click();
    await page.locator('[data-finding="KEYRING_UNAVAILABLE"]').waitFor();
  });
});

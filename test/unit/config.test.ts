import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig as loadConfigWith, requireOrgUrl, type LoadConfigOptions } from '../../src-main/core/config.js';
import { createManagedConfigReader } from '../../src-main/platform/managed-config.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { tempDir } from '../support/agent.js';

// The composition roots hand the core this OS's managed configuration reader; so does this test.
const loadConfig = (o: LoadConfigOptions = {}) => loadConfigWith({ managed: createManagedConfigReader('linux', o.env ?? process.env), ...o });

function setup() {
  const home = tempDir('cfg');
  const managed = path.join(home, 'managed');
  fs.mkdirSync(managed);
  return { home, managed, env: { HOME: home, DTA_MANAGED_CONFIG_DIR: managed } as NodeJS.ProcessEnv };
}

test('precedence: managed configuration > command line > environment > config file > defaults', () => {
  const { home, managed, env } = setup();
  fs.writeFileSync(path.join(managed, '10-okta.json'), JSON.stringify({ OktaURL: 'https://managed.example.com', HttpProxy: 'http://proxy.managed:3128', SkipBrowserSetup: 'true' }));
  const file = path.join(home, 'config.json');
  fs.writeFileSync(file, JSON.stringify({ orgUrl: 'https://file.example.com', keyAlgorithm: 'RSA-2048', deviceName: 'from-file' }));

  const managedOnly = loadConfig({ env });
  assert.equal(managedOnly.config.orgUrl, 'https://managed.example.com');
  assert.equal(managedOnly.config.httpProxy, 'http://proxy.managed:3128');
  assert.equal(managedOnly.config.skipBrowserSetup, true);
  assert.equal(managedOnly.sources.orgUrl, 'managed');
  assert.equal(managedOnly.config.keyAlgorithm, 'P-256');
  assert.equal(managedOnly.sources.keyAlgorithm, 'default');
  assert.deepEqual(managedOnly.ignored, []);

  const withFile = loadConfig({ env, configFile: file });
  assert.equal(withFile.config.orgUrl, 'https://managed.example.com', 'the admin\'s org wins over the file');
  assert.equal(withFile.config.keyAlgorithm, 'RSA-2048', 'the file sets what the admin left open');
  assert.deepEqual(withFile.ignored.map((i) => [i.setting, i.source]), [['orgUrl', 'file']]);

  const withEnv = loadConfig({ env: { ...env, DTA_ORG_URL: 'https://env.example.com', DTA_DEVICE_NAME: 'from-env' }, configFile: file });
  assert.equal(withEnv.config.orgUrl, 'https://managed.example.com');
  assert.equal(withEnv.config.deviceName, 'from-env', 'the environment beats the file');
  assert.equal(withEnv.sources.deviceName, 'env');

  const withCli = loadConfig({ env: { ...env, DTA_ORG_URL: 'https://env.example.com', DTA_DEVICE_NAME: 'from-env' }, configFile: file, cli: { OktaURL: 'https://cli.example.com', SkipBrowserSetup: 'false', deviceName: 'from-cli' } });
  assert.equal(withCli.config.orgUrl, 'https://managed.example.com');
  assert.equal(withCli.config.skipBrowserSetup, true);
  assert.equal(withCli.config.deviceName, 'from-cli', 'the command line beats the environment');
  assert.equal(withCli.sources.orgUrl, 'managed');
  assert.deepEqual(withCli.ignored.map((i) => `${i.setting}<${i.source}`).sort(), ['orgUrl<cli', 'orgUrl<env', 'orgUrl<file', 'skipBrowserSetup<cli']);
});

test('install-time parameter names are accepted case-insensitively', () => {
  const { env } = setup();
  const { config } = loadConfig({ env, cli: { oktaurl: 'https://a.example.com', HTTPPROXYPACLOCATION: 'http://pac.example.com/proxy.pac' } });
  assert.equal(config.orgUrl, 'https://a.example.com');
  assert.equal(config.httpProxyPacLocation, 'http://pac.example.com/proxy.pac');
});

test('bad settings are refused with the setting, its source and the problem', () => {
  const { managed, env } = setup();
  fs.writeFileSync(path.join(managed, 'x.json'), JSON.stringify({ OktaURL: 'http://insecure.example.com' }));
  assert.throws(() => loadConfig({ env }), (e: unknown) => isAgentError(e) && e.failure === 'config' && /orgUrl \(from managed configuration \S*x\.json\)/.test(e.message) && /https/.test(e.message));
  fs.writeFileSync(path.join(managed, 'x.json'), '{ not json');
  assert.throws(() => loadConfig({ env }), (e: unknown) => isAgentError(e) && /not valid JSON/.test(e.message) && e.message.includes('x.json'));
  fs.writeFileSync(path.join(managed, 'x.json'), JSON.stringify({ OktaUrll: 'https://typo.example.com' }));
  assert.throws(() => loadConfig({ env }), (e: unknown) => isAgentError(e) && /Unknown setting "OktaUrll"/.test(e.message));
  fs.rmSync(path.join(managed, 'x.json'));
  assert.throws(() => loadConfig({ env, cli: { SkipBrowserSetup: 'maybe' } }), /must be true or false/);
});

test('a missing org URL is a configuration error that says where to set it', () => {
  const { env } = setup();
  const { config } = loadConfig({ env });
  assert.throws(() => requireOrgUrl(config), (e: unknown) => isAgentError(e) && e.code === 'NOT_CONFIGURED' && /OktaURL=/.test(e.remedy ?? ''));
});

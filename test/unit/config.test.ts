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

test('precedence: command line > environment > config file > managed configuration > defaults', () => {
  const { home, managed, env } = setup();
  fs.writeFileSync(path.join(managed, '10-okta.json'), JSON.stringify({ OktaURL: 'https://managed.example.com', HttpProxy: 'http://proxy.managed:3128', SkipBrowserSetup: 'true' }));
  const file = path.join(home, 'config.json');
  fs.writeFileSync(file, JSON.stringify({ orgUrl: 'https://file.example.com', keyAlgorithm: 'RSA-2048' }));

  const managedOnly = loadConfig({ env });
  assert.equal(managedOnly.config.orgUrl, 'https://managed.example.com');
  assert.equal(managedOnly.config.httpProxy, 'http://proxy.managed:3128');
  assert.equal(managedOnly.config.skipBrowserSetup, true);
  assert.equal(managedOnly.sources.orgUrl, 'managed');
  assert.equal(managedOnly.config.keyAlgorithm, 'P-256');
  assert.equal(managedOnly.sources.keyAlgorithm, 'default');

  const withFile = loadConfig({ env, configFile: file });
  assert.equal(withFile.config.orgUrl, 'https://file.example.com');
  assert.equal(withFile.config.keyAlgorithm, 'RSA-2048');
  assert.equal(withFile.config.httpProxy, 'http://proxy.managed:3128', 'lower layers still fill what the file leaves out');

  const withEnv = loadConfig({ env: { ...env, DTA_ORG_URL: 'https://env.example.com' }, configFile: file });
  assert.equal(withEnv.config.orgUrl, 'https://env.example.com');
  assert.equal(withEnv.sources.orgUrl, 'env');

  const withCli = loadConfig({ env: { ...env, DTA_ORG_URL: 'https://env.example.com' }, configFile: file, cli: { OktaURL: 'https://cli.example.com', SkipBrowserSetup: 'false' } });
  assert.equal(withCli.config.orgUrl, 'https://cli.example.com');
  assert.equal(withCli.config.skipBrowserSetup, false);
  assert.equal(withCli.sources.orgUrl, 'cli');
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
  assert.throws(() => loadConfig({ env }), (e: unknown) => isAgentError(e) && e.failure === 'config' && /orgUrl \(from managed\)/.test(e.message) && /https/.test(e.message));
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

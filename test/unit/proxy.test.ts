/**
 * The proxy resolver's rules, one at a time: precedence, NO_PROXY and other bypass lists, PAC answers and
 * the PAC sandbox's limits, credentials kept out of every text, and the OS settings parsers against outputs
 * of the platforms' own commands (test/fixtures/proxy/README.md says where each came from).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import type { Command } from '../../src-main/base/exec.js';
import { bypasses } from '../../src-main/core/proxy/bypass.js';
import { envProxy } from '../../src-main/core/proxy/env.js';
import { exemptPatterns } from '../../src-main/core/proxy/diagnose.js';
import {
  gnomeCommand, osProxyReader, parseGsettings, parseKioslaverc, parseNetshWinhttp, parseScutilProxy, parseWinInetJson, scutilCommand,
  windowsInternetSettingsCommand, winhttpCommand, type OsProxySettings,
} from '../../src-main/core/proxy/os.js';
import { PacScript, parsePacResult } from '../../src-main/core/proxy/pac.js';
import { ProxyResolver, type ProxySettings } from '../../src-main/core/proxy/resolver.js';
import { describeRoute } from '../../src-main/core/proxy/types.js';
import { redact } from '../../src-main/base/safe-text.js';
import { REPO, tempDir } from '../support/agent.js';

const fixture = (name: string) => fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'proxy', name), 'utf8');

function resolver(s: Partial<ProxySettings>): ProxyResolver {
  return new ProxyResolver({ env: {}, os: false, ca: [], timeoutMs: 2000, ...s });
}
async function routesOf(r: ProxyResolver, url: string): Promise<string> {
  return (await r.decide(url)).routes.map(describeRoute).join('; ');
}
function pacFile(body: string): string {
  const f = path.join(tempDir('pac-unit'), 'proxy.pac');
  fs.writeFileSync(f, body);
  return pathToFileURL(f).href;
}

describe('bypass lists (NO_PROXY, OS exceptions)', () => {
  const cases: [string, string, string[], boolean][] = [
    ['iwa.corp.example', '443', ['corp.example'], true],
    ['iwa.corp.example', '443', ['.corp.example'], true],
    ['iwa.corp.example', '443', ['*.corp.example'], true],
    ['corp.example', '443', ['.corp.example'], true],
    ['notcorp.example', '443', ['corp.example'], false],
    ['iwa.corp.example', '8443', ['iwa.corp.example:443'], false],
    ['iwa.corp.example', '443', ['iwa.corp.example:443'], true],
    ['10.1.2.3', '443', ['10.0.0.0/8'], true],
    ['11.1.2.3', '443', ['10.0.0.0/8'], false],
    ['intranet', '443', ['<local>'], true],
    ['intranet.corp', '443', ['<local>'], false],
    ['anything', '443', ['*'], true],
    ['localhost', '443', [], false],
    ['127.0.0.1', '443', ['example.com'], false],
  ];
  for (const [host, port, list, expected] of cases) {
    test(`${host}:${port} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(list)}`, () => {
      assert.equal(Boolean(bypasses(host, port, list)), expected);
    });
  }
});

describe('environment variables', () => {
  test('lower-case wins over upper-case; NO_PROXY splits on commas and spaces; a bare host:port is an http proxy', () => {
    const e = envProxy({ HTTPS_PROXY: 'http://upper:1', https_proxy: 'lower:3128', NO_PROXY: 'a.example, b.example  c.example' });
    assert.equal(e.https?.url.href, 'http://lower:3128/');
    assert.equal(e.https?.variable, 'https_proxy');
    assert.deepEqual(e.noProxy, ['a.example', 'b.example', 'c.example']);
  });
  test('a SOCKS proxy is refused with a clear error', () => {
    assert.throws(() => envProxy({ HTTPS_PROXY: 'socks5://p:1080' }), /does not support/);
  });
});

describe('precedence: explicit > PAC > environment > OS settings > DIRECT', () => {
  const os: OsProxySettings = { source: 'GNOME settings (manual)', https: 'osproxy.example:8080', bypass: ['localhost'] };
  const env = { HTTPS_PROXY: 'http://envproxy.example:3128', NO_PROXY: 'iwa.corp.example' };

  test('the explicit proxy wins over everything, with no exceptions', async () => {
    const r = resolver({ httpProxy: 'http://explicit.example:3128', httpProxyPacLocation: pacFile('function FindProxyForURL(){return "DIRECT"}'), env, os: async () => os });
    const d = await r.decide('https://iwa.corp.example/IWA');
    assert.equal(d.source, 'explicit');
    assert.equal(await routesOf(r, 'https://iwa.corp.example/IWA'), 'PROXY explicit.example:3128');
  });

  test('a PAC file wins over the environment and the OS', async () => {
    const r = resolver({ httpProxyPacLocation: pacFile('function FindProxyForURL(url, host){ return dnsDomainIs(host, ".corp.example") ? "DIRECT" : "PROXY pac.example:8080; DIRECT"; }'), env, os: async () => os });
    assert.equal(await routesOf(r, 'https://iwa.corp.example/IWA'), 'DIRECT');
    assert.equal(await routesOf(r, 'https://org.okta.com/'), 'PROXY pac.example:8080; DIRECT');
    assert.match((await r.decide('https://org.okta.com/')).rule, /^PAC file .* returned "PROXY pac\.example:8080; DIRECT"$/);
    await r.close();
  });

  test('the environment wins over the OS; NO_PROXY sends a host DIRECT and says which entry', async () => {
    const r = resolver({ env, os: async () => os });
    assert.equal(await routesOf(r, 'https://org.okta.com/'), 'PROXY envproxy.example:3128');
    const d = await r.decide('https://iwa.corp.example/IWA');
    assert.equal(describeRoute(d.routes[0]!), 'DIRECT');
    assert.equal(d.rule, 'environment: NO_PROXY entry "iwa.corp.example"');
  });

  test('HTTPS_PROXY is for https URLs only; an http URL without HTTP_PROXY falls to the next rule', async () => {
    const r = resolver({ env: { HTTPS_PROXY: 'http://envproxy.example:3128' } });
    assert.equal(await routesOf(r, 'http://crl.example/ca.crl'), 'DIRECT');
  });

  test('the OS settings apply when nothing else is configured, with their own exceptions', async () => {
    const r = resolver({ os: async () => os });
    assert.equal(await routesOf(r, 'https://org.okta.com/'), 'PROXY osproxy.example:8080');
    assert.match((await r.decide('https://localhost:8443/')).rule, /GNOME settings \(manual\): exception "localhost"/);
  });

  test('nothing configured: DIRECT, and loopback gets no special treatment from the resolver itself', async () => {
    const r = resolver({ env: { HTTPS_PROXY: 'http://envproxy.example:3128' } });
    assert.equal(await routesOf(r, 'https://localhost:8443/'), 'PROXY envproxy.example:3128');
    assert.equal((await resolver({}).decide('https://org.okta.com/')).source, 'none');
  });

  test('credentials in a proxy URL are kept aside: not in the route, not in the rule', async () => {
    const r = resolver({ httpProxy: 'http://bob:s3cret@explicit.example:3128' });
    const d = await r.decide('https://org.okta.com/');
    assert.ok(!JSON.stringify(d).includes('s3cret') && !d.rule.includes('bob'), JSON.stringify(d));
    assert.deepEqual(r.credentialsFor(new URL('http://explicit.example:3128')), { user: 'bob', password: 's3cret' });
  });

  test('a proxy that failed goes last for a while, keeping the PAC order otherwise', async () => {
    const r = resolver({ httpProxyPacLocation: pacFile('function FindProxyForURL(){ return "PROXY a.example:1; PROXY b.example:2; DIRECT"; }') });
    r.markFailed(new URL('http://a.example:1'));
    assert.equal(await routesOf(r, 'https://org.okta.com/'), 'PROXY b.example:2; DIRECT; PROXY a.example:1');
    await r.close();
  });

  test('PAC answers are cached per scheme://host:port: the script runs once for many URLs of one server', async () => {
    const r = resolver({ httpProxyPacLocation: pacFile('var n = 0; function FindProxyForURL(){ n++; return "PROXY p.example:" + n; }') });
    assert.equal(await routesOf(r, 'https://org.okta.com/a'), 'PROXY p.example:1');
    assert.equal(await routesOf(r, 'https://org.okta.com/b?x=1'), 'PROXY p.example:1');
    assert.equal(await routesOf(r, 'https://other.okta.com/'), 'PROXY p.example:2');
    await r.close();
  });

  test('the PAC sees only scheme://host:port/ of an https URL (paths and queries stay private)', async () => {
    const r = resolver({ httpProxyPacLocation: pacFile('function FindProxyForURL(url){ return url === "https://org.okta.com:8443/" ? "DIRECT" : "PROXY leak.example:1"; }') });
    assert.equal(await routesOf(r, 'https://org.okta.com:8443/api/v1/secret?token=x'), 'DIRECT');
    await r.close();
  });
});

describe('PAC answers and the sandbox', () => {
  test('PROXY, HTTPS and DIRECT become routes in order; SOCKS is skipped; nothing usable is an error', () => {
    const { routes, skipped } = parsePacResult('PROXY a:1;  SOCKS s:1080; HTTPS b:443 ; DIRECT', 'x.pac');
    assert.deepEqual(routes.map(describeRoute), ['PROXY a:1', 'PROXY https://b:443', 'DIRECT']);
    assert.deepEqual(skipped, ['SOCKS s:1080']);
    assert.throws(() => parsePacResult('SOCKS s:1080', 'x.pac'), /no route the agent can use/);
    assert.deepEqual(parsePacResult(null, 'x.pac').routes, [{ kind: 'direct' }]);
    assert.throws(() => parsePacResult(42, 'x.pac'), /returned number/);
  });

  test('an endless loop is stopped at the time limit with a clear error', async () => {
    const s = await PacScript.compile('loop.pac', 'function FindProxyForURL(){ for(;;){} }', { timeLimitMs: 200 });
    const t0 = Date.now();
    await assert.rejects(s.evaluate('https://a/'), (e: Error & { code?: string }) => e.code === 'PAC_TIMEOUT' && /did not finish within 200 ms/.test(e.message));
    assert.ok(Date.now() - t0 < 5000);
    s.dispose();
  });

  test('an endless loop at the top level of the script is stopped while loading', async () => {
    await assert.rejects(PacScript.compile('top.pac', 'while (true) {}', { timeLimitMs: 200 }), /PAC_TIMEOUT|did not finish/);
  });

  test('the sandbox has no Node: require, process and the file system are not there', async () => {
    const s = await PacScript.compile('probe.pac', 'function FindProxyForURL(){ return [typeof require, typeof process, typeof globalThis.fetch].join(","); }');
    assert.equal(await s.evaluate('https://a/'), 'undefined,undefined,undefined');
    s.dispose();
  });

  test('alert() goes to the trace, never to stdout', async () => {
    const lines: string[] = [];
    const s = await PacScript.compile('alert.pac', 'function FindProxyForURL(url, host){ alert("deciding " + host); return "DIRECT"; }', { log: (l) => lines.push(l) });
    await s.evaluate('https://org.okta.com/');
    assert.deepEqual(lines, ['PAC alert: deciding org.okta.com']);
    s.dispose();
  });

  for (const [name, src, re] of [
    ['not JavaScript', '<html>portal</html>', /is not valid JavaScript/],
    ['without FindProxyForURL', 'var x = 1;', /does not define FindProxyForURL/],
    ['that throws', 'function FindProxyForURL(){ throw new Error("nope"); }', /failed while running: nope/],
  ] as const) {
    test(`a PAC ${name} is refused with a clear error`, async () => {
      const run = async () => (await PacScript.compile('bad.pac', src)).evaluate('https://a/');
      await assert.rejects(run(), (e: Error & { code?: string }) => e.code === 'PAC_INVALID' && re.test(e.message));
    });
  }

  test('a missing PAC file is a configuration error naming it', async () => {
    const r = resolver({ httpProxyPacLocation: 'file:///nonexistent/proxy.pac' });
    await assert.rejects(r.decide('https://a/'), (e: Error & { code?: string }) => e.code === 'PAC_UNREADABLE' && /\/nonexistent\/proxy\.pac/.test(e.message));
  });
});

describe('OS proxy settings: commands as data, parsers on real outputs', () => {
  test('the commands run are exactly these', () => {
    assert.deepEqual(gnomeCommand, { file: 'gsettings', args: ['list-recursively', 'org.gnome.system.proxy'] });
    assert.deepEqual(scutilCommand, { file: 'scutil', args: ['--proxy'] });
    assert.deepEqual(winhttpCommand, { file: 'netsh', args: ['winhttp', 'show', 'proxy'] });
    assert.equal(windowsInternetSettingsCommand.file, 'powershell.exe');
    assert.match(windowsInternetSettingsCommand.args.at(-1)!, /HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings.*ProxyEnable,ProxyServer,ProxyOverride,AutoConfigURL \| ConvertTo-Json/);
  });

  test('GNOME (captured gsettings output): manual, automatic, none', () => {
    assert.deepEqual(parseGsettings(fixture('gsettings-manual.txt')), {
      source: 'GNOME settings (manual)', https: 'proxy.corp.example:3128', http: 'webproxy.corp.example:8080', bypass: ['localhost', '127.0.0.0/8', '::1', '*.intranet.example'],
    });
    assert.deepEqual(parseGsettings(fixture('gsettings-auto.txt')), {
      source: 'GNOME settings (automatic)', pacUrl: 'http://wpad.corp.example/proxy.pac', bypass: ['localhost', '127.0.0.0/8', '::1', '*.intranet.example'],
    });
    assert.equal(parseGsettings(fixture('gsettings-none.txt')), undefined);
  });

  test('KDE kioslaverc: manual ("http://host 8080") and PAC', () => {
    assert.deepEqual(parseKioslaverc(fixture('kioslaverc-manual')), {
      source: 'KDE settings (manual)', https: 'http://proxy.corp.example:3128', http: 'http://webproxy.corp.example:8080', bypass: ['localhost', '127.0.0.1', '.intranet.example'],
    });
    assert.equal(parseKioslaverc(fixture('kioslaverc-pac'))?.pacUrl, 'http://wpad.corp.example/proxy.pac');
  });

  test('Windows: WinINET per scheme and PAC; WinHTTP proxy and direct', () => {
    assert.deepEqual(parseWinInetJson(fixture('wininet-manual.json')), {
      source: 'WinINET (Internet Options)', http: 'webproxy.corp.example:8080', https: 'proxy.corp.example:3128', bypass: ['<local>', '*.intranet.example'],
    });
    assert.equal(parseWinInetJson(fixture('wininet-pac.json'))?.pacUrl, 'http://wpad.corp.example/proxy.pac');
    assert.deepEqual(parseNetshWinhttp(fixture('netsh-winhttp-proxy.txt')), {
      source: 'WinHTTP (netsh winhttp)', https: 'proxy.corp.example:8080', http: 'proxy.corp.example:8080', bypass: ['<local>', '*.intranet.example'],
    });
    assert.equal(parseNetshWinhttp(fixture('netsh-winhttp-direct.txt')), undefined);
  });

  test('macOS scutil --proxy: manual, PAC, none', () => {
    assert.deepEqual(parseScutilProxy(fixture('scutil-proxy-manual.txt')), {
      source: 'macOS network settings', https: 'proxy.corp.example:3128', http: 'webproxy.corp.example:8080', bypass: ['*.local', '169.254/16', '*.intranet.example'],
    });
    assert.equal(parseScutilProxy(fixture('scutil-proxy-pac.txt'))?.pacUrl, 'http://wpad.corp.example/proxy.pac');
    assert.equal(parseScutilProxy(fixture('scutil-proxy-none.txt')), undefined);
  });

  test('the reader runs the platform\'s command; a missing command means no OS settings', async () => {
    const ran: Command[] = [];
    const fake = (out: string) => async (c: Command) => {
      ran.push(c);
      return { code: 0, stdout: out, stderr: '' };
    };
    assert.equal((await osProxyReader(fake(fixture('scutil-proxy-pac.txt')), 'darwin')())?.pacUrl, 'http://wpad.corp.example/proxy.pac');
    assert.deepEqual(ran.at(-1), scutilCommand);
    assert.equal((await osProxyReader(fake(fixture('gsettings-manual.txt')), 'linux', {})())?.https, 'proxy.corp.example:3128');
    assert.deepEqual(ran.at(-1), gnomeCommand);
    const missing = async () => {
      throw Object.assign(new Error('spawn gsettings ENOENT'), { code: 'ENOENT' });
    };
    assert.equal(await osProxyReader(missing, 'linux', { XDG_CONFIG_HOME: tempDir('nokde') })(), undefined);
  });
});

describe('what users read', () => {
  test('interception: the identity provider\'s hosts become wildcard exemptions; others stay as they are', () => {
    assert.deepEqual(exemptPatterns('acme.okta.com:443', ['acme.okta.com', 'iwa.corp.example']), ['*.okta.com', 'iwa.corp.example']);
    assert.deepEqual(exemptPatterns('localhost:8443'), ['localhost']);
  });

  test('a password in a proxy URL is redacted from logs', () => {
    assert.equal(redact('httpProxy = "http://bob:s3cret@proxy:3128"'), 'httpProxy = "http://bob:[redacted]@proxy:3128"');
    assert.equal(redact('Proxy-Authorization: Basic Ym9iOnMzY3JldA=='), 'Proxy-Authorization: Basic [redacted]');
  });
});

/**
 * Bench section: what the proxy layer costs per request. PAC sandbox creation and compilation, one
 * FindProxyForURL evaluation, a cached route decision, and a request DIRECT vs through a real squid CONNECT
 * tunnel to the lab org on loopback (squid skipped, with the reason, where it is not installed).
 * Prints tables; asserts nothing (timings are not tests).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HttpClient } from '../../src-main/core/net/http.js';
import { PacScript } from '../../src-main/core/proxy/pac.js';
import { ProxyResolver } from '../../src-main/core/proxy/resolver.js';
import { startLabOrg } from '../../lab/org.js';
import { tempDir, writeRootCa } from '../support/agent.js';
import { squidUnavailable, startSquid } from '../support/squid.js';
import { median, table, time } from './util.js';

const PAC = 'function FindProxyForURL(url, host) { if (shExpMatch(host, "*.corp.example") || isPlainHostName(host)) return "DIRECT"; return "PROXY proxy.corp.example:3128; DIRECT"; }';

export default async function proxyBench(): Promise<void> {
  const rows: (string | number)[][] = [];
  const compile = await time(10, async () => (await PacScript.compile('bench.pac', PAC)).dispose());
  rows.push(['PAC sandbox + compile', median(compile), Math.max(...compile)]);
  const script = await PacScript.compile('bench.pac', PAC);
  const evals = await time(200, () => script.evaluate('https://acme.okta.com/'));
  rows.push(['FindProxyForURL (one call)', median(evals), Math.max(...evals)]);
  script.dispose();
  const file = path.join(tempDir('bench-pac'), 'proxy.pac');
  fs.writeFileSync(file, PAC);
  const resolver = new ProxyResolver({ httpProxyPacLocation: pathToFileURL(file).href, env: {}, os: false, ca: [], timeoutMs: 5000 });
  const first = await time(1, () => resolver.decide('https://acme.okta.com/'));
  const cached = await time(1000, () => resolver.decide('https://acme.okta.com/api'));
  rows.push(['route decision, first (read + compile + run)', median(first), Math.max(...first)]);
  rows.push(['route decision, cached', median(cached), Math.max(...cached)]);
  await resolver.close();
  table('PAC (ms)', ['step', 'median', 'max'], rows);

  const why = squidUnavailable();
  if (why) {
    console.log(`\nrequests through squid: ${why}`);
    return;
  }
  const lab = await startLabOrg({ allowLabSignIn: true });
  const squid = await startSquid();
  const caFile = writeRootCa(lab.rootCaPem);
  const url = `${lab.orgUrl}/api/v1/device-trust/config`;
  const out: (string | number)[][] = [];
  try {
    for (const [name, proxy] of [['DIRECT', {}], ['squid CONNECT tunnel', { httpProxy: squid.url }]] as const) {
      const fresh = await time(10, async () => {
        const c = new HttpClient({ tlsCaFile: caFile, timeoutMs: 5000, proxy: { ...proxy, env: {}, os: false } });
        await c.send({ url, what: 'the org' });
        await c.close();
      });
      const c = new HttpClient({ tlsCaFile: caFile, timeoutMs: 5000, proxy: { ...proxy, env: {}, os: false } });
      await c.send({ url, what: 'the org' });
      const reused = await time(50, () => c.send({ url, what: 'the org' }));
      await c.close();
      out.push([name, median(fresh), median(reused)]);
    }
  } finally {
    await squid.stop();
    await lab.close();
  }
  table('GET discovery from the lab org (ms)', ['route', 'new connection', 'kept-alive'], out);
}

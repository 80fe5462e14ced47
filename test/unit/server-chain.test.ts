/**
 * The org's published TLS issuers (discovery serverTls, PROTOCOL §1) against the chain the agent's own TLS
 * received, with real TLS servers on loopback: the org's CA, and an "inspection" CA this machine trusts too.
 * A chain with a published issuer passes; one without is named as interception (CA subject, host, what to
 * exempt); an org that publishes nothing changes nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spkiSha256 } from '../../src-main/base/certinfo.js';
import { HttpClient } from '../../src-main/core/net/http.js';
import { OrgConfigSchema } from '../../src-main/core/enrollment/protocol.js';
import { checkPublishedChains, effectivePins, pinChangeFinding, pinsToRemember } from '../../src-main/core/net/server-chain.js';
import { tempDir } from '../support/agent.js';
import { listenOnLoopback } from '../support/net.js';

interface Ca {
  dir: string;
  certPem: string;
}

function ca(name: string): Ca {
  const dir = tempDir('chain-ca');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/ca.key`, '-out', `${dir}/ca.pem`, '-days', '2',
    '-subj', `/O=${name} Inc/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
  return { dir, certPem: fs.readFileSync(`${dir}/ca.pem`, 'utf8') };
}

function leaf(issuer: Ca): { cert: string; key: string } {
  const dir = tempDir('chain-leaf');
  execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/k.pem`, '-out', `${dir}/r.csr`, '-subj', '/CN=localhost'], { stdio: 'pipe' });
  fs.writeFileSync(`${dir}/ext`, 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  execFileSync('openssl', ['x509', '-req', '-in', `${dir}/r.csr`, '-CA', `${issuer.dir}/ca.pem`, '-CAkey', `${issuer.dir}/ca.key`, '-CAcreateserial', '-days', '2', '-extfile', `${dir}/ext`, '-out', `${dir}/c.pem`], { stdio: 'pipe' });
  return { cert: fs.readFileSync(`${dir}/c.pem`, 'utf8'), key: fs.readFileSync(`${dir}/k.pem`, 'utf8') };
}

async function serve(cred: { cert: string; key: string }): Promise<{ url: string; server: https.Server }> {
  const server = https.createServer(cred, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"trusted":false,"reason":"no-certificate"}'));
  const port = await listenOnLoopback(server);
  return { url: `https://localhost:${port}`, server };
}

describe('published TLS issuers vs the chain seen (real TLS on loopback)', () => {
  let orgCa: Ca;
  let inspection: Ca;
  let genuine: { url: string; server: https.Server };
  let intercepted: { url: string; server: https.Server };
  let anchors: string;

  before(async () => {
    orgCa = ca('Org TLS CA');
    inspection = ca('Corp Inspection CA');
    [genuine, intercepted] = await Promise.all([serve(leaf(orgCa)), serve(leaf(inspection))]);
    // This machine trusts both: the inspection CA was installed by the enterprise, so TLS verifies either way.
    anchors = path.join(tempDir('chain-anchors'), 'anchors.pem');
    fs.writeFileSync(anchors, `${orgCa.certPem}\n${inspection.certPem}`);
  });
  after(() => {
    genuine.server.closeAllConnections();
    intercepted.server.closeAllConnections();
    genuine.server.close();
    intercepted.server.close();
  });

  const client = () => new HttpClient({ tlsCaFile: anchors, timeoutMs: 5000, proxy: { env: {}, os: false } });

  test('the org\'s own chain: no finding, for the org and the mTLS host', async () => {
    const http = client();
    try {
      await http.send({ url: `${genuine.url}/config`, what: 'the org' });
      const found = await checkPublishedChains(http, { mtlsUrl: `${genuine.url}/mtls/check`, pins: [spkiSha256(orgCa.certPem)] }, genuine.url, { reach: true });
      assert.deepEqual(found, []);
    } finally {
      await http.close();
    }
  });

  test('a trusted inspection CA on the mTLS host: named with the CA, the host and what to exempt', async () => {
    const http = client();
    try {
      await http.send({ url: `${genuine.url}/config`, what: 'the org' });
      const found = await checkPublishedChains(http, { mtlsUrl: `${intercepted.url}/mtls/check`, pins: [spkiSha256(orgCa.certPem)] }, genuine.url, { reach: true });
      assert.equal(found.length, 1, 'only the mTLS host is intercepted');
      const [m] = found;
      assert.equal(m!.error.code, 'TLS_INTERCEPTED');
      assert.equal(m!.host, new URL(intercepted.url).host);
      assert.match(m!.error.message, /TLS-intercepting proxy .* and localhost:\d+ \(the mTLS endpoint\)/);
      assert.match(m!.error.message, /issued by "Corp Inspection CA" \(.*O=Corp Inspection CA Inc.*\), not by a CA the org publishes/);
      assert.match(m!.error.remedy!, /^Exempt localhost from TLS inspection .*"Corp Inspection CA"/);
      assert.equal(http.interceptionFor(m!.host)?.code, 'CHAIN_NOT_PUBLISHED', 'recorded for the findings');
    } finally {
      await http.close();
    }
  });

  test('an org that publishes no TLS issuers: nothing is compared, nothing is flagged', async () => {
    const http = client();
    try {
      await http.send({ url: `${intercepted.url}/config`, what: 'the org' });
      assert.deepEqual(await checkPublishedChains(http, { mtlsUrl: `${intercepted.url}/mtls/check`, pins: undefined }, intercepted.url, { reach: true }), []);
    } finally {
      await http.close();
    }
  });

  test('the discovery answer: pins must be base64 SHA-256 values', () => {
    const base = {
      orgId: 'o', orgName: 'Org', readOnly: false, iwa: { primary: 'https://iwa.example/IWA', backups: [], failoverMode: 'PRIMARY_ONLY' },
      mtls: { url: 'https://mtls.example/check', hostPatterns: [] }, ca: { issuerCN: 'CA', chainPem: [orgCa.certPem] },
      certificate: { validitySeconds: 1, renewalWindowSeconds: 0 },
    };
    assert.ok(OrgConfigSchema.safeParse({ ...base, serverTls: { issuerSpkiSha256: [spkiSha256(orgCa.certPem)] } }).success);
    assert.ok(!OrgConfigSchema.safeParse({ ...base, serverTls: { issuerSpkiSha256: ['not a pin'] } }).success);
    assert.ok(!OrgConfigSchema.safeParse({ ...base, serverTls: { issuerSpkiSha256: [] } }).success, 'an empty list would silently turn the check off');
    assert.ok(OrgConfigSchema.safeParse(base).success, 'older orgs without serverTls still work');
  });

  // An org that publishes no pins (every real one, and SCEP): the CAs each org host presented on first use are
  // remembered and later chains are judged against them; an admin's managed pins come before them.
  test('first use: the chain is remembered per host, and an inspection CA later is named against it', async () => {
    const swap = await serve(leaf(orgCa));
    const http = client();
    try {
      await http.send({ url: `${swap.url}/config`, what: 'the org' });
      const host = new URL(swap.url).host;
      const now = new Date('2026-12-01T00:00:00Z');
      const remembered = pinsToRemember([], undefined, { [host]: http.presentedChain(host) }, now);
      assert.ok(remembered, 'pins learnt');
      assert.equal(remembered.source, 'first-use');
      assert.deepEqual(remembered.hosts, [host]);
      assert.ok(remembered.pins.includes(spkiSha256(orgCa.certPem)), 'the CA, not the leaf, is pinned');
      assert.equal(pinsToRemember([], remembered, { [host]: http.presentedChain(host) }, new Date()), undefined, 'learnt once, never silently replaced');
      const set = effectivePins([], [], remembered);
      assert.deepEqual(await checkPublishedChains(http, { mtlsUrl: `${swap.url}/mtls/check`, pins: set }, swap.url), [], 'the same chain passes');
      // The same host now presents a chain from the inspection CA (which this machine trusts).
      const cred = leaf(inspection);
      swap.server.setSecureContext(cred);
      const later = client();
      try {
        await later.send({ url: `${swap.url}/config`, what: 'the org' });
        const found = await checkPublishedChains(later, { mtlsUrl: `${swap.url}/mtls/check`, pins: set }, swap.url);
        assert.equal(found.length, 1);
        assert.match(found[0]!.error.message, /issued by "Corp Inspection CA".*not by the CA this device saw for that host on first use \(2026-12-01/);
        // Managed pins come before remembered ones: an admin pinning the inspection CA silences it.
        assert.deepEqual(await checkPublishedChains(later, { mtlsUrl: `${swap.url}/mtls/check`, pins: effectivePins([], [spkiSha256(inspection.certPem)], remembered) }, swap.url), []);
      } finally {
        await later.close();
      }
    } finally {
      await http.close();
      swap.server.closeAllConnections();
      swap.server.close();
    }
  });

  test('pins the org published and then withdrew or replaced: a finding; published pins are remembered', () => {
    const pin = spkiSha256(orgCa.certPem);
    const other = spkiSha256(inspection.certPem);
    const remembered = pinsToRemember([pin], undefined, {}, new Date('2026-11-01T00:00:00Z'))!;
    assert.equal(remembered.source, 'published');
    assert.equal(pinChangeFinding([pin], remembered, 'org.example'), undefined);
    assert.equal(pinChangeFinding([pin, other], remembered, 'org.example'), undefined, 'a new pin beside the old one is a rollover');
    const gone = pinChangeFinding([], remembered, 'org.example');
    assert.equal(gone?.code, 'SERVER_PINS_WITHDRAWN');
    assert.match(gone!.message, /published the CAs of its TLS servers .* on 2026-11-01.* no longer does/);
    assert.equal(pinChangeFinding([other], remembered, 'org.example')?.code, 'SERVER_PINS_CHANGED');
    // Withdrawn: the remembered ones are still the ones checked (and not replaced by first-use learning).
    assert.deepEqual(effectivePins([], [], remembered), { pins: [pin], source: 'formerly-published', since: remembered.at });
    assert.equal(pinsToRemember([], remembered, { 'org.example': [] }, new Date()), undefined);
  });
});

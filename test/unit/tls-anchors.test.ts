/**
 * The trust anchors of the agent's TLS contexts (core/proxy/connect.ts secureContextFor): Node's bundled roots
 * plus tlsCaFile. Built from Node's own root store when the list is exactly that (no re-parse of ~145 PEMs per
 * pass), so these real handshakes on loopback check the anchors are still exactly the configured ones: the
 * configured CA is trusted, another CA is not, and one context's extra anchor never leaks into another.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { secureContextFor } from '../../src-main/core/proxy/connect.js';
import { rootCertificates } from '../../src-main/core/net/tls-roots.js';
import { tempDir } from '../support/agent.js';
import { listenOnLoopback } from '../support/net.js';

function ca(name: string): { dir: string; pem: string } {
  const dir = tempDir('anchor-ca');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/ca.key`, '-out', `${dir}/ca.pem`, '-days', '2',
    '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
  return { dir, pem: fs.readFileSync(`${dir}/ca.pem`, 'utf8') };
}

describe('TLS trust anchors: bundled roots + tlsCaFile, exactly (real TLS on loopback)', () => {
  const orgCa = ca('Anchor Org CA');
  const otherCa = ca('Anchor Other CA');
  let server: tls.Server;
  let port = 0;
  before(async () => {
    const dir = orgCa.dir;
    execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/k.pem`, '-out', `${dir}/r.csr`, '-subj', '/CN=localhost'], { stdio: 'pipe' });
    fs.writeFileSync(`${dir}/ext`, 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
    execFileSync('openssl', ['x509', '-req', '-in', `${dir}/r.csr`, '-CA', `${dir}/ca.pem`, '-CAkey', `${dir}/ca.key`, '-CAcreateserial', '-days', '2', '-extfile', `${dir}/ext`, '-out', `${dir}/c.pem`], { stdio: 'pipe' });
    server = tls.createServer({ key: fs.readFileSync(`${dir}/k.pem`), cert: fs.readFileSync(`${dir}/c.pem`) }, (s) => s.end());
    port = await listenOnLoopback(server);
  });
  after(() => server.close());

  const handshake = (secureContext: tls.SecureContext) => new Promise<string>((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', secureContext, rejectUnauthorized: true }, () => {
      s.destroy();
      resolve('ok');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  const file = (pem: string) => {
    const f = `${tempDir('anchor-file')}/ca.pem`;
    fs.writeFileSync(f, pem);
    return f;
  };

  test('the configured CA is trusted; another configured CA, or none, is refused; nothing leaks between contexts', async () => {
    const withOrg = rootCertificates(file(orgCa.pem));
    assert.equal(withOrg.length, tls.rootCertificates.length + 1, 'bundled roots plus the file');
    assert.equal(await handshake(secureContextFor({ ca: withOrg, timeoutMs: 5000 })), 'ok');
    assert.equal(await handshake(secureContextFor({ ca: rootCertificates(file(otherCa.pem)), timeoutMs: 5000 })), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(await handshake(secureContextFor({ ca: rootCertificates(undefined), timeoutMs: 5000 })), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(await handshake(tls.createSecureContext({})), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', "Node's default store did not gain the org CA");
  });

  test('an anchor list that is not the bundled roots plus extras is used as given (only the org CA: still trusted; only another: refused)', async () => {
    assert.equal(await handshake(secureContextFor({ ca: [orgCa.pem], timeoutMs: 5000 })), 'ok');
    assert.equal(await handshake(secureContextFor({ ca: [otherCa.pem], timeoutMs: 5000 })), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });
});

// Node reads NODE_EXTRA_CA_CERTS at start-up, and with it set the exact list is built (the path above); this
// machine may set it, so the same tests run once more in a process without it, on the root-store path.
test('the same anchors on the root-store path (a process without NODE_EXTRA_CA_CERTS)', { skip: process.env.NODE_EXTRA_CA_CERTS ? false : 'this process already runs without NODE_EXTRA_CA_CERTS' }, () => {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', fileURLToPath(import.meta.url)], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /# pass 2\b/);
});

/**
 * Real Kerberos end to end: a throw-away MIT KDC on loopback, the agent's client side
 * (src-main/core/auth/negotiate.ts) and the lab IWA's accepting side (lab/negotiate.ts) in this process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { kerberosToolsAvailable, startKdc, type Kdc } from '../../lab/kdc.js';
import { acceptNegotiate } from '../../lab/negotiate.js';
import { KerberosError, kerberosAvailable, negotiateAuthorization } from '../../src-main/core/auth/negotiate.js';

const lib = await kerberosAvailable();
const skip = !kerberosToolsAvailable()
  ? 'MIT Kerberos tools (krb5kdc, kdb5_util, kadmin.local, kinit) not installed'
  : !lib.ok
    ? lib.reason
    : false;

const IWA = 'https://localhost:8443/IWA/device-token';
let kdc: Kdc;
let dir: string;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(tmpdir(), 'dta-krb-'));
  kdc = await startKdc({ dir, users: ['alice', 'bob'] });
  // This process is both the IWA (accepting side) and the agent (client side).
  delete process.env.KRB5_CLIENT_KTNAME;
  Object.assign(process.env, kdc.serverEnv());
});

after(async () => {
  if (skip) return;
  await kdc?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function accepted(header: string): Promise<string> {
  const r = await acceptNegotiate(header, { service: 'HTTP@localhost' });
  assert.ok(r.ok, `IWA refused the token: ${r.ok ? '' : r.reason}`);
  return r.principal;
}

function isKerberosError(kind: KerberosError['kind'], pattern?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof KerberosError, `expected a KerberosError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

test('a user with a ticket is accepted as that user, with a mutual-auth token', { skip }, async () => {
  Object.assign(process.env, await kdc.kinit('alice'));
  const header = await negotiateAuthorization({ url: IWA });
  assert.match(header, /^Negotiate [A-Za-z0-9+/]+=*$/);
  const r = await acceptNegotiate(header, { service: 'HTTP@localhost' });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.equal(r.principal, 'alice@LAB.TEST');
  assert.equal(typeof r.mutualToken, 'string');
});

test('the IWA refuses missing, foreign, garbage and replayed tokens', { skip }, async () => {
  assert.equal((await acceptNegotiate(undefined, {})).ok, false);
  assert.equal((await acceptNegotiate('Basic YWxpY2U6eA==', {})).ok, false);
  assert.equal((await acceptNegotiate('Negotiate bm90IGEgdG9rZW4=', {})).ok, false);
  Object.assign(process.env, await kdc.kinit('alice'));
  const header = await negotiateAuthorization({ url: IWA });
  assert.equal(await accepted(header), 'alice@LAB.TEST');
  const replay = await acceptNegotiate(header, {});
  assert.equal(replay.ok, false);
});

test('switching KRB5CCNAME between calls is honoured', { skip }, async () => {
  const alice = await kdc.kinit('alice');
  const bob = await kdc.kinit('bob');
  process.env.KRB5CCNAME = alice.KRB5CCNAME;
  assert.equal(await accepted(await negotiateAuthorization({ url: IWA })), 'alice@LAB.TEST');
  process.env.KRB5CCNAME = bob.KRB5CCNAME;
  assert.equal(await accepted(await negotiateAuthorization({ url: IWA })), 'bob@LAB.TEST');
  process.env.KRB5CCNAME = alice.KRB5CCNAME;
  assert.equal(await accepted(await negotiateAuthorization({ url: IWA })), 'alice@LAB.TEST');
});

test('the device principal authenticates from its keytab, without kinit and without touching the user ccache', { skip }, async () => {
  const alice = await kdc.kinit('alice');
  Object.assign(process.env, alice);

  const viaOption = await negotiateAuthorization({ url: IWA, principal: kdc.devicePrincipal, clientKeytab: kdc.deviceKeytab });
  assert.equal(await accepted(viaOption), 'host/ws01.lab.test@LAB.TEST');
  assert.equal(process.env.KRB5CCNAME, alice.KRB5CCNAME, 'env restored');
  assert.equal(process.env.KRB5_CLIENT_KTNAME, undefined, 'env restored');

  // The same through the environment, as MIT documents it.
  process.env.KRB5_CLIENT_KTNAME = kdc.deviceKeytab;
  try {
    const viaEnv = await negotiateAuthorization({ url: IWA, principal: kdc.devicePrincipal });
    assert.equal(await accepted(viaEnv), 'host/ws01.lab.test@LAB.TEST');
    // The user's identity is unaffected, even with a client keytab in the environment.
    assert.equal(await accepted(await negotiateAuthorization({ url: IWA })), 'alice@LAB.TEST');
    // …and a user without a ticket is not silently authenticated as the device (nor is its ccache filled).
    const nobody = path.join(dir, 'ccache-nobody-device-env');
    process.env.KRB5CCNAME = `FILE:${nobody}`;
    await assert.rejects(negotiateAuthorization({ url: IWA }), isKerberosError('no-credentials'));
    assert.equal(existsSync(nobody), false);
  } finally {
    delete process.env.KRB5_CLIENT_KTNAME;
  }
});

test('concurrent device and user calls each keep their own identity', { skip }, async () => {
  Object.assign(process.env, await kdc.kinit('alice'));
  const calls = Array.from({ length: 6 }, (_, i) =>
    i % 2
      ? negotiateAuthorization({ url: IWA, principal: kdc.devicePrincipal, clientKeytab: kdc.deviceKeytab })
      : negotiateAuthorization({ url: IWA }),
  );
  const principals = [];
  for (const header of await Promise.all(calls)) principals.push(await accepted(header));
  assert.deepEqual(principals, Array.from({ length: 6 }, (_, i) => (i % 2 ? 'host/ws01.lab.test@LAB.TEST' : 'alice@LAB.TEST')));
});

test('the device principal without its key is a no-credentials error', { skip }, async () => {
  await assert.rejects(
    negotiateAuthorization({ url: IWA, principal: kdc.devicePrincipal, clientKeytab: kdc.users[0]!.keytab }),
    isKerberosError('no-credentials', /No Kerberos key for host\/ws01\.lab\.test@LAB\.TEST/),
  );
});

test('a user without a ticket gets a no-credentials error', { skip }, async () => {
  process.env.KRB5CCNAME = `FILE:${path.join(dir, 'ccache-nobody')}`;
  await assert.rejects(
    negotiateAuthorization({ url: IWA }),
    isKerberosError('no-credentials', /No Kerberos ticket for the current user.*\(Kerberos: .*No Kerberos credentials available/),
  );
});

test('an IWA host without a service principal is an unknown-service error', { skip }, async () => {
  Object.assign(process.env, await kdc.kinit('alice'));
  await assert.rejects(
    negotiateAuthorization({ url: 'https://iwa.lab.test/IWA' }),
    isKerberosError('unknown-service', /service principal HTTP\/iwa\.lab\.test is not known to the directory/),
  );
});

test('a KDC outage is kdc-unreachable for a fresh client, and recovers after restart', { skip }, async () => {
  const bob = await kdc.kinit('bob'); // a TGT only: the service ticket still needs the KDC
  const alice = await kdc.kinit('alice');
  process.env.KRB5CCNAME = alice.KRB5CCNAME;
  await accepted(await negotiateAuthorization({ url: IWA })); // alice now holds a service ticket

  await kdc.stop();
  try {
    process.env.KRB5CCNAME = bob.KRB5CCNAME;
    await assert.rejects(
      negotiateAuthorization({ url: IWA }),
      isKerberosError('kdc-unreachable', /Cannot reach a Kerberos domain controller \(KDC\) for LAB\.TEST/),
    );
    // Cached service tickets keep working during the outage.
    process.env.KRB5CCNAME = alice.KRB5CCNAME;
    assert.equal(await accepted(await negotiateAuthorization({ url: IWA })), 'alice@LAB.TEST');
  } finally {
    await kdc.start();
  }
  process.env.KRB5CCNAME = bob.KRB5CCNAME;
  assert.equal(await accepted(await negotiateAuthorization({ url: IWA })), 'bob@LAB.TEST');
});

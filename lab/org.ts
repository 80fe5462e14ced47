import { createHash, createPublicKey, randomBytes, randomUUID, timingSafeEqual, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { calculateJwkThumbprint, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { z } from 'zod';
import { createRootCa, ISSUING_CA_CN, issueCertificate, LabPki, normalizeSerial, x509 } from './ca.js';
import { acceptNegotiate, type NegotiateResult } from './negotiate.js';
import { ATTESTED_KEY_POLICY_OID, AttestationRefused, AttestationVerifier, ChallengeRequestSchema, EvidenceSchema, type Evidence } from './attestation.js';
import { PosturePolicySchema, PostureDesk, PostureReportRequest, ReportRefused } from './posture.js';

/** Answers like `acceptNegotiate`; injected by tests that run without Kerberos. */
export type Authenticator = (authorizationHeader: string | undefined) => Promise<NegotiateResult>;
export type FailoverMode = 'REDIRECT_TO_BACKUP' | 'PRIMARY_ONLY' | 'FIXED_URL';
export type Tamper = 'malformed-json' | 'other-key' | 'wrong-issuer' | 'expired' | 'no-client-auth' | 'other-device-id' | 'foreign-san' | 'long-validity' | 'sha1-signature';

export interface LabOrgOptions {
  /** Persist the PKI, issued/revoked records and deactivated users here; in memory if absent. */
  dataDir?: string;
  /** Accept the lab-only `Authorization: LabSignIn` (PROTOCOL §8). */
  allowLabSignIn?: boolean;
  validitySeconds?: number;
  renewalWindowSeconds?: number;
  failoverMode?: FailoverMode;
  orgName?: string;
  orgId?: string;
  /** Replaces Kerberos (acceptNegotiate) for tests. */
  authenticate?: Authenticator;
  /** Gets each line of the access log (requestLog) as it is written: `npm run lab` prints them. */
  log?: (line: string) => void;
  /** TPM vendor CAs (PEM) an EK certificate must chain to for key attestation (lab/attestation.ts). */
  trustedEkCaPem?: string[];
}

export interface LabSwitches {
  readOnly: boolean;
  iwaPrimaryDown: boolean;
  iwaBackupDown: boolean;
  orgDown: boolean;
  /** Added before every answer (admin answers excepted). */
  delayMs: number;
  validitySeconds: number;
  renewalWindowSeconds: number;
  /** Makes the next enroll/renew answer that would issue a certificate hostile; then resets to null. */
  tamper?: Tamper | null;
  /** The failover mode discovery announces (starts as LabOrgOptions.failoverMode). */
  failoverMode: FailoverMode;
  /** Shifts the HTTP Date header of every lab server: a server clock that is off. */
  dateSkewSeconds: number;
  /** Extra delay for one server only (added to delayMs): a single slow target. */
  targetDelayMs: Partial<Record<LabTarget, number>>;
  /** Every AD agent disconnected (agent pools say DISRUPTED). */
  adAgentsDown: boolean;
  /** What the access gateway health check reports. */
  gatewayStatus: string;
  /** Policy: only keys with a verified TPM attestation are issued certificates (docs/PROTOCOL.md §11). */
  requireAttestedKeys: boolean;
  /** Discovery publishes the TLS issuer pins (serverTls); off: an org like most, which publishes none. */
  publishServerTls: boolean;
}

export type LabTarget = 'org' | 'iwaPrimary' | 'iwaBackup' | 'mtls';

export interface ReceivedRequest {
  at: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface IssuedRecord {
  serialNumber: string;
  deviceId: string;
  notAfter: string;
  revoked: boolean;
}

export interface LabOrg {
  orgUrl: string;
  iwaPrimaryUrl: string;
  iwaBackupUrl: string;
  mtlsUrl: string;
  rootCaPem: string;
  issuingCaPem: string;
  crlUrl: string;
  /** Bearer token for POST {orgUrl}/lab/admin/*. */
  adminToken: string;
  /** The org's admin API token (`Authorization: SSWS <token>`) for GET /api/v1/agentPools. */
  apiToken: string;
  switches: LabSwitches;
  /** Every request any lab server received (raw body), oldest first. */
  received: ReceivedRequest[];
  /**
   * The server side of correlation: one access-log line per request with the agent's request ID, e.g.
   * `2026-… org POST /api/v1/device-trust/enroll 200 request_id=<trace>-<span> trace_id=<trace>`.
   */
  requestLog: string[];
  revoke(serialHex: string): void;
  /** What the mTLS endpoint would answer for this client certificate (PEM), without a handshake. */
  judgeClientCertificate(certPem: string): { trusted: boolean; reason?: string; serialNumber?: string; keyAttested?: boolean };
  /** TPM key attestation: challenges issued, trusted TPM vendor CAs (lab/attestation.ts). */
  attestation: AttestationVerifier;
  deactivateUser(principal: string): void;
  issued(): IssuedRecord[];
  /** Device assurance: signed posture reports and the policy the mTLS check applies (lab/posture.ts). */
  posture: PostureDesk;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
/** PROTOCOL §1 serverTls pins: base64 SHA-256 of a CA certificate's SubjectPublicKeyInfo. */
const spkiSha256 = (pem: string) => createHash('sha256').update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
/** Keeps a long-running `npm run lab` from growing without bound. */
const MAX_RECEIVED = 10_000;
const TOKEN_LIFETIME_S = 300;
const DAY_S = 24 * 60 * 60;
const STATE_FILE = 'org-state.json';

const MACHINE_PRINCIPAL = /^(?:host\/[^\s@/]+|[^\s@/]+\$)@[^\s@/]+$/i;
const USER_PRINCIPAL = /^[^\s@/]*[^\s@/$]@[^\s@/]+$/;

class HttpError extends Error {
  constructor(readonly status: number, readonly errorCode: string, summary: string, readonly headers: Record<string, string> = {}) {
    super(summary);
  }
}

interface Reply {
  status?: number;
  json?: unknown;
  raw?: { body: string | Uint8Array; contentType: string };
  headers?: Record<string, string>;
}

type Route = (req: IncomingMessage, body: Buffer) => Promise<Reply>;

const jwtString = z.string().max(16 * 1024).regex(/^[\w-]+\.[\w-]+\.[\w-]+$/, 'not a JWT');
const csrString = z.string().max(64 * 1024);
const thumbprint = z.string().regex(/^[\w-]{43}$/, 'not an RFC 7638 SHA-256 thumbprint');

const DeviceTokenRequest = z.object({ deviceId: z.guid(), deviceName: z.string().min(1).max(255), keyThumbprint: thumbprint });
const UserTokenRequest = z.object({ deviceToken: jwtString });
const EnrollRequest = z.object({ userToken: jwtString, csr: csrString, attestation: EvidenceSchema.optional() });
const RenewRequest = z.object({ renewalToken: jwtString, csr: csrString, attestation: EvidenceSchema.optional() });
const LabSignIn = z.object({ principal: z.string().min(1).max(500) });
const DeviceClaims = z.object({ typ: z.literal('device'), jti: z.string().min(16), sub: z.string(), principal: z.string(), deviceName: z.string(), cnf: z.object({ jkt: thumbprint }) });
const UserClaims = z.object({ typ: z.literal('user'), sub: z.string(), deviceId: z.string(), devicePrincipal: z.string(), cnf: z.object({ jkt: thumbprint }) });
const RenewalClaims = z.object({ device: z.string(), cnf: z.object({ jkt: thumbprint }) });
const TamperSchema = z.enum(['malformed-json', 'other-key', 'wrong-issuer', 'expired', 'no-client-auth', 'other-device-id', 'foreign-san', 'long-validity', 'sha1-signature']);
const SwitchesPatch = z.strictObject({
  readOnly: z.boolean(),
  iwaPrimaryDown: z.boolean(),
  iwaBackupDown: z.boolean(),
  orgDown: z.boolean(),
  delayMs: z.number().int().min(0).max(120_000),
  validitySeconds: z.number().int().positive(),
  renewalWindowSeconds: z.number().int().nonnegative(),
  tamper: TamperSchema.nullable(),
  failoverMode: z.enum(['REDIRECT_TO_BACKUP', 'PRIMARY_ONLY', 'FIXED_URL']),
  dateSkewSeconds: z.number().int().min(-10 * 365 * DAY_S).max(10 * 365 * DAY_S),
  targetDelayMs: z.strictObject({ org: z.number().int().min(0).max(120_000), iwaPrimary: z.number().int().min(0).max(120_000), iwaBackup: z.number().int().min(0).max(120_000), mtls: z.number().int().min(0).max(120_000) }).partial(),
  adAgentsDown: z.boolean(),
  gatewayStatus: z.string().min(1).max(50),
  requireAttestedKeys: z.boolean(),
  publishServerTls: z.boolean(),
}).partial();
const RevokeRequest = z.object({ serialNumber: z.string().regex(/^(?:0x)?[0-9a-fA-F]{1,64}$/, 'not a hex serial number') });
const DeactivateRequest = z.object({ principal: z.string().min(1).max(500) });
const PersistedState = z.object({
  issued: z.array(z.object({ serialNumber: z.string(), deviceId: z.string(), notAfter: z.string(), principal: z.string() })),
  revoked: z.array(z.object({ serialNumber: z.string(), revokedAt: z.string() })),
  deactivated: z.array(z.string()),
  /** deviceId → the machine principal that first enrolled it (lower case); older state files have none. */
  deviceBindings: z.record(z.string(), z.string()).default({}),
});
type PersistedState = z.infer<typeof PersistedState>;

function parseJson<T extends z.ZodType>(schema: T, body: Buffer): z.infer<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'E0000_INVALID_REQUEST', 'The request body is not JSON.');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    throw new HttpError(400, 'E0000_INVALID_REQUEST', `The request body is not valid: ${issues}.`);
  }
  return parsed.data;
}

function commonName(dn: string): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function publicKeyThumbprint(spki: ArrayBuffer): Promise<string> {
  const jwk = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).export({ format: 'jwk' });
  return calculateJwkThumbprint(jwk as JWK, 'sha256');
}

/** Parses and checks a PKCS#10 request: self-signature, and a key the agent may use (P-256 or RSA ≥ 2048). */
async function parseCsr(pem: string): Promise<x509.Pkcs10CertificateRequest> {
  const invalid = (why: string) => new HttpError(400, 'E0000_INVALID_CSR', `The certificate signing request ${why}.`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    throw invalid('is not a PEM PKCS#10 request');
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    throw invalid('has a public key that cannot be read');
  }
  const details = key.asymmetricKeyDetails;
  const usable = (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') || (key.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048);
  if (!usable) throw invalid('uses a key type the org does not accept (P-256 or RSA 2048+ only)');
  let verified = false;
  try {
    verified = await csr.verify();
  } catch {
    /* an unsupported signature algorithm is as bad as a wrong signature */
  }
  if (!verified) throw invalid('is not signed by its own key');
  return csr;
}

/** The request target's path; '' for a target `URL` cannot parse, which then matches no route. */
function pathOf(target: string | undefined): string {
  try {
    return new URL(target ?? '/', 'https://localhost').pathname;
  } catch {
    return '';
  }
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'E0000_TOO_LARGE', `The request body is larger than ${MAX_BODY_BYTES} bytes.`, { connection: 'close' });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, reply: Reply, dateSkewSeconds = 0): void {
  const status = reply.status ?? 200;
  const body = reply.raw ? reply.raw.body : JSON.stringify(reply.json ?? {});
  const contentType = reply.raw ? reply.raw.contentType : 'application/json; charset=utf-8';
  const date = new Date(Date.now() + dateSkewSeconds * 1000).toUTCString();
  res.writeHead(status, { date, 'content-type': contentType, 'cache-control': 'no-store', ...reply.headers });
  res.end(body);
}

class StateStore {
  private constructor(private readonly file: string | undefined, readonly data: PersistedState) {}

  static open(dataDir: string | undefined): StateStore {
    const empty: PersistedState = { issued: [], revoked: [], deactivated: [], deviceBindings: {} };
    if (!dataDir) return new StateStore(undefined, empty);
    const file = path.join(dataDir, STATE_FILE);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new StateStore(file, empty);
      throw e;
    }
    // A corrupt file must stop the lab: silently starting empty would forget revocations.
    return new StateStore(file, PersistedState.parse(JSON.parse(text)));
  }

  save(): void {
    if (!this.file) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.data, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}

export async function startLabOrg(opts: LabOrgOptions): Promise<LabOrg> {
  const orgId = opts.orgId ?? 'lab-org';
  const orgName = opts.orgName ?? 'Lab Org';
  const failoverMode = opts.failoverMode ?? 'REDIRECT_TO_BACKUP';
  const pki = opts.dataDir ? await LabPki.loadOrCreate(opts.dataDir) : await LabPki.create();
  const state = StateStore.open(opts.dataDir);
  const issuingCa = new X509Certificate(pki.issuingCaPem);
  const tlsCredentials = await pki.serverTlsCredentials();
  const adminToken = randomBytes(32).toString('base64url');
  // Shaped like an Okta API token (00 + 40 characters).
  const apiToken = `00${randomBytes(30).toString('base64url')}`;
  const authenticator: Authenticator = opts.authenticate ?? ((header) => acceptNegotiate(header, { service: 'HTTP@localhost' }));

  const iwaKeys = await generateKeyPair('ES256', { extractable: true });
  const iwaJwk: JWK = await exportJWK(iwaKeys.publicKey);
  const kid = await calculateJwkThumbprint(iwaJwk, 'sha256');
  const jwks = { keys: [{ ...iwaJwk, kid, alg: 'ES256', use: 'sig' }] };

  const switches: LabSwitches = {
    readOnly: false,
    iwaPrimaryDown: false,
    iwaBackupDown: false,
    orgDown: false,
    delayMs: 0,
    validitySeconds: opts.validitySeconds ?? 365 * DAY_S,
    renewalWindowSeconds: opts.renewalWindowSeconds ?? 30 * DAY_S,
    tamper: null,
    failoverMode,
    dateSkewSeconds: 0,
    targetDelayMs: {},
    adAgentsDown: false,
    gatewayStatus: 'HEALTHY',
    requireAttestedKeys: false,
    publishServerTls: true,
  };
  const attestation = new AttestationVerifier({ trustedEkCaPem: opts.trustedEkCaPem ?? [] });

  /** The request's TPM attestation, verified against the CSR's key; refusals and the attested-only policy are 403. */
  function checkAttestation(evidence: Evidence | undefined, csr: x509.Pkcs10CertificateRequest): boolean {
    if (!evidence) {
      if (switches.requireAttestedKeys) {
        throw new HttpError(403, 'E0000_ATTESTATION_REQUIRED', 'This org accepts only device keys attested by a TPM, and this request carries no TPM attestation.');
      }
      return false;
    }
    try {
      attestation.verify(evidence, Buffer.from(csr.publicKey.rawData));
      return true;
    } catch (e) {
      if (e instanceof AttestationRefused) throw new HttpError(403, e.code, `The TPM attestation was refused: ${e.message}`);
      throw e;
    }
  }
  const received: ReceivedRequest[] = [];
  const urls = { org: '', iwaPrimary: '', iwaBackup: '', mtls: '', crl: '', jwks: '', mtlsOrigin: '' };
  const iwaIssuers = () => [urls.iwaPrimary, urls.iwaBackup];

  const revokedSet = () => new Set(state.data.revoked.map((r) => r.serialNumber));
  const posture = new PostureDesk(issuingCa, (serial) => revokedSet().has(serial), normalizeSerial);
  const isDeactivated = (principal: string) => state.data.deactivated.includes(principal.toLowerCase());

  /** deviceId → machine principal: the first machine to enroll a deviceId owns it (PROTOCOL §13.4). */
  function refuseBoundDeviceId(deviceId: string, principal: string): void {
    const owner = state.data.deviceBindings[deviceId];
    if (owner !== undefined && owner !== principal.toLowerCase()) {
      throw new HttpError(403, 'E0000_DEVICE_ID_BOUND', `The device ID ${deviceId} is registered to another machine (${owner}); ${principal} cannot claim it.`);
    }
  }
  function bindDeviceId(deviceId: string, principal: string): void {
    if (state.data.deviceBindings[deviceId]) return;
    state.data.deviceBindings[deviceId] = principal.toLowerCase();
    state.save();
  }
  const spentDeviceTokens = new Map<string, number>();
  function spendDeviceToken(jti: string): void {
    const now = Date.now();
    for (const [k, until] of spentDeviceTokens) if (until < now) spentDeviceTokens.delete(k);
    if (spentDeviceTokens.has(jti)) throw new HttpError(400, 'E0000_TOKEN_REPLAYED', 'This device token was already used; a device token buys one user token.');
    spentDeviceTokens.set(jti, now + (TOKEN_LIFETIME_S + 60) * 1000);
  }

  function revoke(serialHex: string): void {
    const parsed = RevokeRequest.safeParse({ serialNumber: serialHex });
    if (!parsed.success) throw new Error(`Not a hex serial number: ${serialHex}`);
    const serialNumber = normalizeSerial(serialHex.replace(/^0x/i, ''));
    if (revokedSet().has(serialNumber)) return;
    state.data.revoked.push({ serialNumber, revokedAt: new Date().toISOString() });
    state.save();
  }

  function deactivateUser(principal: string): void {
    const p = principal.toLowerCase();
    if (state.data.deactivated.includes(p)) return;
    state.data.deactivated.push(p);
    state.save();
  }

  function issued(): IssuedRecord[] {
    const revoked = revokedSet();
    return state.data.issued.map((r) => ({ serialNumber: r.serialNumber, deviceId: r.deviceId, notAfter: r.notAfter, revoked: revoked.has(r.serialNumber) }));
  }

  // --- IWA web app (P2 primary, P4 backup; one key, so either one's tokens verify) ---

  async function authenticate(req: IncomingMessage): Promise<{ principal: string; headers: Record<string, string> }> {
    const challenge = { 'www-authenticate': 'Negotiate' };
    const header = req.headers.authorization;
    if (!header) throw new HttpError(401, 'E0000_AUTHENTICATION_REQUIRED', 'This IWA web app requires Windows integrated authentication (Negotiate).', challenge);
    if (/^LabSignIn\s/i.test(header)) {
      if (!opts.allowLabSignIn) throw new HttpError(401, 'E0000_AUTHENTICATION_FAILED', 'Lab-only sign-in is not enabled on this IWA web app.', challenge);
      let principal: string;
      try {
        principal = LabSignIn.parse(JSON.parse(Buffer.from(header.slice('LabSignIn '.length).trim(), 'base64').toString('utf8'))).principal;
      } catch {
        throw new HttpError(401, 'E0000_AUTHENTICATION_FAILED', 'The lab-only sign-in header is not base64 JSON {"principal": "..."}.', challenge);
      }
      return { principal, headers: {} };
    }
    let result: NegotiateResult;
    try {
      result = await authenticator(header);
    } catch (e) {
      throw new HttpError(500, 'E0000_NEGOTIATE_UNAVAILABLE', `The IWA web app could not check the Negotiate token: ${(e as Error).message}`);
    }
    if (!result.ok) throw new HttpError(401, 'E0000_AUTHENTICATION_FAILED', `Windows integrated authentication failed: ${result.reason}`, challenge);
    return { principal: result.principal, headers: result.mutualToken ? { 'www-authenticate': `Negotiate ${result.mutualToken}` } : {} };
  }

  function signToken(iss: string, sub: string, claims: JWTPayload): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .setIssuer(iss)
      .setAudience(orgId)
      .setSubject(sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + TOKEN_LIFETIME_S)
      .sign(iwaKeys.privateKey);
  }

  async function verifyIwaToken<T extends z.ZodType>(token: string, schema: T, what: string, status: number): Promise<z.infer<T>> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, iwaKeys.publicKey, { algorithms: ['ES256'], audience: orgId, issuer: iwaIssuers(), requiredClaims: ['iat', 'exp', 'sub'] }));
    } catch (e) {
      throw new HttpError(status, 'E0000_INVALID_TOKEN', `The ${what} is not valid: ${(e as Error).message}.`);
    }
    const claims = schema.safeParse(payload);
    if (!claims.success) throw new HttpError(status, 'E0000_INVALID_TOKEN', `The ${what} does not carry the expected claims.`);
    return claims.data;
  }

  function iwaRoutes(base: () => string): Record<string, Route> {
    return {
      'POST /IWA/device-token': async (req, body) => {
        const auth = await authenticate(req);
        if (!MACHINE_PRINCIPAL.test(auth.principal)) {
          throw new HttpError(403, 'E0000_NOT_A_DEVICE', `${auth.principal} is not a machine account (expected host/<name>@REALM or <NAME>$@REALM).`);
        }
        const input = parseJson(DeviceTokenRequest, body);
        // Refused here already, so a clone learns it before it has a key signed: the org checks again at enrollment.
        refuseBoundDeviceId(input.deviceId, auth.principal);
        const deviceToken = await signToken(base(), input.deviceId, { typ: 'device', jti: randomBytes(16).toString('base64url'), principal: auth.principal, deviceName: input.deviceName, cnf: { jkt: input.keyThumbprint } });
        return { json: { deviceToken }, headers: auth.headers };
      },
      'POST /IWA/user-token': async (req, body) => {
        const auth = await authenticate(req);
        if (!USER_PRINCIPAL.test(auth.principal)) {
          throw new HttpError(403, 'E0000_NOT_A_USER', `${auth.principal} is not a user account (expected user@REALM).`);
        }
        const input = parseJson(UserTokenRequest, body);
        // 400, not 401: the agent reads a 401 from the IWA as "your Kerberos credentials were refused".
        const device = await verifyIwaToken(input.deviceToken, DeviceClaims, 'device token', 400);
        // Single use: a device token handed out by the device side buys exactly one user token.
        spendDeviceToken(device.jti);
        const userToken = await signToken(base(), auth.principal, {
          typ: 'user',
          upn: auth.principal,
          deviceId: device.sub,
          deviceName: device.deviceName,
          devicePrincipal: device.principal,
          cnf: { jkt: device.cnf.jkt },
        });
        return { json: { userToken }, headers: auth.headers };
      },
      'GET /IWA/authenticated.aspx': async (req) => {
        const auth = await authenticate(req);
        return { raw: { body: `Authenticated as ${auth.principal}\n`, contentType: 'text/plain; charset=utf-8' }, headers: auth.headers };
      },
      'GET /IWA/jwks.json': async () => ({ json: jwks }),
    };
  }

  // --- Org (P1) ---

  function discovery() {
    return {
      orgId,
      orgName,
      lab: true,
      readOnly: switches.readOnly,
      iwa: { primary: urls.iwaPrimary, backups: [urls.iwaBackup], failoverMode: switches.failoverMode },
      mtls: { url: urls.mtls, hostPatterns: [urls.mtlsOrigin] },
      ca: { issuerCN: ISSUING_CA_CN, chainPem: pki.chainPem },
      crlUrl: urls.crl,
      certificate: { validitySeconds: switches.validitySeconds, renewalWindowSeconds: switches.renewalWindowSeconds },
      iwaJwksUrl: urls.jwks,
      // Every lab server's TLS certificate comes from the lab PKI: its CAs are the published TLS issuers.
      ...(switches.publishServerTls ? { serverTls: { issuerSpkiSha256: pki.chainPem.map((p) => spkiSha256(p)) } } : {}),
    };
  }

  function refuseWhenReadOnly(): void {
    if (switches.readOnly) {
      throw new HttpError(503, 'E0000_READ_ONLY', 'The org is in read-only mode (maintenance); enrollment is paused. Try again later.', { 'retry-after': '60' });
    }
  }

  async function csrMatching(pem: string, jkt: string): Promise<x509.Pkcs10CertificateRequest> {
    const csr = await parseCsr(pem);
    if ((await publicKeyThumbprint(csr.publicKey.rawData)) !== jkt) {
      throw new HttpError(400, 'E0000_KEY_MISMATCH', "The CSR's public key is not the key the token was issued for (cnf.jkt).");
    }
    return csr;
  }

  /** Issues (or, with a tamper switch set, forges) the enrollment/renewal answer. */
  async function issue(deviceId: string, publicKey: x509.PublicKey, principal: string, keyAttested = false): Promise<Reply> {
    const tamper = switches.tamper ?? null;
    switches.tamper = null;
    const subject: x509.JsonName = [{ CN: [deviceId] }, { OU: ['Device Trust'] }, { O: [orgName] }];
    const base = { subject, crlUrl: urls.crl, validitySeconds: switches.validitySeconds,
      ...(keyAttested ? { extraExtensions: [new x509.CertificatePolicyExtension([ATTESTED_KEY_POLICY_OID])] } : {}) };
    let cert: x509.X509Certificate;
    let chainPem = pki.chainPem;
    switch (tamper) {
      case 'malformed-json':
        return { raw: { body: '{"certificate": "-----BEGIN CERTIFICATE-----\\nMIIB', contentType: 'application/json; charset=utf-8' } };
      case 'other-key': {
        const other = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
        cert = await pki.issueClientCertificate({ ...base, publicKey: other.publicKey });
        break;
      }
      case 'wrong-issuer': {
        const rogue = await createRootCa('Rogue Certificate Authority', 30);
        cert = await issueCertificate(rogue, { ...base, publicKey });
        chainPem = [rogue.cert.toString('pem')];
        break;
      }
      case 'expired':
        cert = await pki.issueClientCertificate({ ...base, publicKey, validitySeconds: DAY_S, now: new Date(Date.now() - 2 * DAY_S * 1000) });
        break;
      case 'no-client-auth':
        cert = await pki.issueClientCertificate({ ...base, publicKey, extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth] });
        break;
      // Issued by the real CA, but for another valid device ID, with a foreign SAN, for 20 years, or signed with SHA-1.
      case 'other-device-id':
        cert = await pki.issueClientCertificate({ ...base, publicKey, subject: [{ CN: [randomUUID()] }, { OU: ['Device Trust'] }, { O: [orgName] }] });
        break;
      case 'foreign-san':
        cert = await pki.issueClientCertificate({ ...base, publicKey, extraExtensions: [...(base.extraExtensions ?? []), new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'login.other-org.example' }])] });
        break;
      case 'long-validity':
        cert = await pki.issueClientCertificate({ ...base, publicKey, validitySeconds: 20 * 365 * DAY_S });
        break;
      case 'sha1-signature':
        cert = await pki.issueClientCertificate({ ...base, publicKey, signingHash: 'SHA-1' });
        break;
      case null:
        cert = await pki.issueClientCertificate({ ...base, publicKey });
    }
    const serialNumber = normalizeSerial(cert.serialNumber);
    // Forged answers are not records of the org.
    if (!tamper) {
      state.data.issued.push({ serialNumber, deviceId, notAfter: cert.notAfter.toISOString(), principal });
      state.save();
    }
    return { json: { certificate: cert.toString('pem'), chainPem, deviceId, serialNumber, ...(keyAttested ? { keyAttested } : {}) } };
  }

  async function verifyRenewalToken(token: string): Promise<{ deviceId: string; jkt: string; serialNumber: string; keyAttested: boolean; notAfter: string }> {
    const invalid = (why: string) => new HttpError(401, 'E0000_INVALID_TOKEN', `The renewal token ${why}.`);
    let x5c: unknown;
    try {
      x5c = decodeProtectedHeader(token).x5c;
    } catch {
      throw invalid('has no readable header');
    }
    if (!Array.isArray(x5c) || typeof x5c[0] !== 'string') throw invalid('has no x5c certificate');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(x5c[0], 'base64'));
    } catch {
      throw invalid('carries an x5c certificate that cannot be parsed');
    }
    if (!cert.checkIssued(issuingCa) || !cert.verify(issuingCa.publicKey)) throw invalid(`carries a certificate not issued by ${ISSUING_CA_CN}`);
    const serialNumber = normalizeSerial(cert.serialNumber);
    if (revokedSet().has(serialNumber)) throw invalid(`carries certificate ${serialNumber}, which is revoked`);
    const now = Date.now();
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) throw invalid(`carries certificate ${serialNumber}, which is not valid now (expired)`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, cert.publicKey, { algorithms: ['ES256', 'RS256'], requiredClaims: ['iat', 'nbf', 'exp'] }));
    } catch (e) {
      throw invalid(`is not valid: ${(e as Error).message}`);
    }
    const claims = RenewalClaims.safeParse(payload);
    if (!claims.success) throw invalid('does not carry the "device" and "cnf.jkt" claims');
    const deviceId = commonName(cert.subject);
    if (claims.data.device !== deviceId) throw invalid(`names device ${claims.data.device}, but the certificate is for ${deviceId}`);
    const keyAttested = new x509.X509Certificate(cert.raw).getExtension(x509.CertificatePolicyExtension)?.policies.includes(ATTESTED_KEY_POLICY_OID) ?? false;
    return { deviceId, jkt: claims.data.cnf.jkt, serialNumber, keyAttested, notAfter: cert.validTo };
  }

  const adminRoutes: Record<string, Route> = {
    'POST /lab/admin/revoke': async (_req, body) => {
      const { serialNumber } = parseJson(RevokeRequest, body);
      revoke(serialNumber);
      return { json: { serialNumber: normalizeSerial(serialNumber.replace(/^0x/i, '')), revoked: true } };
    },
    'POST /lab/admin/switches': async (_req, body) => {
      Object.assign(switches, parseJson(SwitchesPatch, body));
      return { json: switches };
    },
    'POST /lab/admin/posture-policy': async (_req, body) => {
      posture.policy = { ...posture.policy, ...parseJson(PosturePolicySchema.partial(), body) };
      return { json: posture.policy };
    },
    'GET /lab/admin/posture-reports': async () => ({ json: posture.all().map((r) => ({ ...r, compliance: posture.judge(r.deviceId) })) }),
    'POST /lab/admin/deactivate': async (_req, body) => {
      const { principal } = parseJson(DeactivateRequest, body);
      deactivateUser(principal);
      return { json: { principal, active: false } };
    },
  };

  const orgRoutes: Record<string, Route> = {
    'GET /api/v1/device-trust/config': async () => ({ json: discovery() }),
    'POST /api/v1/attestation/challenge': async (_req, body) => {
      // Without a TPM vendor CA nothing can be verified: the org does not offer attestation (devices send none).
      if (!attestation.trustedEkCaPem.length) throw new HttpError(404, 'E0000_ATTESTATION_NOT_CONFIGURED', 'This org does not verify TPM attestation (no TPM vendor CA is configured).');
      try {
        return { json: attestation.challenge(parseJson(ChallengeRequestSchema, body)) };
      } catch (e) {
        if (e instanceof AttestationRefused) {
          throw e.code === 'E0000_ATTESTATION_TOO_MANY'
            ? new HttpError(429, e.code, `Too many attestation challenges: ${e.message}`, { 'retry-after': String(Math.ceil(attestation.challengeTtlMs / 1000)) })
            : new HttpError(403, e.code, `The TPM attestation was refused: ${e.message}`);
        }
        throw e;
      }
    },
    'POST /api/v1/device-trust/enroll': async (_req, body) => {
      refuseWhenReadOnly();
      const input = parseJson(EnrollRequest, body);
      const user = await verifyIwaToken(input.userToken, UserClaims, 'user token', 401);
      if (isDeactivated(user.sub)) throw new HttpError(403, 'E0000_USER_NOT_ACTIVE', `The user ${user.sub} is not active in this org (deactivated or suspended).`);
      refuseBoundDeviceId(user.deviceId, user.devicePrincipal);
      const csr = await csrMatching(input.csr, user.cnf.jkt);
      const reply = await issue(user.deviceId, csr.publicKey, user.sub, checkAttestation(input.attestation, csr));
      bindDeviceId(user.deviceId, user.devicePrincipal);
      return reply;
    },
    'POST /api/v1/device-trust/renew': async (_req, body) => {
      refuseWhenReadOnly();
      const input = parseJson(RenewRequest, body);
      const current = await verifyRenewalToken(input.renewalToken);
      const csr = await csrMatching(input.csr, current.jkt);
      const principal = state.data.issued.find((r) => r.serialNumber === current.serialNumber)?.principal ?? '';
      if (!current.keyAttested) return issue(current.deviceId, csr.publicKey, principal, checkAttestation(input.attestation, csr));
      // An attested certificate is renewed only onto an attested key, only inside its renewal window, and the new one supersedes it.
      const windowOpens = Date.parse(current.notAfter) - switches.renewalWindowSeconds * 1000;
      if (Date.now() < windowOpens) {
        throw new HttpError(403, 'E0000_OUTSIDE_RENEWAL_WINDOW', `Certificate ${current.serialNumber} is attested; it can be renewed only inside its renewal window, which opens at ${new Date(windowOpens).toISOString()}.`);
      }
      if (!input.attestation) {
        throw new HttpError(403, 'E0000_ATTESTED_RENEWAL_REQUIRED', `Certificate ${current.serialNumber} was issued to a TPM-attested key; its renewal must carry a TPM attestation of the new key (a software key is refused).`);
      }
      const forged = Boolean(switches.tamper);
      const reply = await issue(current.deviceId, csr.publicKey, principal, checkAttestation(input.attestation, csr));
      if (!forged) revoke(current.serialNumber);
      return reply;
    },
    'POST /api/v1/device-trust/posture': async (_req, body) => {
      const { report } = parseJson(PostureReportRequest, body);
      try {
        const stored = await posture.accept(report);
        return { json: { accepted: true, receivedAt: stored.receivedAt, compliance: posture.judge(stored.deviceId) } };
      } catch (e) {
        if (e instanceof ReportRefused) throw new HttpError(401, 'E0000_INVALID_POSTURE_REPORT', `The posture report ${e.message}.`);
        throw e;
      }
    },
    'GET /api/v1/device-trust/crl': async () => {
      const entries = state.data.revoked.map((r) => ({ serialNumber: r.serialNumber, revokedAt: new Date(r.revokedAt) }));
      return { raw: { body: new Uint8Array(await pki.createCrl(entries)), contentType: 'application/pkix-crl' } };
    },
    'GET /api/v1/agentPools': async (req) => {
      checkApiToken(req);
      return { json: agentPools() };
    },
    'GET /api/v1/gateway/health': async () => ({ json: { status: switches.gatewayStatus, lastChecked: new Date().toISOString() } }),
    ...adminRoutes,
  };

  function agentPools() {
    const recently = Date.now() - 45_000;
    const agent = (id: string, name: string, type: string, poolId: string, up: boolean) => ({
      id,
      name,
      type,
      poolId,
      operationalStatus: up ? 'OPERATIONAL' : 'DISRUPTED',
      lastConnection: up ? recently : recently - 3 * 60 * 60 * 1000,
      version: type === 'AD' ? '3.19.0' : '1.13.2',
      updateStatus: 'Success',
      updateMessage: null,
      isHidden: false,
      isLatestGAedVersion: true,
    });
    const iwaAgents = [agent('a53lab0iwa1', 'IWA-PRIMARY', 'IWA', '0oalabiwapool', !switches.iwaPrimaryDown), agent('a53lab0iwa2', 'IWA-BACKUP', 'IWA', '0oalabiwapool', !switches.iwaBackupDown)];
    const up = iwaAgents.filter((a) => a.operationalStatus === 'OPERATIONAL').length;
    return [
      { id: '0oalabadpool', name: 'LAB.TEST', type: 'AD', operationalStatus: switches.adAgentsDown ? 'DISRUPTED' : 'OPERATIONAL', disruptedAgents: switches.adAgentsDown ? 1 : 0, inactiveAgents: 0, agents: [agent('a53lab0dc01', 'DC01', 'AD', '0oalabadpool', !switches.adAgentsDown)] },
      {
        id: '0oalabiwapool',
        name: 'IWA',
        type: 'IWA',
        operationalStatus: up === iwaAgents.length ? 'OPERATIONAL' : up > 0 ? 'DEGRADED' : 'DISRUPTED',
        disruptedAgents: iwaAgents.length - up,
        inactiveAgents: 0,
        agents: iwaAgents,
      },
    ];
  }

  // --- mTLS endpoint (P3): the lab's own fixture, so it judges the client certificate itself ---

  /** The mTLS endpoint's verdict on a client certificate (also asked directly by tests whose key lives in a token). */
  const judgeClientCertificate = (peer: X509Certificate | undefined) => {
    if (!peer) return { trusted: false, reason: 'no-certificate' };
    if (!peer.checkIssued(issuingCa) || !peer.verify(issuingCa.publicKey)) return { trusted: false, reason: 'untrusted-issuer' };
    // A certificate of the CA that is not for client authentication (a server certificate, say) proves no device.
    if (!(peer.keyUsage ?? []).includes('1.3.6.1.5.5.7.3.2')) return { trusted: false, reason: 'not-client-auth' };
    const now = Date.now();
    // PROTOCOL §7 has no "not yet valid" reason; outside the validity period is "expired".
    if (now < Date.parse(peer.validFrom) || now > Date.parse(peer.validTo)) return { trusted: false, reason: 'expired' };
    const serialNumber = normalizeSerial(peer.serialNumber);
    if (revokedSet().has(serialNumber)) return { trusted: false, reason: 'revoked' };
    const keyAttested = new x509.X509Certificate(peer.raw).getExtension(x509.CertificatePolicyExtension)?.policies.includes(ATTESTED_KEY_POLICY_OID) ?? false;
    return posture.mtlsAnswer({ trusted: true, deviceId: commonName(peer.subject), serialNumber, subject: peer.subject.split('\n').join(', '), ...(keyAttested ? { keyAttested } : {}) });
  };
  const mtlsRoutes: Record<string, Route> = {
    'GET /mtls/check': async (req) => ({ json: judgeClientCertificate((req.socket as TLSSocket).getPeerX509Certificate()) }),
  };

  // --- servers ---

  const servers: https.Server[] = [];
  const requestLog: string[] = [];

  async function serve(target: LabTarget, routes: Record<string, Route>, isDown: () => boolean, extra: https.ServerOptions = {}): Promise<string> {
    let origin = '';
    const server = https.createServer({ ...tlsCredentials, ...extra }, (req, res) => {
      res.on('error', () => undefined);
      res.on('close', () => logRequest(target, req, res.headersSent ? res.statusCode : 0));
      void (async () => {
        const pathname = pathOf(req.url);
        const admin = pathname.startsWith('/lab/admin/');
        if (isDown() && !admin) {
          req.socket.destroy();
          return;
        }
        try {
          const body = await readBody(req);
          received.push({ at: new Date().toISOString(), method: req.method ?? '', url: `${origin}${req.url ?? ''}`, headers: headersOf(req), body: body.toString('utf8') });
          if (received.length > MAX_RECEIVED) received.splice(0, received.length - MAX_RECEIVED);
          if (admin) checkAdmin(req);
          else if (switches.delayMs + (switches.targetDelayMs[target] ?? 0) > 0) await sleep(switches.delayMs + (switches.targetDelayMs[target] ?? 0));
          const route = routes[`${req.method} ${pathname}`];
          if (!route) {
            const known = Object.keys(routes).some((k) => k.endsWith(` ${pathname}`));
            throw known ? new HttpError(405, 'E0000_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${pathname}.`) : new HttpError(404, 'E0000_NOT_FOUND', `Nothing is served at ${pathname}.`);
          }
          send(res, await route(req, body), switches.dateSkewSeconds);
        } catch (e) {
          const err = e instanceof HttpError ? e : new HttpError(500, 'E0000_INTERNAL', `The lab server failed: ${(e as Error).message}`);
          if (!res.headersSent && !res.destroyed) send(res, { status: err.status, json: { errorCode: err.errorCode, errorSummary: err.message }, headers: err.headers }, switches.dateSkewSeconds);
          else res.destroy();
        }
      })();
    });
    // A client that hangs up mid-answer (a browser waiting for a certificate choice, a killed agent) is not an error here.
    server.on('secureConnection', (socket) => socket.on('error', () => undefined));
    server.on('clientError', (_e, socket) => socket.destroy());
    server.on('tlsClientError', () => undefined);
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    origin = `https://localhost:${(server.address() as AddressInfo).port}`;
    return origin;
  }

  function logRequest(target: LabTarget, req: IncomingMessage, status: number): void {
    const rid = String(req.headers['x-request-id'] ?? '-').replace(/[^\w.:-]/g, '').slice(0, 128) || '-';
    const trace = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(String(req.headers.traceparent ?? ''))?.[1] ?? '-';
    const line = `${new Date().toISOString()} ${target} ${req.method ?? '-'} ${pathOf(req.url)} ${status || '-'} request_id=${rid} trace_id=${trace}`;
    requestLog.push(line);
    if (requestLog.length > MAX_RECEIVED) requestLog.splice(0, requestLog.length - MAX_RECEIVED);
    opts.log?.(line);
  }

  /** Okta's API authenticates admin API tokens as `Authorization: SSWS <token>` and answers E0000011 otherwise. */
  function checkApiToken(req: IncomingMessage): void {
    const given = Buffer.from(/^SSWS\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');
    const expected = Buffer.from(apiToken);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new HttpError(401, 'E0000011', 'Invalid token provided');
  }

  function checkAdmin(req: IncomingMessage): void {
    const given = Buffer.from(/^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');
    const expected = Buffer.from(adminToken);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new HttpError(401, 'E0000_ADMIN_UNAUTHORIZED', 'Lab admin endpoints need "Authorization: Bearer <adminToken>".', { 'www-authenticate': 'Bearer' });
    }
  }

  async function close(): Promise<void> {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }

  try {
    urls.org = await serve('org', orgRoutes, () => switches.orgDown);
    urls.iwaPrimary = `${await serve('iwaPrimary', iwaRoutes(() => urls.iwaPrimary), () => switches.iwaPrimaryDown)}/IWA`;
    urls.mtlsOrigin = await serve('mtls', mtlsRoutes, () => false, { requestCert: true, rejectUnauthorized: false, ca: pki.chainPem });
    urls.iwaBackup = `${await serve('iwaBackup', iwaRoutes(() => urls.iwaBackup), () => switches.iwaBackupDown)}/IWA`;
  } catch (e) {
    await close();
    throw e;
  }
  urls.mtls = `${urls.mtlsOrigin}/mtls/check`;
  urls.crl = `${urls.org}/api/v1/device-trust/crl`;
  urls.jwks = `${urls.iwaPrimary}/jwks.json`;

  return {
    orgUrl: urls.org,
    iwaPrimaryUrl: urls.iwaPrimary,
    iwaBackupUrl: urls.iwaBackup,
    mtlsUrl: urls.mtls,
    rootCaPem: pki.rootCaPem,
    issuingCaPem: pki.issuingCaPem,
    crlUrl: urls.crl,
    adminToken,
    apiToken,
    switches,
    received,
    requestLog,
    revoke,
    judgeClientCertificate: (certPem: string) => judgeClientCertificate(new X509Certificate(certPem)) as { trusted: boolean; reason?: string; serialNumber?: string; keyAttested?: boolean },
    attestation,
    deactivateUser,
    issued,
    posture,
    close,
  };
}

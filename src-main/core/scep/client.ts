/**
 * A SCEP client (RFC 8894): GetCACert (pinned), GetCACaps, PKIOperation with PKCSReq / RenewalReq / CertPoll.
 * All traffic goes through the agent's HttpClient, so trust, proxies, timeouts and size limits are the same as
 * for every other request.
 */
import crypto, { X509Certificate } from 'node:crypto';
import { AgentError, isAgentError } from '../../base/errors.js';
import type { HttpClient, HttpResponse } from '../net/http.js';
import { createCsr, storeCrypto, webCryptoKeyPair, type LocalKey } from '../keys/keys.js';
import type { Trace } from '../../base/trace.js';
import { pinCaBundle, parseGetCaCert, type CaBundle } from './ca.js';
import { chooseAlgorithms, parseCapabilities, type Algorithms, type Capabilities } from './capabilities.js';
import { buildRequestWith, issuerAndSubject, parseCertRepWith, transactionIdFor, type CertRep, type RequestType } from './message.js';
import { CmsError, unwrapWithKey, type KeyUnwrapper } from './cms.js';
import { withServerTime } from '../time/server-time.js';

export interface ScepClientOptions {
  http: HttpClient;
  /** The SCEP endpoint; `operation=` is added to it. */
  url: string;
  /** SHA-256 of the CA certificate, 64 lowercase hex digits. */
  caFingerprint: string;
  allowWeak: boolean;
  trace: Trace;
  /** How long to keep polling a PENDING request in this run. */
  pendingWaitMs: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ScepSession {
  ca: CaBundle;
  caps: Capabilities;
}

export interface ScepIssued {
  certificatePem: string;
  chainPem: string[];
  transactionId: string;
}

export interface EnrollRequest {
  key: LocalKey;
  /** Subject DN of the request, e.g. CN=<device id>. */
  subject: string;
  challenge?: string | undefined;
}

export interface RenewRequest extends EnrollRequest {
  currentCertPem: string;
  currentKey: LocalKey;
}

const PKI_MESSAGE = 'application/x-pki-message';

/** A request the CA has put on hold; the agent keeps the key and polls again in a later run. */
export class PendingError extends AgentError {
  constructor(readonly transactionId: string, host: string, waitedMs: number) {
    super('retry-later', 'CA_PENDING',
      `The SCEP CA at ${host} has put this device's request on hold for approval (PENDING, transaction ${transactionId.slice(0, 16)}…); it was polled for ${Math.round(waitedMs / 1000)} s. The agent keeps the request's key and asks again on its next run.`,
      'Ask the CA administrator to approve the pending request; nothing else is needed on this device.');
  }
}

export class ScepClient {
  private session: ScepSession | undefined;
  private algorithms: Algorithms | undefined;
  private readonly host: string;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Every SCEP request made, for diagnostics and tests ("operation METHOD"). */
  readonly sent: string[] = [];

  constructor(private readonly opts: ScepClientOptions) {
    this.host = new URL(opts.url).host;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private operationUrl(operation: string, message?: Buffer): string {
    const u = new URL(this.opts.url);
    u.searchParams.set('operation', operation);
    if (message) u.searchParams.set('message', message.toString('base64'));
    return u.toString();
  }

  private async get(operation: string): Promise<HttpResponse> {
    this.sent.push(`${operation} GET`);
    return this.opts.http.send({ url: this.operationUrl(operation), headers: { accept: '*/*' }, what: 'the SCEP CA' });
  }

  private httpFailure(res: HttpResponse, operation: string): AgentError {
    const said = res.body.toString('utf8').replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 200);
    const detail = `HTTP ${res.status}${said ? `: "${said}"` : ''}`;
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      return withServerTime(new AgentError('retry-later', 'SCEP_CA_UNAVAILABLE', `The SCEP CA at ${this.host} could not answer ${operation} (${detail}).`,
        'The agent tries again later; if it persists, ask the CA administrator to check the SCEP service.'), res.status, res.headers);
    }
    if (res.status === 404) {
      return new AgentError('config', 'SCEP_NOT_FOUND', `${this.opts.url} does not answer SCEP ${operation} (${detail}).`,
        'Check scepUrl: it is the SCEP endpoint itself (often …/scep or …/cgi-bin/pkiclient.exe), without ?operation=.');
    }
    return new AgentError('rejected', 'SCEP_HTTP_REFUSED', `The SCEP CA at ${this.host} refused ${operation} (${detail}).`,
      'Give the --debug output to the CA administrator.');
  }

  /** GetCACert: every certificate the CA presents, not yet trusted (diagnostics show them; enrollment pins them). */
  async fetchCaCertificates(): Promise<X509Certificate[]> {
    const res = await this.get('GetCACert');
    if (res.status !== 200) throw this.httpFailure(res, 'GetCACert');
    const contentType = String(res.headers['content-type'] ?? '');
    try {
      return parseGetCaCert(res.body, contentType);
    } catch (e) {
      throw refused(`GetCACert: ${(e as Error).message}`, e);
    }
  }

  /** GetCACert, then the pin. Nothing else is sent before the CA certificate matches the configured fingerprint. */
  async getCaCert(): Promise<CaBundle> {
    return pinCaBundle(await this.fetchCaCertificates(), this.opts.caFingerprint, this.host);
  }

  async getCaCaps(): Promise<Capabilities> {
    const res = await this.get('GetCACaps');
    // A CA without GetCACaps is an old one: it supports nothing beyond RFC 8894's weak defaults.
    if (res.status === 404 || res.status === 400) return parseCapabilities('');
    if (res.status !== 200) throw this.httpFailure(res, 'GetCACaps');
    return parseCapabilities(res.body.toString('utf8'));
  }

  async connect(): Promise<ScepSession> {
    if (this.session) return this.session;
    const { trace } = this.opts;
    // The request needs @peculiar/x509 (selfSigned, createCsr): a client used on its own loads it while the CA answers
    // (the enrollment pass has loaded it already when it will make a request).
    import('../certificates/x509.js').catch(() => undefined);
    const ca = await trace.step('Get the CA certificate (GetCACert) and check it against the pinned fingerprint', () => this.getCaCert(),
      (b) => `pinned ${b.pinned.subject.split('\n').join(', ') || '(no subject)'}${b.ra.length ? `, ${b.ra.length} RA certificate(s)` : ''}${b.ignored.length ? `, ${b.ignored.length} unchained certificate(s) ignored` : ''}`);
    const caps = await trace.step('Ask the CA what it supports (GetCACaps)', () => this.getCaCaps(), (c) => c.raw.join(', ') || '(nothing advertised)');
    this.session = { ca, caps };
    return this.session;
  }

  /**
   * The algorithms a request will use; chosen only when a request is about to be sent, so a run with nothing to
   * request still succeeds against a CA whose algorithms would be refused.
   */
  private algorithmsFor(session: ScepSession): Algorithms {
    if (!this.algorithms) {
      const a = chooseAlgorithms(session.caps, this.opts.allowWeak);
      this.opts.trace.log(`SCEP algorithms: ${a.digest.toUpperCase()}, ${a.cipher.toUpperCase()}, ${session.caps.postPkiOperation ? 'POST' : 'GET'}${a.weak.length ? `; WEAK (allowed by scepAllowWeak): ${a.weak.join(', ')}` : ''}`);
      this.algorithms = a;
    }
    return this.algorithms;
  }

  private async pkiOperation(message: Buffer, session: ScepSession, type: RequestType): Promise<Buffer> {
    let res: HttpResponse;
    if (session.caps.postPkiOperation) {
      this.sent.push('PKIOperation POST');
      res = await this.opts.http.send({ url: this.operationUrl('PKIOperation'), method: 'POST', body: message, headers: { 'content-type': PKI_MESSAGE, accept: PKI_MESSAGE }, what: 'the SCEP CA' });
    } else {
      this.sent.push('PKIOperation GET');
      res = await this.opts.http.send({ url: this.operationUrl('PKIOperation', message), headers: { accept: PKI_MESSAGE }, what: 'the SCEP CA' });
    }
    if (res.status !== 200) throw this.httpFailure(res, `PKIOperation (${type})`);
    return res.body;
  }

  private async selfSigned(key: LocalKey, subject: string): Promise<X509Certificate> {
    const { keys, signingAlgorithm } = await webCryptoKeyPair(key);
    const now = Date.now();
    // Not loaded at start-up (connect() or the pass has started loading it).
    const { x509 } = await import('../certificates/x509.js');
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
      name: subject,
      notBefore: new Date(now - 5 * 60_000),
      notAfter: new Date(now + 24 * 3600_000),
      keys: keys as never,
      signingAlgorithm,
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true)],
    }, storeCrypto);
    return new X509Certificate(Buffer.from(cert.rawData));
  }

  /** One request/answer exchange; the answer must be signed by the pinned CA/RA and echo our nonce. */
  private async exchange(session: ScepSession, type: RequestType, content: Buffer, signerCert: X509Certificate, signerKey: LocalKey, transactionId: string): Promise<CertRep> {
    const { digest, cipher } = this.algorithmsFor(session);
    const senderNonce = crypto.randomBytes(16);
    // Signed and decrypted wherever the key lives: in the key store, the private key never reaches this process.
    const message = await buildRequestWith({ type, content, transactionId, senderNonce, recipient: session.ca.recipient, signerCert, digest, cipher }, (data, hash) => signerKey.sign(data, hash));
    const body = await this.pkiOperation(message, session, type);
    try {
      return await parseCertRepWith(body, { signers: session.ca.signers, transactionId, senderNonce, recipientCert: signerCert }, unwrapperOf(signerKey));
    } catch (e) {
      throw refused(e instanceof CmsError ? e.message : `unreadable (${(e as Error).message})`, e);
    }
  }

  private async settle(session: ScepSession, type: 'PKCSReq' | 'RenewalReq', first: CertRep, req: EnrollRequest, pollSigner: () => Promise<X509Certificate>, transactionId: string): Promise<ScepIssued> {
    let rep = first;
    const started = Date.now();
    if (rep.status === 'PENDING') {
      const signer = await pollSigner();
      const interval = Math.min(10_000, Math.max(200, this.opts.pendingWaitMs / 5));
      const poll = issuerAndSubject(session.ca.issuingCa, signer);
      while (rep.status === 'PENDING' && Date.now() - started + interval <= this.opts.pendingWaitMs) {
        await this.sleep(interval);
        rep = await this.opts.trace.step('The CA answered PENDING: poll it (CertPoll)', () => this.exchange(session, 'CertPoll', poll, signer, req.key, transactionId),
          (r) => r.status);
      }
      if (rep.status === 'PENDING') throw new PendingError(transactionId, this.host, Date.now() - started);
    }
    return this.outcome(rep, type, req.key, session, transactionId);
  }

  private outcome(rep: CertRep, type: RequestType, key: LocalKey, session: ScepSession, transactionId: string): ScepIssued {
    if (rep.status === 'FAILURE') {
      const said = rep.failInfoText ? `; the CA says: "${rep.failInfoText.slice(0, 300)}"` : '';
      const remedy = rep.failInfo === '3'
        ? "Correct this device's clock (and time zone), then run again."
        : rep.failInfo === '2'
          ? "Check scepChallenge with the CA administrator (challenges are often single-use or expire) and whether the CA's policy allows this device. The agent does not resend the same request for a while, so it does not flood the CA; after fixing the cause run: device-trust-agent run --forceRenewal"
          : 'Give the --debug output to the CA administrator.';
      throw new AgentError('rejected', 'SCEP_REJECTED',
        `The SCEP CA at ${this.host} rejected the ${type} request: ${rep.failInfoWords} (failInfo ${rep.failInfoName}${said}). Nothing was installed; the previous certificate (if any) is unchanged.`,
        remedy);
    }
    if (rep.status !== 'SUCCESS') throw refused(`unexpected status ${rep.status}`);
    // The answer's encryption only hides a public certificate, and the certificate is checked against the pinned
    // CA before use, so a CA that answers with (3)DES is reported, not refused.
    if (rep.weakCipher) this.opts.trace.log(`note: the CA encrypted its answer with ${rep.cipher.toUpperCase()} (weak; it protects only the public certificate)`);
    const mine = rep.certificates.find((c) => c.publicKey.equals(key.publicKey));
    if (!mine) throw refused('it holds no certificate for the key this device generated');
    return { certificatePem: mine.toString(), chainPem: session.ca.chain.map((c) => c.toString()), transactionId };
  }

  /** PKCSReq: the CSR (with the challenge) signed by a throw-away self-signed certificate of the new key. */
  async enroll(req: EnrollRequest): Promise<ScepIssued> {
    const transactionId = transactionIdFor(req.key.publicKey);
    // The request is signed while GetCACert/GetCACaps are on the wire; nothing is sent before the pin holds.
    const [session, csrDer, signer] = await Promise.all([this.connect(), csrDerOf(req), this.selfSigned(req.key, req.subject)]);
    const rep = await this.opts.trace.step(`Send the enrollment request (PKCSReq, ${session.caps.postPkiOperation ? 'POST' : 'GET'})`,
      () => this.exchange(session, 'PKCSReq', csrDer, signer, req.key, transactionId), (r) => r.status);
    return this.settle(session, 'PKCSReq', rep, req, async () => signer, transactionId);
  }

  /** RenewalReq, signed with the current certificate and key (the CA sees who is renewing). */
  async renew(req: RenewRequest): Promise<ScepIssued> {
    const [session, csrDer] = await Promise.all([this.connect(), csrDerOf(req)]);
    if (!session.caps.renewal) return this.enroll(req);
    const transactionId = transactionIdFor(req.key.publicKey);
    const current = new X509Certificate(req.currentCertPem);
    const rep = await this.opts.trace.step(`Send the renewal request signed with the current certificate (RenewalReq, ${session.caps.postPkiOperation ? 'POST' : 'GET'})`,
      () => this.exchange(session, 'RenewalReq', csrDer, current, req.currentKey, transactionId), (r) => r.status);
    if (rep.status === 'PENDING') {
      return this.settle(session, 'RenewalReq', rep, req, () => this.selfSigned(req.key, req.subject), transactionId);
    }
    return this.outcome(rep, 'RenewalReq', req.key, session, transactionId);
  }

  /** CertPoll for a request left PENDING by an earlier run (same key, so the same transaction ID). */
  async resume(req: EnrollRequest): Promise<ScepIssued> {
    const session = await this.connect();
    const transactionId = transactionIdFor(req.key.publicKey);
    const signer = await this.selfSigned(req.key, req.subject);
    const poll = issuerAndSubject(session.ca.issuingCa, signer);
    const rep = await this.opts.trace.step('Ask the CA about the request left pending by an earlier run (CertPoll)',
      () => this.exchange(session, 'CertPoll', poll, signer, req.key, transactionId), (r) => r.status);
    return this.settle(session, 'PKCSReq', rep, req, async () => signer, transactionId);
  }
}

/** How the CA's content key is unwrapped: by Node for a software key (any transport), by the key store otherwise (PKCS#1 v1.5). */
function unwrapperOf(key: LocalKey): KeyUnwrapper {
  const priv = key.privateKey;
  if (priv) return async (encryptedKey, oaep) => unwrapWithKey(priv, encryptedKey, oaep);
  const decrypt = key.decrypt;
  return async (encryptedKey, oaep) => {
    if (!decrypt) throw new Error('the key store cannot decrypt with the device key');
    if (oaep) throw new Error('the CA used RSA-OAEP key transport, which the key store is not asked for');
    return decrypt(encryptedKey);
  };
}

async function csrDerOf(req: EnrollRequest): Promise<Buffer> {
  const pem = await createCsr(req.key, req.subject, { challengePassword: req.challenge });
  return Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64');
}

function refused(why: string, cause?: unknown): AgentError {
  if (isAgentError(cause)) return cause;
  return new AgentError('bad-answer', 'SCEP_ANSWER_REFUSED', `The SCEP CA's answer was refused: ${why}. Nothing was installed; the previous certificate (if any) is unchanged.`,
    'If it repeats, give the --debug output to the CA administrator; check that nothing between this device and the CA rewrites its answers.', cause !== undefined ? { cause } : undefined);
}

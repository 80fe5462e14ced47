/**
 * A minimal SCEP responder for what Debian's scepserver cannot do: answer PENDING and then issue on a later
 * CertPoll (micromdm signs or fails at once). It is a test double built from the agent's own CMS helpers, so it
 * proves the polling logic, not interoperability; interoperability is proven against scepserver itself
 * (scep.test.ts). It verifies each request's signature, decrypts it and checks the challenge like a real CA.
 */
import crypto, { X509Certificate } from 'node:crypto';
import http from 'node:http';
import { CertificateChoices, CertificateSet, ContentInfo, EncapsulatedContentInfo, SignedData, CMSVersion, id_data, id_signedData } from '@peculiar/asn1-cms';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { attrValue, attribute, envelope, openEnvelope, parseSignedData, readAttribute, signData, verifySignedData } from '../../src-main/core/scep/cms.js';
import { IssuerAndSubject, SCEP_OID } from '../../src-main/core/scep/message.js';
import { x509 } from '../../src-main/core/certificates/x509.js';
import { listenOnLoopback } from './net.js';

export interface PendingResponder {
  url: string;
  caPem: string;
  caFingerprint: string;
  /** "messageType status" for each PKIOperation, e.g. "19 PENDING", "20 SUCCESS". */
  log: string[];
  /** Issue every request from now on (and on the next poll of a pending one). */
  approve(): void;
  close(): Promise<void>;
}

function certsOnly(certs: X509Certificate[]): Buffer {
  const sd = new SignedData({
    version: CMSVersion.v1,
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data }),
    certificates: new CertificateSet(certs.map((c) => new CertificateChoices({ certificate: AsnConvert.parse(c.raw, Certificate) }))),
  });
  return Buffer.from(AsnConvert.serialize(new ContentInfo({ contentType: id_signedData, content: AsnConvert.serialize(sd) })));
}

export async function startPendingResponder(opts: { challenge: string; approveAfterPolls?: number }): Promise<PendingResponder> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = await crypto.webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as crypto.webcrypto.CryptoKeyPair;
  const caX509 = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=Pending Test CA, O=Device Trust Tests', notBefore: new Date(Date.now() - 3600_000), notAfter: new Date(Date.now() + 86400_000),
    keys: keys as never, signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const ca = new X509Certificate(Buffer.from(caX509.rawData));
  const caKey = crypto.KeyObject.from(keys.privateKey);
  const requests = new Map<string, x509.Pkcs10CertificateRequest>();
  const log: string[] = [];
  let polls = 0;
  let approved = false;

  async function issue(csr: x509.Pkcs10CertificateRequest): Promise<X509Certificate> {
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '4'),
      subject: csr.subject, issuer: caX509.subject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 30 * 86400_000),
      publicKey: await csr.publicKey.export(alg, ['verify']), signingKey: keys.privateKey, signingAlgorithm: alg,
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    });
    return new X509Certificate(Buffer.from(cert.rawData));
  }

  async function pkiOperation(body: Buffer): Promise<Buffer> {
    const parsed = parseSignedData(body, 'the request');
    const signer = parsed.certificates[0]!;
    const { attributes } = verifySignedData(parsed, [signer], 'the request');
    const type = readAttribute(attributes, SCEP_OID.messageType)!.text!;
    const tid = readAttribute(attributes, SCEP_OID.transactionID)!.text!;
    const nonce = readAttribute(attributes, SCEP_OID.senderNonce)!.bytes!;
    const inner = openEnvelope(parsed.content!, ca, caKey, 'the request envelope').content;
    let status: '0' | '2' | '3' = '3';
    let content: Buffer = Buffer.alloc(0);
    if (type === '19') {
      const csr = new x509.Pkcs10CertificateRequest(inner);
      const challenge = csr.getAttribute('1.2.840.113549.1.9.7') as x509.ChallengePasswordAttribute | null;
      if (challenge?.password !== opts.challenge) status = '2';
      else requests.set(tid, csr);
    } else if (type === '20') {
      const ias = AsnConvert.parse(inner, IssuerAndSubject);
      const issuerOk = Buffer.from(AsnConvert.serialize(ias.issuer)).equals(Buffer.from(AsnConvert.serialize(AsnConvert.parse(ca.raw, Certificate).tbsCertificate.subject)));
      polls++;
      if (!issuerOk || !requests.has(tid)) status = '2';
      else if (approved || (opts.approveAfterPolls !== undefined && polls >= opts.approveAfterPolls)) {
        status = '0';
        const cert = await issue(requests.get(tid)!);
        content = envelope(certsOnly([cert]), signer, 'aes-128-cbc');
      }
    } else {
      status = '2';
    }
    log.push(`${type} ${status === '0' ? 'SUCCESS' : status === '2' ? 'FAILURE' : 'PENDING'}`);
    return signData({
      content, signerCert: ca, signerKey: caKey, digest: 'sha256',
      attributes: [
        attribute(SCEP_OID.messageType, attrValue.printable('3')),
        attribute(SCEP_OID.transactionID, attrValue.printable(tid)),
        attribute(SCEP_OID.pkiStatus, attrValue.printable(status)),
        attribute(SCEP_OID.recipientNonce, attrValue.octets(nonce)),
        attribute(SCEP_OID.senderNonce, attrValue.octets(crypto.randomBytes(16))),
        ...(status === '2' ? [attribute(SCEP_OID.failInfo, attrValue.printable('2'))] : []),
      ],
    });
  }

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const op = u.searchParams.get('operation');
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (op === 'GetCACert') {
        res.writeHead(200, { 'content-type': 'application/x-x509-ca-cert' });
        res.end(ca.raw);
      } else if (op === 'GetCACaps') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('POSTPKIOperation\nSHA-256\nAES\nRenewal\n');
      } else if (op === 'PKIOperation') {
        pkiOperation(Buffer.concat(chunks)).then((b) => {
          res.writeHead(200, { 'content-type': 'application/x-pki-message' });
          res.end(b);
        }, (e: Error) => {
          res.writeHead(500);
          res.end(e.message);
        });
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/scep`,
    caPem: ca.toString(),
    caFingerprint: ca.fingerprint256.replace(/:/g, '').toLowerCase(),
    log,
    approve: () => { approved = true; },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

import type { HttpClient, TokenClientCertificate } from './http.js';
import { MtlsCheckAnswerSchema, type MtlsCheckAnswer } from '../enrollment/protocol.js';
import { strippedCertificateFinding } from '../proxy/diagnose.js';
import type { AgentError } from '../../base/errors.js';
import type { TokenTlsPresenter } from '../../platform/keystore.js';

/** How the device key is presented: Node's TLS with a key file, or the platform's TLS client for a key in a token. */
export type MtlsCredential = { certPem: string; serialNumber: string } & ({ keyPem: string } | { presenter: TokenTlsPresenter; chainPem?: string[] });

/** Presents the device certificate to the org's mTLS endpoint and returns its verdict. */
export async function checkMtls(http: HttpClient, url: string, cred: MtlsCredential): Promise<MtlsCheckAnswer> {
  const present: { certPem: string; keyPem: string } | TokenClientCertificate = 'keyPem' in cred
    ? { certPem: cred.certPem, keyPem: cred.keyPem }
    : { certPem: cred.certPem, presenter: cred.presenter, ...(cred.chainPem ? { chainPem: cred.chainPem } : {}) };
  const { data } = await http.json(MtlsCheckAnswerSchema, { url, what: 'the mTLS endpoint' }, present);
  return data;
}

export interface MtlsVerdict {
  answer: MtlsCheckAnswer;
  /** Set when the endpoint saw no client certificate although one was presented: TLS interception. */
  intercepted?: AgentError;
}

/**
 * The mTLS check as every command reads it (run, status --check, proxy-check, diagnose): the endpoint's
 * verdict, and — when it saw no certificate although one was presented — the interception, named by the CA
 * that presented the mTLS host's certificate, recorded once as TLS_INTERCEPTED.
 */
export async function checkMtlsPath(http: HttpClient, url: string, cred: MtlsCredential, exemptHosts: readonly string[] = []): Promise<MtlsVerdict> {
  const answer = await checkMtls(http, url, cred);
  if (answer.trusted || answer.reason !== 'no-certificate') return { answer };
  const host = new URL(url).host;
  // A token key is presented by another process: the chain this client saw for the host comes from one plain look.
  if (!http.presentedChain(host)) await http.send({ url, what: 'the mTLS endpoint' }).catch(() => undefined);
  const rule = await http.decide(url).then((d) => d.rule, () => undefined);
  const found = strippedCertificateFinding({ host, serialNumber: cred.serialNumber, chain: http.presentedChain(host), exemptHosts, route: rule });
  http.noteInterception(found.interception, found.error.message);
  return { answer, intercepted: found.error };
}

/** The credential for the mTLS check: the key file, else the key store's presenter; or why there is none. */
export function mtlsCredential(c: { certPem: string; serialNumber: string; keyPem?: string | undefined; keyRef?: string | undefined; chainPem?: string[] },
  keys: { tlsPresenter?(id: string): { presenter: TokenTlsPresenter } | { unavailable: string } | undefined } | undefined): MtlsCredential | { unavailable: string } {
  if (c.keyPem) return { certPem: c.certPem, serialNumber: c.serialNumber, keyPem: c.keyPem };
  const p = c.keyRef ? keys?.tlsPresenter?.(c.keyRef) : undefined;
  if (!p) return { unavailable: c.keyRef ? 'the key store does not have the device key (or cannot present it)' : 'the private key of the device certificate is missing' };
  if ('unavailable' in p) return p;
  return { certPem: c.certPem, serialNumber: c.serialNumber, presenter: p.presenter, ...(c.chainPem ? { chainPem: c.chainPem } : {}) };
}

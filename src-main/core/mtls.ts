import type { HttpClient } from './http.js';
import { MtlsCheckAnswerSchema, type MtlsCheckAnswer } from './protocol.js';
import { strippedCertificateFinding } from './proxy/diagnose.js';
import type { AgentError } from '../base/errors.js';

/** Presents the device certificate to the org's mTLS endpoint and returns its verdict. */
export async function checkMtls(http: HttpClient, url: string, certPem: string, keyPem: string): Promise<MtlsCheckAnswer> {
  const { data } = await http.json(MtlsCheckAnswerSchema, { url, what: 'the mTLS endpoint' }, { certPem, keyPem });
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
export async function checkMtlsPath(http: HttpClient, url: string, cred: { certPem: string; keyPem: string; serialNumber: string }, exemptHosts: readonly string[] = []): Promise<MtlsVerdict> {
  const answer = await checkMtls(http, url, cred.certPem, cred.keyPem);
  if (answer.trusted || answer.reason !== 'no-certificate') return { answer };
  const host = new URL(url).host;
  const rule = await http.decide(url).then((d) => d.rule, () => undefined);
  const found = strippedCertificateFinding({ host, serialNumber: cred.serialNumber, chain: http.presentedChain(host), exemptHosts, route: rule });
  http.noteInterception(found.interception, found.error.message);
  return { answer, intercepted: found.error };
}

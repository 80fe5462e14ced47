import type { HttpClient } from './http.js';
import { MtlsCheckAnswerSchema, type MtlsCheckAnswer } from './protocol.js';

/** Presents the device certificate to the org's mTLS endpoint and returns its verdict. */
export async function checkMtls(http: HttpClient, url: string, certPem: string, keyPem: string): Promise<MtlsCheckAnswer> {
  const { data } = await http.json(MtlsCheckAnswerSchema, { url, what: 'the mTLS endpoint' }, { certPem, keyPem });
  return data;
}

import fs from 'node:fs';
import tls from 'node:tls';
import { AgentError } from '../../base/errors.js';

/** Node's trust anchors plus the configured extra ones (PEM), without loading the HTTP stack (re-exported by http.ts). */
export function rootCertificates(tlsCaFile: string | undefined): string[] {
  const roots = [...tls.rootCertificates];
  if (tlsCaFile) {
    try {
      roots.push(fs.readFileSync(tlsCaFile, 'utf8'));
    } catch (e) {
      throw new AgentError('config', 'CONFIG_TLS_CA', `Cannot read the trust anchors file ${tlsCaFile}: ${(e as Error).message}.`);
    }
  }
  return roots;
}

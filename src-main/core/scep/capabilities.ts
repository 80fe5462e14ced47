import { AgentError } from '../../base/errors.js';
import type { CipherName, DigestName } from './cms.js';

/** GetCACaps keywords (RFC 8894 §3.5.2), compared case-insensitively as the RFC says. */
export interface Capabilities {
  raw: string[];
  postPkiOperation: boolean;
  renewal: boolean;
  sha256: boolean;
  sha512: boolean;
  sha1: boolean;
  aes: boolean;
  des3: boolean;
  scepStandard: boolean;
  getNextCaCert: boolean;
}

export function parseCapabilities(text: string): Capabilities {
  const raw = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && l.length < 100).slice(0, 50);
  const has = (k: string) => raw.some((r) => r.toLowerCase() === k.toLowerCase());
  // SCEPStandard implies AES, POSTPKIOperation and SHA-256 (RFC 8894 §3.5.2).
  const std = has('SCEPStandard');
  return {
    raw,
    postPkiOperation: std || has('POSTPKIOperation'),
    renewal: has('Renewal'),
    sha256: std || has('SHA-256'),
    sha512: has('SHA-512'),
    sha1: has('SHA-1'),
    aes: std || has('AES'),
    des3: has('DES3'),
    scepStandard: std,
    getNextCaCert: has('GetNextCACert'),
  };
}

export interface Algorithms {
  digest: DigestName;
  cipher: Exclude<CipherName, 'des-cbc'>;
  /** Set when a weak algorithm was chosen because `scepAllowWeak` allowed it. */
  weak: string[];
}

const WEAK_REMEDY = 'Ask the CA administrator to enable SHA-256 and AES on the SCEP service (RFC 8894 "SCEPStandard"). Only if that is impossible, set scepAllowWeak=true to accept SHA-1 / 3DES knowingly.';

/**
 * The strongest algorithms the CA advertises: SHA-512 or SHA-256, AES (AES-128-CBC per RFC 8894). SHA-1 and
 * 3DES only with `allowWeak`; MD5 and single DES (what a CA that advertises nothing implies) never.
 */
export function chooseAlgorithms(caps: Capabilities, allowWeak: boolean): Algorithms {
  const weak: string[] = [];
  let digest: DigestName;
  if (caps.sha512) digest = 'sha512';
  else if (caps.sha256) digest = 'sha256';
  else if (caps.sha1 && allowWeak) {
    digest = 'sha1';
    weak.push('SHA-1');
  } else {
    throw new AgentError('config', 'SCEP_WEAK_ALGORITHMS',
      `The SCEP CA does not offer SHA-256 or SHA-512 (it advertises: ${caps.raw.join(', ') || 'nothing'}), so its requests would be signed with ${caps.sha1 ? 'SHA-1' : 'MD5'}. The agent refuses${caps.sha1 ? ' weak algorithms unless scepAllowWeak=true' : ' MD5 always'}; nothing was sent.`,
      caps.sha1 ? WEAK_REMEDY : 'Ask the CA administrator to enable SHA-256 on the SCEP service.');
  }
  let cipher: Exclude<CipherName, 'des-cbc'>;
  if (caps.aes) cipher = 'aes-128-cbc';
  else if (caps.des3 && allowWeak) {
    cipher = 'des-ede3-cbc';
    weak.push('3DES');
  } else {
    throw new AgentError('config', 'SCEP_WEAK_ALGORITHMS',
      `The SCEP CA does not offer AES (it advertises: ${caps.raw.join(', ') || 'nothing'}), so the request would be encrypted with ${caps.des3 ? '3DES' : 'single DES'}. The agent refuses${caps.des3 ? ' weak algorithms unless scepAllowWeak=true' : ' single DES always'}; nothing was sent.`,
      caps.des3 ? WEAK_REMEDY : 'Ask the CA administrator to enable AES on the SCEP service.');
  }
  return { digest, cipher, weak };
}

import { X509Certificate } from 'node:crypto';
import { AgentError } from '../../base/errors.js';

/**
 * CA continuity (docs/PROTOCOL.md): the chain a credential was issued under is stored with it (credentials/<tp>/
 * chain.pem). A later discovery answer that publishes a different CA is accepted only when the old trust can
 * verify the change — a new CA signed by an old one, or cross-signed by one (a certificate with the new CA's
 * name and key issued by an old CA) — or when an admin pinned the new CA's SHA-256 fingerprint in managed
 * configuration (`caRolloverFingerprints`). Anything else is refused before a request is sent: a renewal must not
 * replace a working certificate with one from a CA the org's own endpoints may not trust.
 */
export type Continuity = { ok: true; how: 'same' | 'rollover' | 'pinned'; added: string[] } | { ok: false; unvouched: string[] };

function fingerprint(c: X509Certificate): string {
  return c.fingerprint256.replace(/:/g, '').toLowerCase();
}

function parseAll(pems: string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const p of pems) {
    try {
      out.push(new X509Certificate(p));
    } catch {
      /* an unreadable entry vouches for nothing */
    }
  }
  return out;
}

export function checkCaContinuity(previousChainPem: string[], newChainPem: string[], pinnedFingerprints: string[] = []): Continuity {
  const previous = parseAll(previousChainPem).filter((c) => c.ca);
  const fresh = parseAll(newChainPem);
  const known = new Set(previous.map(fingerprint));
  const newOnly = fresh.filter((c) => !known.has(fingerprint(c)));
  if (newOnly.length === 0) return { ok: true, how: 'same', added: [] };
  const pins = new Set(pinnedFingerprints.map((f) => f.toLowerCase()));
  const trusted: X509Certificate[] = [...previous];
  const vouched = new Set<string>();
  let pinned = false;
  // Fixpoint: a CA becomes trusted when a trusted CA signed it (or signed a cross-certificate for its name and key).
  for (let changed = true; changed; ) {
    changed = false;
    for (const c of newOnly) {
      const fp = fingerprint(c);
      if (vouched.has(fp)) continue;
      const signedByTrusted = (x: X509Certificate) => trusted.some((t) => x.checkIssued(t) && x.verify(t.publicKey));
      const crossSigned = fresh.some((x) => x !== c && x.subject === c.subject && x.publicKey.equals(c.publicKey) && signedByTrusted(x));
      const byPin = pins.has(fp);
      if (byPin || signedByTrusted(c) || crossSigned) {
        if (byPin && !signedByTrusted(c) && !crossSigned) pinned = true;
        vouched.add(fp);
        trusted.push(c);
        changed = true;
      }
    }
  }
  // The issuers of a vouched CA add no trust of their own (a pinned issuing CA sent with its new root).
  for (let changed = true; changed; ) {
    changed = false;
    for (const c of newOnly) {
      if (vouched.has(fingerprint(c))) continue;
      if (newOnly.some((v) => vouched.has(fingerprint(v)) && v.checkIssued(c) && v.verify(c.publicKey))) {
        vouched.add(fingerprint(c));
        changed = true;
      }
    }
  }
  const unvouched = newOnly.filter((c) => !vouched.has(fingerprint(c)));
  if (unvouched.length) return { ok: false, unvouched: unvouched.map((c) => `${c.subject.split('\n').join(', ')} (SHA-256 ${fingerprint(c)})`) };
  return { ok: true, how: pinned ? 'pinned' : 'rollover', added: newOnly.map((c) => c.subject.split('\n').join(', ')) };
}

export function caChangedError(authorityName: string, unvouched: string[]): AgentError {
  return new AgentError('bad-answer', 'CA_CHANGED',
    `${authorityName.charAt(0).toUpperCase()}${authorityName.slice(1)} now publishes a different certificate authority than the one this device's certificate was issued under, and the old CA does not vouch for it (not signed or cross-signed by it): ${unvouched.join('; ')}. Nothing was requested or installed; the current certificate is kept and still used.`,
    'If the org really replaced its CA, an admin adds the new CA\'s SHA-256 fingerprint to caRolloverFingerprints in the managed configuration; otherwise check for TLS interception or a wrong org URL.');
}

export interface ContinuityContext {
  /** The current certificate's key thumbprint (state.current), if there is one. */
  currentThumbprint: string | undefined;
  /** The chain stored with that credential (credentials/<tp>/chain.pem). */
  storedChainPem: string[] | undefined;
  authority: { name: string; chainPem: string[]; pinnedPem?: string | undefined };
  /** caRolloverFingerprints, only when it came from managed configuration. */
  pins: string[];
  log: (line: string) => void;
}

/** Throws CA_CHANGED when the authority's CA is not the stored one and nothing vouches for the change. */
export function assertCaContinuity(ctx: ContinuityContext): void {
  // A pinned CA (SCEP) is the admin's own choice in the configuration: there is nothing to compare against.
  if (!ctx.currentThumbprint || ctx.authority.pinnedPem || !ctx.storedChainPem?.length) return;
  const r = checkCaContinuity(ctx.storedChainPem, ctx.authority.chainPem, ctx.pins);
  if (!r.ok) throw caChangedError(ctx.authority.name, r.unvouched);
  if (r.how !== 'same') ctx.log(`CA continuity: the org publishes new CA certificate(s) (${r.added.join('; ')}), accepted as a ${r.how === 'pinned' ? 'CA pinned in managed configuration' : 'rollover the previous CA signed'}.`);
}

/** SHA-256 fingerprints of the CA certificates in a chain (recorded in the state with the credential). */
export function chainFingerprints(chainPem: string[]): string[] {
  return parseAll(chainPem).map(fingerprint);
}

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { registrableDomain } from '../base/public-suffix.js';

/**
 * Firefox's remembered client-certificate decisions, written for the org's own hosts only: Firefox then presents
 * the device certificate to those hosts without asking, and every other site that asks for a certificate gets
 * Firefox's default ("Ask Every Time") instead of the device certificate with the device ID in it. Firefox has no
 * host-scoped policy for this (Chromium's AutoSelectCertificateForUrls is); its per-profile decision store is the
 * host-scoped route.
 *
 * The store is `ClientAuthRememberList.bin` in the profile (Gecko's data_storage, Firefox 115 and later): fixed
 * slots of 1286 bytes — checksum u16, score u16, last-accessed day u16, a 256-byte key, a 1024-byte value, all
 * big-endian, zero-padded; the checksum is the XOR of the other fields' 16-bit words. The key is
 * `<host>,,<origin attributes suffix>`; the value is the base64 NSS "db key" of the certificate (module and slot
 * ids zero, serial and issuer lengths, the serial's DER content, the issuer's DER name), which finds it in any token.
 * Firefox reads the file at start-up and rewrites it from memory: a running Firefox sees the entries after its
 * next start (and may overwrite them on exit; the next pass writes them again).
 */
export const CLIENT_AUTH_FILE = 'ClientAuthRememberList.bin';
const SLOT = 1286;
const KEY_LEN = 256;
const VALUE_LEN = 1024;

export interface RememberEntry {
  key: string;
  value: string;
}

/** The NSS db key of a certificate (nsNSSCertificate::GetDbKey), base64. */
export function certDbKey(certPem: string): string {
  const c = new crypto.X509Certificate(certPem);
  const der = c.raw;
  const { serial, issuer } = serialAndIssuer(der);
  const head = Buffer.alloc(16);
  head.writeUInt32BE(serial.length, 8);
  head.writeUInt32BE(issuer.length, 12);
  return Buffer.concat([head, serial, issuer]).toString('base64');
}

/** Minimal DER walk: TBSCertificate's serialNumber content and issuer Name (raw). */
function serialAndIssuer(der: Buffer): { serial: Buffer; issuer: Buffer } {
  const read = (buf: Buffer, at: number): { tag: number; start: number; end: number; next: number } => {
    const tag = buf[at]!;
    let len = buf[at + 1]!;
    let p = at + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
      p += n;
    }
    return { tag, start: p, end: p + len, next: p + len };
  };
  const cert = read(der, 0);
  const tbs = read(der, cert.start);
  let cur = read(der, tbs.start);
  if (cur.tag === 0xa0) cur = read(der, cur.next); // [0] version
  const serial = der.subarray(cur.start, cur.end);
  const sigAlg = read(der, cur.next);
  const issuer = read(der, sigAlg.next);
  return { serial, issuer: der.subarray(sigAlg.next, issuer.end) };
}

/**
 * The keys Firefox may look a host up by: without origin attributes, and with the partition key network-state
 * partitioning adds (scheme and site, with the port where it is not the scheme's default).
 */
export function entryKeys(origin: string): string[] {
  const u = new URL(origin);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const site = net.isIP(host) ? host : registrableDomain(host) ?? host;
  const scheme = u.protocol.replace(/:$/, '');
  const keys = [`${host},,`, `${host},,^partitionKey=%28${scheme}%2C${site}%29`];
  if (u.port) keys.push(`${host},,^partitionKey=%28${scheme}%2C${site}%2C${u.port}%29`);
  return keys;
}

function xorWords(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i += 2) sum ^= i + 1 < buf.length ? buf.readUInt16BE(i) : buf[i]! << 8;
  return sum;
}

export function encodeSlot(e: RememberEntry, day: number): Buffer {
  const key = Buffer.from(e.key, 'latin1');
  const value = Buffer.from(e.value, 'latin1');
  if (key.length >= KEY_LEN || value.length >= VALUE_LEN) throw new Error(`remembered decision too long for ${e.key}`);
  const slot = Buffer.alloc(SLOT);
  slot.writeUInt16BE(1, 2);
  slot.writeUInt16BE(day & 0xffff, 4);
  key.copy(slot, 6);
  value.copy(slot, 6 + KEY_LEN);
  slot.writeUInt16BE((1 ^ (day & 0xffff) ^ xorWords(key) ^ xorWords(value)) & 0xffff, 0);
  return slot;
}

/** The entries of a file (slots with a valid checksum; empty slots skipped). */
export function decodeSlots(buf: Buffer): RememberEntry[] {
  const out: RememberEntry[] = [];
  for (let at = 0; at + SLOT <= buf.length; at += SLOT) {
    const slot = buf.subarray(at, at + SLOT);
    const keyRaw = slot.subarray(6, 6 + KEY_LEN);
    const valueRaw = slot.subarray(6 + KEY_LEN);
    const key = keyRaw.subarray(0, keyRaw.indexOf(0) < 0 ? KEY_LEN : keyRaw.indexOf(0));
    const value = valueRaw.subarray(0, valueRaw.indexOf(0) < 0 ? VALUE_LEN : valueRaw.indexOf(0));
    if (!key.length) continue;
    const sum = slot.readUInt16BE(2) ^ slot.readUInt16BE(4) ^ xorWords(key) ^ xorWords(value);
    if (sum !== slot.readUInt16BE(0)) continue;
    out.push({ key: key.toString('latin1'), value: value.toString('latin1') });
  }
  return out;
}

/**
 * Writes the decisions "present this certificate" for `origins` into a profile, keeping the profile's other
 * decisions (sites the user answered for) and replacing older ones for the same keys (a renewed certificate).
 * Returns whether the file changed.
 */
export function rememberOrgCertificate(profile: string, origins: string[], certPem: string, now = new Date()): boolean {
  const file = path.join(profile, CLIENT_AUTH_FILE);
  let existing: RememberEntry[] = [];
  try {
    existing = decodeSlots(fs.readFileSync(file));
  } catch {
    /* no decisions yet */
  }
  const value = certDbKey(certPem);
  const ours = new Map<string, string>();
  for (const o of origins) for (const k of entryKeys(o)) ours.set(k, value);
  const kept = existing.filter((e) => !ours.has(e.key));
  const next = [...kept, ...[...ours].map(([key, v]) => ({ key, value: v }))];
  if (existing.length === next.length && next.every((e) => existing.some((x) => x.key === e.key && x.value === e.value))) return false;
  const day = Math.floor(now.getTime() / 86_400_000);
  const tmp = `${file}.dta-tmp`;
  fs.writeFileSync(tmp, Buffer.concat(next.map((e) => encodeSlot(e, day))), { mode: 0o600 });
  fs.renameSync(tmp, file);
  return true;
}

import dgram from 'node:dgram';
import dns from 'node:dns';
import fs from 'node:fs';
import type { Command } from '../../base/exec.js';

/** What the diagnostics need of krb5.conf: the default realm and each realm's KDCs. */
export interface Krb5Conf {
  file: string;
  defaultRealm: string | undefined;
  /** REALM → ["host:port", …] as written (port may be absent: 88). */
  kdcs: Record<string, string[]>;
}

/** The krb5.conf MIT reads: the first readable file of KRB5_CONFIG (colon-separated), else /etc/krb5.conf. */
export function krb5ConfPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = env.KRB5_CONFIG ? env.KRB5_CONFIG.split(':').filter(Boolean) : ['/etc/krb5.conf'];
  return candidates.find((f) => {
    try {
      fs.accessSync(f, fs.constants.R_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A small reader of MIT's profile format: sections, `key = value`, and `REALM = { … }` blocks. */
export function parseKrb5Conf(text: string, file = 'krb5.conf'): Krb5Conf {
  const out: Krb5Conf = { file, defaultRealm: undefined, kdcs: {} };
  let section = '';
  let realm: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (!line) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!.toLowerCase();
      realm = undefined;
      continue;
    }
    if (section === 'libdefaults') {
      const m = /^default_realm\s*=\s*(\S+)/.exec(line);
      if (m) out.defaultRealm = m[1];
    } else if (section === 'realms') {
      const open = /^(\S+)\s*=\s*\{$/.exec(line);
      if (open) {
        realm = open[1];
        out.kdcs[realm!] ??= [];
        continue;
      }
      if (line === '}') {
        realm = undefined;
        continue;
      }
      const kdc = /^kdc\s*=\s*(\S+)/.exec(line);
      if (kdc && realm) out.kdcs[realm]!.push(kdc[1]!);
    }
  }
  return out;
}

export function readKrb5Conf(env: NodeJS.ProcessEnv = process.env): Krb5Conf | undefined {
  const file = krb5ConfPath(env);
  if (!file) return undefined;
  try {
    return parseKrb5Conf(fs.readFileSync(file, 'utf8'), file);
  } catch {
    return undefined;
  }
}

/** "host", "host:port", "[v6]:port" → host and port (88 when absent). */
export function splitHostPort(s: string, defaultPort = 88): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : defaultPort };
  const m = /^([^:]+)(?::(\d+))?$/.exec(s);
  return m ? { host: m[1]!, port: m[2] ? Number(m[2]) : defaultPort } : { host: s, port: defaultPort };
}

// --- klist ---

/** `klist` in the C locale, so dates come out as MM/DD/YY HH:MM:SS whatever the user's locale. */
export const klistCommand = (): Command => ({ file: 'klist', args: [], env: { LC_ALL: 'C', LANG: 'C' } });

export interface KlistInfo {
  ccache: string | undefined;
  principal: string | undefined;
  /** Expiry of the ticket-granting ticket, if one is listed. */
  tgtExpires: Date | undefined;
}

function parseKlistDate(s: string): Date | undefined {
  const m = /^(\d{2})\/(\d{2})\/(\d{2,4})\s+(\d{2}):(\d{2}):(\d{2})$/.exec(s.trim());
  if (!m) return undefined;
  const year = m[3]!.length === 2 ? 2000 + Number(m[3]) : Number(m[3]);
  return new Date(year, Number(m[1]) - 1, Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** Parses MIT `klist` output (C locale). */
export function parseKlist(stdout: string): KlistInfo {
  const ccache = /^Ticket cache:\s*(.+)$/m.exec(stdout)?.[1]?.trim();
  const principal = /^Default principal:\s*(\S+)/m.exec(stdout)?.[1];
  let tgtExpires: Date | undefined;
  for (const line of stdout.split('\n')) {
    const m = /^(\d{2}\/\d{2}\/\d{2,4}\s+\d{2}:\d{2}:\d{2})\s+(\d{2}\/\d{2}\/\d{2,4}\s+\d{2}:\d{2}:\d{2})\s+krbtgt\//.exec(line.trim());
    if (m) tgtExpires = parseKlistDate(m[2]!);
  }
  return { ccache, principal, tgtExpires };
}

// --- DNS SRV ---

export interface SrvTarget {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** The records Windows domain controllers register, which domain-joined clients use to find them. */
export const srvNames = (domain: string) => ({
  dc: `_ldap._tcp.dc._msdcs.${domain}`,
  kdc: `_kerberos._tcp.${domain}`,
});

export async function lookupSrv(name: string, servers?: string[]): Promise<SrvTarget[]> {
  const resolver = new dns.promises.Resolver({ timeout: 1500, tries: 1 });
  if (servers?.length) resolver.setServers(servers);
  const records = await resolver.resolveSrv(name);
  return records.sort((a, b) => a.priority - b.priority || b.weight - a.weight);
}

// --- SNTP (RFC 4330): a domain controller is the domain's time source, so its clock is what Kerberos compares with ---

const NTP_EPOCH_OFFSET = 2_208_988_800; // seconds from 1900 to 1970

function readNtpTime(buf: Buffer, offset: number): number {
  const seconds = buf.readUInt32BE(offset);
  const fraction = buf.readUInt32BE(offset + 4);
  return (seconds - NTP_EPOCH_OFFSET) * 1000 + (fraction / 2 ** 32) * 1000;
}

function writeNtpTime(buf: Buffer, offset: number, ms: number): void {
  const seconds = Math.floor(ms / 1000) + NTP_EPOCH_OFFSET;
  buf.writeUInt32BE(seconds >>> 0, offset);
  buf.writeUInt32BE(Math.floor(((ms % 1000) / 1000) * 2 ** 32) >>> 0, offset + 4);
}

/**
 * Asks `host` for its time over SNTP and returns the offset of the server's clock from ours in ms
 * (positive: the server is ahead), with the round trip.
 */
export function sntpOffset(host: string, port: number, timeoutMs: number, now: () => number = Date.now): Promise<{ offsetMs: number; rttMs: number; stratum: number }> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const req = Buffer.alloc(48);
    req[0] = (0 << 6) | (4 << 3) | 3; // LI 0, version 4, mode 3 (client)
    const t1 = now();
    writeNtpTime(req, 40, t1);
    const timer = setTimeout(() => {
      sock.close();
      reject(Object.assign(new Error(`no NTP answer from ${host}:${port} within ${timeoutMs} ms`), { code: 'NTP_TIMEOUT' }));
    }, timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      sock.close();
      reject(e);
    });
    sock.on('message', (msg) => {
      const t4 = now();
      if (msg.length < 48 || (msg[0]! & 0x07) !== 4) return; // not a server answer
      clearTimeout(timer);
      sock.close();
      const t2 = readNtpTime(msg, 32);
      const t3 = readNtpTime(msg, 40);
      resolve({ offsetMs: (t2 - t1 + (t3 - t4)) / 2, rttMs: t4 - t1 - (t3 - t2), stratum: msg[1]! });
    });
    sock.send(req, port, host);
  });
}

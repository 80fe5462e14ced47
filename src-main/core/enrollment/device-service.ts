/**
 * The device side's handler (docs/PROTOCOL.md §13): one validated request from a local user, whom the transport
 * knows by the endpoint the OS let them open → a device token bound to that user's key, or a refusal. The device
 * side alone reads the machine keytab.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AgentError } from '../../base/errors.js';
import { writeFileAtomic } from '../../base/fsutil.js';
import {
  DEVICE_CHANNEL_VERSION, DeviceTokenRequestSchema, MAX_REQUEST_DEADLINE_MS, RATE_LIMIT, toRefusal, type DeviceTokenAnswer, type DeviceTokenRequest,
} from '../../platform/device-channel.js';
import type { Config } from '../config.js';
import { discoverOrg } from './discovery.js';
import { HttpClient } from '../net/http.js';
import { IwaClient } from '../auth/iwa.js';
import { httpOptionsFor } from '../proxy/options.js';
import { Trace } from '../../base/trace.js';
import type { NetworkContext } from '../context.js';

/** The machine keytab, checked before Kerberos sees it: unreadable or absent is the configuration's fault, said as such. */
export function checkKeytabReadable(keytab: string): void {
  const file = keytab.replace(/^FILE:/, '');
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const who = typeof process.getuid === 'function' ? `uid ${process.getuid()}` : 'this account';
    if (code === 'ENOENT') {
      throw new AgentError('config', 'DEVICE_KEYTAB_MISSING', `The machine keytab ${file} does not exist, so the device service cannot sign in as this machine.`,
        'Join the machine to the domain (realm join / adcli join), or set deviceKeytab in the managed configuration to the keytab that holds the machine principal.');
    }
    let owner = '';
    try {
      const st = fs.statSync(file);
      owner = ` (owner uid ${st.uid}, mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`;
    } catch {
      /* the directory itself is closed to us */
    }
    throw new AgentError('config', 'DEVICE_KEYTAB_UNREADABLE', `The device service (${who}) cannot read the machine keytab ${file}${owner}: ${code ?? (e as Error).message}.`,
      `Run the device service as root (systemctl start device-trust-agent-device.service) or give its account read permission on ${file}; never make the keytab readable by ordinary users.`);
  }
  fs.closeSync(fd);
}

interface Window {
  times: number[];
}

/** The device service runs as a system service, never inside the tray app: no host proxy answer, the OS settings are read. */
const NO_HOST_PROXY: NetworkContext = {};

export interface DeviceTokenServiceOptions {
  /** The device side's own configuration (root's: managed configuration, its own environment). */
  loadConfig: () => Config;
  log?: (line: string) => void;
  now?: () => number;
}

/**
 * The device side's handler: one validated request from the user `uid` (the transport knows it from the
 * endpoint the OS let the caller open) → a device token bound to the user's key, or a refusal. Never throws.
 */
export class DeviceTokenService {
  private readonly windows = new Map<number, Window>();
  private readonly now: () => number;

  constructor(private readonly opts: DeviceTokenServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  async handle(uid: number, raw: unknown): Promise<DeviceTokenAnswer> {
    try {
      const parsed = DeviceTokenRequestSchema.safeParse(raw);
      if (!parsed.success) {
        throw new AgentError('bad-answer', 'DEVICE_REQUEST_INVALID', 'The request to the device service is not the device-channel protocol (version 1 device-token).',
          'Reinstall the agent so that the device service and the user side are the same version.');
      }
      const req = parsed.data;
      this.rateLimit(uid);
      const config = this.opts.loadConfig();
      if (!config.orgUrl) {
        throw new AgentError('config', 'DEVICE_NOT_CONFIGURED', 'The device service has no org configured (orgUrl in the managed configuration), so it cannot get a device token.',
          'An administrator sets orgUrl in /etc/device-trust-agent/ (or the OS equivalent), then restarts the device service.');
      }
      if (stripSlash(req.orgUrl) !== stripSlash(config.orgUrl)) {
        throw new AgentError('config', 'DEVICE_ORG_MISMATCH', `The device service serves the org ${config.orgUrl}, not ${req.orgUrl}; the machine's identity is not lent to another org.`,
          'Remove orgUrl from your own configuration (the managed configuration names the org), then run again.');
      }
      this.bindDeviceId(config.stateDir, uid, req.deviceId);
      checkKeytabReadable(config.deviceKeytab);
      const token = await this.fetchToken(config, req);
      this.opts.log?.(`device token for uid ${uid} (device ${req.deviceId}, key ${req.keyThumbprint.slice(0, 8)}…) from ${token.iwaUrl}`);
      return { v: DEVICE_CHANNEL_VERSION, ok: true, ...token };
    } catch (e) {
      const refusal = toRefusal(e);
      this.opts.log?.(`refused uid ${uid}: ${refusal.code} ${refusal.message}`);
      return refusal;
    }
  }

  private rateLimit(uid: number): void {
    const now = this.now();
    const w = this.windows.get(uid) ?? { times: [] };
    w.times = w.times.filter((t) => now - t < RATE_LIMIT.windowMs);
    if (w.times.length >= RATE_LIMIT.requests) {
      const e = new AgentError('retry-later', 'DEVICE_SERVICE_RATE_LIMITED',
        `This user asked the device service for ${w.times.length} device tokens in ${RATE_LIMIT.windowMs / 60_000} minutes; it hands out no more for now.`,
        'The agent tries again later on its own.');
      e.retryAfterMs = RATE_LIMIT.windowMs - (now - w.times[0]!);
      throw e;
    }
    w.times.push(now);
    this.windows.set(uid, w);
  }

  /**
   * Each deviceId belongs to one local user: the first uid that asks for it. Another user of this machine asking
   * for the same deviceId (copied from someone's state.json) is refused; the org binds it to this machine.
   */
  private bindDeviceId(stateDir: string, uid: number, deviceId: string): void {
    const file = path.join(stateDir, 'device-users.json');
    let bindings: Record<string, number> = {};
    try {
      bindings = z.record(z.string(), z.number().int()).parse(JSON.parse(fs.readFileSync(file, 'utf8')));
    } catch {
      /* first use, or unreadable: start afresh (the org's binding still holds) */
    }
    const owner = bindings[deviceId];
    if (owner !== undefined && owner !== uid) {
      throw new AgentError('rejected', 'DEVICE_ID_IN_USE', `The device ID ${deviceId} belongs to another user of this machine (uid ${owner}); it is not lent to uid ${uid}.`,
        'Do not copy another user\'s agent state: remove deviceId from your state.json (device-trust-agent run --forceRenewal makes a new one).');
    }
    if (owner === uid) return;
    bindings[deviceId] = uid;
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(file, `${JSON.stringify(bindings, null, 2)}\n`);
  }

  private async fetchToken(config: Config, req: DeviceTokenRequest): Promise<{ deviceToken: string; iwaUrl: string }> {
    const deadlineMs = Math.min(req.deadlineMs, MAX_REQUEST_DEADLINE_MS);
    const trace = new Trace(this.opts.log ? (l) => this.opts.log!(l) : undefined);
    const http = new HttpClient({ ...httpOptionsFor(config, NO_HOST_PROXY, { log: (l) => trace.log(l) }), deadlineMs });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AgentError('retry-later', 'DEVICE_SERVICE_TIMEOUT', `The device service could not get a device token within the ${deadlineMs} ms the request allowed; nothing was changed.`,
        'The agent tries again later; if it persists, run device-trust-agent diagnose as root.')), deadlineMs);
      timer.unref();
    });
    try {
      return await Promise.race([expired, (async () => {
        const org = await discoverOrg(http, config.orgUrl!);
        const iwa = new IwaClient({ http, org, trace });
        const principal = config.devicePrincipal ?? `host/${config.deviceName}`;
        const deviceToken = await iwa.deviceToken({ kind: 'device', principal, keytab: config.deviceKeytab }, { deviceId: req.deviceId, deviceName: config.deviceName, keyThumbprint: req.keyThumbprint });
        return { deviceToken, iwaUrl: iwa.baseUrl ?? org.iwa.primary };
      })()]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function stripSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

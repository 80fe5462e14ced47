/**
 * A domain controller's time service for the lab: an SNTP server (RFC 4330) on a loopback UDP port whose
 * clock can be set off by `skewSeconds`, so the diagnostics' clock-skew check against the DC can be tested.
 */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

export interface LabNtp {
  port: number;
  /** The lab DC's clock minus the real one. */
  skewSeconds: number;
  close(): Promise<void>;
}

const EPOCH_1900 = 2_208_988_800;

function putTime(buf: Buffer, at: number, ms: number): void {
  buf.writeUInt32BE((Math.floor(ms / 1000) + EPOCH_1900) >>> 0, at);
  buf.writeUInt32BE(Math.floor(((ms % 1000) / 1000) * 0x1_0000_0000) >>> 0, at + 4);
}

export async function startLabNtp(opts: { skewSeconds?: number } = {}): Promise<LabNtp> {
  const sock = dgram.createSocket('udp4');
  const state = { skewSeconds: opts.skewSeconds ?? 0 };
  sock.on('message', (req, rinfo) => {
    if (req.length < 48 || (req[0]! & 0x07) !== 3) return; // clients only
    const now = Date.now() + state.skewSeconds * 1000;
    const res = Buffer.alloc(48);
    res[0] = (4 << 3) | 4; // version 4, server
    res[1] = 2; // stratum: synchronised to a reference
    res[2] = req[2]!;
    res[3] = 0xec;
    req.copy(res, 24, 40, 48); // originate timestamp = the client's transmit timestamp
    putTime(res, 16, now);
    putTime(res, 32, now);
    putTime(res, 40, now);
    sock.send(res, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (sock.address() as AddressInfo).port,
    get skewSeconds() {
      return state.skewSeconds;
    },
    set skewSeconds(v: number) {
      state.skewSeconds = v;
    },
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

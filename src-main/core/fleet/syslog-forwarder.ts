/**
 * Remote syslog over TCP or TLS (RFC 5425 framing), with a bounded spool on disk so that a collector that is
 * down costs a pass nothing and loses no event: every event is first written to its own file in
 * <stateDir>/syslog-spool/ (atomic), then a background flush sends every spooled message, oldest first, and
 * deletes what was sent. A flush that cannot connect leaves the spool for the next event or pass. Delivery
 * is at least once (a crash after sending but before deleting resends). The spool keeps at most
 * MAX_SPOOL_FILES messages; beyond that the oldest are dropped and the drop is itself logged as a message.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { ensurePrivateDir, writeFileAtomic } from '../../base/fsutil.js';
import { deviceContext, formatRfc5424, octetFrame, type SyslogEvent } from './syslog.js';

export const MAX_SPOOL_FILES = 5000;
const CONNECT_TIMEOUT_MS = 3000;
/** The whole exchange, connect to close: a slow collector is abandoned, the spool kept. */
const DEADLINE_MS = 8000;

export interface ForwarderOptions {
  /** tcp://host:port or tls://host:port */
  url: string;
  stateDir: string;
  /** Trust anchors for tls:// (the system roots plus tlsCaFile / syslogCaFile). */
  ca?: string[];
  maxSpoolFiles?: number;
}

export class SyslogForwarder {
  readonly spoolDir: string;
  private readonly target: { tls: boolean; host: string; port: number };
  private flushing: Promise<FlushResult> | undefined;
  private again = false;

  constructor(private readonly opts: ForwarderOptions) {
    const u = new URL(opts.url);
    this.target = { tls: u.protocol === 'tls:', host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || (u.protocol === 'tls:' ? 6514 : 514) };
    this.spoolDir = path.join(opts.stateDir, 'syslog-spool');
  }

  /** Spools one event (synchronously, so it survives an exit right after) and starts a flush. */
  enqueue(e: SyslogEvent): void {
    const line = formatRfc5424(e, deviceContext(this.opts.stateDir));
    this.spool(line);
    void this.flush();
  }

  spool(message: string): void {
    ensurePrivateDir(this.spoolDir);
    const name = `${Date.now().toString().padStart(15, '0')}-${process.hrtime.bigint().toString().padStart(20, '0')}-${crypto.randomBytes(3).toString('hex')}.msg`;
    writeFileAtomic(path.join(this.spoolDir, name), message);
    this.trim();
  }

  /** Spooled messages, oldest first. */
  pending(): string[] {
    try {
      return fs.readdirSync(this.spoolDir).filter((f) => f.endsWith('.msg')).sort();
    } catch {
      return [];
    }
  }

  private trim(): void {
    const max = this.opts.maxSpoolFiles ?? MAX_SPOOL_FILES;
    const files = this.pending();
    if (files.length <= max) return;
    const drop = files.slice(0, files.length - max + 1);
    for (const f of drop) fs.rmSync(path.join(this.spoolDir, f), { force: true });
    const note = formatRfc5424({ time: new Date().toISOString(), id: 1251, level: 'warning', title: 'Syslog spool full', message: `The collector was unreachable for long; ${drop.length} oldest message(s) were dropped from the spool (bound ${max}).` },
      deviceContext(this.opts.stateDir));
    writeFileAtomic(path.join(this.spoolDir, `${Date.now().toString().padStart(15, '0')}-${'0'.repeat(20)}-drop.msg`), note);
  }

  /** Sends everything spooled; concurrent calls share one flush (and ask for one more round after it). */
  flush(): Promise<FlushResult> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      let r: FlushResult;
      do {
        this.again = false;
        r = await this.flushOnce();
      } while (this.again && r.error === undefined);
      return r;
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<FlushResult> {
    const files = this.pending();
    if (files.length === 0) return { sent: 0 };
    const lock = path.join(this.spoolDir, 'flush.lock');
    if (!takeLock(lock)) return { sent: 0, error: 'another process is flushing the spool' };
    try {
      const batch: { file: string; frame: string }[] = [];
      for (const f of files) {
        try {
          batch.push({ file: f, frame: octetFrame(fs.readFileSync(path.join(this.spoolDir, f), 'utf8')) });
        } catch {
          /* taken by another flusher */
        }
      }
      await this.send(batch.map((b) => b.frame).join(''));
      for (const b of batch) fs.rmSync(path.join(this.spoolDir, b.file), { force: true });
      return { sent: batch.length };
    } catch (e) {
      return { sent: 0, error: (e as Error).message };
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }

  private send(payload: string): Promise<void> {
    const { host, port } = this.target;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const socket: net.Socket = this.target.tls
        ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...(this.opts.ca ? { ca: this.opts.ca } : {}), timeout: CONNECT_TIMEOUT_MS })
        : net.connect({ host, port, timeout: CONNECT_TIMEOUT_MS });
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        socket.destroy();
        if (err) reject(err);
        else resolve();
      };
      const deadline = setTimeout(() => done(new Error(`the collector ${host}:${port} did not take the messages within ${DEADLINE_MS} ms`)), DEADLINE_MS);
      socket.on('timeout', () => done(new Error(`connecting to the collector ${host}:${port} timed out`)));
      socket.on('error', (e) => done(e));
      socket.once(this.target.tls ? 'secureConnect' : 'connect', () => {
        socket.setTimeout(0);
        socket.end(payload, () => undefined);
      });
      // Closed after our FIN and theirs: everything written was handed over to the collector.
      socket.on('close', (hadError) => (hadError ? done(new Error('the connection to the collector failed')) : done()));
      socket.resume();
    });
  }
}

export interface FlushResult {
  sent: number;
  error?: string;
}

/** A lock file holding our pid; one left by a dead process is taken over. */
function takeLock(file: string): boolean {
  for (let i = 0; i < 2; i++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return true;
    } catch {
      let pid = NaN;
      try {
        pid = Number(fs.readFileSync(file, 'utf8'));
      } catch {
        continue;
      }
      let alive = false;
      try {
        if (Number.isInteger(pid) && pid > 0) {
          process.kill(pid, 0);
          alive = true;
        }
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive && pid !== process.pid) return false;
      fs.rmSync(file, { force: true });
    }
  }
  return false;
}

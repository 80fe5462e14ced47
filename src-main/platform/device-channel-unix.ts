/**
 * The device channel on Linux and macOS (docs/PROTOCOL.md §13): Unix sockets whose path the kernel checks.
 *
 *   <dir>/                      root 0755   (systemd RuntimeDirectory, or the LaunchDaemon's)
 *   <dir>/knock.sock            0777        "make the endpoint for uid N": creates <dir>/users/N, nothing else
 *   <dir>/users/                root 0755
 *   <dir>/users/<uid>/          <uid> 0700  only that user (and root) can enter it…
 *   <dir>/users/<uid>/device.sock           …so whoever connects here is <uid>
 *
 * Node has no SO_PEERCRED/getpeereid; the directory permission is the authentication, and the device side knows
 * the caller's uid from the endpoint it accepted on. A user who meddles inside their own directory only denies
 * themselves; the device side never follows anything in it (no chmod/chown by path after the socket is bound).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AgentError } from '../base/errors.js';
import { MAC_CHANNEL_DIR, MAC_START_COMMAND } from './device-channel-darwin.js';
import {
  DEVICE_CHANNEL_VERSION, DeviceTokenAnswerSchema, deviceServiceBadAnswer, deviceServiceDown, deviceServiceTimeout, fromRefusal, KnockAnswerSchema,
  KnockRequestSchema, MAX_MESSAGE_BYTES, MAX_REQUEST_DEADLINE_MS, toRefusal, type DeviceChannel, type DeviceTokenRequest, type KnockAnswer,
} from './device-channel.js';

export const DEFAULT_CHANNEL_DIR: Partial<Record<NodeJS.Platform, string>> = { linux: '/run/device-trust-agent', darwin: MAC_CHANNEL_DIR };
/** Installers and tests may move the channel (the device side and the user side read the same variable). */
export const CHANNEL_DIR_ENV = 'DTA_DEVICE_CHANNEL_DIR';

const ANSWER_GRACE_MS = 2000;
export const LINUX_START_COMMAND = 'sudo systemctl start device-trust-agent-device.service';
export const DARWIN_START_COMMAND = MAC_START_COMMAND;

export const knockPath = (dir: string) => path.join(dir, 'knock.sock');
export const usersDir = (dir: string) => path.join(dir, 'users');
export const userSocketPath = (dir: string, uid: number) => path.join(usersDir(dir), String(uid), 'device.sock');

export function channelDir(platform: NodeJS.Platform, env: NodeJS.ProcessEnv = process.env): string {
  return env[CHANNEL_DIR_ENV] || DEFAULT_CHANNEL_DIR[platform] || '/run/device-trust-agent';
}

/** Binds a Unix socket that anyone who can reach its directory may connect to, without a chmod by path (a race). */
function listenOpen(server: net.Server, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // listen() on a path binds synchronously: the umask applies to this socket only.
    const old = process.umask(0o000);
    try {
      server.listen(file, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
}

/** Reads one newline-terminated JSON message of at most MAX_MESSAGE_BYTES. */
function readLine(socket: net.Socket, onLine: (line: string) => void, onTooLong: () => void): void {
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    const nl = buf.indexOf('\n');
    if (nl >= 0) {
      socket.removeAllListeners('data');
      onLine(buf.slice(0, nl));
    } else if (Buffer.byteLength(buf) > MAX_MESSAGE_BYTES) {
      socket.removeAllListeners('data');
      onTooLong();
    }
  });
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

export interface UnixChannelServerOptions {
  dir: string;
  /** The device side's handler (core/enrollment/device-service.ts DeviceTokenService.handle); never throws. */
  handle: (uid: number, request: unknown) => Promise<unknown>;
  log?: (line: string) => void;
  /** Logged-in users are those with a runtime directory here (Linux: /run/user/<uid>); they get their endpoint at start. */
  userRuntimeRoot?: string;
  /** Endpoints are cheap but not free: at most this many. */
  maxUsers?: number;
}

/** The device side's listener: the knock socket and one socket per user. */
export class UnixChannelServer {
  private readonly servers = new Map<number, net.Server>();
  private knock: net.Server | undefined;

  constructor(private readonly opts: UnixChannelServerOptions) {}

  get dir(): string {
    return this.opts.dir;
  }

  async start(): Promise<void> {
    const { dir } = this.opts;
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(usersDir(dir), { recursive: true, mode: 0o755 });
    fs.chmodSync(usersDir(dir), 0o755);
    // Another device service already answering here keeps its channel (the daemon lock then stops this one).
    const other = await exchange(knockPath(dir), { v: DEVICE_CHANNEL_VERSION, op: 'ping' }, 2000);
    if (other.ok) throw new Error(`another device service answers at ${knockPath(dir)}`);
    fs.rmSync(knockPath(dir), { force: true });
    this.knock = net.createServer((s) => this.serveKnock(s));
    await listenOpen(this.knock, knockPath(dir));
    for (const uid of this.loggedInUids()) await this.open(uid).catch((e: unknown) => this.opts.log?.(`endpoint for uid ${uid}: ${(e as Error).message}`));
    this.opts.log?.(`device channel listening at ${dir} (${this.servers.size} user endpoint(s))`);
  }

  private loggedInUids(): number[] {
    const root = this.opts.userRuntimeRoot ?? '/run/user';
    try {
      return fs.readdirSync(root).filter((n) => /^[1-9]\d{0,9}$/.test(n)).map(Number);
    } catch {
      return [];
    }
  }

  /** Makes (or re-makes) <dir>/users/<uid>/ owned by uid, 0700, and listens there. */
  async open(uid: number): Promise<void> {
    if (this.servers.has(uid)) return;
    if (this.servers.size >= (this.opts.maxUsers ?? 4096)) throw new Error('too many user endpoints');
    const userDir = path.dirname(userSocketPath(this.opts.dir, uid));
    // The parent is root's: nobody else can put a symlink here, so these calls act on the directory itself.
    try {
      fs.mkdirSync(userDir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const st = fs.lstatSync(userDir);
    if (!st.isDirectory()) throw new Error(`${userDir} is not a directory`);
    fs.chownSync(userDir, uid, -1);
    fs.chmodSync(userDir, 0o700);
    const sock = userSocketPath(this.opts.dir, uid);
    // The user may have left anything here; unlink never follows a symlink, and bind refuses an existing path.
    try {
      fs.unlinkSync(sock);
    } catch {
      /* absent (or a directory the user made: then bind fails and only this user is without an endpoint) */
    }
    const server = net.createServer((s) => this.serveUser(uid, s));
    await listenOpen(server, sock);
    this.servers.set(uid, server);
  }

  private serveKnock(socket: net.Socket): void {
    socket.setTimeout(5000, () => socket.destroy());
    socket.on('error', () => undefined);
    readLine(socket, (line) => {
      const parsed = KnockRequestSchema.safeParse(parseJson(line));
      const answer: Promise<KnockAnswer> = parsed.success
        ? this.open(parsed.data.uid).then(() => ({ v: DEVICE_CHANNEL_VERSION, ok: true as const }), (e: unknown) =>
          toRefusal(new AgentError('local', 'DEVICE_CHANNEL_FAILED', `The device service could not make the endpoint for uid ${parsed.data.uid}: ${(e as Error).message}`)))
        : Promise.resolve(toRefusal(new AgentError('bad-answer', 'DEVICE_REQUEST_INVALID', 'The knock is not the device-channel protocol.')));
      void answer.then((a) => socket.end(`${JSON.stringify(a)}\n`));
    }, () => socket.destroy());
  }

  private serveUser(uid: number, socket: net.Socket): void {
    socket.setTimeout(MAX_REQUEST_DEADLINE_MS + 5000, () => socket.destroy());
    socket.on('error', () => undefined);
    readLine(socket, (line) => {
      void this.opts.handle(uid, parseJson(line)).then((a) => {
        if (!socket.destroyed) socket.end(`${JSON.stringify(a)}\n`);
      });
    }, () => socket.destroy());
  }

  async close(): Promise<void> {
    const all = [this.knock, ...this.servers.values()].filter((s): s is net.Server => Boolean(s));
    await Promise.all(all.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.clear();
    this.knock = undefined;
  }
}

type Exchange = { ok: true; message: unknown } | { ok: false; reason: 'absent' | 'refused' | 'denied' | 'timeout' | 'closed'; detail: string };

/** One request line, one answer line, within the deadline. */
export function exchange(file: string, message: unknown, deadlineMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.createConnection(file);
    let done = false;
    const finish = (r: Exchange) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout', detail: `no answer within ${deadlineMs} ms` }), deadlineMs);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const reason = e.code === 'ENOENT' || e.code === 'ENOTDIR' ? 'absent' : e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'EACCES' || e.code === 'EPERM' ? 'denied' : 'closed';
      finish({ ok: false, reason, detail: e.code ?? e.message });
    });
    socket.on('connect', () => socket.write(`${JSON.stringify(message)}\n`));
    readLine(socket, (line) => finish({ ok: true, message: parseJson(line) }), () => finish({ ok: false, reason: 'closed', detail: 'answer too long' }));
    socket.on('end', () => finish({ ok: false, reason: 'closed', detail: 'closed without an answer' }));
  });
}

export interface UnixDeviceChannelOptions {
  dir: string;
  uid: number;
  /** How to start the device side, for messages: systemctl on Linux, launchctl on macOS. */
  startCommand: string;
}

/** The user side's end on Linux and macOS. */
export class UnixDeviceChannel implements DeviceChannel {
  readonly startCommand: string;

  constructor(private readonly opts: UnixDeviceChannelOptions) {
    this.startCommand = opts.startCommand;
  }

  get description(): string {
    return userSocketPath(this.opts.dir, this.opts.uid);
  }

  holdsMachineCredentials(keytab: string): boolean {
    if (this.opts.uid === 0) return true;
    try {
      // A keytab this account owns is its own (a lab realm, a service account's): reading it takes nothing from anyone.
      return fs.statSync(keytab.replace(/^FILE:/, '')).uid === this.opts.uid;
    } catch {
      return false;
    }
  }

  async deviceToken(req: Omit<DeviceTokenRequest, 'v' | 'op'>): Promise<{ deviceToken: string; iwaUrl: string }> {
    const started = Date.now();
    const sock = this.description;
    const message = { v: DEVICE_CHANNEL_VERSION, op: 'device-token', ...req };
    // A little longer than the device side's own deadline, so that its "timed out" answer arrives rather than silence.
    let r = await exchange(sock, message, req.deadlineMs + ANSWER_GRACE_MS);
    if (!r.ok && (r.reason === 'absent' || r.reason === 'refused')) {
      // No endpoint for this user yet (they logged in after the device side started): knock, then try once more.
      const k = await exchange(knockPath(this.opts.dir), { v: DEVICE_CHANNEL_VERSION, op: 'open', uid: this.opts.uid }, Math.min(5000, req.deadlineMs));
      if (!k.ok) {
        if (k.reason === 'timeout') throw deviceServiceTimeout(knockPath(this.opts.dir), Math.min(5000, req.deadlineMs));
        throw deviceServiceDown(this.opts.dir, this.startCommand, k.reason === 'absent' ? `${knockPath(this.opts.dir)} does not exist` : `nothing answers at ${knockPath(this.opts.dir)} (${k.detail})`);
      }
      const knock = KnockAnswerSchema.safeParse(k.message);
      if (!knock.success) throw deviceServiceBadAnswer(knockPath(this.opts.dir));
      if (!knock.data.ok) throw fromRefusal(knock.data);
      r = await exchange(sock, { ...message, deadlineMs: Math.max(1000, req.deadlineMs - (Date.now() - started)) }, Math.max(1000, req.deadlineMs - (Date.now() - started)) + ANSWER_GRACE_MS);
    }
    if (!r.ok) {
      switch (r.reason) {
        case 'timeout':
          throw deviceServiceTimeout(sock, req.deadlineMs + ANSWER_GRACE_MS);
        case 'denied':
          throw new AgentError('config', 'DEVICE_CHANNEL_DENIED', `This user (uid ${this.opts.uid}) may not open the device service's endpoint ${sock} (${r.detail}).`,
            `The directory ${path.dirname(sock)} must belong to uid ${this.opts.uid}: restart the device service (${this.startCommand}), which makes it so.`);
        default:
          throw deviceServiceDown(this.opts.dir, this.startCommand, `${sock}: ${r.detail}`);
      }
    }
    const answer = DeviceTokenAnswerSchema.safeParse(r.message);
    if (!answer.success) throw deviceServiceBadAnswer(sock);
    if (!answer.data.ok) throw fromRefusal(answer.data);
    return { deviceToken: answer.data.deviceToken, iwaUrl: answer.data.iwaUrl };
  }
}

/** The platform's `deviceChannel` on Linux and macOS (where the process has a uid: always, there). */
export function unixDeviceChannel(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): { deviceChannel?: UnixDeviceChannel } {
  if (typeof process.getuid !== 'function') return {};
  const startCommand = platform === 'darwin' ? DARWIN_START_COMMAND : LINUX_START_COMMAND;
  return { deviceChannel: new UnixDeviceChannel({ dir: channelDir(platform, env), uid: process.getuid(), startCommand }) };
}

/**
 * The device side's listener for this OS, or why there is none. Windows' channel is data only so far
 * (device-channel-win32.ts): Node cannot put an ACL on a named pipe it creates.
 */
export function deviceChannelServer(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, handle: UnixChannelServerOptions['handle'], log: (line: string) => void): UnixChannelServer | string {
  if (platform !== 'linux' && platform !== 'darwin') return `no device channel on ${platform} in this version (docs/PROTOCOL.md §13)`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'the device channel is served by root only (the device service); this process is not root';
  return new UnixChannelServer({ dir: channelDir(platform, env), handle, log, ...(platform === 'linux' ? { userRuntimeRoot: '/run/user' } : { userRuntimeRoot: '/nonexistent' }) });
}

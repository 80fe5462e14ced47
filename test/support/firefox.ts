import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './net.js';
import { waitFor } from './wait.js';

export const FIREFOX = ['/usr/bin/firefox-esr', '/usr/bin/firefox'].find((p) => fs.existsSync(p));

/**
 * Why the Firefox proof cannot run here, or undefined when it can. Firefox reads /etc/firefox/policies/policies.json;
 * as root, a private mount namespace lays the test's directory over /etc (overlayfs) without touching the machine.
 */
export function firefoxUnavailable(): string | undefined {
  if (!FIREFOX) return 'skipped: Firefox is not installed (apt install firefox-esr)';
  if (process.getuid?.() !== 0) return 'skipped: showing Firefox the policy directory needs root (unshare -m, overlay mount over /etc)';
  return undefined;
}


/** A user's Firefox profile as Firefox itself lays it out: profiles.ini naming one profile directory (classic location by default). */
export function addFirefoxProfile(home: string, name: string, root = path.join(home, '.mozilla', 'firefox')): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const ini = path.join(root, 'profiles.ini');
  const n = fs.existsSync(ini) ? (fs.readFileSync(ini, 'utf8').match(/^\[Profile\d+\]/gm) ?? []).length : 0;
  fs.appendFileSync(ini, `${n === 0 ? '[General]\nStartWithLastProfile=1\nVersion=2\n\n' : ''}[Profile${n}]\nName=${name}\nIsRelative=1\nPath=${name}\n${n === 0 ? 'Default=1\n' : ''}\n`);
  return dir;
}

/** A new, empty Firefox profile: prefs that keep a headless test quiet and let Marionette listen on `port`. */
export function writeProfilePrefs(profile: string, port: number, extra: Record<string, string | number | boolean> = {}): void {
  fs.mkdirSync(profile, { recursive: true });
  fs.writeFileSync(path.join(profile, 'user.js'), [
    `user_pref("marionette.port", ${port});`,
    'user_pref("devtools.jsonview.enabled", false);', // the page's raw JSON, not the JSON viewer
    'user_pref("browser.shell.checkDefaultBrowser", false);',
    'user_pref("datareporting.policy.dataSubmissionEnabled", false);',
    'user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);',
    'user_pref("app.update.disabledForTesting", true);',
    ...Object.entries(extra).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`),
    '',
  ].join('\n'));
}

/** Firefox's Marionette protocol: `<length>:<json>` frames; commands are [0, id, name, params], answers [1, id, error, result]. */
class Marionette {
  private buf = Buffer.alloc(0);
  private readonly waiting = new Map<number, (m: unknown[]) => void>();
  private next = 1;
  private hello?: (v: unknown) => void;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const colon = this.buf.indexOf(0x3a);
        if (colon < 0) break;
        const len = Number(this.buf.subarray(0, colon).toString('ascii'));
        if (this.buf.length < colon + 1 + len) break;
        const msg = JSON.parse(this.buf.subarray(colon + 1, colon + 1 + len).toString('utf8')) as unknown;
        this.buf = this.buf.subarray(colon + 1 + len);
        if (Array.isArray(msg)) this.waiting.get(msg[1] as number)?.(msg);
        else this.hello?.(msg);
      }
    });
  }

  static connect(port: number): Promise<Marionette> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const m = new Marionette(socket);
      m.hello = () => resolve(m);
      socket.once('error', reject);
    });
  }

  send(name: string, params: Record<string, unknown>, timeoutMs: number): Promise<{ error: unknown; result: unknown }> {
    const id = this.next++;
    const body = JSON.stringify([0, id, name, params]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Marionette ${name} timed out after ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve({ error: m[2], result: m[3] });
      });
      this.socket.write(`${Buffer.byteLength(body)}:${body}`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface FirefoxPageOptions {
  home: string;
  profile: string;
  /** Laid over /etc: holds firefox/policies/policies.json. */
  etcOverlay: string;
  pageLoadMs?: number;
  /** More environment for Firefox (e.g. XDG_RUNTIME_DIR, where p11-kit's client module finds its server). */
  env?: Record<string, string>;
  /** More user.js preferences (e.g. network.dns.localDomains for a second host name on loopback). */
  prefs?: Record<string, string | number | boolean>;
}

/** `sh -c` script: lays "$0" (upper) over /etc with workdir "$1", then runs the rest of the arguments. */
const OVERLAY_ETC = 'upper="$0"; work="$1"; shift; mount -t overlay overlay -o "lowerdir=/etc,upperdir=$upper,workdir=$work" /etc && exec "$@"';

/**
 * `p11-kit server` as the user unit device-trust-agent-p11-kit.service runs it, on $XDG_RUNTIME_DIR/p11-kit/pkcs11.
 * p11-kit reads no user configuration for root, so (tests run as root) the agent's module file from
 * ~/.config/pkcs11/modules is shown to it as /etc/pkcs11/modules in a private mount namespace.
 */
export async function startP11KitServer(opts: { moduleFile: string; runtimeDir: string; scratch: string }): Promise<{ socket: string; stop(): void }> {
  const upper = path.join(opts.scratch, 'p11-upper');
  const work = path.join(opts.scratch, 'p11-work');
  fs.mkdirSync(path.join(upper, 'pkcs11', 'modules'), { recursive: true });
  fs.mkdirSync(work, { recursive: true });
  fs.copyFileSync(opts.moduleFile, path.join(upper, 'pkcs11', 'modules', path.basename(opts.moduleFile)));
  const socket = path.join(opts.runtimeDir, 'p11-kit', 'pkcs11');
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  const child = spawn('unshare', ['-m', 'sh', '-c', OVERLAY_ETC, upper, work, 'p11-kit', 'server', '--foreground', '--name', socket, 'pkcs11:token=NSS%20Certificate%20DB'], {
    // p11-kit loads every registered module, tpm2-pkcs11's too: without HOME that library makes its store in the
    // working directory (the repository: an empty tpm2_pkcs11.sqlite3 was once committed). Give it a scratch home.
    stdio: ['ignore', 'ignore', 'pipe'], detached: true, cwd: opts.scratch,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.scratch, TPM2_PKCS11_STORE: path.join(opts.scratch, 'tpm2_pkcs11') },
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  await waitFor('the p11-kit socket', () => fs.existsSync(socket), 10_000, 100, () => (child.exitCode !== null ? 'p11-kit exited' : undefined)).catch((e: Error) => {
    kill(child);
    throw new Error(`p11-kit server did not start (${e.message}): ${stderr}`);
  });
  return { socket, stop: () => kill(child) };
}

/**
 * Opens `url` in headless Firefox (its own profile, our /etc overlay) and returns the page's text, or what went
 * wrong. Bounded: Firefox is killed after the page load timeout plus startup time, whatever happens.
 */
export async function firefoxPageText(url: string, opts: FirefoxPageOptions): Promise<{ text: string; error?: string }> {
  const port = await freePort();
  writeProfilePrefs(opts.profile, port, opts.prefs);
  const work = fs.mkdtempSync(path.join(path.dirname(opts.etcOverlay), 'ovl-work-'));
  const child: ChildProcess = spawn('unshare', ['-m', 'sh', '-c', OVERLAY_ETC, opts.etcOverlay, work, FIREFOX!, '--headless', '--marionette', '--no-remote', '--profile', opts.profile], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.home, MOZ_HEADLESS: '1', ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const pageLoadMs = opts.pageLoadMs ?? 15_000;
  const killer = setTimeout(() => kill(child), pageLoadMs + 40_000);
  let m: Marionette | undefined;
  try {
    const start = Date.now();
    while (!m) {
      try {
        m = await Marionette.connect(port);
      } catch {
        if (Date.now() - start > 30_000 || child.exitCode !== null) return { text: '', error: `Firefox did not start: ${stderr}` };
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const session = await m.send('WebDriver:NewSession', { capabilities: { alwaysMatch: { timeouts: { pageLoad: pageLoadMs } } } }, 30_000);
    if (session.error) return { text: '', error: `new session: ${JSON.stringify(session.error)}` };
    // A page held by a client-certificate prompt never finishes loading: give up shortly after the page-load timeout.
    const nav = await m.send('WebDriver:Navigate', { url }, pageLoadMs + 2_000).catch((e: Error) => ({ error: e.message, result: null }));
    const body = await m.send('WebDriver:ExecuteScript', { script: 'return document.body ? document.body.textContent : ""', args: [] }, 3_000).catch((e: Error) => ({ error: e.message, result: null }));
    const text = String((body.result as { value?: unknown } | null)?.value ?? '');
    return nav.error ? { text, error: `navigate: ${JSON.stringify(nav.error)}` } : { text };
  } finally {
    clearTimeout(killer);
    if (m) await m.send('Marionette:Quit', { flags: ['eForceQuit'] }, 5_000).catch(() => undefined);
    m?.close();
    kill(child);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function kill(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // the whole group: unshare, sh and Firefox's content processes
  } catch {
    /* already gone */
  }
}

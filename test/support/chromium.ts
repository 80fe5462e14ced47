import { execFile } from 'node:child_process';
import fs from 'node:fs';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

/**
 * Why a Chromium proof cannot run here, or undefined when it can. Chromium reads managed policy only from
 * /etc/chromium/policies/managed; as root, a private mount namespace shows it the agent's directory there.
 */
export function chromiumUnavailable(): string | undefined {
  if (!CHROMIUM) return 'skipped: Chromium is not installed (apt install chromium)';
  if (process.getuid?.() !== 0) return 'skipped: mounting the policy directory over /etc/chromium needs root (unshare -m)';
  return undefined;
}

/**
 * Loads `url` in headless Chromium with `home` as HOME (so its NSS database) and `chromiumEtc` mounted
 * over /etc/chromium, and returns the page's text.
 */
export function chromiumPageText(url: string, opts: { home: string; chromiumEtc: string; timeoutMs?: number; env?: Record<string, string> }): Promise<string> {
  const flags = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${opts.home}/chromium-profile`,
    '--virtual-time-budget=5000', '--dump-dom', url,
  ];
  fs.mkdirSync(opts.chromiumEtc, { recursive: true });
  const script = 'mount --bind "$0" /etc/chromium && exec "$@"';
  return new Promise((resolve, reject) => {
    execFile('unshare', ['-m', 'sh', '-c', script, opts.chromiumEtc, CHROMIUM!, ...flags],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.home, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && !stdout) reject(new Error(`chromium failed: ${err.message}\n${stderr}`));
        else resolve(stdout.replace(/<[^>]+>/g, '').replace(/&quot;/g, '"').replace(/&amp;/g, '&').trim());
      });
  });
}

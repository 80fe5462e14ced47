/**
 * How the dashboard is served: from the privileged custom scheme app://dashboard/ (never file://), with a
 * strict Content-Security-Policy on every answer. Electron-free, so the Chromium tests serve the renderer
 * with exactly these headers and the static CSP check reads the same constant.
 */
import fs from 'node:fs';
import path from 'node:path';

export const APP_SCHEME = 'app';
export const APP_HOST = 'dashboard';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const DASHBOARD_URL = `${APP_ORIGIN}/index.html`;

/**
 * No remote content, no inline script or style, no eval, no plugins, no framing, no form posts, no network
 * from the page at all: everything the dashboard knows comes through the preload API.
 */
export const CSP_DIRECTIVES: Record<string, string> = {
  'default-src': "'none'",
  'script-src': "'self'",
  'style-src': "'self'",
  'img-src': "'self' data:",
  'font-src': "'self'",
  'connect-src': "'none'",
  'object-src': "'none'",
  'base-uri': "'none'",
  'form-action': "'none'",
  'frame-ancestors': "'none'",
};
export const CSP = Object.entries(CSP_DIRECTIVES).map(([k, v]) => `${k} ${v}`).join('; ');
/** The same policy for the page's <meta> tag, which cannot carry frame-ancestors (browsers ignore it there). */
export const CSP_META = Object.entries(CSP_DIRECTIVES).filter(([k]) => k !== 'frame-ancestors').map(([k, v]) => `${k} ${v}`).join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
};

export interface Asset {
  file: string;
  headers: Record<string, string>;
}

/** Headers of every answer: the CSP as a header as well as in the page, no sniffing, no referrer. */
export function assetHeaders(contentType: string): Record<string, string> {
  return { 'content-type': contentType, 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' };
}

/**
 * Maps a dashboard URL to a file under `root`, or undefined: another host, a path that climbs out of the
 * root (also encoded), a type we do not serve, or a file that is not there.
 */
export function resolveAsset(root: string, requestUrl: string, expectedOrigin = APP_ORIGIN): Asset | undefined {
  let u: URL;
  try {
    u = new URL(requestUrl);
  } catch {
    return undefined;
  }
  if (`${u.protocol}//${u.host}` !== expectedOrigin) return undefined;
  let rel: string;
  try {
    rel = decodeURIComponent(u.pathname);
  } catch {
    return undefined;
  }
  if (rel === '/' || rel === '') rel = '/index.html';
  if (rel.includes('\0')) return undefined;
  const base = path.resolve(root);
  const file = path.resolve(base, `.${path.posix.normalize(rel)}`);
  if (file !== base && !file.startsWith(base + path.sep)) return undefined;
  const type = TYPES[path.extname(file).toLowerCase()];
  if (!type) return undefined;
  try {
    if (!fs.statSync(file).isFile()) return undefined;
  } catch {
    return undefined;
  }
  return { file, headers: assetHeaders(type) };
}

#!/usr/bin/env node
// Renders the tray icons (tray-*.svg) to PNG with Debian's Chromium: 32 px and @2x 64 px, which Electron's
// nativeImage picks by display scale. Run after editing an SVG: node build/tray/render.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const dir = path.dirname(fileURLToPath(import.meta.url));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.svg'))) {
    const svg = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const [scale, suffix] of [[1, ''], [2, '@2x']]) {
      const page = await browser.newPage({ viewport: { width: 32, height: 32 }, deviceScaleFactor: scale });
      await page.setContent(`<html><body style="margin:0;background:transparent">${svg.replace('width="64" height="64"', 'width="32" height="32"')}</body></html>`);
      await page.screenshot({ path: path.join(dir, f.replace('.svg', `${suffix}.png`)), omitBackground: true });
      await page.close();
    }
  }
} finally {
  await browser.close();
}

/** What tests need of the machine itself: its commands, and block devices made for a test. */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Whether a command is on PATH. */
export const hasCommand = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/**
 * A real LUKS2 device and a blank one, each an image in `dir` on a loop device; the loop devices are added to
 * `loops` (the caller detaches them after its tests). Undefined when no loop device can be attached.
 */
export function luksAndBlankDevices(dir: string, loops: string[]): { luks: string; blank: string } | undefined {
  const attach = (file: string) => {
    const r = spawnSync('losetup', ['-f', '--show', file], { encoding: 'utf8' });
    if (r.status !== 0) return undefined;
    loops.push(r.stdout.trim());
    return r.stdout.trim();
  };
  const img = path.join(dir, 'luks.img');
  const blankImg = path.join(dir, 'blank.img');
  fs.writeFileSync(img, Buffer.alloc(20 * 1024 * 1024));
  fs.writeFileSync(blankImg, Buffer.alloc(4 * 1024 * 1024));
  const luks = attach(img);
  const blank = attach(blankImg);
  if (!luks || !blank) return undefined;
  // A fast KDF keeps this quick; the header is a real LUKS2 header all the same.
  execFileSync('cryptsetup', ['luksFormat', '--type', 'luks2', '--batch-mode', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '-', luks], { input: 'lab-passphrase' });
  return { luks, blank };
}

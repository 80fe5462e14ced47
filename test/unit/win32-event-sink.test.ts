/**
 * Windows Event Log delivery: Write-EventLog fails when the source is not registered (only an administrator can
 * register it; `install --device` does, from every installer). A failure is reported instead of vanishing, and
 * nothing else is tried: eventcreate writes only under sources it registered itself (issue 25.4). The Windows tools are stood in for by scripts of the same names on PATH that
 * exit as the real ones would; the sink's own process handling is the real one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { platformSink, type SinkEvent } from '../../src-main/platform/event-sinks.js';
import { REPO, tempDir } from '../support/agent.js';

function fakeTools(codes: { powershell: number; eventcreate: number }) {
  const dir = tempDir('evbin');
  const log = path.join(dir, 'calls.log');
  for (const [name, code] of [['powershell.exe', codes.powershell], ['eventcreate', codes.eventcreate]] as const) {
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\necho "${name} $DTA_EVENT_ID" | sed "s/ *$//" >> "${log}"\nexit ${code}\n`, { mode: 0o755 });
  }
  return { dir, log };
}

async function deliver(e: SinkEvent, codes: { powershell: number; eventcreate: number }) {
  const tools = fakeTools(codes);
  const oldPath = process.env.PATH;
  process.env.PATH = `${tools.dir}:${oldPath}`;
  const undelivered: string[] = [];
  try {
    platformSink('win32', (_e, reason) => undelivered.push(reason))(e);
    for (let i = 0; i < 100 && !undelivered.length; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const calls = fs.existsSync(tools.log) ? fs.readFileSync(tools.log, 'utf8') : '';
      if (codes.powershell === 0 && calls.includes('powershell.exe')) break;
      if (codes.eventcreate === 0 && calls.includes('eventcreate')) break;
    }
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    process.env.PATH = oldPath;
  }
  return { undelivered, calls: fs.existsSync(tools.log) ? fs.readFileSync(tools.log, 'utf8').trim().split('\n') : [] };
}

test('Write-EventLog failing (source not registered) is reported as undelivered, not silent; eventcreate is never tried', async () => {
  assert.ok(fs.existsSync(REPO));
  const enrolled: SinkEvent = { id: 1000, level: 'info', title: 'Certificate enrolled', message: 'ok' };
  const lost = await deliver(enrolled, { powershell: 1, eventcreate: 0 });
  assert.deepEqual(lost.calls, ['powershell.exe 1000'], 'eventcreate (which would refuse our source) is not run');
  assert.equal(lost.undelivered.length, 1);
  assert.match(lost.undelivered[0]!, /^powershell\.exe: exit 1$/);

  const fine = await deliver(enrolled, { powershell: 0, eventcreate: 0 });
  assert.deepEqual(fine.calls, ['powershell.exe 1000'], 'once Write-EventLog succeeds nothing else runs');
  assert.deepEqual(fine.undelivered, []);
});

/**
 * Windows Event Log delivery: Write-EventLog fails when the source is not registered (only an administrator can
 * register it; the installer does). A failure must go on to eventcreate and, when nothing takes the event, be
 * reported instead of vanishing. The Windows tools are stood in for by scripts of the same names on PATH that
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

test('Write-EventLog failing (source not registered) goes on to eventcreate; nothing taking the event is reported, not silent', async () => {
  assert.ok(fs.existsSync(REPO));
  const enrolled: SinkEvent = { id: 1000, level: 'info', title: 'Certificate enrolled', message: 'ok' };
  const viaEventcreate = await deliver(enrolled, { powershell: 1, eventcreate: 0 });
  assert.deepEqual(viaEventcreate.calls, ['powershell.exe 1000', 'eventcreate'], 'eventcreate got the event after Write-EventLog failed');
  assert.deepEqual(viaEventcreate.undelivered, []);

  const lost = await deliver(enrolled, { powershell: 1, eventcreate: 1 });
  assert.equal(lost.undelivered.length, 1);
  assert.match(lost.undelivered[0]!, /powershell\.exe: exit 1; eventcreate: exit 1/);

  const high = await deliver({ id: 2001, level: 'warning', title: 'x', message: 'y' }, { powershell: 1, eventcreate: 0 });
  assert.deepEqual(high.calls, ['powershell.exe 2001'], 'eventcreate cannot carry IDs above 1000');
  assert.match(high.undelivered[0] ?? '', /powershell\.exe: exit 1/);

  const fine = await deliver(enrolled, { powershell: 0, eventcreate: 0 });
  assert.deepEqual(fine.calls, ['powershell.exe 1000'], 'once Write-EventLog succeeds nothing else runs');
  assert.deepEqual(fine.undelivered, []);
});

import fs from 'node:fs';
import { AgentError, ExitCode } from '../../base/errors.js';
import { writeSupportBundle } from '../../core/diagnostics/bundle.js';
import type { Command } from '../command.js';

export const supportBundleCommand: Command = {
  name: 'support-bundle',
  summary: 'write a zip for the help desk: configuration, state, diagnostics, events, certificate metadata (secrets redacted)',
  usage: `device-trust-agent support-bundle <file.zip> [--no-diagnose] [--force]
  --no-diagnose   do not run the diagnostics (faster; the bundle then has no diagnostics.json)
  --force         replace <file.zip> if it exists
The zip holds a README.txt that explains each file. Tokens, keys and passwords are redacted.`,
  takesArgs: true,
  options: { 'no-diagnose': { type: 'boolean' }, force: { type: 'boolean' } },
  async run(ctx) {
    const file = ctx.args[0];
    if (!file || ctx.args.length > 1) throw new AgentError('config', 'USAGE', 'Name one file to write, e.g. device-trust-agent support-bundle bundle.zip');
    if (fs.existsSync(file) && !ctx.values.force) throw new AgentError('config', 'USAGE', `${file} exists; choose another name or add --force.`);
    const r = await writeSupportBundle({ loaded: ctx.config(), context: ctx.context, file, diagnose: !ctx.values['no-diagnose'], env: ctx.io.env, version: '0.1.0' });
    if (ctx.json) ctx.io.out(JSON.stringify({ ok: true, file: r.file, bytes: r.bytes, entries: r.entries, worst: r.report?.worst ?? null }, null, 2));
    else ctx.io.out(`Support bundle written to ${r.file} (${r.bytes} bytes): ${r.entries.join(', ')}.${r.report ? ` Diagnostics: ${r.report.worst}.` : ''}`);
    return ExitCode.OK;
  },
};

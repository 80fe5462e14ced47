import { parseArgs } from 'node:util';
import { runTask, type RunResult, type TaskKind } from '../core/agent.js';
import { loadConfig, type LoadedConfig } from '../core/config.js';
import { AgentError, ExitCode, exitCodeFor, isAgentError } from '../core/errors.js';
import { getStatus, type StatusReport } from '../core/status.js';
import { Trace } from '../core/trace.js';

const HELP = `device-trust-agent — enroll this device for device trust and keep its certificate current

Usage:
  device-trust-agent run [--user | --device] [--forceRenewal] [--debug [--show-tokens]] [--json]
  device-trust-agent status [--check] [--json]
  device-trust-agent help | --version

Commands:
  run       One pass of the registration task: enroll, renew, or nothing (the default command).
            --user      the user task (default): enrolls the logged-on user's certificate
            --device    the device task (root/SYSTEM): writes the machine-wide browser policy
            --forceRenewal  remove the current certificate and enroll afresh (fixes a revoked or
                        corrupted certificate, or a lost private key)
  status    Shows whether this device is trusted; --check also asks the org (revocation) and
            presents the certificate to the org's mTLS endpoint.

Options:
  --debug               step-by-step account with timings on stderr (tokens redacted)
  --show-tokens         with --debug, print the device and user tokens (for support only)
  --json                machine-readable output on stdout
  --config FILE         configuration file (default ~/.config/device-trust-agent/config.json)
  --org-url URL         the org (install parameter OktaURL=)
  --state-dir DIR       where state, key files and the event log live
  --nss-db DIR          the NSS database to install into (default ~/.pki/nssdb)
  --policy-dir DIR      a Chromium-family managed policy directory (repeatable)
  --tls-ca-file FILE    extra trust anchors (PEM) for TLS to the org and IWA
  --key-algorithm ALG   P-256 (default) or RSA-2048
  Name=Value            install-style parameters: OktaURL=, HttpProxy=, HttpProxyPacLocation=,
                        SkipBrowserSetup=true

Settings precedence: command line > environment (DTA_*) > config file > managed configuration
(/etc/device-trust-agent/*.json) > defaults.

Exit codes: 0 enrolled or renewed · 10 nothing to do · 20 retry later (network, IWA, read-only org)
            30 needs attention (rejected, revoked, refused server answer) · 40 local failure
            64 usage error · 78 configuration error · 70 internal error
`;

const VERSION = '0.1.0';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      user: { type: 'boolean' },
      device: { type: 'boolean' },
      forceRenewal: { type: 'boolean' },
      'force-renewal': { type: 'boolean' },
      debug: { type: 'boolean' },
      'show-tokens': { type: 'boolean' },
      json: { type: 'boolean' },
      check: { type: 'boolean' },
      config: { type: 'string' },
      'org-url': { type: 'string' },
      'state-dir': { type: 'string' },
      'nss-db': { type: 'string' },
      'policy-dir': { type: 'string', multiple: true },
      'tls-ca-file': { type: 'string' },
      'key-algorithm': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
}

export async function main(argv: string[], io: Io): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (e) {
    io.err(`${(e as Error).message}\nRun "device-trust-agent help" for usage.`);
    return ExitCode.USAGE;
  }
  const { values: v } = args;
  const positionals = [...args.positionals];
  const command = positionals[0] && !positionals[0].includes('=') ? positionals.shift()! : 'run';
  if (v.help || command === 'help') {
    io.out(HELP);
    return ExitCode.OK;
  }
  if (v.version || command === 'version') {
    io.out(VERSION);
    return ExitCode.OK;
  }

  const cli: Record<string, unknown> = {};
  for (const p of positionals) {
    const m = /^([A-Za-z][\w]*)=(.*)$/.exec(p);
    if (!m) {
      io.err(`Unexpected argument "${p}". Run "device-trust-agent help" for usage.`);
      return ExitCode.USAGE;
    }
    cli[m[1]!] = m[2];
  }
  if (v['org-url']) cli.orgUrl = v['org-url'];
  if (v['state-dir']) cli.stateDir = v['state-dir'];
  if (v['nss-db']) cli.nssDbDir = v['nss-db'];
  if (v['policy-dir']) cli.browserPolicyDirs = v['policy-dir'];
  if (v['tls-ca-file']) cli.tlsCaFile = v['tls-ca-file'];
  if (v['key-algorithm']) cli.keyAlgorithm = v['key-algorithm'];

  const debug = Boolean(v.debug);
  try {
    const loaded = loadConfig({ cli, ...(v.config ? { configFile: v.config } : {}), env: io.env });
    if (debug) {
      io.err(`Configuration (${loaded.files.length ? loaded.files.join(', ') : 'no files'}):`);
      for (const [k, val] of Object.entries(loaded.config)) io.err(`  ${k} = ${JSON.stringify(val)}  [${loaded.sources[k as keyof typeof loaded.config]}]`);
    }
    switch (command) {
      case 'run':
        return await runCommand(loaded, v, io);
      case 'status':
        return await statusCommand(loaded, Boolean(v.check), Boolean(v.json), io);
      default:
        io.err(`Unknown command "${command}". Run "device-trust-agent help" for usage.`);
        return ExitCode.USAGE;
    }
  } catch (e) {
    return reportError(e, Boolean(v.json), debug, io);
  }
}

async function runCommand(loaded: LoadedConfig, v: ReturnType<typeof parse>['values'], io: Io): Promise<number> {
  if (v.user && v.device) throw new AgentError('config', 'USAGE', '--user and --device cannot be used together.');
  const task: TaskKind = v.device ? 'device' : 'user';
  const trace = new Trace(v.debug ? io.err : undefined, Boolean(v['show-tokens']));
  const result = await runTask({ loaded, task, force: Boolean(v.forceRenewal || v['force-renewal']), trace });
  if (v.json) io.out(JSON.stringify({ ok: true, ...result }, null, 2));
  else io.out(describeRun(result));
  if (v.debug) {
    io.err('Timings:');
    for (const s of trace.steps) io.err(`  ${s.ok ? '✓' : '✗'} ${s.name.padEnd(72)} ${s.ms.toFixed(1).padStart(8)} ms`);
  }
  return result.outcome === 'nothing-to-do' ? ExitCode.NOTHING_TO_DO : ExitCode.OK;
}

function describeRun(r: RunResult): string {
  const lines = [r.message];
  if (r.certificate && r.outcome !== 'nothing-to-do') {
    lines.push(`  device:      ${r.deviceId}`, `  subject:     ${r.certificate.subject}`, `  issuer:      ${r.certificate.issuer}`,
      `  valid until: ${r.certificate.notAfter}`, `  stored in:   ${r.certificate.store} as "${r.certificate.storeId}"`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}

async function statusCommand(loaded: LoadedConfig, check: boolean, json: boolean, io: Io): Promise<number> {
  const report = await getStatus(loaded, { check });
  if (json) io.out(JSON.stringify(report, null, 2));
  else io.out(describeStatus(report));
  return report.state === 'ENROLLED' || report.state === 'RENEWAL_DUE' ? ExitCode.OK : ExitCode.NEEDS_ATTENTION;
}

function describeStatus(r: StatusReport): string {
  const lines = [`${r.state}: ${r.summary}`, `  org:         ${r.orgUrl ?? '(not configured)'}`, `  device:      ${r.deviceId}`, `  store:       ${r.store}`];
  if (r.certificate) {
    lines.push(`  subject:     ${r.certificate.subject}`, `  issuer:      ${r.certificate.issuer}`, `  serial:      ${r.certificate.serialNumber}`,
      `  valid until: ${r.certificate.notAfter}`);
    if (r.certificate.renewFrom) lines.push(`  renews from: ${r.certificate.renewFrom}`);
  }
  if (r.certificatesInStore > 1) lines.push(`  note: ${r.certificatesInStore} device-trust certificates in the store; the next run keeps one.`);
  if (r.lastRun) lines.push(`  last run:    ${r.lastRun.at} ${r.lastRun.outcome}${r.lastRun.code ? ` (${r.lastRun.code})` : ''}: ${r.lastRun.message}`);
  for (const [name, c] of Object.entries(r.checks ?? {})) lines.push(`  check ${name}: ${c.ok ? 'ok' : 'FAILED'} — ${c.detail}`);
  return lines.join('\n');
}

function reportError(e: unknown, json: boolean, debug: boolean, io: Io): number {
  const err = isAgentError(e) ? e : undefined;
  const code = exitCodeFor(e);
  if (json) {
    io.out(JSON.stringify({ ok: false, error: { code: err?.code ?? 'INTERNAL', class: err?.failure ?? 'internal', message: (e as Error).message, remedy: err?.remedy } }, null, 2));
  } else {
    io.err(`Error: ${(e as Error).message}`);
    if (err?.remedy) io.err(`What to do: ${err.remedy}`);
    if (!err || debug) io.err((e as Error).stack ?? '');
  }
  return code;
}

import { parseArgs } from 'node:util';
import type { LoadedConfig } from '../core/config.js';
import type { AgentContext } from '../core/context.js';
import { ExitCode, exitCodeFor, isAgentError } from '../base/errors.js';
import { AGENT_VERSION } from '../base/version.js';
import { neutralizeJsonControls, safeText } from '../base/safe-text.js';
import type { Command, Io, OptionSpec, OptionValues } from './command.js';
import { COMMANDS } from './commands/index.js';

export type { Io } from './command.js';

const VERSION = AGENT_VERSION;

/** Options every command accepts: output style and where settings come from. */
const GLOBAL_OPTIONS: OptionSpec = {
  debug: { type: 'boolean' },
  json: { type: 'boolean' },
  config: { type: 'string' },
  /** Owner-only JSON of install-time settings (secrets): what `install` registers instead of secrets on argv. */
  'settings-file': { type: 'string' },
  'org-url': { type: 'string' },
  'state-dir': { type: 'string' },
  'nss-db': { type: 'string' },
  'policy-dir': { type: 'string', multiple: true },
  'tls-ca-file': { type: 'string' },
  'key-algorithm': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
};

const GLOBAL_HELP = `Options for every command:
  --debug               step-by-step account with timings on stderr (tokens redacted)
  --json                machine-readable output on stdout
  --config FILE         configuration file (default ~/.config/device-trust-agent/config.json)
  --settings-file FILE  owner-only install-time settings (secrets) that install writes; read like Name=Value
  --org-url URL         the org (install parameter OktaURL=)
  --state-dir DIR       where state, key files and the event log live
  --nss-db DIR          the NSS database to install into (default ~/.pki/nssdb)
  --policy-dir DIR      a Chromium-family managed policy directory (repeatable)
  --tls-ca-file FILE    extra trust anchors (PEM) for TLS to the org and IWA
  --key-algorithm ALG   P-256 (default) or RSA-2048
  Name=Value            install-style parameters: OktaURL=, HttpProxy=, HttpProxyPacLocation=,
                        SkipBrowserSetup=true, SkipTPM=true

Settings precedence, per setting: managed configuration > command line > environment (DTA_*) > config file
> defaults; managed configuration is (Windows HKLM\\SOFTWARE\\Policies\\Okta\\DeviceTrust > HKLM\\SOFTWARE\\Okta\\DeviceTrust; macOS managed preferences
com.example.devicetrustagent; Linux /etc/device-trust-agent/*.json).

Exit codes: 0 success · 10 nothing to do · 20 retry later (network, IWA, read-only org)
            30 needs attention (rejected, revoked, refused server answer) · 40 local failure
            64 usage error · 78 configuration error · 70 internal error`;

function help(command?: Command): string {
  if (command) return `Usage: ${command.usage}\n\n${GLOBAL_HELP}\n`;
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `device-trust-agent — enroll this device for device trust and keep its certificate current

Usage: device-trust-agent <command> [options]   (run "device-trust-agent help <command>" for its options)

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

${GLOBAL_HELP}
`;
}

/** The sub-command an argument list asks for: its first word that is neither an option nor Name=Value; `run` by default. */
export function commandNameOf(argv: string[]): string {
  const first = argv.find((a) => !a.startsWith('-'));
  return first && !first.includes('=') ? first : 'run';
}

/**
 * What every command is wired with, loaded only once a command runs: `help` and `--version` never pay for
 * configuration schemas, platforms or HTTP. One after another: on Node 20, concurrent import()s of graphs that
 * share modules can fail to link at random ("request for 'node:fs' is not in cache", nodejs/node#52187), which
 * ended a test's daemon with an internal error. The start-up snapshot (cli/snapshot-entry.ts) loads the same.
 */
export async function loadWiring() {
  const config = await import('../core/config.js');
  const safe = await import('../base/safe-text.js');
  const platform = await import('../platform/index.js');
  const forwarding = await import('../core/fleet/forwarding.js');
  const context = await import('../core/context.js');
  const keyring = await import('../core/secrets/keyring.js');
  return { config, safe, platform, forwarding, context, keyring };
}

export async function main(argv: string[], rawIo: Io): Promise<number> {
  const io = safeIo(rawIo, argv.includes('--show-tokens') && argv.includes('--debug'));
  const first = argv.find((a) => !a.startsWith('-'));
  const name = commandNameOf(argv);
  if (name === 'help') {
    const topic = argv.filter((a) => !a.startsWith('-'))[1];
    const entry = COMMANDS.find((c) => c.name === topic);
    io.out(help(entry && (await entry.load())));
    return ExitCode.OK;
  }
  if (name === 'version' || argv.includes('--version')) {
    io.out(VERSION);
    return ExitCode.OK;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    io.err(`Unknown command "${name}". Run "device-trust-agent help" for the list.`);
    return ExitCode.USAGE;
  }
  const command = await entry.load();
  const wiring = await loadWiring();
  const { loadConfig, printableSetting, describeManaged, readSettingsFile } = wiring.config;
  const { redact } = wiring.safe;
  const { loadPlatform, createManagedConfigReader, platformSink } = wiring.platform;
  // An OS without an implementation fails where a command asks for the platform, as every other platform error does.
  const platformFactory = await loadPlatform().catch((e: unknown) => () => {
    throw e;
  });
  const { configureEventForwarding } = wiring.forwarding;
  const { EventSinks } = wiring.context;
  const { KeyringSecretStore } = wiring.keyring;
  // The one wiring point of this process: the core is handed its platform, this OS's log and managed
  // configuration, and the keyring; it never picks them.
  const context: AgentContext = { platform: platformFactory, managed: createManagedConfigReader(process.platform, io.env), secrets: new KeyringSecretStore(), events: new EventSinks(platformSink(), io.env) };
  const managed = context.managed;
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...GLOBAL_OPTIONS, ...command.options } }) as typeof parsed;
  } catch (e) {
    io.err(`${(e as Error).message}\nRun "device-trust-agent help ${command.name}" for usage.`);
    return ExitCode.USAGE;
  }
  const v = parsed.values;
  if (v.help) {
    io.out(help(command));
    return ExitCode.OK;
  }
  const positionals = parsed.positionals.filter((p, i) => !(i === 0 && p === first && first === command.name));
  const cli: Record<string, unknown> = {};
  const args: string[] = [];
  if (typeof v['settings-file'] === 'string') {
    try {
      Object.assign(cli, readSettingsFile(v['settings-file']));
    } catch (e) {
      return reportError(e, Boolean(v.json), Boolean(v.debug), io);
    }
  }
  for (const p of positionals) {
    const m = /^([A-Za-z]\w*)=(.*)$/.exec(p);
    if (m) cli[m[1]!] = m[2];
    else args.push(p);
  }
  if (args.length && !command.takesArgs) {
    io.err(`Unexpected argument "${args[0]}". Run "device-trust-agent help ${command.name}" for usage.`);
    return ExitCode.USAGE;
  }
  if (v['org-url']) cli.orgUrl = v['org-url'];
  if (v['state-dir']) cli.stateDir = v['state-dir'];
  if (v['nss-db']) cli.nssDbDir = v['nss-db'];
  if (v['policy-dir']) cli.browserPolicyDirs = v['policy-dir'];
  if (v['tls-ca-file']) cli.tlsCaFile = v['tls-ca-file'];
  if (v['key-algorithm']) cli.keyAlgorithm = v['key-algorithm'];

  const debug = Boolean(v.debug);
  const json = Boolean(v.json);
  let loaded: LoadedConfig | undefined;
  const freshConfig = () => loadConfig({ cli, ...(typeof v.config === 'string' ? { configFile: v.config } : {}), env: io.env, managed });
  const config = () => {
    if (!loaded) {
      loaded = freshConfig();
      configureEventForwarding(context.events, loaded.config);
      if (debug) {
        io.err(`Configuration (${loaded.files.length ? loaded.files.join(', ') : 'no files'}):`);
        for (const [k, val] of Object.entries(loaded.config)) {
          const key = k as keyof typeof loaded.config;
          const by = loaded.managed[key];
          io.err(redact(`  ${k} = ${printableSetting(key, val)}  [${loaded.sources[key]}${by ? `: ${by}` : ''}]`));
        }
        for (const l of describeManaged(loaded)) io.err(redact(l));
      }
    }
    return loaded;
  };
  try {
    const platform = () => context.platform(config().config);
    return await command.run({ config, freshConfig, platform, context, settings: cli, values: v, args, io, argv, debug, json });
  } catch (e) {
    return reportError(e, json, debug, io);
  }
}

/**
 * Everything the program writes goes through the output-safety layer (base/safe-text.ts): no command can print a
 * control character or a secret. `--debug --show-tokens` is the one way to see tokens (support only).
 */
function safeIo(io: Io, showTokens: boolean): Io {
  const clean = (s: string) => neutralizeJsonControls(safeText(s, { max: 0, multiline: true, keepSecrets: showTokens }));
  return { ...io, out: (s) => io.out(clean(s)), err: (s) => io.err(clean(s)) };
}

function reportError(e: unknown, json: boolean, debug: boolean, io: Io): number {
  const err = isAgentError(e) ? e : undefined;
  // Capped and one line: a server's 100 KB error text does not become a 100 KB line.
  const message = safeText(e instanceof Error ? e.message : String(e));
  if (json) {
    io.out(JSON.stringify({ ok: false, error: { code: err?.code ?? 'INTERNAL', class: err?.failure ?? 'internal', message, remedy: err?.remedy } }, null, 2));
  } else {
    io.err(`Error: ${message}`);
    if (err?.remedy) io.err(`What to do: ${err.remedy}`);
    if (!err || debug) io.err(e instanceof Error ? (e.stack ?? '') : '');
  }
  return exitCodeFor(e);
}

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yazl from 'yazl';
import { describeCertificate, parseCertificate } from '../certificates/certificate.js';
import { printableConfig, secretValues, type LoadedConfig } from '../config.js';
import { CredentialFiles } from '../certificates/credentials.js';
import { AgentError } from '../../base/errors.js';
import { EventLog } from '../events.js';
import { writeFileAtomic } from '../../base/fsutil.js';
import { neutralizeJsonControls, redactUrl, safeText, SECRET_MIN_LENGTH } from '../../base/safe-text.js';
import { adminTokenName, type SecretStore } from '../secrets/index.js';
import type { AgentContext } from '../context.js';
import type { PlatformFactory } from '../../platform/types.js';
import { krb5ConfPath, readKrb5Conf } from './directory.js';
import { platformOrNone, runDiagnostics, type DiagnoseOptions } from './run-diagnostics.js';
import { renderReport } from './report.js';
import type { DiagnoseReport } from './types.js';

export const BUNDLE_EVENTS_DAYS = 14;
const BUNDLE_EVENTS_MAX = 5000;

const README = `Device Trust Agent — support bundle
====================================

Written by "device-trust-agent support-bundle" on {{at}} for the help desk.
Tokens, private keys, passwords and other secrets are redacted from every file: no file here
contains the admin API token, a device or user token (JWT), a private key, or a password.

Files
-----
README.txt         this file.
config.json        the effective configuration, where each setting came from (command line,
                   environment, config file, managed configuration, default), and the files read.
state.json         the agent's state: device ID, the current certificate's metadata, the last run.
diagnostics.json   a fresh "device-trust-agent diagnose --json" report (schema
                   device-trust-agent/diagnose, version {{version}}): every probe stage by stage with
                   timings, the org's agent pools, and the findings. Absent with --no-diagnose.
diagnostics.txt    the same report as the agent prints it.
events.jsonl       the agent's event log for the last ${BUNDLE_EVENTS_DAYS} days (at most ${BUNDLE_EVENTS_MAX} events), one JSON
                   object per line: time, id (see the event catalogue in docs/OPERATORS.md), level, title, message.
certificates.json  metadata of the device-trust certificates in the certificate store and of the
                   agent's own credential copies: serial, subject, issuer, validity, SHA-256, and
                   whether the private key file exists. No key material.
environment.json   operating system, Node.js and agent versions, the Kerberos configuration in use
                   (realms, KDCs), and proxy-related environment variables (credentials removed).
krb5.conf          a copy of the Kerberos configuration file in use, if there is one.
`;

/** Secrets matched by shape; plus the exact values the caller knows (the stored admin token). */
export function scrub(text: string, exact: string[]): string {
  let out = neutralizeJsonControls(safeText(text, { max: 0, multiline: true }))
    .replace(/(\b[a-z][\w+.-]*:\/\/)[^/\s:@"]+:[^/\s@"]+@/gi, '$1[credentials redacted]@')
    .replace(/("(?:password|passwd|secret|token|apiToken|adminToken|authorization|p12Password|scepChallenge|challenge)"\s*:\s*)"[^"]*"/gi, '$1"[redacted]"');
  for (const s of exact) if (s && s.length >= SECRET_MIN_LENGTH) out = out.split(s).join('[secret redacted]');
  return out;
}

export interface BundleOptions {
  loaded: LoadedConfig;
  file: string;
  /** Run diagnostics and include the report (default true). */
  diagnose?: boolean;
  diagnoseOptions?: Partial<DiagnoseOptions>;
  /** What the root wired: the platform, the secret store (the admin token is kept out) and the event sinks. */
  context: AgentContext;
  /** Overrides of the context's: null for none. */
  secrets?: SecretStore | null;
  platform?: PlatformFactory | null;
  env?: NodeJS.ProcessEnv;
  version: string;
  now?: () => Date;
}

export interface BundleResult {
  file: string;
  entries: string[];
  bytes: number;
  report: DiagnoseReport | undefined;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The PEM bodies of every private key the agent holds: the bundle is checked against them before it is written. */
function privateKeyBodies(stateDir: string): string[] {
  const creds = new CredentialFiles(stateDir);
  return creds.list().map((tp) => creds.readKeyPem(tp)).filter((k): k is string => Boolean(k))
    .flatMap((pem) => pem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')));
}

/** Writes the support bundle (a zip, owner-only) and returns what went in. */
export async function writeSupportBundle(opts: BundleOptions): Promise<BundleResult> {
  const now = opts.now ?? (() => new Date());
  const env = opts.env ?? process.env;
  const { config } = opts.loaded;
  const stateDir = config.stateDir;

  const secrets = opts.secrets === null ? undefined : (opts.secrets ?? opts.context.secrets);
  // The secrets the configuration marks (challenge, proxy passwords) and the admin token: never in the bundle.
  const exact: string[] = secretValues(config, env).filter((s) => s.length >= SECRET_MIN_LENGTH);
  if (secrets && config.orgUrl) {
    try {
      const token = await secrets.get(adminTokenName(config.orgUrl));
      if (token) exact.push(token);
    } catch {
      /* no keyring: then the token cannot be in anything we read either */
    }
  }
  const platform = platformOrNone(opts.platform === undefined ? opts.context.platform : opts.platform, config);

  let report: DiagnoseReport | undefined;
  if (opts.diagnose !== false) {
    report = await runDiagnostics({ loaded: opts.loaded, context: opts.context, env, ...(secrets ? { secrets } : { secrets: null }), platform: platform ? () => platform : null, ...opts.diagnoseOptions });
  }

  const files: Record<string, string> = {};
  const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  files['config.json'] = json({ config: printableConfig(config), sources: opts.loaded.sources, files: opts.loaded.files,
    // What the admin set wins; the user's values for those settings were ignored (redacted like the rest).
    managed: opts.loaded.managed ?? {}, ignored: opts.loaded.ignored ?? [] });
  files['state.json'] = json(readJson(path.join(stateDir, 'state.json')) ?? null);
  if (report) {
    files['diagnostics.json'] = json(report);
    files['diagnostics.txt'] = renderReport(report) + '\n';
  }
  const events = new EventLog(stateDir, undefined, { sinks: [] }).query({ since: new Date(now().getTime() - BUNDLE_EVENTS_DAYS * 86_400_000), limit: BUNDLE_EVENTS_MAX });
  files['events.jsonl'] = events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : '');

  const store: unknown[] = [];
  if (platform) {
    try {
      for (const c of await platform.store.list()) store.push({ storeId: c.id, ...c.info });
    } catch (e) {
      store.push({ error: (e as Error).message });
    }
  }
  const creds = new CredentialFiles(stateDir);
  const copies = creds.list().map((tp) => {
    const pem = creds.readCertificate(tp);
    let info: unknown = null;
    try {
      info = pem ? describeCertificate(parseCertificate(pem)) : null;
    } catch {
      info = 'unparsable';
    }
    return { keyThumbprint: tp, certificate: info, privateKeyFilePresent: creds.readKeyPem(tp) !== undefined };
  });
  files['certificates.json'] = json({ store: platform?.store.description ?? null, inStore: store, agentCopies: copies });

  const krbFile = krb5ConfPath(env);
  const krb = readKrb5Conf(env);
  // Each value redacted by parsing it as a URL (with or without a scheme), before it is serialized.
  const proxyEnv = Object.fromEntries(Object.entries(env).filter(([k]) => /^(https?_proxy|no_proxy|all_proxy|DTA_HTTP_PROXY|DTA_PAC_URL)$/i.test(k))
    .map(([k, v]) => [k, typeof v === 'string' ? redactUrl(v) : v]));
  files['environment.json'] = json({
    generatedAt: now().toISOString(),
    agentVersion: opts.version,
    platform: process.platform, release: os.release(), arch: process.arch, node: process.version,
    hostname: os.hostname(), user: env.USER ?? env.USERNAME ?? null,
    kerberos: { config: krbFile ?? null, defaultRealm: krb?.defaultRealm ?? null, kdcs: krb?.kdcs ?? {}, ccache: env.KRB5CCNAME ?? null },
    proxyEnvironment: proxyEnv,
  });
  if (krbFile) {
    try {
      files['krb5.conf'] = fs.readFileSync(krbFile, 'utf8');
    } catch {
      /* unreadable: environment.json says which file it was */
    }
  }
  files['README.txt'] = README.replace('{{at}}', now().toISOString()).replace('{{version}}', String(report?.version ?? 1));

  // Every file is scrubbed, then the whole bundle is checked against the secrets we know: better no bundle than a leaky one.
  const keyLines = privateKeyBodies(stateDir);
  const zip = new yazl.ZipFile();
  const entries = ['README.txt', ...Object.keys(files).filter((n) => n !== 'README.txt')];
  for (const name of entries) {
    const text = scrub(files[name]!, exact);
    const leak = [...exact, ...keyLines].find((s) => s && text.includes(s));
    if (leak !== undefined) throw new AgentError('internal', 'BUNDLE_LEAK', `The support bundle was not written: ${name} would have contained a secret.`);
    zip.addBuffer(Buffer.from(text, 'utf8'), name, { mtime: now(), mode: 0o600 });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  const data = Buffer.concat(chunks);
  const target = path.resolve(opts.file);
  writeFileAtomic(target, data, 0o600);
  new EventLog(stateDir, 'support-bundle', { sinks: opts.context.events }).record('SUPPORT_BUNDLE_WRITTEN', `Support bundle written to ${target} (${data.length} bytes).`, { entries });
  return { file: target, entries, bytes: data.length, report };
}

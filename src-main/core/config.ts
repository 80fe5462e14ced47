import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { ManagedConfigReader } from '../platform/types.js';
import { readJsonObjectFile } from '../base/json-file.js';
import { AgentError } from '../base/errors.js';
import { defaultPaths } from '../base/paths.js';
import { redact, redactUrl, registerSecret, urlPassword } from '../base/safe-text.js';
import { PostureSettingsSchema } from './posture/settings.js';

const httpUrl = z.url({ protocol: /^https?$/ });

/** The agent's settings after merging every source; defaults are filled in by loadConfig. */
export const ConfigSchema = z.object({
  orgUrl: z.url({ protocol: /^https$/, error: 'orgUrl must be an https:// URL' }).optional(),
  httpProxy: httpUrl.optional(),
  httpProxyPacLocation: z.url({ protocol: /^(https?|file)$/ }).optional(),
  skipBrowserSetup: z.boolean(),
  /** SkipTPM=true: Windows keeps the key in software even where a TPM is present. */
  skipTpm: z.boolean(),
  stateDir: z.string().min(1),
  nssDbDir: z.string().min(1),
  browserPolicyDirs: z.array(z.string().min(1)),
  /** Directories holding Firefox's policies.json (Linux). */
  firefoxPolicyDirs: z.array(z.string().min(1)),
  /** Also keep the certificate, chain and key as owner-only PEM files here, for other tools (Linux). */
  exportPemDir: z.string().min(1).optional(),
  /** Extra trust anchors (PEM file) for TLS to the org and IWA, added to the system roots. */
  tlsCaFile: z.string().min(1).optional(),
  keyAlgorithm: z.enum(['P-256', 'RSA-2048']),
  /** Lab-only sign-in instead of Kerberos; honoured only for a lab org on loopback. */
  labSignIn: z.boolean(),
  deviceName: z.string().min(1),
  /** Machine identity for the device token (Kerberos principal and its keytab). */
  devicePrincipal: z.string().min(1).optional(),
  deviceKeytab: z.string().min(1),
  /** The certificate issuer CN that marks our certificates in the store. */
  issuerCN: z.string().min(1),
  requestTimeoutMs: z.number().int().positive(),
  /** Diagnostics: the AD domain whose DCs are found by DNS SRV (default: krb5.conf's default realm, lower case). */
  adDomain: z.string().regex(/^[A-Za-z0-9.-]+$/, 'adDomain must be a DNS domain name').optional(),
  /** Clock findings: the domain controller asked for its time over SNTP, host[:port] (default: krb5.conf's first KDC of the default realm, port 123). */
  dcTimeSource: z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, 'dcTimeSource must be host or host:port').optional(),
  /** Diagnostics: the access gateway's authentication-service health URL, when there is one. */
  gatewayHealthUrl: z.url({ protocol: /^https$/, error: 'gatewayHealthUrl must be an https:// URL' }).optional(),
  /** Which enrollment backend issues the certificate: the identity provider's flow, or a SCEP CA (RFC 8894). */
  backend: z.enum(['idp', 'scep']),
  /** SCEP: the CA's endpoint, e.g. http://ca.example.com/scep (SCEP protects its messages itself; the CA is pinned). */
  scepUrl: httpUrl.optional(),
  /** SCEP: the challenge password the CA expects (a secret: never logged). */
  scepChallenge: z.string().min(1).max(1024).optional(),
  /** SCEP: SHA-256 fingerprint of the CA certificate; anything else from GetCACert is refused. */
  scepCaFingerprint: z.string()
    .transform((s) => s.replace(/^sha-?256[:=]?/i, '').replace(/[:\s]/g, '').toLowerCase())
    .pipe(z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 fingerprint: 64 hex digits, colons allowed'))
    .optional(),
  /** SCEP: accept SHA-1 and 3DES when the CA offers nothing stronger (off: such a CA is refused). */
  scepAllowWeak: z.boolean(),
  /** SCEP: browser URL patterns of the mTLS hosts (there is no org discovery to say which hosts want the certificate). */
  scepHostPatterns: z.array(z.string().min(1).max(500)).max(50),
  /** SCEP: renew when the certificate has less than this many days left (keep it within the CA's own renewal window). */
  scepRenewalWindowDays: z.number().positive().max(3650),
  /** SCEP: the longest certificate lifetime accepted (there is no discovery to advertise one); one day of slack on top. */
  scepMaxValidityDays: z.number().positive().max(36_500),
  /** SCEP: how long one run keeps polling a PENDING request before leaving it for the next run. */
  scepPendingWaitSeconds: z.number().nonnegative().max(3600),
  /** Prometheus: node_exporter's textfile-collector directory for device_trust_agent.prom; "off" disables it. */
  metricsDir: z.string().min(1),
  /** SIEM: a remote syslog collector, tcp://host:port or tls://host:port (RFC 5424 over RFC 5425 framing). */
  syslogRemote: z.url({ protocol: /^(tcp|tls)$/, error: 'syslogRemote must be tcp://host:port or tls://host:port' }).optional(),
  /** SIEM: trust anchors (PEM) for the tls:// collector, besides the system roots and tlsCaFile. */
  syslogCaFile: z.string().min(1).optional(),
  /**
   * CA continuity (docs/PROTOCOL.md): SHA-256 fingerprints of CA certificates an admin accepts at renewal although
   * the old CA cannot vouch for them (a CA replaced without a rollover). Honoured from managed configuration only.
   */
  caRolloverFingerprints: z.array(z.string().transform((s) => s.replace(/^sha-?256[:=]?/i, '').replace(/[:\s]/g, '').toLowerCase())
    .pipe(z.string().regex(/^[0-9a-f]{64}$/, 'must be SHA-256 fingerprints: 64 hex digits, colons allowed'))).max(20),
  /**
   * Host patterns: DNS domains (besides the org's own) whose hosts the org may name in its browser host patterns,
   * e.g. "apps.example.com" allows https://apps.example.com and https://[*.]apps.example.com.
   */
  /**
   * Server TLS issuer pins for an org that publishes none (discovery serverTls): base64 SHA-256 of the SPKI of the
   * CAs that issue the org's TLS certificates. Honoured from managed configuration only.
   */
  serverTlsPins: z.array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be base64 SHA-256 SPKI pins (44 characters)')).max(20),
  /**
   * Firefox (Linux): present the device certificate automatically to EVERY site that asks (the old behaviour), not
   * only to the org's hosts. An admin's opt-in; see docs/INSTALLERS.md for the trade-off.
   */
  firefoxSelectAutomatically: z.boolean().optional(),
  hostPatternAllowList: z.array(z.string().regex(/^(\[\*\.\]|\*\.)?[A-Za-z0-9.-]+$/, 'must be DNS domain names')).max(100),
  /** Device posture checks: interval, thresholds, endpoint agents, admin-defined checks (docs/POSTURE.md). */
  posture: PostureSettingsSchema.optional(),
});
export type Config = z.infer<typeof ConfigSchema>;

/** Where each setting came from, for `status` and `--debug`. */
export type ConfigSource = 'cli' | 'env' | 'file' | 'managed' | 'default';

/** A value the user gave for a setting the admin deployed: not used (managed configuration wins). */
export interface IgnoredSetting {
  /** The setting, or for `posture` its unit (`posture.adminChecks`). */
  setting: string;
  /** Where the ignored value came from. */
  source: 'cli' | 'env' | 'file';
  /** The ignored value as it may be printed (secrets redacted through base/safe-text.ts). */
  value: string;
  /** The managed source whose value won (a file, a registry key, a preferences domain). */
  managedBy: string;
}

export interface LoadedConfig {
  config: Config;
  sources: Partial<Record<keyof Config, ConfigSource>>;
  files: string[];
  /** Per setting (and per `posture` unit) the managed source that set it: these the user cannot change. */
  managed: Record<string, string>;
  /** User values (command line, environment, config file) of managed settings, which were not used. */
  ignored: IgnoredSetting[];
}

type Partial_ = Partial<Record<keyof Config, unknown>>;

/**
 * Install-time parameter names (OktaURL=…, HttpProxy=…) and the registry value name (OktaOrgUrl) map onto
 * our settings, so the same words work on a command line, in a managed file and in the registry.
 */
const ALIASES: Record<string, keyof Config> = {
  oktaurl: 'orgUrl',
  oktaorgurl: 'orgUrl',
  orgurl: 'orgUrl',
  httpproxy: 'httpProxy',
  httpproxypaclocation: 'httpProxyPacLocation',
  skipbrowsersetup: 'skipBrowserSetup',
  skiptpm: 'skipTpm',
  firefoxpolicydirs: 'firefoxPolicyDirs',
  exportpemdir: 'exportPemDir',
  statedir: 'stateDir',
  nssdbdir: 'nssDbDir',
  browserpolicydirs: 'browserPolicyDirs',
  tlscafile: 'tlsCaFile',
  keyalgorithm: 'keyAlgorithm',
  labsignin: 'labSignIn',
  devicename: 'deviceName',
  deviceprincipal: 'devicePrincipal',
  devicekeytab: 'deviceKeytab',
  issuercn: 'issuerCN',
  requesttimeoutms: 'requestTimeoutMs',
  addomain: 'adDomain',
  dctimesource: 'dcTimeSource',
  gatewayhealthurl: 'gatewayHealthUrl',
  backend: 'backend',
  enrollmentbackend: 'backend',
  scepurl: 'scepUrl',
  scepchallenge: 'scepChallenge',
  scepcafingerprint: 'scepCaFingerprint',
  scepallowweak: 'scepAllowWeak',
  scephostpatterns: 'scepHostPatterns',
  sceprenewalwindowdays: 'scepRenewalWindowDays',
  scepmaxvaliditydays: 'scepMaxValidityDays',
  sceppendingwaitseconds: 'scepPendingWaitSeconds',
  metricsdir: 'metricsDir',
  syslogremote: 'syslogRemote',
  syslogcafile: 'syslogCaFile',
  carolloverfingerprints: 'caRolloverFingerprints',
  hostpatternallowlist: 'hostPatternAllowList',
  servertlspins: 'serverTlsPins',
  firefoxselectautomatically: 'firefoxSelectAutomatically',
  posture: 'posture',
};

const BOOLEAN_KEYS = new Set<keyof Config>(['skipBrowserSetup', 'skipTpm', 'labSignIn', 'scepAllowWeak', 'firefoxSelectAutomatically']);
const NUMBER_KEYS = new Set<keyof Config>(['requestTimeoutMs', 'scepRenewalWindowDays', 'scepMaxValidityDays', 'scepPendingWaitSeconds']);
const LIST_KEYS = new Set<keyof Config>(['browserPolicyDirs', 'firefoxPolicyDirs']);
/** URL patterns contain colons, so their lists are separated by commas or spaces instead of the path delimiter. */
const PATTERN_LIST_KEYS = new Set<keyof Config>(['scepHostPatterns', 'caRolloverFingerprints', 'hostPatternAllowList', 'serverTlsPins']);

/** Settings that are secrets: shown as "[redacted]" wherever settings are printed. */
export const SECRET_SETTINGS = new Set<keyof Config>(['scepChallenge']);

/** Settings that contain a secret in a URL's user-info (a proxy's password). */
const URL_SECRET_SETTINGS = new Set<keyof Config>(['httpProxy', 'httpProxyPacLocation']);

/**
 * Every secret value the configuration holds (the SCEP challenge, proxy passwords from settings and from the
 * proxy environment variables): registered with the output-safety layer so no sink can write them.
 */
export function secretValues(config: Partial<Config>, env: NodeJS.ProcessEnv = {}): string[] {
  const out: string[] = [];
  for (const k of SECRET_SETTINGS) if (typeof config[k] === 'string') out.push(config[k] as string);
  for (const k of URL_SECRET_SETTINGS) {
    const p = urlPassword(config[k] as string | undefined);
    if (p) out.push(p);
  }
  for (const [name, v] of Object.entries(env)) if (/^(https?_proxy|all_proxy|dta_http_proxy|dta_pac_url)$/i.test(name)) {
    const p = urlPassword(v);
    if (p) out.push(p);
  }
  return out;
}

/** The configuration as it may be written to a file others read (support bundle): secrets replaced. */
export function printableConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const k of Object.keys(out) as (keyof Config)[]) out[k] = printableValue(k, out[k]);
  return out;
}

/**
 * A setting's value with its secrets replaced, before it is serialized: the challenge whole, a URL's password
 * by parsing the URL (base/safe-text.ts `redactUrl`), so a password holding `"` or `@` is never half-shown.
 */
export function printableValue(key: keyof Config, value: unknown): unknown {
  if (value === undefined) return value;
  if (SECRET_SETTINGS.has(key)) return '[redacted]';
  if (URL_SECRET_SETTINGS.has(key) && typeof value === 'string') return redactUrl(value);
  return value;
}

/** A setting's value as it may be printed (`--debug`, status): secrets never appear. */
export function printableSetting(key: keyof Config, value: unknown): string {
  return redact(JSON.stringify(printableValue(key, value)) ?? 'undefined');
}

/**
 * The owner-only settings file `install` writes for the secrets given on its command line (`ScepChallenge=`,
 * a proxy URL with a password), which the registered units reference with `--settings-file` instead of carrying
 * the secrets in argv or a world-readable unit. Read as part of the command line layer; refused unless it is
 * owned by this user and readable by no one else (POSIX), so no other user can plant or read one.
 */
export function readSettingsFile(file: string): Record<string, unknown> {
  if (process.platform !== 'win32') {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (e) {
      throw new AgentError('config', 'CONFIG_UNREADABLE', `Cannot read the settings file ${file}: ${(e as Error).message}.`,
        'Run "device-trust-agent install" again with the same settings, or remove --settings-file from the registered command.');
    }
    const uid = process.getuid?.();
    if ((uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
      throw new AgentError('config', 'CONFIG_INSECURE', `The settings file ${file} holds secrets but is ${st.uid !== uid ? `owned by uid ${st.uid}` : `mode ${(st.mode & 0o777).toString(8)}`}; it must be owned by this user and readable by no one else.`,
        `Run: chmod 600 ${file} (as its owner), or "device-trust-agent install" again.`);
    }
  }
  return readJsonObjectFile(file);
}

/** Whether an install-time parameter (`ScepChallenge=`, `HttpProxy=http://u:p@…`) carries a secret. */
export function isSecretParameter(name: string, value: unknown): boolean {
  const key = ALIASES[name.toLowerCase()];
  if (!key) return false;
  if (SECRET_SETTINGS.has(key)) return true;
  return URL_SECRET_SETTINGS.has(key) && typeof value === 'string' && (urlPassword(value) !== undefined || value.includes('@'));
}

/**
 * Turns `{ "OktaURL": "…", "SkipBrowserSetup": "true" }` into typed settings; unknown keys are an error unless
 * the source is shared with other software (`ignoreUnknown`).
 */
export function normalizeSettings(raw: Record<string, unknown>, origin: string, opts: { ignoreUnknown?: boolean } = {}): Partial_ {
  const out: Partial_ = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === '$schema' || k.startsWith('//')) continue;
    const key = ALIASES[k.toLowerCase()];
    if (!key && opts.ignoreUnknown) continue;
    if (!key) {
      throw new AgentError('config', 'CONFIG_UNKNOWN_KEY', `Unknown setting "${k}" in ${origin}.`,
        `Remove it or correct its name; known settings: ${Object.values(ALIASES).filter((v, i, a) => a.indexOf(v) === i).join(', ')}.`);
    }
    out[key] = coerce(key, v, origin);
  }
  return out;
}

function coerce(key: keyof Config, v: unknown, origin: string): unknown {
  if (typeof v !== 'string') return v;
  // An object setting arrives as JSON text from the registry or the environment.
  if (key === 'posture') {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      throw new AgentError('config', 'CONFIG_INVALID', `${key} in ${origin} must be a JSON object.`);
    }
  }
  if (BOOLEAN_KEYS.has(key)) {
    if (/^(true|1|yes)$/i.test(v)) return true;
    if (/^(false|0|no)$/i.test(v)) return false;
    throw new AgentError('config', 'CONFIG_INVALID', `${key} in ${origin} must be true or false, not "${v}".`);
  }
  if (NUMBER_KEYS.has(key)) return Number(v);
  if (LIST_KEYS.has(key)) return v.split(path.delimiter).filter(Boolean);
  if (PATTERN_LIST_KEYS.has(key)) return v.split(/[\s,]+/).filter(Boolean);
  return v;
}

const ENV_VARS: Record<string, keyof Config> = {
  DTA_ORG_URL: 'orgUrl',
  DTA_HTTP_PROXY: 'httpProxy',
  DTA_PAC_URL: 'httpProxyPacLocation',
  DTA_SKIP_BROWSER_SETUP: 'skipBrowserSetup',
  DTA_SKIP_TPM: 'skipTpm',
  DTA_FIREFOX_SELECT_AUTOMATICALLY: 'firefoxSelectAutomatically',
  DTA_FIREFOX_POLICY_DIRS: 'firefoxPolicyDirs',
  DTA_EXPORT_PEM_DIR: 'exportPemDir',
  DTA_STATE_DIR: 'stateDir',
  DTA_NSS_DB: 'nssDbDir',
  DTA_BROWSER_POLICY_DIRS: 'browserPolicyDirs',
  DTA_TLS_CA_FILE: 'tlsCaFile',
  DTA_KEY_ALGORITHM: 'keyAlgorithm',
  DTA_LAB_SIGN_IN: 'labSignIn',
  DTA_DEVICE_NAME: 'deviceName',
  DTA_DEVICE_PRINCIPAL: 'devicePrincipal',
  DTA_DEVICE_KEYTAB: 'deviceKeytab',
  DTA_AD_DOMAIN: 'adDomain',
  DTA_DC_TIME_SOURCE: 'dcTimeSource',
  DTA_GATEWAY_HEALTH_URL: 'gatewayHealthUrl',
  DTA_BACKEND: 'backend',
  DTA_SCEP_URL: 'scepUrl',
  DTA_SCEP_CHALLENGE: 'scepChallenge',
  DTA_SCEP_CA_FINGERPRINT: 'scepCaFingerprint',
  DTA_SCEP_ALLOW_WEAK: 'scepAllowWeak',
  DTA_SCEP_HOST_PATTERNS: 'scepHostPatterns',
  DTA_SCEP_RENEWAL_WINDOW_DAYS: 'scepRenewalWindowDays',
  DTA_SCEP_MAX_VALIDITY_DAYS: 'scepMaxValidityDays',
  DTA_SCEP_PENDING_WAIT_SECONDS: 'scepPendingWaitSeconds',
  DTA_METRICS_DIR: 'metricsDir',
  DTA_SYSLOG_REMOTE: 'syslogRemote',
  DTA_SYSLOG_CA_FILE: 'syslogCaFile',
};

export function settingsFromEnv(env: NodeJS.ProcessEnv): Partial_ {
  const raw: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  return normalizeSettings(raw, 'the environment');
}

/**
 * Managed configuration (admin-deployed), from the platform's reader: Linux /etc/device-trust-agent/*.json, the
 * Windows registry, macOS managed preferences. Later sources win over earlier ones; `origins` names, per setting
 * (and per `posture` unit), the source that set it.
 */
export function managedSettings(reader: ManagedConfigReader): { settings: Partial_; files: string[]; origins: Record<string, string> } {
  const settings: Partial_ = {};
  const files: string[] = [];
  const origins: Record<string, string> = {};
  for (const source of reader.read()) {
    const values = normalizeSettings(source.values, source.origin, { ignoreUnknown: source.ignoreUnknown ?? false });
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) continue;
      if (k === 'posture' && isPlainObject(v)) {
        // Per unit, as across layers: a later source's posture adds to an earlier one's.
        settings.posture = { ...(isPlainObject(settings.posture) ? settings.posture : {}), ...v };
        for (const u of Object.keys(v)) origins[`posture.${u}`] = source.origin;
      } else {
        settings[k as keyof Config] = v;
        origins[k] = source.origin;
      }
    }
    files.push(source.origin);
  }
  return { settings, files, origins };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

export interface LoadConfigOptions {
  cli?: Record<string, unknown>;
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * This OS's managed configuration (platform/managed-config.ts `createManagedConfigReader`), handed in by the
   * composition root; none when absent (tests give a reader of their own, e.g. another platform's with a scripted runner).
   */
  managed?: ManagedConfigReader;
  /**
   * Neither managed files nor the config file: what the environment and the command line give alone. `status`
   * uses it when the files cannot be used, to still run every test it can (and name the broken file).
   */
  skipFiles?: boolean;
}

/**
 * Precedence, highest first: **managed configuration > command line > environment > config file > defaults**,
 * per setting. What an admin deployed wins, as Group Policy and MDM profiles do; the user sets only what the admin
 * left open. `posture` is merged per unit (each of its own keys: `adminChecks`, `endpointProcesses`, …, a list
 * being one unit), so a user's `{"posture":{}}` or `{"posture":{"adminChecks":[]}}` cannot remove an admin's
 * check, while the user may still set a unit the admin did not. User values of managed settings are kept in
 * `ignored` for `status`, `--debug` and the support bundle.
 */
export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const paths = defaultPaths(env);
  const hostname = os.hostname().split('.')[0] || 'workstation';
  const defaults: Config = {
    skipBrowserSetup: false,
    skipTpm: false,
    stateDir: paths.stateDir,
    nssDbDir: paths.nssDbDir,
    browserPolicyDirs: paths.browserPolicyDirs,
    firefoxPolicyDirs: paths.firefoxPolicyDirs,
    keyAlgorithm: 'P-256',
    labSignIn: false,
    deviceName: hostname,
    deviceKeytab: '/etc/krb5.keytab',
    issuerCN: 'MTLS Certificate Authority',
    requestTimeoutMs: 15000,
    backend: 'idp',
    scepAllowWeak: false,
    scepHostPatterns: [],
    scepRenewalWindowDays: 14,
    // One year (a leap year's 366 days): what the agent's certificates are; an admin raises it for longer templates.
    scepMaxValidityDays: 366,
    scepPendingWaitSeconds: 60,
    metricsDir: defaultMetricsDir(),
    caRolloverFingerprints: [],
    hostPatternAllowList: [],
    serverTlsPins: [],
  };
  const managed = opts.skipFiles || !opts.managed ? { settings: {}, files: [], origins: {} } : managedSettings(opts.managed);
  const files = [...managed.files];
  const configFile = opts.configFile ?? env.DTA_CONFIG_FILE ?? paths.configFile;
  let fileSettings: Partial_ = {};
  if (!opts.skipFiles && (opts.configFile || env.DTA_CONFIG_FILE || fs.existsSync(configFile))) {
    fileSettings = normalizeSettings(readJsonObjectFile(configFile), configFile);
    files.push(configFile);
  }
  const userLayers: ['file' | 'env' | 'cli', Partial_][] = [
    ['file', fileSettings],
    ['env', settingsFromEnv(env)],
    ['cli', opts.cli ? normalizeSettings(opts.cli, 'the command line') : {}],
  ];
  const merged: Record<string, unknown> = { ...defaults };
  const sources: LoadedConfig['sources'] = {};
  const ignored: IgnoredSetting[] = [];
  for (const k of Object.keys(defaults) as (keyof Config)[]) sources[k] = 'default';
  for (const [source, layer] of userLayers) {
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      const key = k as keyof Config;
      if (key === 'posture' && isPlainObject(v)) {
        const kept: Record<string, unknown> = {};
        for (const [u, uv] of Object.entries(v)) {
          const by = managed.origins[`posture.${u}`];
          if (by) ignored.push({ setting: `posture.${u}`, source, value: redact(JSON.stringify(uv) ?? 'undefined'), managedBy: by });
          else kept[u] = uv;
        }
        merged.posture = { ...(isPlainObject(merged.posture) ? merged.posture : {}), ...kept };
        sources.posture = source;
        continue;
      }
      const by = managed.origins[key];
      if (by) {
        ignored.push({ setting: key, source, value: printableSetting(key, v), managedBy: by });
        continue;
      }
      merged[key] = v;
      sources[key] = source;
    }
  }
  // Managed configuration last: it wins.
  for (const [k, v] of Object.entries(managed.settings)) {
    if (v === undefined) continue;
    if (k === 'posture' && isPlainObject(v)) {
      merged.posture = { ...(isPlainObject(merged.posture) ? merged.posture : {}), ...v };
      sources.posture = 'managed';
      continue;
    }
    merged[k] = v;
    sources[k as keyof Config] = 'managed';
  }
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const key = i.path.join('.');
      const source = sources[key as keyof Config];
      // The file itself is named, so a person knows which one to open.
      const where = source === 'file' ? configFile : source === 'managed' && managed.files.length ? `managed configuration ${managed.files.join(', ')}` : source ?? 'unknown';
      return `${key} (from ${where}): ${i.message}`;
    });
    throw new AgentError('config', 'CONFIG_INVALID', `The configuration is invalid: ${problems.join('; ')}.`,
      'Correct the setting where it came from (command line, environment, config file or managed configuration).');
  }
  for (const s of secretValues(parsed.data, env)) registerSecret(s);
  // Ignored user values may hold secrets too (a proxy password the admin's proxy replaced).
  for (const [, layer] of userLayers) for (const s of secretValues(layer as Partial<Config>)) registerSecret(s);
  return { config: parsed.data, sources, files, managed: managed.origins, ignored };
}

/** The managed settings and the ignored user values, as lines for `status` and `--debug`. */
export function describeManaged(loaded: Pick<LoadedConfig, 'managed' | 'ignored'>): string[] {
  const lines: string[] = [];
  const keys = Object.keys(loaded.managed);
  if (keys.length) lines.push(`  managed:     ${keys.join(', ')} (set by the admin; these win over the user's values)`);
  for (const i of loaded.ignored) lines.push(`  ignored:     ${i.setting} = ${i.value} from the ${i.source === 'cli' ? 'command line' : i.source === 'env' ? 'environment' : 'config file'} (managed by ${i.managedBy})`);
  return lines;
}

/** node_exporter's textfile directory on Debian/Ubuntu, windows_exporter's on Windows; none known on macOS. */
export function defaultMetricsDir(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'linux') return '/var/lib/prometheus/node-exporter';
  if (platform === 'win32') return 'C:\\Program Files\\windows_exporter\\textfile_inputs';
  return 'off';
}

export function requireOrgUrl(config: Config): string {
  if (!config.orgUrl) {
    throw new AgentError('config', 'NOT_CONFIGURED', 'No org URL is configured, so the agent does not know where to enroll.',
      'Set OktaURL= at install time, "orgUrl" (or OktaOrgUrl) in the managed configuration (Windows: HKLM\\SOFTWARE\\Okta\\DeviceTrust; macOS: a configuration profile; Linux: /etc/device-trust-agent/*.json), DTA_ORG_URL, or --org-url.');
  }
  return config.orgUrl.replace(/\/+$/, '');
}

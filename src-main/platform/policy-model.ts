import { createHash } from 'node:crypto';
import type { IssuerFilter } from './types.js';

/**
 * The one model of browser setup, rendered into each platform's policy format: Chromium-family JSON (Linux),
 * registry values (Windows), managed-preference plists (macOS) and Firefox's enterprise policies. Every
 * writer takes its content from here, so the three platforms cannot drift apart.
 */

/** The value Firefox's `security.default_personal_cert` takes to present a matching certificate without asking. */
export const FIREFOX_SELECT_AUTOMATICALLY = 'Select Automatically';

export interface BrowserPolicyModel {
  /** Content-settings patterns of the org's mTLS hosts, e.g. `https://[*.]okta.com`. */
  patterns: string[];
  /** Issuer CN that marks our certificates (`MTLS Certificate Authority`). */
  issuerCN: string;
  /** The full issuer filter when the CN alone is not it (a SCEP CA without a CN is matched by O/OU). */
  issuer?: IssuerFilter;
}

export function policyModel(patterns: string[], issuer: string | IssuerFilter): BrowserPolicyModel {
  return typeof issuer === 'string' ? { patterns, issuerCN: issuer } : { patterns, issuerCN: issuer.CN ?? '', issuer };
}

export type PolicyPlatform = 'linux' | 'win32' | 'darwin';

/** A Chromium-family browser and where its machine policy lives on each platform. */
export interface ChromiumBrowser {
  id: 'chrome' | 'edge' | 'chromium';
  name: string;
  /** HKLM policy key (Windows); undefined where the browser has none. */
  windowsKey?: string;
  /** Managed-preferences domain (macOS). */
  macDomain?: string;
  /** Managed policy directory (Linux). */
  linuxDir?: string;
}

export const CHROMIUM_BROWSERS: ChromiumBrowser[] = [
  { id: 'chrome', name: 'Google Chrome', windowsKey: 'HKLM\\SOFTWARE\\Policies\\Google\\Chrome', macDomain: 'com.google.Chrome', linuxDir: '/etc/opt/chrome/policies/managed' },
  { id: 'edge', name: 'Microsoft Edge', windowsKey: 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge', macDomain: 'com.microsoft.Edge', linuxDir: '/etc/opt/edge/policies/managed' },
  { id: 'chromium', name: 'Chromium', linuxDir: '/etc/chromium/policies/managed' },
];

export const AUTO_SELECT_POLICY = 'AutoSelectCertificateForUrls';

/**
 * `AutoSelectCertificateForUrls` entries: each a JSON string
 * `{"pattern":"https://[*.]…","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}` (Chrome enterprise docs).
 */
export function autoSelectEntries(model: BrowserPolicyModel): string[] {
  const filter = model.issuer ?? { CN: model.issuerCN };
  return [...new Set(model.patterns)].map((pattern) => JSON.stringify({ pattern, filter: { ISSUER: filter } }));
}

/** Whether an existing entry is one of ours (same issuer filter), so merging and removal leave others' entries alone. */
export function isOurAutoSelectEntry(entry: string, issuer: string | IssuerFilter): boolean {
  try {
    const parsed = JSON.parse(entry) as { filter?: { ISSUER?: Record<string, unknown> } };
    const got = parsed?.filter?.ISSUER;
    if (typeof issuer === 'string') return got?.CN === issuer;
    const want = Object.entries(issuer).filter(([, v]) => v !== undefined);
    return !!got && Object.keys(got).length === want.length && want.every(([k, v]) => got[k] === v);
  } catch {
    return false;
  }
}

/**
 * The list after merging: others' entries first in their order, then ours. With `ours` empty this is the
 * removal (uninstall) result.
 */
export function mergeAutoSelect(existing: string[], ours: string[], issuer: string | IssuerFilter): string[] {
  return [...existing.filter((e) => !isOurAutoSelectEntry(e, issuer)), ...ours];
}

/** A Firefox preference set by policy (`Preferences` policy, Firefox 81+). */
export interface FirefoxPreference {
  Value: string | boolean;
  Status: 'locked' | 'default';
}

/** The part of Firefox's enterprise policies (`policies.json` "policies" object) that we own. */
export interface FirefoxPolicies {
  Certificates?: { ImportEnterpriseRoots: boolean };
  Preferences: Record<string, FirefoxPreference>;
  /** Preferences of ours taken out where they still hold our value (written by earlier versions). Not written. */
  withdrawn?: Record<string, FirefoxPreference>;
}

/**
 * Firefox: present the matching certificate without asking. On Windows and macOS Firefox reads the OS store
 * through its built-in osclientcerts module and trusts the OS's enterprise roots; on Linux the certificate is
 * in each profile's own NSS database (the agent puts it there), so only the selection preference is needed.
 */
export function firefoxPolicies(platform: PolicyPlatform, opts: { selectAutomatically?: boolean } = {}): FirefoxPolicies {
  const auto: Record<string, FirefoxPreference> = {
    'security.default_personal_cert': { Value: FIREFOX_SELECT_AUTOMATICALLY, Status: 'locked' },
  };
  // Linux: "Select Automatically" applies to every site that asks (the device ID goes to strangers); the agent writes
  // each profile's remembered decision for the org's hosts instead (firefox-client-auth.ts). The global preference
  // only when an admin opts in (FirefoxSelectAutomatically=true; trade-off in docs/INSTALLERS.md).
  if (platform === 'linux') return opts.selectAutomatically ? { Preferences: auto } : { Preferences: {}, withdrawn: auto };
  const prefs = auto;
  return {
    Certificates: { ImportEnterpriseRoots: true },
    Preferences: { ...prefs, 'security.osclientcerts.autoload': { Value: true, Status: 'locked' } },
  };
}

// ---- Linux: Chromium-family managed policy JSON ----

export function chromiumPolicyJson(model: BrowserPolicyModel): string {
  return JSON.stringify({ [AUTO_SELECT_POLICY]: autoSelectEntries(model) }, null, 2) + '\n';
}

// ---- Firefox policies.json (Linux /etc/firefox/policies, macOS app bundle distribution dir) ----

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets our leaves in an existing policies.json document, keeping every other policy. */
export function mergeFirefoxPolicies(existing: unknown, ours: FirefoxPolicies): JsonObject {
  const doc: JsonObject = isObject(existing) ? structuredClone(existing) : {};
  const policies: JsonObject = isObject(doc.policies) ? doc.policies : {};
  doc.policies = policies;
  if (ours.Certificates) {
    const certs: JsonObject = isObject(policies.Certificates) ? policies.Certificates : {};
    certs.ImportEnterpriseRoots = ours.Certificates.ImportEnterpriseRoots;
    policies.Certificates = certs;
  }
  const prefs: JsonObject = isObject(policies.Preferences) ? policies.Preferences : {};
  for (const [name, pref] of Object.entries(ours.Preferences)) prefs[name] = { ...pref };
  for (const [name, pref] of Object.entries(ours.withdrawn ?? {})) {
    const cur = prefs[name];
    if (isObject(cur) && cur.Value === pref.Value) delete prefs[name];
  }
  if (Object.keys(prefs).length) policies.Preferences = prefs;
  else delete policies.Preferences;
  return doc;
}

/** Removes our leaves again (only where they still hold our values); empty containers go too. */
export function unmergeFirefoxPolicies(existing: unknown, ours: FirefoxPolicies): JsonObject {
  const doc: JsonObject = isObject(existing) ? structuredClone(existing) : {};
  const policies = doc.policies;
  if (!isObject(policies)) return doc;
  const certs = policies.Certificates;
  if (ours.Certificates && isObject(certs) && certs.ImportEnterpriseRoots === ours.Certificates.ImportEnterpriseRoots) {
    delete certs.ImportEnterpriseRoots;
    if (Object.keys(certs).length === 0) delete policies.Certificates;
  }
  const prefs = policies.Preferences;
  if (isObject(prefs)) {
    for (const [name, pref] of Object.entries({ ...ours.Preferences, ...ours.withdrawn })) {
      const cur = prefs[name];
      if (isObject(cur) && cur.Value === pref.Value) delete prefs[name];
    }
    if (Object.keys(prefs).length === 0) delete policies.Preferences;
  }
  return doc;
}

// ---- Windows: registry policy values ----

export type RegType = 'REG_SZ' | 'REG_DWORD' | 'REG_MULTI_SZ';

export interface RegistryValue {
  key: string;
  name: string;
  type: RegType;
  data: string;
}

export const FIREFOX_WINDOWS_KEY = 'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox';

/** The numbered list values Chrome and Edge read under `<policy key>\AutoSelectCertificateForUrls` ("1", "2", …). */
export function registryListValues(key: string, entries: string[]): RegistryValue[] {
  return entries.map((data, i) => ({ key, name: String(i + 1), type: 'REG_SZ', data }));
}

/**
 * Firefox's Windows policy reader turns subkeys into objects and values into leaves: DWORD 0/1 for booleans of
 * ordinary policies; inside `Preferences` a boolean must stay a boolean, so it is written as REG_MULTI_SZ,
 * which Firefox parses as JSON (WindowsGPOParser).
 */
export function firefoxRegistryValues(policies: FirefoxPolicies): RegistryValue[] {
  const out: RegistryValue[] = [];
  if (policies.Certificates) {
    out.push({ key: `${FIREFOX_WINDOWS_KEY}\\Certificates`, name: 'ImportEnterpriseRoots', type: 'REG_DWORD', data: policies.Certificates.ImportEnterpriseRoots ? '1' : '0' });
  }
  for (const [pref, { Value, Status }] of Object.entries(policies.Preferences)) {
    const key = `${FIREFOX_WINDOWS_KEY}\\Preferences\\${pref}`;
    out.push(typeof Value === 'string' ? { key, name: 'Value', type: 'REG_SZ', data: Value } : { key, name: 'Value', type: 'REG_MULTI_SZ', data: JSON.stringify(Value) });
    out.push({ key, name: 'Status', type: 'REG_SZ', data: Status });
  }
  return out;
}

const HIVES: Record<string, string> = { HKLM: 'HKEY_LOCAL_MACHINE', HKCU: 'HKEY_CURRENT_USER' };

/** A .reg file (regedit / `reg import`) with the same values, for admins who deploy by Group Policy preferences. */
export function renderRegFile(values: RegistryValue[]): string {
  const lines = ['Windows Registry Editor Version 5.00'];
  const byKey = new Map<string, RegistryValue[]>();
  for (const v of values) byKey.set(v.key, [...(byKey.get(v.key) ?? []), v]);
  const quote = (x: string) => `"${x.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  for (const [key, vs] of byKey) {
    const [hive, ...rest] = key.split('\\');
    lines.push('', `[${[HIVES[hive!] ?? hive, ...rest].join('\\')}]`);
    for (const v of vs) {
      if (v.type === 'REG_SZ') lines.push(`${quote(v.name)}=${quote(v.data)}`);
      else if (v.type === 'REG_DWORD') lines.push(`${quote(v.name)}=dword:${Number(v.data).toString(16).padStart(8, '0')}`);
      else {
        // REG_MULTI_SZ: UTF-16LE strings, each NUL-terminated, plus a final NUL.
        const bytes = Buffer.from(v.data.split('\n').join('\0') + '\0\0', 'utf16le');
        lines.push(`${quote(v.name)}=hex(7):${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join(',')}`);
      }
    }
  }
  return lines.join('\r\n') + '\r\n';
}

// ---- macOS: managed preferences ----

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function plistValue(v: Json, indent: string): string {
  if (typeof v === 'string') return `${indent}<string>${xmlEscape(v)}</string>`;
  if (typeof v === 'boolean') return `${indent}<${v}/>`;
  if (typeof v === 'number') return Number.isInteger(v) ? `${indent}<integer>${v}</integer>` : `${indent}<real>${v}</real>`;
  if (v === null) return `${indent}<string></string>`;
  if (Array.isArray(v)) return [`${indent}<array>`, ...v.map((x) => plistValue(x, indent + '\t')), `${indent}</array>`].join('\n');
  return [`${indent}<dict>`, ...Object.entries(v).flatMap(([k, x]) => [`${indent}\t<key>${xmlEscape(k)}</key>`, plistValue(x, indent + '\t')]), `${indent}</dict>`].join('\n');
}

/** An XML property list (Apple's DTD) holding one dictionary. */
export function renderPlist(dict: Record<string, Json>): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    plistValue(dict, ''),
    '</plist>',
    '',
  ].join('\n');
}

/** The managed preferences each Chromium-family browser reads on macOS (domain → keys). */
export function macManagedPreferences(model: BrowserPolicyModel): { domain: string; values: Record<string, Json> }[] {
  return CHROMIUM_BROWSERS.filter((b) => b.macDomain).map((b) => ({ domain: b.macDomain!, values: { [AUTO_SELECT_POLICY]: autoSelectEntries(model) } }));
}

/** A name-based UUID (version 5 layout over SHA-1), so a regenerated profile keeps its identifiers. */
export function stableUuid(name: string): string {
  const h = createHash('sha1').update(`device-trust-agent:${name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex').toUpperCase();
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** What every launchd label of the agent starts with (tasks/darwin.ts MAC_LABELS; a unit test holds them together). */
export const MAC_LAUNCHD_LABEL_PREFIX = 'com.example.devicetrustagent.';

/**
 * The same settings as one configuration profile (.mobileconfig) for admins whose Macs are managed by MDM,
 * where a profile is the supported way to set managed preferences.
 */
export function macConfigurationProfile(model: BrowserPolicyModel, ids: { identifier: string; uuid: (name: string) => string }): string {
  const payloads: Json[] = macManagedPreferences(model).map(({ domain, values }) => ({
    PayloadType: domain,
    PayloadVersion: 1,
    PayloadIdentifier: `${ids.identifier}.${domain}`,
    PayloadUUID: ids.uuid(domain),
    PayloadDisplayName: `${domain} device-trust certificate selection`,
    ...values,
  }));
  // macOS 13+ lists the agent's LaunchAgent/LaunchDaemon under Login Items, where a user can switch them off; only a
  // managed login items payload (com.apple.servicemanagement, MDM device channel, user-approved MDM) marks them
  // managed: auto-enabled, auto-allowed, not switchable (issue 25.11; developer.apple.com/documentation/
  // devicemanagement/servicemanagementmanagedloginitems, apple/device-management com.apple.servicemanagement.yaml:
  // Rules of RuleType Label / LabelPrefix / TeamIdentifier …). A LabelPrefix rule matches both launchd labels
  // (MAC_LABELS in tasks/darwin.ts start with MAC_LAUNCHD_LABEL_PREFIX).
  payloads.push({
    PayloadType: 'com.apple.servicemanagement',
    PayloadVersion: 1,
    PayloadIdentifier: `${ids.identifier}.com.apple.servicemanagement`,
    PayloadUUID: ids.uuid('com.apple.servicemanagement'),
    PayloadDisplayName: 'Device Trust Agent background items (managed: cannot be switched off)',
    Rules: [{ RuleType: 'LabelPrefix', RuleValue: MAC_LAUNCHD_LABEL_PREFIX, Comment: 'Device Trust Agent user task (LaunchAgent) and device task (LaunchDaemon)' }],
  });
  return renderPlist({
    PayloadType: 'Configuration',
    PayloadVersion: 1,
    PayloadIdentifier: ids.identifier,
    PayloadUUID: ids.uuid('profile'),
    PayloadDisplayName: 'Device Trust: browser certificate selection',
    PayloadScope: 'System',
    PayloadContent: payloads,
  });
}

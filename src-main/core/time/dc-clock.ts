import type { Config } from '../config.js';
import { readKrb5Conf, sntpOffset, splitHostPort } from '../diagnostics/directory.js';

/** Asked only after a refusal about time, so a pass never waits on it otherwise; SNTP answers in milliseconds. */
const DC_CLOCK_DEADLINE_MS = 2_000;

/**
 * The domain controller's clock minus ours (ms), for a clock finding: Kerberos compares with the DC's clock, so
 * that offset is the one that matters for sign-in. The DC is `dcTimeSource` or krb5.conf's first KDC of the
 * default realm. Undefined when there is none or it does not answer NTP (not every DC serves clients).
 */
export async function dcClockOffset(config: Pick<Config, 'dcTimeSource' | 'requestTimeoutMs'>, env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  const source = config.dcTimeSource ?? firstKdc(env);
  if (!source) return undefined;
  const { host, port } = splitHostPort(source, 123);
  try {
    const r = await sntpOffset(host, port, Math.min(DC_CLOCK_DEADLINE_MS, config.requestTimeoutMs));
    return Math.round(r.offsetMs);
  } catch {
    return undefined;
  }
}

function firstKdc(env: NodeJS.ProcessEnv): string | undefined {
  const conf = readKrb5Conf(env);
  const realm = conf?.defaultRealm;
  const kdc = realm ? conf.kdcs[realm]?.[0] : undefined;
  return kdc ? splitHostPort(kdc).host : undefined;
}

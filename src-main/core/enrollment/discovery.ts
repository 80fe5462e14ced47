import type { HttpClient } from '../net/http.js';
import { OrgConfigSchema, type OrgConfig } from './protocol.js';

/** Step 2 of the flow: ask the org where its IWA web apps, CA and mTLS host are. */
export async function discoverOrg(http: HttpClient, orgUrl: string): Promise<OrgConfig> {
  const { data } = await http.json(OrgConfigSchema, { url: `${orgUrl}/api/v1/device-trust/config`, what: 'the org' });
  return data;
}

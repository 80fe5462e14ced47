import fs from 'node:fs';
import path from 'node:path';
import { startKdc, type Kdc } from '../../lab/kdc.js';
import { startLabOrg, type LabOrg, type LabOrgOptions } from '../../lab/org.js';
import { tempDir } from './agent.js';

export interface KerberosLab {
  kdc: Kdc;
  lab: LabOrg;
  /** The lab org's root CA, for the agent's tlsCaFile. */
  rootCaFile: string;
  /** alice's credential cache and the machine's keytab: what the agent needs to sign in as user and device. */
  agentEnv: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * A throw-away Kerberos realm with alice signed in, and the lab org whose IWA web app — hosted by this process —
 * accepts with the realm's service keytab (so this process's environment gets the server side).
 */
export async function startKerberosLab(labOptions: LabOrgOptions = {}): Promise<KerberosLab> {
  const dir = tempDir('kdc');
  const kdc = await startKdc({ dir, users: ['alice'] });
  Object.assign(process.env, kdc.serverEnv());
  const lab = await startLabOrg(labOptions);
  const rootCaFile = path.join(dir, 'lab-root.pem');
  fs.writeFileSync(rootCaFile, lab.rootCaPem);
  const userEnv = await kdc.kinit(kdc.users[0]!.principal);
  const agentEnv = { ...userEnv, DTA_DEVICE_KEYTAB: kdc.deviceKeytab, DTA_DEVICE_PRINCIPAL: kdc.devicePrincipal };
  return {
    kdc, lab, rootCaFile, agentEnv,
    stop: async () => {
      await lab.close();
      await kdc.stop();
    },
  };
}

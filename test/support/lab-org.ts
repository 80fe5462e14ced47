import { after, before } from 'node:test';
import { startLabOrg, type LabOrg, type LabOrgOptions } from '../../lab/org.js';
import { makeProfile, writeRootCa, type Profile } from './agent.js';

/** The lab org of one describe block, and profiles for it. */
export interface SuiteOrg {
  lab: LabOrg;
  /** The lab's root CA in a file: the agent's trust anchor for the org. */
  rootCaFile: string;
  /** A fresh user profile for the org, signing in with the lab's sign-in (no Kerberos needed). */
  profile(extraEnv?: Record<string, string>): Profile;
}

/**
 * Starts the lab org (lab sign-in allowed) before the tests of the describe block this is called in, and closes
 * it after them. Call it before the block's own hooks that use the org.
 */
export function labOrgForSuite(opts: LabOrgOptions = {}): SuiteOrg {
  const org: SuiteOrg = {
    lab: undefined as unknown as LabOrg,
    rootCaFile: '',
    profile: (extraEnv = {}) => makeProfile({ orgUrl: org.lab.orgUrl, rootCaFile: org.rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', ...extraEnv } }),
  };
  before(async () => {
    org.lab = await startLabOrg({ allowLabSignIn: true, ...opts });
    org.rootCaFile = writeRootCa(org.lab.rootCaPem);
  });
  after(() => org.lab?.close());
  return org;
}

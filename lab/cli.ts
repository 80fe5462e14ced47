// `npm run lab`: runs the lab org until Ctrl-C. State lives in .demo/lab so a second run keeps the same CA.
import fs from 'node:fs';
import path from 'node:path';
import { PKI_FILES } from './ca.js';
import { startLabOrg } from './org.js';

const dataDir = path.resolve('.demo', 'lab');
const allowLabSignIn = !process.argv.includes('--no-lab-sign-in');

// --tpm-vendor-ca=<pem file> (repeatable): TPM vendor CAs an EK certificate must chain to for key attestation.
const tpmVendorCas = process.argv.filter((a) => a.startsWith('--tpm-vendor-ca=')).map((a) => fs.readFileSync(a.slice('--tpm-vendor-ca='.length), 'utf8'));

const org = await startLabOrg({ dataDir, allowLabSignIn, trustedEkCaPem: tpmVendorCas, log: (line) => console.log(`[access] ${line}`) });

const admin = (what: string, body: string) =>
  `curl --cacert ${path.join(dataDir, PKI_FILES.rootCert)} -H 'Authorization: Bearer ${org.adminToken}' -H 'Content-Type: application/json' -d '${body}' ${org.orgUrl}/lab/admin/${what}`;

console.log(`Lab org running (data in ${dataDir})

  Org (discovery)    ${org.orgUrl}/api/v1/device-trust/config
  IWA primary        ${org.iwaPrimaryUrl}
  IWA backup         ${org.iwaBackupUrl}
  mTLS check         ${org.mtlsUrl}
  CRL                ${org.crlUrl}
  Root CA (trust it) ${path.join(dataDir, PKI_FILES.rootCert)}
  TPM vendor CAs     ${tpmVendorCas.length ? `${tpmVendorCas.length} (EK certificates for key attestation)` : 'none (--tpm-vendor-ca=<pem>: attestation refused as an untrusted EK)'}
  Lab-only sign-in   ${allowLabSignIn ? 'enabled (LAB ONLY; --no-lab-sign-in turns it off)' : 'disabled'}
  Admin token        ${org.adminToken}
  API token (SSWS)   ${org.apiToken}   (for agent pools: device-trust-agent admin-token set)

Admin examples:
  ${admin('switches', '{"readOnly":true}')}
  ${admin('switches', '{"requireAttestedKeys":true}')}
  ${admin('revoke', '{"serialNumber":"<hex>"}')}
  ${admin('deactivate', '{"principal":"alice@LAB.TEST"}')}

Press Ctrl-C to stop.`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void org.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

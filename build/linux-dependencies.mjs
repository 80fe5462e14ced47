// The distribution packages the headless agent's DEB and RPM declare (build/package-linux.mjs; tested by
// test/integration/rpm-package.test.ts and deb-package.test.ts).
/**
 * What each path of the agent needs from the distribution, declared in both packages (Debian name, Fedora name).
 * Depends/Requires: the default path — the NSS software token keeps the device key (libsoftokn3.so:
 * src-main/platform/linux-keys.ts), certutil/pk12util put the certificate in the users' NSS databases (Chromium),
 * and Firefox reaches the token through `p11-kit server` and p11-kit-client.so (src-main/platform/p11kit-bridge.ts).
 * Recommends: the TPM path (tpm2-pkcs11's module and tpm2_ptool, the resource manager, the attestation helper's
 * tpm2_pytss), Kerberos' klist (IWA sign-in) and openssl (exported PEM files). The agent says what is missing when
 * a path needs it (NSS_MISSING, TPM diagnostics), so a recommended package left out never fails the install.
 * glibc and libstdc++ are named by soname in the RPM, as Fedora's packaging guidelines ask (rpmlint: explicit-lib-dependency).
 * Fedora names: packages.fedoraproject.org/pkgs/{nss/nss-softokn, nss/nss-tools, p11-kit/p11-kit, p11-kit/p11-kit-server,
 * tpm2-pkcs11/tpm2-pkcs11, tpm2-pkcs11/tpm2-pkcs11-tools, tpm2-abrmd/tpm2-abrmd, python-tpm2-pytss/python3-tpm2-pytss,
 * krb5/krb5-workstation, openssl/openssl, libp11/openssl-pkcs11}.
 */
export const DEPENDENCIES = {
  requires: [['libc6', 'libc.so.6()(64bit)'], ['libstdc++6', 'libstdc++.so.6()(64bit)'], ['libnss3', 'nss-softokn'], ['libnss3-tools', 'nss-tools'], ['p11-kit', 'p11-kit'], ['p11-kit-modules', 'p11-kit-server']],
  recommends: [['libtpm2-pkcs11-1', 'tpm2-pkcs11'], ['libtpm2-pkcs11-tools', 'tpm2-pkcs11-tools'], ['tpm2-abrmd', 'tpm2-abrmd'], ['libtss2-tcti-tabrmd0', null],
    ['python3-tpm2-pytss', 'python3-tpm2-pytss'], ['krb5-user', 'krb5-workstation'], ['openssl', 'openssl'],
    // tpm2_getcap and tpm2_evictcontrol: the TPM token stores share one persistent primary, and a failed set-up gives its handle back.
    ['tpm2-tools', 'tpm2-tools'],
    // The agent's own mTLS check presents a token key through openssl s_client and libp11 (platform/token-tls.ts).
    ['libengine-pkcs11-openssl', 'openssl-pkcs11']],
};

// pkcs11js is an optional native dependency: where it is not installed (`npm install --omit=optional`, a
// machine without a compiler) the agent still builds, and platform/pkcs11.ts says at run time that the PKCS#11
// binding is missing. TypeScript uses the package's own types when it is there; this shorthand only when not.
declare module 'pkcs11js';

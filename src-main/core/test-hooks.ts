// The pause points live in base/ so that platform code (a PKCS#11 token's key generation) can have one too.
export { testPausePoint } from '../base/test-hooks.js';

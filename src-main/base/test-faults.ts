import fs from 'node:fs';
import path from 'node:path';

/**
 * Fault injection for the failure tests only: with DTA_TEST_FAIL_STORE=`once:<dir>` or `always:<dir>`, writing a
 * certificate into the key store fails as a full disk would (once: only the first time, remembered in <dir>).
 * It replaces the shim that made pk12util fail, now that the store is written in-process. Unset, one comparison.
 */
export function storeWriteFault(): Error | undefined {
  const v = process.env.DTA_TEST_FAIL_STORE;
  if (!v) return undefined;
  const i = v.indexOf(':');
  const mode = v.slice(0, i);
  const marker = path.join(v.slice(i + 1), 'failed');
  if (mode === 'once' && fs.existsSync(marker)) return undefined;
  try {
    fs.writeFileSync(marker, '');
  } catch {
    /* the marker only limits "once" */
  }
  return new Error('SEC_ERROR_IO: No space left on device');
}

/**
 * Test hook, for the crash-safety tests only (docs/ADMINS.md "Scheduling"): with DTA_TEST_PAUSE_AT set to
 * `before:<text>`, `after:<text>` (a trace step whose name contains <text>) or `log:<text>` (a trace line),
 * the process prints `DTA_TEST_PAUSED <point>` on stderr at that point and then blocks, holding whatever it
 * holds (the pass lock, half-written files), until the test kills it. Unset, it costs one comparison.
 */
export function testPausePoint(point: string): void {
  // Read when asked, not at import: the start-up snapshot loads this module where it is built.
  const PAUSE_AT = process.env.DTA_TEST_PAUSE_AT;
  if (!PAUSE_AT) return;
  const i = PAUSE_AT.indexOf(':');
  const when = PAUSE_AT.slice(0, i);
  const text = PAUSE_AT.slice(i + 1);
  if (i < 0 || !point.startsWith(`${when}:`) || !point.slice(when.length + 1).includes(text)) return;
  process.stderr.write(`DTA_TEST_PAUSED ${point}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

/**
 * Test hook, for the refused-provisioning test only: DTA_TEST_TPM2_PTOOL names the (Python) tpm2_ptool the agent
 * runs instead of the one found in the fixed system directories. It runs as the same user on that user's own
 * token store, so it grants nothing the user could not do by hand; never set it in production.
 */
export function testTpm2Ptool(): string | undefined {
  return process.env.DTA_TEST_TPM2_PTOOL || undefined;
}

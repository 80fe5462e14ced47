/**
 * Polls `check` every `everyMs` until it gives a value other than undefined or false, and resolves with it. After
 * `timeoutMs` it fails naming `what` (and the last error `check` threw). `gaveUp`, asked before each retry, fails
 * at once with its reason (a server that exited while it was awaited).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  everyMs = 250,
  gaveUp?: () => string | undefined,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    const reason = gaveUp?.();
    if (reason !== undefined) throw new Error(`gave up waiting for ${what}: ${reason}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

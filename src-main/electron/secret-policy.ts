/**
 * Whether Electron's safeStorage may hold secrets here. On Linux Chromium falls back to a hard-coded key
 * ("basic_text") when no keyring (Secret Service / KWallet) is running: that is a plain file in disguise,
 * so it is refused with a sentence that says what to install. Electron-free, so it is unit-tested.
 */
export function safeStorageProblem(platform: NodeJS.Platform, available: boolean, linuxBackend: string | undefined): string | undefined {
  if (!available) return 'The operating system offers no encryption for stored secrets (safeStorage is unavailable).';
  if (platform === 'linux' && (!linuxBackend || linuxBackend === 'basic_text' || linuxBackend === 'unknown')) {
    return `No keyring is running (safeStorage backend "${linuxBackend ?? 'unknown'}"), so secrets would be kept with a fixed key, as good as plain text; they are not stored. Start a Secret Service (GNOME Keyring) or KWallet and sign in again.`;
  }
  return undefined;
}

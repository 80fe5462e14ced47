/**
 * The operating system's own answer for one URL, when the host process has one: in the tray app, Electron's
 * `session.resolveProxy` (Chromium resolving the system settings, WPAD and PAC included), handed in by the shell
 * (core/context.ts `AgentContext.systemProxy`). When there is one, the resolver uses it as its OS-settings step instead of reading
 * the settings itself (os.ts); the CLI, which has no such source, keeps reading them.
 */
export interface SystemProxySource {
  /** For the rule text: "system settings (Electron session.resolveProxy)". */
  readonly description: string;
  /** A PAC-style answer for the URL: "DIRECT", "PROXY host:port; DIRECT". */
  resolve(url: string): Promise<string>;
}

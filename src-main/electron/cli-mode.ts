/**
 * The packaged executable is also the agent's command line: installers run `"Device Trust Agent.exe"
 * install`, `run --device`, `uninstall`… (docs/INSTALLERS.md). A launch with a sub-command runs it headless —
 * no tray, no window, no single-instance lock — and exits with its code; a launch with only flags (--show,
 * --hidden, --debug, --forceRenewal) is the tray app. Electron-free.
 */

/** Switches Chromium, Electron or a test driver add, which the agent's command line does not know. */
const ENGINE_SWITCHES = /^--(no-sandbox|disable-gpu|disable-dev-shm-usage|enable-logging(=.*)?|inspect(-brk)?(=.*)?|remote-debugging-port=.*|ozone-platform(-hint)?=.*|enable-features=.*|disable-features=.*)$/;

/**
 * The command line for the agent's CLI, or undefined for the tray app. `argv` is process.argv: the
 * executable first, then (when not packaged) the app's directory, then the user's arguments.
 */
export function cliArgs(argv: string[], packaged: boolean): string[] | undefined {
  let rest = argv.slice(1).filter((a) => !ENGINE_SWITCHES.test(a));
  if (!packaged) {
    const appPath = rest.findIndex((a) => !a.startsWith('-'));
    if (appPath < 0) return undefined;
    rest = [...rest.slice(0, appPath), ...rest.slice(appPath + 1)];
  }
  return rest.some((a) => !a.startsWith('-')) ? rest : undefined;
}

/** What the tray app needs to find the headless program (plain data, so tests need no Electron). */
export interface HeadlessLookup {
  packaged: boolean;
  /** process.resourcesPath: where electron-builder's extraResources land (headless/ among them). */
  resourcesPath: string;
  /** The app's own directory when run from a checkout (dist/headless is built there). */
  appPath: string;
  platform: NodeJS.Platform;
  exists: (file: string) => boolean;
}

/**
 * The headless `device-trust-agent` program shipped with the tray app: its own Node runtime and bundled script
 * (electron-builder.yml extraResources: dist/headless → resources/headless; a checkout: dist/headless after
 * `npm run build:headless -- --with-node`). Sub-commands — the device task, install, uninstall — run there, never
 * in Electron: no GUI toolkit as root, and `install` then registers the headless program itself.
 */
export function headlessProgram(l: HeadlessLookup): string[] | undefined {
  const join = (...p: string[]) => p.join(l.platform === 'win32' ? '\\' : '/');
  const dir = l.packaged ? join(l.resourcesPath, 'headless') : join(l.appPath, 'dist', 'headless');
  const node = join(dir, l.platform === 'win32' ? 'node.exe' : 'node');
  const script = join(dir, 'device-trust-agent.mjs');
  return l.exists(node) && l.exists(script) ? [node, script] : undefined;
}

import pkg from '../../package.json' with { type: 'json' };

/** The agent's version (package.json's): `--version`, the metrics' info series and the syslog APP version. */
export const AGENT_VERSION: string = pkg.version;

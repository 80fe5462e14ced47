/** The agent's version (package.json's): `--version`, the metrics' info series and the syslog APP version. */
export const AGENT_VERSION = '0.1.0';

// The headless program's launcher (sh), shared by dist/headless and the Linux packages. `status` (without --check)
// starts from the start-up snapshot when the build made one (cli/snapshot-entry.ts): what the tray polls and an admin types on a
// support call. Every other command starts the bundled script, which loads only what it uses (a snapshot costs each
// start its deserialization). The command is found as cli/main.ts commandNameOf finds it; `--` keeps the agent's
// own options (--version, -h) from being read as Node's.

/** @param {{ node: string, lib: string, comment: string }} o  node and lib as sh words (quoted, may use $here) */
export function launcherScript({ node, lib, comment }) {
  return `#!/bin/sh
# ${comment}
# Its own directory; readlink only when started through a symbolic link (each command it runs costs a process).
case $0 in */*) here=\${0%/*} ;; *) here=. ;; esac
[ -L "$0" ] && here=$(dirname "$(readlink -f "$0")")
cmd=run
for a in "$@"; do
  case $a in -*) ;; *=*) break ;; *) cmd=$a; break ;; esac
done
# status --check asks the network with libraries the snapshot leaves out: the script runs it.
case " $* " in *" --check "*) [ "$cmd" = status ] && cmd=status-check ;; esac
if [ "$cmd" = status ] && [ -r ${lib}/device-trust-agent.blob ]; then
  exec ${node} --snapshot-blob ${lib}/device-trust-agent.blob -- "$@"
fi
exec ${node} ${lib}/device-trust-agent.mjs "$@"
`;
}

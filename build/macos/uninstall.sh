#!/bin/sh
# Removes Device Trust Agent from a Mac (macOS packages have no uninstaller): the scheduled tasks, the browser policies
# the agent wrote, and, with --remove-certificate, the console user's device certificate; then the app.
# Run as root:  sudo "/Applications/Device Trust Agent.app/Contents/Resources/uninstall.sh" [--remove-certificate]
set -u
APP="/Applications/Device Trust Agent.app"
# The headless program inside the app (its own node and bundled script), never the Electron executable.
NODE="$APP/Contents/Resources/headless/node"
SCRIPT="$APP/Contents/Resources/headless/device-trust-agent.mjs"
[ "$(id -u)" = 0 ] || { echo "Run as root (sudo)." >&2; exit 1; }

if [ -x "$NODE" ] && [ -f "$SCRIPT" ]; then
  console_user=$(/usr/bin/stat -f %Su /dev/console 2>/dev/null || true)
  uid=""
  if [ -n "$console_user" ] && [ "$console_user" != root ] && [ "$console_user" != loginwindow ]; then uid=$(/usr/bin/id -u "$console_user"); fi
  # Both scopes (issue 25.10): the LaunchDaemon (booted out of system/), and the LaunchAgent for every user
  # (/Library/LaunchAgents), booted out of the console user's gui/<uid> domain too.
  "$NODE" "$SCRIPT" uninstall --device || echo "device-trust-agent: the device task could not be removed." >&2
  DTA_CONSOLE_UID="$uid" "$NODE" "$SCRIPT" uninstall --user || echo "device-trust-agent: the user task could not be removed." >&2
  "$NODE" "$SCRIPT" browser-setup --remove || echo "device-trust-agent: some browser policy could not be removed." >&2
  if [ -n "$uid" ]; then
    # The user's own part of the browser setup (Safari's identity preference) and, on request, the certificate.
    /bin/launchctl asuser "$uid" /usr/bin/sudo -u "$console_user" "$NODE" "$SCRIPT" browser-setup --remove || true
    if [ "${1:-}" = --remove-certificate ]; then
      /bin/launchctl asuser "$uid" /usr/bin/sudo -u "$console_user" "$NODE" "$SCRIPT" remove-certificate ||
        echo "device-trust-agent: the certificate of $console_user was not removed." >&2
    fi
  fi
fi
rm -rf "$APP"
/usr/sbin/pkgutil --forget com.example.devicetrustagent >/dev/null 2>&1 || true

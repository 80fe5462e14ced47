#!/bin/sh
# DEB postinst / RPM %post (electron-builder passes it to fpm as --after-install; it replaces electron-builder's
# default script, so the default's steps are repeated here). electron-builder substitutes the ${name} macros
# below; shell variables are therefore written without braces.
#
# Runs the task once and registers the scheduled tasks through the agent's own command line. Install-time
# parameters (OktaURL=, HttpProxy=, HttpProxyPacLocation=, SkipBrowserSetup=, SkipTPM=) reach the agent as managed
# configuration: put them in /etc/device-trust-agent/*.json before or after installing.
set -e

ROOT="$DPKG_ROOT" # set when dpkg installs into another root (--root with --force-script-chrootless)
# The device task (root) keeps its state with the system, not in root's home; purge removes it.
DTA_STATE_DIR="$ROOT/var/lib/device-trust-agent"
export DTA_STATE_DIR
APP_DIR="$ROOT/opt/${productFilename}"
AGENT="$APP_DIR/${executable}"

# What electron-builder's default script does: the command on PATH, the SUID sandbox helper.
mkdir -p "$ROOT/usr/bin"
ln -sf "/opt/${productFilename}/${executable}" "$ROOT/usr/bin/${executable}"
if [ -e "$APP_DIR/chrome-sandbox" ]; then chmod 4755 "$APP_DIR/chrome-sandbox" || true; fi
if [ -z "$ROOT" ]; then
  update-mime-database /usr/share/mime >/dev/null 2>&1 || true
  update-desktop-database /usr/share/applications >/dev/null 2>&1 || true
fi

if [ -n "$ROOT" ]; then
  # Installing into another root: the running system's tasks stay as they are; the agent reads and writes there.
  DTA_MANAGED_CONFIG_DIR="$ROOT/etc/device-trust-agent"
  DTA_BROWSER_POLICY_DIRS="$ROOT/etc/chromium/policies/managed:$ROOT/etc/opt/chrome/policies/managed:$ROOT/etc/opt/edge/policies/managed"
  DTA_FIREFOX_POLICY_DIRS="$ROOT/etc/firefox/policies"
  export DTA_MANAGED_CONFIG_DIR DTA_BROWSER_POLICY_DIRS DTA_FIREFOX_POLICY_DIRS
else
  # Scheduled tasks: at logon, every 24 hours, on network change (systemd units / XDG autostart).
  if ! "$AGENT" install; then
    echo "device-trust-agent: the scheduled tasks were not registered; run 'device-trust-agent install' as root." >&2
  fi
fi

# The task once, now: the device task writes the machine-wide browser policy. A failure (no network, org not yet
# configured) must not fail the package: the scheduled task tries again.
if ! "$AGENT" run --device; then
  echo "device-trust-agent: the first run did not complete; the scheduled task will retry ('device-trust-agent status' says why)." >&2
fi
exit 0

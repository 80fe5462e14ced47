#!/bin/sh
# DEB prerm / RPM %preun (electron-builder: fpm --before-remove), for the headless package and the tray app's. Runs
# while the agent is still installed, so the agent undoes what it set up: its scheduled tasks and its browser
# policies (others' policies stay). The users' certificates stay unless DTA_REMOVE_CERTIFICATE=true is set, e.g.
#   sudo DTA_REMOVE_CERTIFICATE=true apt-get remove device-trust-agent
# electron-builder substitutes the ${name} macros below; shell variables are written without braces.
set -e

case "$1" in
  remove|purge|0) ;; # deb: remove; rpm: 0 = erase
  *) exit 0 ;;       # upgrade (deb "upgrade", rpm 1), deconfigure, failed-upgrade: keep everything
esac

ROOT="$DPKG_ROOT"
DTA_STATE_DIR="$ROOT/var/lib/device-trust-agent"
export DTA_STATE_DIR
HEADLESS="$ROOT/usr/lib/device-trust-agent"
[ -x "$HEADLESS/node" ] || HEADLESS="$ROOT/opt/${productFilename}/resources/headless"
[ -x "$HEADLESS/node" ] || exit 0
agent() { "$HEADLESS/node" "$HEADLESS/device-trust-agent.mjs" "$@"; }

if [ -n "$ROOT" ]; then
  DTA_MANAGED_CONFIG_DIR="$ROOT/etc/device-trust-agent"
  DTA_BROWSER_POLICY_DIRS="$ROOT/etc/chromium/policies/managed:$ROOT/etc/opt/chrome/policies/managed:$ROOT/etc/opt/edge/policies/managed"
  DTA_FIREFOX_POLICY_DIRS="$ROOT/etc/firefox/policies"
  export DTA_MANAGED_CONFIG_DIR DTA_BROWSER_POLICY_DIRS DTA_FIREFOX_POLICY_DIRS
fi

if [ -f "$ROOT/usr/lib/systemd/system/device-trust-agent-device.timer" ]; then
  if [ -n "$ROOT" ]; then
    systemctl --root="$ROOT" disable device-trust-agent-device.service device-trust-agent-device.timer >/dev/null 2>&1 || true
    systemctl --root="$ROOT" --global disable device-trust-agent.service device-trust-agent-check.timer device-trust-agent-p11-kit.service >/dev/null 2>&1 || true
  else
    if [ -d /run/systemd/system ]; then systemctl stop device-trust-agent-device.timer device-trust-agent-device.service || true; fi
    systemctl disable device-trust-agent-device.service device-trust-agent-device.timer >/dev/null 2>&1 || true
    systemctl --global disable device-trust-agent.service device-trust-agent-check.timer device-trust-agent-p11-kit.service >/dev/null 2>&1 || true
  fi
elif [ -z "$ROOT" ] && ! agent uninstall --device; then
  echo "device-trust-agent: the scheduled tasks could not all be removed; see 'device-trust-agent help uninstall'." >&2
fi

if ! agent browser-setup --remove; then
  echo "device-trust-agent: some browser policy could not be removed (listed above)." >&2
fi

if [ "$DTA_REMOVE_CERTIFICATE" = true ] && [ -z "$ROOT" ]; then
  # Certificates live in each user's own store: remove them as that user.
  getent passwd | while IFS=: read -r user _ uid _ _ home _; do
    [ "$uid" -ge 1000 ] 2>/dev/null || continue
    [ -d "$home/.local/state/device-trust-agent" ] || continue
    runuser -u "$user" -- env -u DTA_STATE_DIR HOME="$home" "$HEADLESS/node" "$HEADLESS/device-trust-agent.mjs" remove-certificate ||
      echo "device-trust-agent: the certificate of $user was not removed." >&2
  done
fi
exit 0

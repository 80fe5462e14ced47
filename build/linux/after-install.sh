#!/bin/sh
# DEB postinst / RPM %post, for both packages that carry the headless agent:
#  - the headless package (npm run package:linux): /usr/lib/device-trust-agent, with its systemd units shipped
#    in /usr/lib/systemd/{system,user};
#  - the tray app's package (electron-builder, which substitutes the ${name} macros below and passes this to fpm as
#    --after-install): the same headless program in /opt/${productFilename}/resources/headless, no units shipped.
# The tasks always run the headless program (its own Node runtime + bundled script), never the Electron app.
# Install-time parameters (OktaURL=, HttpProxy=, HttpProxyPacLocation=, SkipBrowserSetup=, SkipTPM=) reach the agent
# as managed configuration: put them in /etc/device-trust-agent/*.json before or after installing.
set -e

ROOT="$DPKG_ROOT" # set when dpkg installs into another root (--root with --force-script-chrootless)
# The device task (root) keeps its state with the system, not in root's home; purge removes it.
DTA_STATE_DIR="$ROOT/var/lib/device-trust-agent"
export DTA_STATE_DIR
HEADLESS="$ROOT/usr/lib/device-trust-agent"
[ -x "$HEADLESS/node" ] || HEADLESS="$ROOT/opt/${productFilename}/resources/headless"
agent() { "$HEADLESS/node" "$HEADLESS/device-trust-agent.mjs" "$@"; }

# The directories the agent or systemctl may create for us, deepest first: those missing now are recorded, and only
# those are removed (when empty) on purge, never a directory that was there before us (e.g. Debian's empty /etc/opt).
mkdir -p "$DTA_STATE_DIR"
for d in etc/chromium/policies/managed etc/chromium/policies etc/chromium etc/opt/chrome/policies/managed etc/opt/chrome/policies \
  etc/opt/chrome etc/opt/edge/policies/managed etc/opt/edge/policies etc/opt/edge etc/opt etc/firefox/policies etc/firefox \
  etc/systemd/system/timers.target.wants etc/systemd/system/multi-user.target.wants etc/systemd/system etc/systemd/user/default.target.wants \
  etc/systemd/user/timers.target.wants etc/systemd/user etc/systemd; do
  if [ ! -e "$ROOT/$d" ] && ! grep -qx "$d" "$DTA_STATE_DIR/created-dirs" 2>/dev/null; then echo "$d" >>"$DTA_STATE_DIR/created-dirs"; fi
done

if [ -d "$ROOT/opt/${productFilename}" ]; then
  # The tray app's package: what electron-builder's default script does (the tray app on PATH, the SUID sandbox).
  mkdir -p "$ROOT/usr/bin"
  ln -sf "/opt/${productFilename}/${executable}" "$ROOT/usr/bin/${executable}-tray"
  if [ -e "$ROOT/opt/${productFilename}/chrome-sandbox" ]; then chmod 4755 "$ROOT/opt/${productFilename}/chrome-sandbox" || true; fi
  if [ -z "$ROOT" ]; then
    update-mime-database /usr/share/mime >/dev/null 2>&1 || true
    update-desktop-database /usr/share/applications >/dev/null 2>&1 || true
  fi
fi

if [ -n "$ROOT" ]; then
  # Installing into another root: the agent reads and writes there; the running system's tasks stay as they are.
  DTA_MANAGED_CONFIG_DIR="$ROOT/etc/device-trust-agent"
  DTA_BROWSER_POLICY_DIRS="$ROOT/etc/chromium/policies/managed:$ROOT/etc/opt/chrome/policies/managed:$ROOT/etc/opt/edge/policies/managed"
  DTA_FIREFOX_POLICY_DIRS="$ROOT/etc/firefox/policies"
  export DTA_MANAGED_CONFIG_DIR DTA_BROWSER_POLICY_DIRS DTA_FIREFOX_POLICY_DIRS
fi

if [ -f "$ROOT/usr/lib/systemd/system/device-trust-agent-device.timer" ]; then
  # Units shipped by the package: the device timer for the machine, the daemon and hourly check for every user.
  if [ -n "$ROOT" ]; then
    systemctl --root="$ROOT" enable device-trust-agent-device.service device-trust-agent-device.timer >/dev/null 2>&1 || echo "device-trust-agent: could not enable the device service in $ROOT." >&2
    systemctl --root="$ROOT" --global enable device-trust-agent.service device-trust-agent-check.timer device-trust-agent-p11-kit.service >/dev/null 2>&1 || echo "device-trust-agent: could not enable the user units in $ROOT." >&2
  else
    systemctl enable device-trust-agent-device.service device-trust-agent-device.timer >/dev/null 2>&1 || echo "device-trust-agent: could not enable the device service (systemctl enable device-trust-agent-device.service device-trust-agent-device.timer)." >&2
    systemctl --global enable device-trust-agent.service device-trust-agent-check.timer device-trust-agent-p11-kit.service >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then
      systemctl daemon-reload || true
      # The device service (it alone uses the machine keytab; user tasks ask it) and its hourly backstop.
      systemctl restart device-trust-agent-device.service || true
      systemctl start device-trust-agent-device.timer || true
    fi
  fi
elif [ -z "$ROOT" ]; then
  # The tray app's package: the device task's units written by the headless program itself.
  if ! agent install --device --no-run; then
    echo "device-trust-agent: the device task was not registered; run '$HEADLESS/node $HEADLESS/device-trust-agent.mjs install --device' as root." >&2
  fi
fi

# The TPM's shared storage primary key, once per machine, so that no user's first TPM enrollment creates one (the
# tray app's package had it from install --device above). Never fails the package: the agent says what to do.
if [ -z "$ROOT" ] && [ -f /usr/lib/systemd/system/device-trust-agent-device.timer ]; then
  agent install --device --tpm-only || true
fi

# The task once, now: the device task writes the machine-wide browser policy. A failure (no network, org not yet
# configured) must not fail the package: the scheduled task tries again.
if ! agent run --device; then
  echo "device-trust-agent: the first run did not complete; the scheduled task will retry ('device-trust-agent status' says why)." >&2
fi
exit 0

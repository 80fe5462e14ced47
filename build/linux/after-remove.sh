#!/bin/sh
# DEB postrm / RPM %postun (electron-builder: afterRemove; it replaces electron-builder's default script). Only on
# removal: during an upgrade deb runs the old postrm with "upgrade" and rpm runs %postun with 1, and the new
# version's files are (or will be) in place. Admin files in /etc/device-trust-agent are left alone.
set -e

case "$1" in
  remove|purge|0) ;;
  *) exit 0 ;;
esac

ROOT="$DPKG_ROOT"
# The tray app's package links its executable onto PATH (the headless package's launcher is a file dpkg owns).
LINK="$ROOT/usr/bin/${executable}-tray"
if [ -L "$LINK" ]; then rm -f "$LINK"; fi
if [ "$1" = purge ] || [ "$1" = 0 ]; then
  # Directories the agent or systemctl created for us (recorded by postinst), only while empty: rmdir never removes
  # others' files, and a directory that was there before the package stays.
  created=$(cat "$ROOT/var/lib/device-trust-agent/created-dirs" 2>/dev/null || true)
  # The device task's state, and what enable left behind if prerm could not run systemctl.
  rm -rf "$ROOT/var/lib/device-trust-agent"
  rm -f "$ROOT/etc/systemd/system/timers.target.wants/device-trust-agent-device.timer" \
    "$ROOT/etc/systemd/system/multi-user.target.wants/device-trust-agent-device.service" \
    "$ROOT/etc/systemd/user/default.target.wants/device-trust-agent.service" \
    "$ROOT/etc/systemd/user/default.target.wants/device-trust-agent-p11-kit.service" \
    "$ROOT/etc/systemd/user/timers.target.wants/device-trust-agent-check.timer"
  for d in $created; do
    rmdir "$ROOT/$d" 2>/dev/null || true
  done
fi
exit 0

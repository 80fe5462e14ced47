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
LINK="$ROOT/usr/bin/${executable}"
if [ -L "$LINK" ]; then rm -f "$LINK"; fi
if [ "$1" = purge ]; then rm -rf "$ROOT/var/lib/device-trust-agent"; fi
exit 0

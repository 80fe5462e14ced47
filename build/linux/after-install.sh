#!/bin/sh
# DEB/RPM post-install: run the device task once so the machine-wide browser policy is in place.
# Install-time parameters reach the agent through /etc/device-trust-agent/*.json (managed configuration).
set -e
AGENT=/opt/Device\ Trust\ Agent/resources/bin/device-trust-agent
[ -x "$AGENT" ] && "$AGENT" run --device || true

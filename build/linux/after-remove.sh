#!/bin/sh
# DEB/RPM post-remove: drop the browser policy files this package wrote (certificates stay with the user).
rm -f /etc/chromium/policies/managed/device-trust-agent.json /etc/opt/chrome/policies/managed/device-trust-agent.json /etc/opt/edge/policies/managed/device-trust-agent.json

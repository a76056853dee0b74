#!/usr/bin/env bash
# Makes /usr/bin/chromium available for the report rendering test (tests/report).
# Installs Debian's chromium package when it is missing and we are root; otherwise says
# why it can't and exits 0, so CI's own run decides (the test fails under CI=... when absent).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    /usr/bin/chromium --version 2>/dev/null || true
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "chromium.sh: /usr/bin/chromium is missing and we are not root; install the 'chromium' package" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium.sh: /usr/bin/chromium is missing and apt-get is not available" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# fonts-liberation gives the page metric-compatible sans fonts when the image has none.
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
/usr/bin/chromium --version

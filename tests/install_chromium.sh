#!/bin/sh
# Install Debian's Chromium for tests/browser.py (Playwright drives it), unless it is there.
#
# Playwright's own browser download (`playwright install`) is never used: the tests launch
# the `chromium` on PATH, which the distribution keeps patched.
set -eu

if path=$(command -v chromium); then
    echo "chromium present: $path"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_chromium.sh: no chromium on PATH, and installing it needs root" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no apt-get here; install Chromium as \`chromium\` on PATH" \
        "by other means" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q >/dev/null || ! apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confold chromium >/dev/null; then
    echo "install_chromium.sh: apt-get could not install chromium" >&2
    exit 1
fi
if path=$(command -v chromium); then
    echo "chromium installed: $path ($(chromium --version 2>/dev/null || echo 'version unknown'))"
else
    echo "install_chromium.sh: chromium installed, but no \`chromium\` on PATH" >&2
    exit 1
fi

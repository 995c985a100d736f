#!/usr/bin/env bash
# Headless Chromium for the browser tests of the scaling pages (tests/test_server_pages.py):
# installs Debian's `chromium` package (and fonts, so screenshots show text) when no Chromium
# is on PATH. Idempotent: does nothing when one is already there. Without apt-get (not
# Debian/Ubuntu) it says so and exits 0 on a developer's machine (the browser tests then skip
# with a message) but exits 1 under CI=true, where the browser tests must run.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "ci_chromium: using $(command -v "$name")" >&2
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "ci_chromium: no Chromium and no apt-get to install it; CI=true needs the browser" >&2
    exit 1
  fi
  echo "ci_chromium: no apt-get here; install Chromium by hand or the browser tests skip" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "ci_chromium: not root and no sudo; cannot install chromium" >&2
    exit 1
  fi
fi
echo "ci_chromium: installing Debian's chromium" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
chromium --version >&2

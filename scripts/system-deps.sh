#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing.
# Runs as root (CI, dev machines) or through sudo; never downloads anything else.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)  # the run sandbox
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)  # run limits

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "system-deps: missing Debian packages: ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
    exit 1
fi

echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

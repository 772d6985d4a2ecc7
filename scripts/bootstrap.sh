#!/usr/bin/env bash
# Prepare this machine for fleetwall's demo and tests: system packages (as
# root, Debian/Ubuntu) and a Python virtual environment in .venv.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium and chromium-driver: the reachability report's browser test and screenshots.
apt_packages=(iptables ipset iproute2 make rsync git procps openssh-server chromium chromium-driver)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # openssh-server is for the tests' and the lab's sshd inside network
    # namespaces; its package must not start an sshd on this machine.
    blocker=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        blocker=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$blocker"
        chmod 755 "$blocker"
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [[ -z $blocker ]] || rm -f "$blocker"
fi

# ansible-core 2.21 needs Python 3.12; prefer it, fall back to any 3.12+.
find_python() {
    local candidate
    for candidate in "${FLEETWALL_PYTHON:-}" "$HOME/.pyenv/versions/3.12"*/bin/python3.12 \
        python3.12 python3.13 python3; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ ! -x .venv/bin/python ]]; then
    python=$(find_python) || { echo "bootstrap: Python 3.12 or newer is required" >&2; exit 1; }
    "$python" -m venv .venv
fi
stamp=.venv/.requirements-stamp
if [[ ! -f $stamp ]] || ! cmp -s <(cat requirements*.txt) "$stamp"; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements-dev.txt
    cat requirements*.txt >"$stamp"
fi

#!/usr/bin/env bash
# Copy the working tree into .build/ansible_collections/fleetwall/iptables,
# the layout ansible-test and Python imports of ansible_collections.* expect.
# Prints the path of the copy.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.build/ansible_collections/fleetwall/iptables
mkdir -p "$dest"
rsync -a --delete \
    --exclude /.venv --exclude /.build --exclude /.cache --exclude /.git \
    --exclude __pycache__ --exclude .pytest_cache --exclude .hypothesis \
    --exclude /tests/output --exclude '*.tar.gz' \
    ./ "$dest/"
realpath "$dest"

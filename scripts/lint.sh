#!/usr/bin/env bash
# ansible-lint, production profile, over everything Ansible reads: roles,
# playbooks, examples and molecule scenarios, against this collection as
# installed from the working tree.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
tree=$(scripts/collection-tree.sh)
export ANSIBLE_COLLECTIONS_PATH
ANSIBLE_COLLECTIONS_PATH=$(dirname "$(dirname "$(dirname "$tree")")")
targets=(roles playbooks examples)
[[ -d molecule ]] && targets+=(molecule)
.venv/bin/ansible-lint --profile production --offline "${targets[@]}"

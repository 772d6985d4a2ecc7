#!/usr/bin/env bash
# The main job on a built-in default: a lab of network-namespace hosts
# (bastion, web1, web2, db1 and an outsider), the example policy compiled
# by Ansible, applied inside each namespace, and proven by real connections.
# Needs root; changes nothing outside the lab's own namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
inventory=examples/lab
rendered=.build/demo/rendered
export ANSIBLE_COLLECTIONS_PATH
ANSIBLE_COLLECTIONS_PATH=$(dirname "$(dirname "$(dirname "$(scripts/collection-tree.sh)")")")
python=.venv/bin/python

trap '$python scripts/lab.py down' EXIT
$python scripts/lab.py up "$inventory"
echo "demo: the lab before any firewall:"
$python scripts/lab.py probe "$inventory"
.venv/bin/ansible-playbook -i "$inventory" playbooks/render.yml -e "fleetwall_render_dir=$PWD/$rendered"
$python scripts/lab.py apply "$rendered"
echo "demo: the lab with the example policy applied (examples/lab/group_vars/all.yml):"
$python scripts/lab.py probe "$inventory"
echo "demo: rulesets are in $rendered"

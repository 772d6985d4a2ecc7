#!/usr/bin/env bash
# The main job on a built-in default: a lab of network-namespace hosts
# (bastion1, web1, web2, db1, cache1, mon1, each with its own sshd, and an
# outsider), the example policy rolled out by playbooks/site.yml over SSH from
# the bastion, what each host accepts from whom, proven by real connections,
# and playbooks/verify.yml proving the fleet against the policy, before and
# after an operator's hand change. The report: .build/demo/reachability.html
# Needs root; changes nothing outside the lab's own namespaces and .build/.
set -euo pipefail
cd "$(dirname "$0")/.."
inventory=examples/lab
export ANSIBLE_COLLECTIONS_PATH
ANSIBLE_COLLECTIONS_PATH=$(dirname "$(dirname "$(dirname "$(scripts/collection-tree.sh)")")")
python=.venv/bin/python
if ! command -v sshd >/dev/null 2>&1 && [[ ! -x /usr/sbin/sshd ]]; then
    echo "demo: sshd is missing; run scripts/bootstrap.sh as root" >&2
    exit 1
fi

trap '$python scripts/lab.py down' EXIT
$python scripts/lab.py up "$inventory"
echo "demo: the lab before any firewall:"
$python scripts/lab.py probe "$inventory"
echo "demo: rolling out examples/lab/group_vars/all.yml with playbooks/site.yml, from the bastion over SSH"
$python scripts/lab.py playbook "$inventory" playbooks/site.yml -e fleetwall_batch_size=2
echo "demo: the lab with the example policy applied:"
$python scripts/lab.py probe "$inventory"
echo "demo: a second rollout changes nothing:"
$python scripts/lab.py playbook "$inventory" playbooks/site.yml | tail -n 6
report=$PWD/.build/demo/reachability.html
echo "demo: verifying the fleet against the policy with real packets (playbooks/verify.yml)"
$python scripts/lab.py playbook "$inventory" playbooks/verify.yml -e "fleetwall_verify_report=$report" | grep -E "checks:|failed=|unreachable="
echo "demo: an operator drops PostgreSQL from web2 by hand on db1; verify.yml must notice:"
$python scripts/lab.py iptables db1 -I INPUT 1 -s 10.0.1.12 -p tcp --dport 5432 -j DROP
log=.build/demo/verify-after-hand-change.log
if $python scripts/lab.py playbook "$inventory" playbooks/verify.yml \
    -e "fleetwall_verify_report=${report%.html}-after-hand-change.html" \
    -e "fleetwall_verify_json=${report%.html}-after-hand-change.json" >"$log" 2>&1; then
    echo "demo: verify.yml did not notice the hand change (see $log)" >&2
    exit 1
fi
grep -o '"[a-z0-9]* -> [a-z0-9]* [^"]*expected [^"]*"' "$log" | sort -u
echo "demo: reports: $report and ${report%.html}-after-hand-change.html"

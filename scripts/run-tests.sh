#!/usr/bin/env bash
# Every test, in order of cost. Exits non-zero if any suite fails, after
# running all of them, and prints one summary line per suite.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

declare -a summary=()
failed=0
passed_suites=0
failed_suites=0
run_suite() {
    local name=$1
    shift
    echo "=== $name: $*"
    local start=$SECONDS
    if "$@"; then
        summary+=("PASS  $name ($((SECONDS - start)) s)")
        passed_suites=$((passed_suites + 1))
    else
        summary+=("FAIL  $name ($((SECONDS - start)) s)")
        failed=1
        failed_suites=$((failed_suites + 1))
    fi
}

run_suite "ansible-test sanity" scripts/ansible-test.sh sanity
run_suite "ansible-test units" scripts/ansible-test.sh units
run_suite "ansible-lint (production profile)" scripts/lint.sh
run_suite "release artefacts (changelog lint and trial release, execution environment)" scripts/release-check.sh
run_suite "docs site (antsibull-docs lint and Sphinx build)" scripts/docs-site.sh
run_suite "unit tests (pytest)" .venv/bin/python -m pytest tests/unit -q -p no:cacheprovider
run_suite "integration (real iptables in network namespaces)" \
    .venv/bin/python -m pytest tests/integration -q -p no:cacheprovider
run_suite "molecule default (podman, booted Debian 12)" scripts/molecule.sh
run_suite "compile benchmark, smoke size" .venv/bin/python benchmarks/compile.py --sizes 100
run_suite "apply benchmark, smoke size" .venv/bin/python benchmarks/apply.py --sizes 50
run_suite "render benchmark (real ansible-playbook render.yml), smoke size" .venv/bin/python benchmarks/render.py --sizes 100
run_suite "reachability model benchmark, smoke size" .venv/bin/python benchmarks/reachability.py --sizes 100
run_suite "fleet benchmark, 6-host lab (Ansible over SSH)" .venv/bin/python benchmarks/fleet.py --sizes 6
run_suite "dataplane benchmark, smoke size" .venv/bin/python benchmarks/dataplane.py --sizes 100 --seconds 0.3 --rounds 2

echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "suites: $passed_suites passed, $failed_suites failed"
exit $failed

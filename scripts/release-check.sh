#!/usr/bin/env bash
# Release checks that need no root and no network: the changelog (lint, then
# a trial release in a temporary copy) and the execution environment
# (ansible-builder create on examples/execution-environment.yml, and the
# build context's own introspection over the collection installed from its
# tarball). The tarball's contents, and running it by FQCN, are checked by
# tests/integration/test_installed_collection.py; the docs by scripts/docs-site.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PATH="$repo/.venv/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')

# A copy outside any git work tree, as a collection: antsibull-changelog asks ansible-doc about its plugins.
copy=$work/collections/ansible_collections/fleetwall/iptables
mkdir -p "$copy"
rsync -a --exclude /.git --exclude /.venv --exclude /.build --exclude /.cache --exclude __pycache__ ./ "$copy/"

echo "release-check: antsibull-changelog lint"
(cd "$copy" && antsibull-changelog lint)

echo "release-check: trial release $version"
(cd "$copy" && ANSIBLE_COLLECTIONS_PATH=$work/collections antsibull-changelog release --version "$version" \
    --date 2000-01-01) >"$work/release.log" 2>&1 || { cat "$work/release.log"; exit 1; }
if grep -qE "^WARNING " "$work/release.log"; then # antsibull-changelog's own (ansible-doc's are "[WARNING]")
    cat "$work/release.log" >&2
    exit 1
fi
python scripts/release_check.py changelog "$copy/CHANGELOG.rst" "$copy/changelogs/changelog.yaml"

echo "release-check: ansible-builder create, and the context's introspection of the installed collection"
ansible-galaxy collection build --output-path "$work/dist" . >/dev/null
ANSIBLE_HOME=$work/ansible-home ansible-galaxy collection install --offline -p "$work/installed" \
    "$work"/dist/fleetwall-iptables-*.tar.gz >/dev/null
ansible-builder create -f examples/execution-environment.yml -c "$work/context" >/dev/null
python "$work/context/_build/scripts/introspect.py" introspect "$work/installed" >"$work/introspect.yml"
python scripts/release_check.py execution-environment "$work/context" "$work/introspect.yml"
echo "release-check: all passed"

#!/usr/bin/env bash
# Release checks that need no root and no network: the changelog (lint, then
# a trial release in a temporary copy) and the execution environment
# (ansible-builder create on examples/execution-environment.yml, and the
# build context's own introspection over the collection installed from its
# tarball). The tarball's contents, and running it by FQCN, are checked by
# tests/integration/test_installed_collection.py; the docs by scripts/docs-site.sh.
# Last, render.yml on the ansible-core that meta/runtime.yml names as the floor.
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
echo "release-check: render.yml on the requires_ansible floor gives the same files as on the current ansible-core"
floor=$(python -c 'import yaml; print(yaml.safe_load(open("meta/runtime.yml"))["requires_ansible"].removeprefix(">="))')
floor_venv=.build/venv-ansible-core-${floor%.*} # made by scripts/ansible-test.sh, which runs first in run-tests.sh
floor_core=$("$floor_venv/bin/python" -c 'from ansible.release import __version__; print(__version__)' 2>/dev/null) ||
    { echo "release-check: no ansible-core ${floor%.*} in $floor_venv; run scripts/ansible-test.sh sanity first" >&2; exit 1; }
[[ ${floor_core%.*} == "${floor%.*}" ]] ||
    { echo "release-check: $floor_venv holds ansible-core $floor_core, the floor is $floor" >&2; exit 1; }
# netaddr and jmespath are pure Python: a --target directory serves the floor's Python without touching its venv.
python -m pip install -q --target "$work/floor-libs" -r requirements.txt >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; exit 1; }
for core in current floor; do
    playbook=ansible-playbook libs=
    [[ $core == floor ]] && playbook=$floor_venv/bin/ansible-playbook libs=$work/floor-libs
    ANSIBLE_COLLECTIONS_PATH=$work/installed ANSIBLE_HOME=$work/ansible-home PYTHONPATH=$libs \
        "$playbook" -i "$work/installed/ansible_collections/fleetwall/iptables/examples/lab" fleetwall.iptables.render \
        -e "fleetwall_render_dir=$work/rendered-$core" >"$work/render-$core.log" 2>&1 ||
        { cat "$work/render-$core.log"; exit 1; }
done
diff -r "$work/rendered-current" "$work/rendered-floor"
echo "release-check: ansible-core $floor_core renders the lab byte for byte like ansible-core $(python -c 'from ansible.release import __version__; print(__version__)')"
echo "release-check: all passed"

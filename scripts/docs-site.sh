#!/usr/bin/env bash
# Build the documentation site: antsibull-docs pages for every module, filter
# and role, plus the guides of docs/ (Markdown, through myst-parser), into
# .build/docs-site/build/html/index.html. First lints the collection's docs
# (strict, every collection reference validated). Fails on any Sphinx warning
# except those caused by intersphinx inventories this machine cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
site=$repo/.build/docs-site
# A copy outside any git work tree: inside one (this repository, or the empty
# repository scripts/ansible-test.sh puts into .build's copy) antsibull-docs
# lists the files git tracks there, finds none and checks nothing.
collections=$(mktemp -d)
trap 'rm -rf "$collections"' EXIT
tree=$collections/ansible_collections/fleetwall/iptables
mkdir -p "$tree"
rsync -a --delete --exclude /.git "$(scripts/collection-tree.sh)/" "$tree/"
export ANSIBLE_COLLECTIONS_PATH=$collections PATH="$repo/.venv/bin:$PATH"

echo "docs-site: antsibull-docs lint-collection-docs (strict, all collection references)"
antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs all \
    --disallow-unknown-collection-refs "$tree"

rm -rf "$site"
mkdir -p "$site"
chmod 700 "$site" # antsibull-docs refuses a directory others may write to
antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$site" \
    --project fleetwall.iptables --copyright "fleetwall contributors" --title "fleetwall.iptables" \
    --html-short-title fleetwall.iptables --index-rst-source scripts/docs-site/index.rst \
    fleetwall.iptables >/dev/null
cat >>"$site/conf.py" <<'CONF'

# The guides are the Markdown files of docs/, read by myst-parser.
extensions.append('myst_parser')
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
myst_heading_anchors = 4
CONF
mkdir -p "$site/rst"
chmod og-w "$site/rst"
antsibull-docs --config-file "$site/antsibull-docs.cfg" collection --cleanup everything --fail-on-error \
    --use-current --dest-dir "$site/rst" fleetwall.iptables >/dev/null
cp -r docs "$site/rst/guides"

log=$site/sphinx-warnings.log
sphinx-build -M html "$site/rst" "$site/build" -q -c "$site" 2>"$log" || { cat "$log"; exit 1; }
# Without network: the intersphinx inventories (Python, Jinja, Ansible) cannot be fetched, and the labels that
# only they define (ansible-core's own documentation pages) stay undefined. Nothing else is tolerated.
unreachable="failed to reach any of the inventories|intersphinx inventory|undefined label: '(ansible_configuration_settings|common_return_values|action_plugins|playbooks_tags|check_mode_dry)'"
if grep -vE "$unreachable" "$log" | grep -q .; then
    echo "docs-site: Sphinx warnings:" >&2
    grep -vE "$unreachable" "$log" >&2
    exit 1
fi
echo "docs-site: built $site/build/html/index.html ($(grep -cE "$unreachable" "$log") warning line(s) about unreachable intersphinx inventories)"

#!/usr/bin/env bash
# Run ansible-test on a copy of this collection laid out as
# .build/ansible_collections/fleetwall/iptables (see collection-tree.sh).
#
#   scripts/ansible-test.sh            # sanity, then units
#   scripts/ansible-test.sh sanity     # sanity only
#   scripts/ansible-test.sh units      # units only
#
# Needs scripts/bootstrap.sh to have been run (.venv: ansible-core 2.21 on
# Python 3.12) and pyenv's Pythons 3.6 to 3.13. Runs every step, prints
# ansible-test's own output, and exits non-zero if any step failed.
#
# sanity:
#   * ansible-test sanity --venv (ansible-core 2.21, controller Python 3.12 of
#     .venv), every test, no ignore file (one present is itself a failure).
#     Its multi-version tests (compile, import) run on each Python that
#     tests/config.yml allows and ansible-test 2.21 supports (3.9 to 3.14): each
#     pyenv Python is put first on PATH as pythonX.Y; ansible-test reports a
#     version it cannot find (3.14) as skipped.
#   * ansible-test 2.21 knows no Python older than 3.9, while tests/config.yml
#     promises module code for 3.6 and newer: pyenv's 3.6, 3.7 and 3.8 compile
#     plugins/modules and plugins/module_utils, and import every module_utils
#     file with nothing but the standard library.
#   * Controllers on ansible-core 2.19 run Python 3.11, a target-only Python for
#     ansible-test 2.21: Python 3.11 compiles the controller plugins (plugins/*
#     but modules and module_utils), and ansible-test 2.19 (from a second virtual
#     environment, .build/venv-ansible-core-2.19) runs its compile and import
#     tests on Python 3.11 (controller plugins and module code) and 3.8
#     (module code).
# units:
#   * ansible-test units --venv on Python 3.12 (ansible-core 2.21), then with
#     ansible-test 2.19 on Python 3.11. Extra test requirements come from
#     tests/unit/requirements.txt; if the collection has none, the copy gets one
#     made from requirements-dev.txt (and what it includes) less ansible-core.
#
# FLEETWALL_CORE219=0 leaves out every ansible-core 2.19 step.
# FLEETWALL_NO_SYNC=1 tests the existing copy as it is (no rsync from the work
# tree), for trying out changes made in the copy alone.
#
# ansible-test downloads a get-pip.py from a host that these machines cannot
# reach; scripts/get-pip-standin/get-pip.py (pip from ensurepip, then from the
# package index) is put in ansible-test's cache in its place.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

mode=${1:-all}
case $mode in
    all | sanity | units) ;;
    -h | --help)
        sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [sanity|units]" >&2
        exit 2
        ;;
esac

venv=$repo/.venv
if [[ ! -x $venv/bin/ansible-test ]]; then
    echo "ansible-test.sh: $venv/bin/ansible-test not found; run scripts/bootstrap.sh first" >&2
    exit 1
fi

pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
core219=${FLEETWALL_CORE219:-1}
core219_venv=$repo/.build/venv-ansible-core-2.19
core219_spec='ansible-core>=2.19,<2.20'
python_bin=$repo/.build/python-bin
failures=()

say() { printf '\n=== %s\n' "$*"; }

# run NAME COMMAND...: run a step, note a failure and go on; last_ok says how it went.
last_ok=1
run() {
    local name=$1
    shift
    if "$@"; then
        echo "--- $name: passed"
        last_ok=1
    else
        echo "--- $name: FAILED"
        failures+=("$name")
        last_ok=0
    fi
}

# Newest pyenv Python X.Y, else pythonX.Y on PATH (not a pyenv shim).
find_python() {
    local version=$1 candidate found=""
    while IFS= read -r candidate; do
        [[ -x $candidate ]] && found=$candidate
    done < <(printf '%s\n' "$pyenv_root/versions/$version".*/bin/"python$version" |
        grep -E "/versions/${version//./\\.}\.[0-9]+/bin/" | sort -V)
    if [[ -z $found ]]; then
        found=$(PATH=$(tr ':' '\n' <<<"$PATH" | grep -v '/\.pyenv/shims' | paste -sd:) \
            command -v "python$version" 2>/dev/null) || true
    fi
    [[ -n $found ]] && printf '%s\n' "$found"
}

# Links pythonX.Y -> interpreter, for ansible-test, which looks Pythons up on PATH.
make_python_bin() {
    local version python
    rm -rf "$python_bin"
    mkdir -p "$python_bin"
    for version in 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13 3.14; do
        if python=$(find_python "$version"); then
            ln -s "$python" "$python_bin/python$version"
        fi
    done
}

# Put the get-pip stand-in where the given Python's ansible-test looks for its
# cached get-pip (ansible_test/_util/target/setup/requirements.py:
# ~/.ansible/test/cache/get_pip_<pip version>.py). A real get-pip is left alone.
seed_get_pip() {
    local python=$1 version cached versions
    versions=$("$python" - <<'EOF'
import types
from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS
from ansible_test._internal.python_requirements import get_venv_packages
print('\n'.join(sorted({get_venv_packages(types.SimpleNamespace(version=v))['pip'] for v in SUPPORTED_PYTHON_VERSIONS})))
EOF
    ) || { echo "ansible-test.sh: cannot tell which pip $python's ansible-test bootstraps" >&2; return 1; }
    mkdir -p "$HOME/.ansible/test/cache"
    for version in $versions; do
        cached=$HOME/.ansible/test/cache/get_pip_${version//./_}.py
        if [[ ! -e $cached ]] || grep -q 'fleetwall get-pip stand-in' "$cached"; then
            cp scripts/get-pip-standin/get-pip.py "$cached"
        fi
    done
}

# ansible-core 2.19 (the newest release for Python 3.11) in its own virtual environment.
ensure_core219() {
    local python stamp=$core219_venv/.fleetwall-stamp
    if ! [[ -x $core219_venv/bin/ansible-test && -f $stamp && $(cat "$stamp") == "$core219_spec" ]]; then
        python=$(find_python 3.11) || { echo "Python 3.11 not found"; return 1; }
        rm -rf "$core219_venv"
        "$python" -m venv "$core219_venv" &&
            "$core219_venv/bin/python" -m pip install -q "$core219_spec" &&
            echo "$core219_spec" >"$stamp" || return 1
    fi
    seed_get_pip "$core219_venv/bin/python"
}

# With the given Python X.Y, compile every *.py under the given directories of
# the copy (as python -m py_compile does, without writing byte code); with
# --import first, also import each plugins/module_utils file, with the
# standard library alone on the path (as on a bare target host). Lists every error.
check_python() {
    local import=0 version python dir files=()
    if [[ $1 == --import ]]; then
        import=1
        shift
    fi
    version=$1
    shift
    python=$(find_python "$version") || {
        echo "Python $version not found (looked in $pyenv_root/versions and on PATH)"
        return 1
    }
    for dir in "$@"; do
        [[ -d $copy/$dir ]] || continue
        while IFS= read -r -d '' file; do
            files+=("$file")
        done < <(cd "$copy" && find "$dir" -name '*.py' -type f -print0 | sort -z)
    done
    if ((${#files[@]} == 0)); then
        echo "Python $version: no Python files in $*"
        return 0
    fi
    echo "Python $version ($python): ${#files[@]} file(s) in $*"
    # -I: no PYTHONPATH, no user site, no script directory on sys.path.
    (cd "$copy" && "$python" -I - "$import" "${files[@]}") <<'EOF'
import importlib
import os
import sys
import traceback

do_import = sys.argv[1] == '1'
paths = sys.argv[2:]
failed = []

for path in paths:
    try:
        with open(path, 'rb') as source:
            compile(source.read(), path, 'exec', dont_inherit=True)
    except SyntaxError as ex:
        failed.append(path)
        print('%s:%s:%s: compile: SyntaxError: %s' % (path, ex.lineno, ex.offset or 0, ex.msg))
    except (ValueError, TypeError) as ex:
        failed.append(path)
        print('%s: compile: %s: %s' % (path, type(ex).__name__, ex))

if do_import:
    # The copy is <root>/ansible_collections/<namespace>/<name>.
    collection = os.getcwd()
    name = os.path.basename(collection)
    namespace = os.path.basename(os.path.dirname(collection))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(collection))))
    for path in paths:
        if path in failed or not path.startswith('plugins/module_utils/'):
            continue
        module = os.path.splitext(path)[0].replace('/', '.')
        if module.endswith('.__init__'):
            module = module[:-len('.__init__')]
        module = 'ansible_collections.%s.%s.%s' % (namespace, name, module)
        try:
            importlib.import_module(module)
        except ImportError as ex:
            if (getattr(ex, 'name', None) or '').split('.')[0] == 'ansible':
                print('%s: import: needs ansible-core (%s), left to ansible-test' % (path, ex))
                continue
            failed.append(path)
            print('%s: import: %s' % (path, traceback.format_exc().rstrip().splitlines()[-1]))
        except Exception:  # pylint: disable=broad-except
            failed.append(path)
            line = [entry for entry in traceback.extract_tb(sys.exc_info()[2]) if entry[0].endswith(path)]
            where = ':%s' % line[-1][1] if line else ''
            print('%s%s: import: %s' % (path, where, traceback.format_exc().rstrip().splitlines()[-1]))

if failed:
    print('Python %d.%d: %d file(s) failed' % (sys.version_info[0], sys.version_info[1], len(set(failed))))
sys.exit(1 if failed else 0)
EOF
}

# The collection must pass sanity without an ignore file.
no_ignore_files() {
    local found
    found=$(cd "$copy" && find tests/sanity -maxdepth 1 -name 'ignore-*.txt' 2>/dev/null | sort)
    if [[ -n $found ]]; then
        printf 'sanity ignore file(s) present; fix the code instead:\n%s\n' "$found"
        return 1
    fi
}

# ansible-test runs the program shellcheck but does not install it; when it is
# missing, ansible-test skips that sanity test.
ensure_shellcheck() {
    command -v shellcheck >/dev/null 2>&1 && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing shellcheck (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends shellcheck >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; } ||
            echo "WARNING: could not install shellcheck; ansible-test will skip its shellcheck test"
    else
        echo "WARNING: shellcheck is not installed; ansible-test will skip its shellcheck test"
    fi
}

# Write tests/unit/requirements.txt into the copy when the collection has none:
# requirements-dev.txt and what it includes, less ansible-core (ansible-test
# provides the ansible-core it belongs to).
unit_requirements() {
    [[ -e tests/unit/requirements.txt ]] && return 0
    mkdir -p "$copy/tests/unit"
    "$venv/bin/python" - requirements-dev.txt >"$copy/tests/unit/requirements.txt" <<'EOF'
import os
import sys

from packaging.requirements import Requirement

PROVIDED = {'ansible', 'ansible-core', 'ansible-base'}


def lines(path, seen):
    if path in seen or not os.path.exists(path):
        return
    seen.add(path)
    with open(path) as handle:
        for line in handle:
            line = line.split(' #')[0].strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith(('-r ', '--requirement ')):
                yield from lines(os.path.join(os.path.dirname(path), line.split(None, 1)[1]), seen)
            elif not line.startswith('-'):
                yield line


print('# Written by scripts/ansible-test.sh from %s' % ' '.join(sys.argv[1:]))
for arg in sys.argv[1:]:
    for line in lines(arg, set()):
        if Requirement(line).name.lower().replace('_', '-') not in PROVIDED:
            print(line)
EOF
}

in_copy() { (cd "$copy" && PATH="$python_bin:$venv/bin:$PATH" "$@"); }

start=$SECONDS

if [[ ${FLEETWALL_NO_SYNC:-0} == 1 ]]; then
    copy=$repo/.build/ansible_collections/fleetwall/iptables
    [[ -d $copy ]] || { echo "ansible-test.sh: no copy at $copy" >&2; exit 1; }
    echo "Testing the existing copy as it is: $copy"
else
    copy=$(bash scripts/collection-tree.sh)
fi
# ansible-test lists the collection's files with git when it finds a .git at or
# above the collection; the work tree's own .git ignores .build, so the copy gets
# an empty repository of its own (nothing is added to it: untracked files count).
[[ -d $copy/.git ]] || git -C "$copy" init -q
make_python_bin
seed_get_pip "$venv/bin/python"
core219_ready=0
if [[ $core219 != 0 ]]; then
    say "ansible-core 2.19 on Python 3.11 ($core219_venv)"
    run "set up ansible-core 2.19" ensure_core219
    core219_ready=$last_ok
fi

if [[ $mode == all || $mode == sanity ]]; then
    ensure_shellcheck
    say "ansible-test sanity (ansible-core 2.21, controller Python 3.12)"
    run "no sanity ignore files" no_ignore_files
    # No --python: that would limit the multi-version tests to one Python.
    run "ansible-test sanity" in_copy ansible-test sanity --venv

    for version in 3.6 3.7 3.8; do
        say "Python $version: compile plugins/modules and plugins/module_utils, import module_utils"
        run "compile and import module code on Python $version" \
            check_python --import "$version" plugins/modules plugins/module_utils
    done

    say "Python 3.11: compile controller plugins"
    controller_dirs=()
    for dir in "$copy"/plugins/*/; do
        dir=plugins/$(basename "$dir")
        [[ $dir == plugins/modules || $dir == plugins/module_utils ]] || controller_dirs+=("$dir")
    done
    if ((${#controller_dirs[@]})); then
        run "compile controller plugins on Python 3.11" check_python 3.11 "${controller_dirs[@]}"
    else
        echo "no controller plugin directories"
    fi

    if ((core219_ready)); then
        for version in 3.11 3.8; do
            say "ansible-test sanity --test compile --test import (ansible-core 2.19, Python $version)"
            run "ansible-test sanity compile, import (ansible-core 2.19, Python $version)" \
                in_copy "$core219_venv/bin/ansible-test" sanity --venv --python "$version" --test compile --test import
        done
    fi
fi

if [[ $mode == all || $mode == units ]]; then
    unit_requirements
    say "ansible-test units (ansible-core 2.21, Python 3.12)"
    run "ansible-test units (ansible-core 2.21, Python 3.12)" in_copy ansible-test units --venv --python 3.12
    if ((core219_ready)); then
        say "ansible-test units (ansible-core 2.19, Python 3.11)"
        run "ansible-test units (ansible-core 2.19, Python 3.11)" \
            in_copy "$core219_venv/bin/ansible-test" units --venv --python 3.11
    fi
fi

say "done in $((SECONDS - start)) s"
if ((${#failures[@]})); then
    printf 'FAILED: %s\n' "${failures[@]}"
    exit 1
fi
echo "all passed"

#!/usr/bin/env bash
# Run the default molecule scenario (three booted Debian 12 containers on a
# dual-stack podman network) from nothing, as root on Debian/Ubuntu:
#
#   scripts/molecule.sh                     # molecule test -s default
#   scripts/molecule.sh converge            # any molecule command, -s default
#   scripts/molecule.sh converge -- -vv     # ... with arguments for ansible-playbook
#   eval "$(scripts/molecule.sh --env)"     # set up, then print the environment
#                                           # for running molecule by hand
#
# Steps (each is skipped when already done, and timed):
#   1. apt: podman, runc, containernetworking-plugins, debootstrap (and
#      fuse-overlayfs where the storage directory is on overlayfs);
#   2. .venv (scripts/bootstrap.sh) plus requirements-molecule.txt;
#   3. podman's configuration for this machine in .build/molecule/containers.conf
#      (passed as CONTAINERS_CONF; nothing under /etc is written): runc,
#      cgroupfs, file events, ulimits within this machine's hard limits, and the
#      CNI backend with a network directory of the scenario's own;
#   4. the image localhost/fleetwall-debian12 (scripts/build-debian-image.sh);
#   5. this collection, built from a copy of the work tree and installed from
#      its tarball, and containers.podman, unpacked from the `ansible` package
#      on PyPI (there is no Galaxy server here), into .build/molecule/collections;
#   6. molecule, with ANSIBLE_COLLECTIONS_PATH set to that directory alone.
#
# Environment: FLEETWALL_CACHE_DIR (image and downloads, default
# ${XDG_CACHE_HOME:-~/.cache}/fleetwall), FLEETWALL_ANSIBLE_PACKAGE (where
# containers.podman comes from, default below).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

state=$repo/.build/molecule
cache=${FLEETWALL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetwall}
# ansible 14.x is the community package for ansible-core 2.21.
ansible_package=${FLEETWALL_ANSIBLE_PACKAGE:-ansible==14.5.0}
scenario=default
venv=$repo/.venv

print_env=0
molecule_args=()
case ${1:-} in
    --env) print_env=1 ;;
    -h | --help)
        sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    "") molecule_args=(test -s "$scenario") ;;
    *)
        molecule_args=("$1" -s "$scenario")
        shift
        molecule_args+=("$@")
        ;;
esac

start=$SECONDS
timings=()
say() { printf 'molecule.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}
step_start=0
step() {
    step_start=$SECONDS
    say "$*"
}
step_done() { timings+=("$(printf '%4d s  %s' $((SECONDS - step_start)) "$1")"); }
report_timings() {
    local status=${1:-$?}
    if ((${#timings[@]})); then
        say "timings:"
        printf '    %s\n' "${timings[@]}" >&2
        say "total: $((SECONDS - start)) s, exit status $status"
    fi
}
trap report_timings EXIT

[[ $(id -u) -eq 0 ]] || die "must run as root (rootful podman, debootstrap, apt)"

# 1. System packages.
step "system packages"
apt_packages=(podman runc containernetworking-plugins debootstrap)
graphroot=/var/lib/containers/storage
probe_dir=$graphroot
while [[ ! -d $probe_dir ]]; do probe_dir=$(dirname "$probe_dir"); done
storage_fs=$(stat -f -c %T "$probe_dir")
# Overlay on overlay does not work: the containers' layers then need fuse-overlayfs.
[[ $storage_fs == overlayfs ]] && apt_packages+=(fuse-overlayfs)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
step_done "system packages (${missing[*]:-none missing})"

# 2. Python: .venv and molecule.
step "python packages"
if [[ ! -x $venv/bin/ansible-playbook ]]; then
    scripts/bootstrap.sh
fi
stamp=$venv/.molecule-requirements-stamp
if [[ ! -f $stamp ]] || ! cmp -s requirements-molecule.txt "$stamp" || [[ ! -x $venv/bin/molecule ]]; then
    mkdir -p "$state"
    "$venv/bin/python" -m pip install -q -r requirements-molecule.txt >"$state/pip.log" 2>&1 ||
        { cat "$state/pip.log" >&2; die "pip install -r requirements-molecule.txt failed"; }
    cp requirements-molecule.txt "$stamp"
fi
step_done "python packages"

# 3. Podman's configuration.
step "podman configuration"
mkdir -p "$state/cni"
nofile=$(ulimit -H -n)
nproc=$(ulimit -H -u)
# A root without CAP_SYS_RESOURCE (this machine) cannot raise hard limits, and
# podman's defaults (nofile 1048576, nproc 4194304) exceed them: runc fails with
# "error setting rlimits". Podman itself runs with at most 32768 processes.
[[ $nofile == unlimited || $nofile -gt 1048576 ]] && nofile=1048576
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
{
    echo "# Written by scripts/molecule.sh; podman reads it through CONTAINERS_CONF."
    echo "[containers]"
    echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
    echo "log_driver = \"k8s-file\""
    echo "[engine]"
    echo "# runc works here; crun is reported to fail on this kind of machine."
    echo "runtime = \"runc\""
    echo "# No systemd on the host (PID 1 is not systemd), cgroups v1."
    echo "cgroup_manager = \"cgroupfs\""
    echo "events_logger = \"file\""
    echo "[network]"
    echo "# CNI, with the scenario's own network file (molecule/default/create.yml):"
    echo "# a plain bridge without NAT or firewall rules on this machine."
    echo "network_backend = \"cni\""
    echo "network_config_dir = \"$state/cni\""
} >"$state/containers.conf"
export CONTAINERS_CONF=$state/containers.conf
export FLEETWALL_MOLECULE_CNI_DIR=$state/cni
if [[ $storage_fs == overlayfs ]]; then
    cat >"$state/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$graphroot"
runroot = "/run/containers/storage"
[storage.options.overlay]
mount_program = "/usr/bin/fuse-overlayfs"
EOF
    export CONTAINERS_STORAGE_CONF=$state/storage.conf
fi
podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.NetworkBackend}}' >"$state/podman-info.txt" 2>&1 ||
    { cat "$state/podman-info.txt" >&2; die "podman does not work with $CONTAINERS_CONF"; }
[[ $(cat "$state/podman-info.txt") == "runc cni" ]] ||
    die "podman uses '$(cat "$state/podman-info.txt")', expected 'runc cni'"
step_done "podman configuration"

# 4. The image.
step "image"
FLEETWALL_CACHE_DIR=$cache scripts/build-debian-image.sh >&2
step_done "image localhost/fleetwall-debian12"

# 5. Collections.
step "collections"
collections=$state/collections
mkdir -p "$collections" "$state/dist"
rm -rf "$state/src"
mkdir -p "$state/src"
# A copy of the work tree as it is (committed or not), without what the
# collection never ships.
tar -C "$repo" --exclude=./.git --exclude=./.venv --exclude=./.build --exclude=./.cache \
    --exclude=./.pytest_cache --exclude=./.hypothesis --exclude=__pycache__ --exclude='*.tar.gz' \
    --exclude=./tests/output -cf - . | tar -C "$state/src" -xf -
rm -f "$state"/dist/*.tar.gz
"$venv/bin/ansible-galaxy" collection build "$state/src" --output-path "$state/dist" >"$state/build.log" 2>&1 ||
    { cat "$state/build.log" >&2; die "ansible-galaxy collection build failed"; }
tarball=$(ls "$state"/dist/*.tar.gz)
"$venv/bin/ansible-galaxy" collection install --force --no-deps "$tarball" -p "$collections" \
    >"$state/install.log" 2>&1 ||
    { cat "$state/install.log" >&2; die "ansible-galaxy collection install failed"; }
# containers.podman, from the ansible package's wheel (downloaded once).
wheels=$cache/wheels
mkdir -p "$wheels"
wheel_version=${ansible_package#*==}
wheel=$(ls "$wheels"/ansible-"$wheel_version"-py3-none-any.whl 2>/dev/null || true)
if [[ -z $wheel ]]; then
    "$venv/bin/python" -m pip download -q --no-deps --only-binary=:all: "$ansible_package" -d "$wheels" 2>&1 |
        grep -v 'is ignored' >&2 || true
    wheel=$(ls "$wheels"/ansible-"$wheel_version"-py3-none-any.whl 2>/dev/null) ||
        die "could not download $ansible_package from PyPI"
fi
"$venv/bin/python" - "$wheel" "$collections" <<'EOF'
"""Unpack ansible_collections/containers/podman from the ansible wheel, unless that version is there."""
import json
import os
import shutil
import sys
import zipfile

wheel, dest = sys.argv[1:]
prefix = 'ansible_collections/containers/podman/'
target = os.path.join(dest, prefix)
with zipfile.ZipFile(wheel) as archive:
    wanted = json.loads(archive.read(prefix + 'MANIFEST.json'))['collection_info']['version']
    try:
        with open(os.path.join(target, 'MANIFEST.json')) as handle:
            have = json.load(handle)['collection_info']['version']
    except (OSError, ValueError, KeyError):
        have = None
    if have != wanted:
        shutil.rmtree(target, ignore_errors=True)
        for name in archive.namelist():
            if name.startswith(prefix) and not name.endswith('/'):
                archive.extract(name, dest)
EOF
export ANSIBLE_COLLECTIONS_PATH=$collections
"$venv/bin/ansible-galaxy" collection list -p "$collections" 2>/dev/null |
    awk '$1 ~ /^(fleetwall\.iptables|containers\.podman)$/ {print "molecule.sh:   " $1 " " $2}' >&2
step_done "collections (fleetwall.iptables from $(basename "$tarball"), containers.podman)"

# 6. Molecule.
export PATH=$venv/bin:$PATH
# Scenarios live in the top-level molecule/ directory (not extensions/molecule).
export MOLECULE_GLOB='molecule/*/molecule.yml'
export ANSIBLE_COLLECTIONS_PATH
if ((print_env)); then
    timings=()
    printf 'export %s=%q\n' CONTAINERS_CONF "$CONTAINERS_CONF" FLEETWALL_MOLECULE_CNI_DIR "$FLEETWALL_MOLECULE_CNI_DIR" \
        ANSIBLE_COLLECTIONS_PATH "$ANSIBLE_COLLECTIONS_PATH" MOLECULE_GLOB "$MOLECULE_GLOB" PATH "$PATH"
    [[ -n ${CONTAINERS_STORAGE_CONF:-} ]] && printf 'export %s=%q\n' CONTAINERS_STORAGE_CONF "$CONTAINERS_STORAGE_CONF"
    exit 0
fi
step "molecule ${molecule_args[*]}"
status=0
molecule "${molecule_args[@]}" || status=$?
step_done "molecule ${molecule_args[*]}"
trap - EXIT
report_timings "$status"
exit "$status"

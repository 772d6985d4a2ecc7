#!/usr/bin/env bash
# Build the podman image the default molecule scenario boots:
# localhost/fleetwall-debian12:latest, a Debian 12 (bookworm) root file system
# made with debootstrap from Debian's archive, with systemd as /sbin/init.
#
#   scripts/build-debian-image.sh            # no-op when the image exists
#   scripts/build-debian-image.sh --force    # debootstrap and import again
#
# Root only (debootstrap, rootful podman). Steps:
#   1. debootstrap --variant=minbase bookworm plus systemd, python3 and the
#      tools the scenario uses, into a temporary directory under the cache;
#   2. trims it for a container (no getty, no udev triggers, empty machine-id)
#      and downloads, without installing, the .deb files of iptables-persistent
#      into its apt cache: the scenario's containers have no way out to the
#      archive, and the persistence role installs the package from that cache;
#   3. packs it into a tarball in the cache (reused when the image is gone but
#      the recipe is unchanged) and imports it with CMD ["/sbin/init"].
#
# Environment:
#   FLEETWALL_CACHE_DIR     cache directory (default ${XDG_CACHE_HOME:-~/.cache}/fleetwall)
#   FLEETWALL_DEBIAN_MIRROR Debian mirror (default http://deb.debian.org/debian)
#   FLEETWALL_IMAGE         image name (default localhost/fleetwall-debian12:latest)
#   CONTAINERS_CONF         as for podman (default: .build/molecule/containers.conf
#                           when scripts/molecule.sh has written it)
set -euo pipefail

image=${FLEETWALL_IMAGE:-localhost/fleetwall-debian12:latest}
mirror=${FLEETWALL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
cache=${FLEETWALL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetwall}
packages=(systemd systemd-sysv dbus iptables iproute2 python3 python3-apt procps netcat-openbsd
    ca-certificates iputils-ping debconf-utils)
# Downloaded into the image's apt cache, not installed (see above); the
# persistence role installs ipset-persistent (and with it ipset) for rulesets
# with ipset sets.
cached_packages=(iptables-persistent ipset-persistent)
# Bump when the recipe below changes in a way the package lists do not show.
recipe_version=2

force=0
for arg in "$@"; do
    case $arg in
        --force) force=1 ;;
        -h | --help)
            sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "build-debian-image.sh: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

start=$SECONDS
say() { printf 'build-debian-image: %s\n' "$*"; }
die() {
    printf 'build-debian-image: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, rootful podman)"
# The podman configuration scripts/molecule.sh writes, when run on its own.
project_conf=$(cd "$(dirname "$0")/.." && pwd)/.build/molecule/containers.conf
if [[ -z ${CONTAINERS_CONF:-} && -f $project_conf ]]; then
    export CONTAINERS_CONF=$project_conf
fi
for tool in podman debootstrap tar; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (scripts/molecule.sh installs it)"
done

key=$(printf '%s\n' "$recipe_version" "$suite" "$mirror" "${packages[@]}" -- "${cached_packages[@]}" |
    sha256sum | cut -c1-16)
# The image's commit message names the recipe key it was built from: an image
# of an older recipe (other packages) is rebuilt.
if ((!force)) && podman image exists "$image" &&
    [[ $(podman image inspect --format '{{.Comment}}' "$image") == *"($key)"* ]]; then
    say "$image exists ($(podman image inspect --format '{{.Created}}' "$image" | cut -d. -f1)); nothing to do (--force rebuilds)"
    exit 0
fi

mkdir -p "$cache"
tarball=$cache/debian12-rootfs-$key.tar
log=$cache/build-debian-image.log

work=""
cleanup() {
    local status=$?
    if [[ -n $work && -d $work ]]; then
        # debootstrap mounts /proc and /sys in the target while it runs; make
        # sure nothing is left mounted before removing the tree.
        local mnt
        while read -r mnt; do
            umount -l "$mnt" 2>/dev/null || true
        done < <(awk -v root="$work/" 'index($2, root) == 1 {print $2}' /proc/mounts | sort -r)
        rm -rf --one-file-system "$work"
    fi
    if ((status != 0)) && [[ -s $log ]]; then
        echo "build-debian-image: failed; last lines of $log:" >&2
        tail -n 25 "$log" >&2
    fi
}
trap cleanup EXIT

if ((force)) || [[ ! -s $tarball ]]; then
    rm -f "$cache"/debian12-rootfs-*.tar "$cache"/debian12-rootfs-*.tar.partial
    : >"$log"
    work=$(mktemp -d "$cache/rootfs.XXXXXX")
    root=$work/rootfs
    say "debootstrap $suite from $mirror (log: $log)"
    t=$SECONDS
    include=$(
        IFS=,
        echo "${packages[*]}"
    )
    debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >>"$log" 2>&1 ||
        die "debootstrap failed"
    say "debootstrap done in $((SECONDS - t)) s"

    t=$SECONDS
    in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
    # The mirror the image's apt knows, and no other: the containers install
    # only from the cache below, so the lists must match it.
    printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
    # Keep what apt downloads (the persistence role installs from the cache).
    cat >"$root/etc/apt/apt.conf.d/90fleetwall" <<'EOF'
APT::Keep-Downloaded-Packages "true";
APT::Install-Recommends "false";
Acquire::Languages "none";
EOF
    in_root apt-get update -qq >>"$log" 2>&1 || die "apt-get update in the new root failed"
    # debootstrap leaves every .deb it installed in the cache: drop them, so
    # the cache holds exactly the packages downloaded below.
    in_root apt-get clean >>"$log" 2>&1
    in_root apt-get install -y -qq --download-only "${cached_packages[@]}" >>"$log" 2>&1 ||
        die "downloading ${cached_packages[*]} failed"
    # A container: no consoles to spawn gettys on, no udev, no hardware clock.
    for unit in getty@tty1.service serial-getty@.service console-getty.service systemd-udevd.service \
        systemd-udev-trigger.service systemd-hwdb-update.service systemd-modules-load.service \
        sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
        systemd-remount-fs.service systemd-firstboot.service; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
    # A fresh machine-id at every boot; podman manages hostname, hosts, resolv.conf.
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    : >"$root/etc/resolv.conf"
    echo fleetwall-debian12 >"$root/etc/hostname"
    rm -f "$root/var/cache/apt/srcpkgcache.bin"
    rm -rf "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/*
    say "configured in $((SECONDS - t)) s"

    t=$SECONDS
    tar --numeric-owner --xattrs --acls -C "$root" -cf "$tarball.partial" . >>"$log" 2>&1 ||
        die "tar of the root file system failed"
    mv "$tarball.partial" "$tarball"
    say "packed $(du -h "$tarball" | cut -f1) into $tarball in $((SECONDS - t)) s"
else
    say "reusing $tarball"
fi

t=$SECONDS
podman image rm -f "$image" >/dev/null 2>&1 || true
podman import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --message "fleetwall molecule image: debootstrap $suite ($key)" \
    "$tarball" "$image" >>"$log" 2>&1 || die "podman import failed"
say "imported $image in $((SECONDS - t)) s"
say "done in $((SECONDS - start)) s"

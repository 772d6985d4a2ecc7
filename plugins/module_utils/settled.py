# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a host is still as the last converging run left it, told by the facts Ansible already gathers.

Private to the fleetwall.iptables collection. A run that changes nothing
still pays one module execution per host, as much as gathering its facts.
So a converging run leaves two files on the host:

* a custom fact, ``fleetwall.fact`` in Ansible's fact directory: a POSIX
  shell script that fact gathering runs (``ansible_local.fleetwall``; the
  ``min`` subset includes local facts). It prints digests of everything
  that run made true: both families' saved rulesets (counters and comments
  left out), the other backend's, the sets, the boot files, the boot
  packages and units; and the stamp below.
* the stamp (``settled.json`` in the backup directory): the digest of what
  the run was asked to do (``inputs``, computed by the caller on the
  controller) and the digests the fact printed right after the run verified
  the result (``observed``).

The firewall role's next run is settled when its own inputs digest equals the
stamp's and the fact's current digests equal the observed ones: nothing asked
changed and nothing on the host changed, so the module would change nothing.
Anything else (a hand change, a package removed, another policy, no fact at
all) runs the module as before. Equal digests mean equal texts, so the test
never skips a host that differs; at worst it runs the module where it was not
needed. (The comparison is the role's, in plain Jinja: a collection filter
would be loaded anew in every forked worker, about 0.1 s per host.)

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
from typing import Mapping, Sequence

FACT_NAME = "fleetwall"
STAMP_NAME = "settled.json"

_SCRIPT_HEAD = r"""#!/bin/sh
# Written by fleetwall.iptables.ruleset; rewritten by every run that converges this host.
# Ansible's fact gathering runs it (ansible_local.fleetwall): digests of the
# host's firewall state now, and the stamp of the last converging run, so that
# a run with nothing to do skips the ruleset module. Removing it is harmless.
PATH="$PATH:/usr/sbin:/usr/bin:/sbin:/bin"
LC_ALL=C
export PATH LC_ALL
if [ "$(id -u)" != 0 ]; then
    echo '{"current": null, "stamp": null}'
    exit 0
fi
rules() {
    version=$(iptables-save --version 2>/dev/null)
    echo "== $version"
    case $version in *nf_tables*) other=legacy ;; *) other=nft ;; esac
    for tool in iptables-save ip6tables-save "iptables-$other-save" "ip6tables-$other-save"; do
        echo "== $tool"
        command -v "$tool" >/dev/null && "$tool" 2>/dev/null
    done
    echo "== ipset"
    command -v ipset >/dev/null && ipset save 2>/dev/null | sort
}
boot() {
    for file in "$@"; do
        echo "== $file"
        cat "$file" 2>/dev/null
    done
    echo "== packages"
    command -v dpkg-query >/dev/null &&
        dpkg-query -W -f='${Package} ${db:Status-Status}\n' iptables-persistent netfilter-persistent ipset-persistent ipset 2>/dev/null
    command -v rpm >/dev/null && rpm -q iptables-services iptables-nft-services ipset-service ipset 2>/dev/null
    echo "== units"
    systemctl is-enabled netfilter-persistent ufw iptables ip6tables ipset firewalld 2>/dev/null
    systemctl is-active netfilter-persistent ufw iptables ip6tables ipset firewalld 2>/dev/null
}
"""


def fact_script(stamp_path, boot_paths):
    # type: (str, Sequence[str]) -> str
    """The custom fact's text. Two digests, each over one stream, so that fact gathering starts few
    processes: ``rules`` (the backend, both families' saves without counters and comment lines, the other
    backend's saves, the sets) and ``boot`` (the boot files byte for byte, the boot packages and units)."""
    files = " ".join(_quoted(path) for path in sorted(boot_paths))
    return _SCRIPT_HEAD + (
        "rules=$(rules | sed -e '/^#/d' -e 's/ \\[[0-9]*:[0-9]*\\]$//' | sha256sum)\n"
        "boot=$(boot %s | sha256sum)\n"
        "cat <<EOF\n"
        '{"current": {"rules": "${rules%%%% *}", "boot": "${boot%%%% *}"}, "stamp": $(cat %s 2>/dev/null || echo null)}\n'
        "EOF\n"
    ) % (files, _quoted(stamp_path))


def _quoted(path):
    # type: (str) -> str
    if "'" in path or '"' in path or "\\" in path or "$" in path or "`" in path:
        raise ValueError("cannot record a settled stamp for a path holding quotes, $ or `: %r" % path)
    return "'%s'" % path


def stamp_text(inputs, observed):
    # type: (str, Mapping[str, str]) -> str
    return json.dumps({"inputs": inputs, "observed": dict(observed)}, sort_keys=True)

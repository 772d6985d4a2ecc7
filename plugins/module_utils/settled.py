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
saved() { "$@" 2>/dev/null | sed -e '/^#/d' -e 's/ \[[0-9]*:[0-9]*\]$//' | sha256sum | cut -c1-64; }
raw() { cat "$@" 2>/dev/null | sha256sum | cut -c1-64; }
services() {
    dpkg-query -W -f='${Package} ${db:Status-Status}\n' iptables-persistent netfilter-persistent ipset-persistent ipset
    rpm -q iptables-services iptables-nft-services ipset-service ipset
    systemctl is-enabled netfilter-persistent ufw iptables ip6tables ipset firewalld
    systemctl is-active netfilter-persistent ufw iptables ip6tables ipset firewalld
}
others() {
    for tool in iptables-legacy-save ip6tables-legacy-save iptables-nft-save ip6tables-nft-save; do
        command -v "$tool" >/dev/null && "$tool"
    done
}
sets() { ipset save | sort; }
"""


def fact_script(stamp_path, boot_paths):
    # type: (str, Sequence[str]) -> str
    """The custom fact's text: the digests of what a converging run made true, then the stamp."""
    fields = [
        ("backend", "saved iptables-save --version"),
        ("ipv4", "saved iptables-save"),
        ("ipv6", "saved ip6tables-save"),
        ("other_backend", "saved others"),
        ("sets", "saved sets"),
        ("boot_services", "saved services"),
    ] + [("boot:" + path, "raw " + _quoted(path)) for path in sorted(boot_paths)]
    body = ", ".join('"%s": "%s"' % (name, "$(%s)" % command) for name, command in fields)
    stamp = "$(cat %s 2>/dev/null || echo null)" % _quoted(stamp_path)
    return _SCRIPT_HEAD + 'cat <<EOF\n{"current": {%s}, "stamp": %s}\nEOF\n' % (body, stamp)


def _quoted(path):
    # type: (str) -> str
    if "'" in path or '"' in path or "\\" in path or "$" in path or "`" in path:
        raise ValueError("cannot record a settled stamp for a path holding quotes, $ or `: %r" % path)
    return "'%s'" % path


def stamp_text(inputs, observed):
    # type: (str, Mapping[str, str]) -> str
    return json.dumps({"inputs": inputs, "observed": dict(observed)}, sort_keys=True)

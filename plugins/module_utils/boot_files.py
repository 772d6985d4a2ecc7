# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host's boot-time files must hold so that a reboot brings back the rulesets and sets just applied.

Private to the fleetwall.iptables collection. Pure logic, no I/O: from the
texts the ruleset module has verified live (or, persisting without applying,
the texts it would apply) and what the files hold now, it decides each
file's new text; boot_writer.py reads and writes them.

Boot loaders restore the sets before the rules that name them:

* Debian/Ubuntu, netfilter-persistent: its plugins run in ``run-parts``
  order, ``10-ipset`` (package ipset-persistent: ``ipset restore -exist <
  /etc/iptables/ipsets``) before ``15-ip4tables`` and ``25-ip6tables``
  (package iptables-persistent: ``rules.v4``, ``rules.v6``).
* RHEL family: ``ipset.service`` (package ipset-service,
  ``/etc/sysconfig/ipset``) is ordered before ``iptables.service`` and
  ``ip6tables.service`` (``/etc/sysconfig/iptables``, ``ip6tables``).

The sets file may also hold other software's sets: their lines are kept as
they are, and fleetwall's own sets (names ``fw4-*``, ``fw6-*``) follow them.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import posixpath
from collections import Counter
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import is_fleetwall_set, sizing
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import coexist_boot_text_of


class BootLayout(NamedTuple):
    rules: Dict[str, str]  # family key (ipv4, ipv6) -> path under the root
    ipsets: str  # the sets file, under the root
    mode: int  # file mode of every boot file


LAYOUTS = {
    "Debian": BootLayout({"ipv4": "etc/iptables/rules.v4", "ipv6": "etc/iptables/rules.v6"}, "etc/iptables/ipsets", 0o640),
    # iptables-services writes its own files (iptables-save) with mode 0600.
    "RedHat": BootLayout({"ipv4": "etc/sysconfig/iptables", "ipv6": "etc/sysconfig/ip6tables"}, "etc/sysconfig/ipset", 0o600),
}


class BootFile(NamedTuple):
    path: str
    text: str  # what the file must hold
    before: Optional[str]  # what it holds now; None when it does not exist
    mode: int

    @property
    def changed(self):
        # type: () -> bool
        return self.text != self.before


def boot_rules_text(verified, mode):
    # type: (str, str) -> str
    """A family's rules file from the text verified live: in mode own that very
    text; in coexist mode fleetwall's chains and jumps with ACCEPT built-in
    chains, so that no other tool's runtime rules are frozen into it."""
    if mode == "coexist":
        return coexist_boot_text_of(verified)
    return verified


def _is_fleetwall_line(line):
    # type: (str) -> bool
    fields = line.split(None, 2)
    return len(fields) >= 2 and fields[0] in ("create", "add") and is_fleetwall_set(fields[1])


def with_hashsizes(canonical_sets):
    # type: (str) -> str
    """Canonical set text (no ``hashsize``) as ``ipset restore`` input that creates each set with the
    ``hashsize`` the ruleset module creates it with, so that a set restored at boot is the set it applied."""
    lines = canonical_sets.splitlines()
    members = Counter(line.split(None, 2)[1] for line in lines if line.startswith("add "))
    restored = []  # type: List[str]
    for line in lines:
        fields = line.split()
        if fields[:1] == ["create"] and "maxelem" in fields and "hashsize" not in fields:
            at = fields.index("maxelem")
            fields[at:at] = ["hashsize", str(sizing(members[fields[1]])[0])]
            line = " ".join(fields)
        restored.append(line + "\n")
    return "".join(restored)


def boot_sets_text(existing, fleetwall_sets):
    # type: (Optional[str], str) -> str
    """The sets file: other software's lines of the existing file as they are, then fleetwall's sets
    (canonical text) as ``ipset restore`` input."""
    kept = [line for line in (existing or "").splitlines(True) if not _is_fleetwall_line(line)]
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    return "".join(kept) + with_hashsizes(fleetwall_sets)


def holds_fleetwall_sets(text):
    # type: (Optional[str]) -> bool
    return any(_is_fleetwall_line(line) for line in (text or "").splitlines())


def plan_boot_files(os_family, root, verified, fleetwall_sets, mode, read):
    # type: (str, str, Mapping[str, str], str, str, Callable[[str], Optional[str]]) -> List[BootFile]
    """Every boot file fleetwall manages on this host, with its text now and the one it needs.

    ``verified``: the family key -> the canonical text verified live;
    ``fleetwall_sets``: fleetwall's sets in ``ipset restore`` form ("" for none);
    ``read``: a path -> the file's text, None when it does not exist. The sets
    file is managed when the ruleset has sets, or when it still holds
    fleetwall's sets that no rule uses any more."""
    layout = LAYOUTS[os_family]
    files = []  # type: List[BootFile]
    for key in sorted(layout.rules):
        path = posixpath.join(root, layout.rules[key])
        files.append(BootFile(path, boot_rules_text(verified[key], mode), read(path), layout.mode))
    sets_path = posixpath.join(root, layout.ipsets)
    existing = read(sets_path)
    if fleetwall_sets or holds_fleetwall_sets(existing):
        files.append(BootFile(sets_path, boot_sets_text(existing, fleetwall_sets), existing, layout.mode))
    return files


def boot_paths(os_family, root):
    # type: (str, str) -> List[str]
    """Every boot file this OS family's loaders read, under the root (whether fleetwall writes it or not)."""
    layout = LAYOUTS[os_family]
    return sorted(posixpath.join(root, path) for path in list(layout.rules.values()) + [layout.ipsets])


def boot_diff_entries(files):
    # type: (List[BootFile]) -> List[Dict[str, str]]
    """Ansible's diff: one entry per file that changes."""
    return [
        {"before": item.before or "", "after": item.text, "before_header": item.path, "after_header": item.path}
        for item in files
        if item.changed
    ]

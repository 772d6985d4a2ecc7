# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Intermediate representation of a compiled ruleset.

Private to the fleetwall.iptables collection. Plain immutable tuples, no I/O:
the compiler produces them, the renderer and the simulator consume them, and
they travel between Ansible tasks as rendered text (transport.py). Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from typing import Any, NamedTuple, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import AddressSet

BUILTIN_CHAINS = ("INPUT", "FORWARD", "OUTPUT")
NAT_BUILTIN_CHAINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")
# Docker's chain for the operator's rules on forwarded traffic: Docker jumps to it from FORWARD before it accepts
# connections to published ports, and never flushes it. Forward rules with published: true compile into it.
DOCKER_USER = "DOCKER-USER"
TERMINAL_TARGETS = ("ACCEPT", "DROP", "REJECT")
CTSTATE_ORDER = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED")


class HashLimit(NamedTuple):
    """-m hashlimit: a token bucket per source address (--hashlimit-mode srcip), shared by the rules of one name."""

    rate: str  # as iptables-save prints it (rates.py)
    burst: int
    name: str
    above: bool = False  # --hashlimit-above: matches what exceeds the rate; else --hashlimit-upto


class ConnLimit(NamedTuple):
    """-m connlimit: the number of connections from one source (network of mask bits) the kernel tracks."""

    count: int
    mask: int  # 32 or 128 for one address
    above: bool = False  # --connlimit-above: matches beyond count; else --connlimit-upto


class Rule(NamedTuple):
    """One iptables rule. Field order mirrors the order iptables-save prints."""

    target: str
    source: Optional[str] = None
    destination: Optional[str] = None
    in_interface: Optional[str] = None
    in_interface_negated: bool = False
    out_interface: Optional[str] = None
    out_interface_negated: bool = False
    protocol: Optional[str] = None
    source_ports: Tuple[str, ...] = ()
    destination_ports: Tuple[str, ...] = ()
    tcp_flags: Optional[str] = None
    tcp_flags_negated: bool = False
    icmp_type: Optional[str] = None
    # ipset address sets (module_utils/ipsets.py), by name: "-m set [!] --match-set NAME src|dst".
    source_set: Optional[str] = None
    source_set_negated: bool = False
    destination_set: Optional[str] = None
    destination_set_negated: bool = False
    hop_limit: Optional[int] = None
    destination_type: Optional[str] = None  # -m addrtype --dst-type, e.g. LOCAL
    ctstate: Tuple[str, ...] = ()
    limit: Optional[str] = None
    limit_burst: Optional[int] = None  # None: the kernel's default of 5, which iptables-save leaves out
    hashlimit: Optional[HashLimit] = None
    connlimit: Optional[ConnLimit] = None
    comment: Optional[str] = None
    reject_with: Optional[str] = None
    log_prefix: Optional[str] = None
    log_level: Optional[int] = None
    # The nat table's targets: DNAT --to-destination, SNAT --to-source, REDIRECT and MASQUERADE --to-ports.
    to_destination: Optional[str] = None
    to_source: Optional[str] = None
    to_ports: Optional[str] = None


def is_rate_dependent(rule):
    # type: (Rule) -> bool
    """Whether the rule matches a packet or not depending on the traffic before it (rates, connection counts)."""
    return bool(rule.limit or rule.hashlimit or rule.connlimit)


def _named(items, name):
    # type: (Tuple[Any, ...], str) -> Any
    """The first of `items` called `name`; KeyError when none is."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)


class Chain(NamedTuple):
    name: str
    policy: Optional[str]
    rules: Tuple[Rule, ...]


class Table(NamedTuple):
    name: str
    chains: Tuple[Chain, ...]

    def chain(self, name):
        # type: (str) -> Chain
        return _named(self.chains, name)


class FamilyRuleset(NamedTuple):
    family: int
    tables: Tuple[Table, ...]
    # The address sets the rules refer to: part of the ruleset, applied before its rules.
    sets: Tuple[AddressSet, ...] = ()

    def table(self, name):
        # type: (str) -> Table
        return _named(self.tables, name)


class HostRuleset(NamedTuple):
    host: str
    ipv4: FamilyRuleset
    ipv6: FamilyRuleset
    warnings: Tuple[str, ...] = ()

    def family(self, family):
        # type: (int) -> FamilyRuleset
        if family == 4:
            return self.ipv4
        if family == 6:
            return self.ipv6
        raise ValueError("family must be 4 or 6, not %r" % (family,))

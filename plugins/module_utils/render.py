# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the IR to iptables-restore text.

Private to the fleetwall.iptables collection. The text is exactly what
iptables-save / ip6tables-save print back after a restore (apart from the
'#' header lines and the packet counters), so deciding whether a host has
changed is a string comparison of canonical texts. Module code: keep it
compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Dict, List, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import AddressSet
from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import canonical_text as canonical_sets_text
from ansible_collections.fleetwall.iptables.plugins.module_utils.rates import DEFAULT_BURST
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import (
    FamilyRuleset,
    Rule,
)

# iptables prints a string bare only when it consists of these characters.
_BARE_STRING = re.compile(r"^[A-Za-z0-9_-]+$")
_COUNTERS = re.compile(r"\[\d+:\d+\]$")


def quote_string(value):
    # type: (str) -> str
    """Quote like xtables_save_string() does, so rendered == saved."""
    if _BARE_STRING.match(value):
        return value
    if "\\" in value or '"' in value or "'" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
    return '"%s"' % value


def _ports_match(protocol, rule):
    # type: (str, Rule) -> List[str]
    parts = []  # type: List[str]
    single_sport = len(rule.source_ports) == 1 and "," not in rule.source_ports[0]
    single_dport = len(rule.destination_ports) == 1 and "," not in rule.destination_ports[0]
    proto_match = []  # type: List[str]
    if single_sport:
        proto_match += ["--sport", rule.source_ports[0]]
    if single_dport:
        proto_match += ["--dport", rule.destination_ports[0]]
    if rule.tcp_flags:
        if rule.tcp_flags_negated:
            proto_match.append("!")
        proto_match += ["--tcp-flags", rule.tcp_flags]
    if proto_match:
        parts += ["-m", protocol] + proto_match
    if rule.destination_ports and not single_dport:
        parts += ["-m", "multiport", "--dports", ",".join(rule.destination_ports)]
    if rule.source_ports and not single_sport:
        parts += ["-m", "multiport", "--sports", ",".join(rule.source_ports)]
    return parts


def _set_matches(rule):
    # type: (Rule) -> List[str]
    parts = []  # type: List[str]
    for name, negated, direction in (
        (rule.source_set, rule.source_set_negated, "src"),
        (rule.destination_set, rule.destination_set_negated, "dst"),
    ):
        if name:
            parts += ["-m", "set"] + (["!"] if negated else []) + ["--match-set", name, direction]
    return parts


def _rate_matches(rule):
    # type: (Rule) -> List[str]
    """connlimit, hashlimit, limit: in this order, since a limit spends a token on every packet it sees and should
    see only the packets the other matches let through."""
    parts = []  # type: List[str]
    connlimit = rule.connlimit
    if connlimit:
        parts += ["-m", "connlimit", "--connlimit-above" if connlimit.above else "--connlimit-upto", str(connlimit.count)]
        parts += ["--connlimit-mask", str(connlimit.mask), "--connlimit-saddr"]
    hashlimit = rule.hashlimit
    if hashlimit:
        parts += ["-m", "hashlimit", "--hashlimit-above" if hashlimit.above else "--hashlimit-upto", hashlimit.rate]
        parts += ["--hashlimit-burst", str(hashlimit.burst), "--hashlimit-mode", "srcip", "--hashlimit-name", hashlimit.name]
    if rule.limit:
        parts += ["-m", "limit", "--limit", rule.limit]
        if rule.limit_burst is not None and rule.limit_burst != DEFAULT_BURST:
            parts += ["--limit-burst", str(rule.limit_burst)]
    return parts


def render_rule(chain, rule):
    # type: (str, Rule) -> str
    parts = ["-A", chain]
    # iptables-save leaves out what matches every packet: a /0 address and a
    # bare "+" interface (but not "! -i +", which matches no packet).
    if rule.source and not rule.source.endswith("/0"):
        parts += ["-s", rule.source]
    if rule.destination and not rule.destination.endswith("/0"):
        parts += ["-d", rule.destination]
    if rule.in_interface and (rule.in_interface != "+" or rule.in_interface_negated):
        parts += (["!"] if rule.in_interface_negated else []) + ["-i", rule.in_interface]
    if rule.out_interface and (rule.out_interface != "+" or rule.out_interface_negated):
        parts += (["!"] if rule.out_interface_negated else []) + ["-o", rule.out_interface]
    if rule.protocol:
        parts += ["-p", rule.protocol]
        if rule.protocol in ("tcp", "udp", "sctp"):
            parts += _ports_match(rule.protocol, rule)
        elif rule.protocol == "icmp" and rule.icmp_type:
            # To iptables, IPv4 ICMP type 255 (with any code) is "any".
            icmp_type = "any" if rule.icmp_type.partition("/")[0] == "255" else rule.icmp_type
            parts += ["-m", "icmp", "--icmp-type", icmp_type]
        elif rule.protocol == "ipv6-icmp" and rule.icmp_type:
            parts += ["-m", "icmp6", "--icmpv6-type", rule.icmp_type]
    parts += _set_matches(rule)
    if rule.hop_limit is not None:
        parts += ["-m", "hl", "--hl-eq", str(rule.hop_limit)]
    if rule.destination_type:
        parts += ["-m", "addrtype", "--dst-type", rule.destination_type]
    if rule.ctstate:
        parts += ["-m", "conntrack", "--ctstate", ",".join(rule.ctstate)]
    parts += _rate_matches(rule)
    if rule.comment:
        parts += ["-m", "comment", "--comment", quote_string(rule.comment)]
    parts += ["-j", rule.target]
    if rule.reject_with:
        parts += ["--reject-with", rule.reject_with]
    if rule.log_prefix:
        parts += ["--log-prefix", quote_string(rule.log_prefix)]
    if rule.log_level is not None and rule.log_level != 4:
        parts += ["--log-level", str(rule.log_level)]
    for option, value in (("--to-destination", rule.to_destination), ("--to-source", rule.to_source), ("--to-ports", rule.to_ports)):
        if value:
            parts += [option, value]
    return " ".join(parts)


class RenderCache:
    """Rendered rules, remembered across the hosts of a fleet.

    A group rule's expansion is one set of Rule objects shared by every host
    in the group, so a fleet renders each of them once instead of once per
    host. Keyed by object identity, and each entry keeps its rule alive, so an
    identity is never reused for another rule while the cache lives.
    """

    def __init__(self):
        # type: () -> None
        self._lines = {}  # type: Dict[int, Tuple[str, Rule, str]]
        self._sets = {}  # type: Dict[int, Tuple[AddressSet, str]]

    def set_text(self, address_set):
        # type: (AddressSet) -> str
        """canonical_text of one ipset set, rendered once for every host that uses it."""
        entry = self._sets.get(id(address_set))
        if entry is not None and entry[0] is address_set:
            return entry[1]
        text = canonical_sets_text([address_set])
        self._sets[id(address_set)] = (address_set, text)
        return text

    def line(self, chain, rule):
        # type: (str, Rule) -> str
        entry = self._lines.get(id(rule))
        if entry is not None and entry[1] is rule and entry[0] == chain:
            return entry[2]
        text = render_rule(chain, rule)
        self._lines[id(rule)] = (chain, rule, text)
        return text


def render_family(family_ruleset, cache=None):
    # type: (FamilyRuleset, Optional[RenderCache]) -> str
    """iptables-restore input for one family, in iptables-save's canonical form."""
    lines = []  # type: List[str]
    for table in family_ruleset.tables:
        lines.append("*" + table.name)
        for chain in table.chains:
            lines.append(":%s %s [0:0]" % (chain.name, chain.policy or "-"))
        for chain in table.chains:
            if cache is None:
                lines.extend(render_rule(chain.name, rule) for rule in chain.rules)
            else:
                lines.extend(cache.line(chain.name, rule) for rule in chain.rules)
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def canonical_text(saved):
    # type: (str) -> str
    """Strip what iptables-save adds beyond the rules: '#' lines and counters."""
    lines = []  # type: List[str]
    for line in saved.splitlines():
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            line = _COUNTERS.sub("[0:0]", line)
        elif line.startswith("["):
            # iptables-save -c puts per-rule counters in front of the rule.
            line = line.split("] ", 1)[1]
        lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""

# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide a packet's fate against a compiled ruleset, as the kernel would.

Private to the fleetwall.iptables collection. Pure logic on the IR, using
only the standard library so it also runs on target hosts (the apply
module's lockout guard). Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import ipaddress
from typing import Any, Dict, FrozenSet, List, NamedTuple, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import (
    TERMINAL_TARGETS,
    FamilyRuleset,
    Rule,
    is_rate_dependent,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import SetIndex
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_rule

TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")
CHAIN_OF_DIRECTION = {"inbound": "INPUT", "outbound": "OUTPUT", "forward": "FORWARD"}
CTSTATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED")


class Packet(NamedTuple):
    """What the kernel knows about a packet when the filter table sees it."""

    chain: str  # INPUT, OUTPUT or FORWARD
    source: str
    destination: str
    protocol: Optional[str] = None  # as iptables-save names it; None for "other"
    source_port: Optional[int] = None
    destination_port: Optional[int] = None
    icmp_type: Optional[int] = None
    icmp_code: int = 0
    in_interface: Optional[str] = None
    out_interface: Optional[str] = None
    state: str = "NEW"
    tcp_flags: FrozenSet[str] = frozenset(("SYN",))
    hop_limit: int = 64
    # Rates and connection counts depend on the traffic before the packet: by default it is taken to come
    # from a quiet source (within every limit); True takes it to exceed every limit it meets.
    over_limits: bool = False
    # Set by translate(): the nat table rewrote the destination, so conntrack's DNAT state holds.
    translated: bool = False

    @property
    def family(self):
        # type: () -> int
        return _address(self.source).version


class Verdict(NamedTuple):
    verdict: str  # ACCEPT, DROP or REJECT
    chain: str
    rule_index: Optional[int]  # position in the chain, 0-based; None: the chain policy
    rule: Optional[str]  # the deciding rule as iptables-save prints it
    comment: Optional[str]
    logged_by: Tuple[str, ...] = ()
    # Rules the packet met whose match depends on rates or connection counts (ir.is_rate_dependent):
    # with other traffic before it, the verdict can differ.
    rate_dependent: Tuple[str, ...] = ()
    # The nat PREROUTING rule (DNAT, REDIRECT) that rewrote the packet's destination before the filter table saw it.
    translated_by: Optional[str] = None


_NETWORKS = {}  # type: Dict[str, Any]
_ADDRESSES = {}  # type: Dict[str, Any]
# Keyed by id() and holding the ruleset, so an id is never reused while its entry lives.
_SET_INDEXES = {}  # type: Dict[int, Tuple[FamilyRuleset, Dict[str, SetIndex]]]


def _address(text):
    # type: (str) -> Any
    # A reachability model simulates every packet several times (each way, each reply), each against
    # every rule: parsing the same few addresses again would be half of its time.
    address = _ADDRESSES.get(text)
    if address is None:
        address = ipaddress.ip_address(text)
        _ADDRESSES[text] = address
    return address


def _network(cidr):
    # type: (str) -> Any
    network = _NETWORKS.get(cidr)
    if network is None:
        network = ipaddress.ip_network(cidr, strict=False)
        _NETWORKS[cidr] = network
    return network


def _interface_matches(pattern, name, negated):
    # type: (Optional[str], Optional[str], bool) -> bool
    if pattern is None:
        return True
    if pattern == "+":
        # iptables drops "-i +" as matching every packet; "! -i +" matches none.
        matched = True
    elif name is None:
        matched = False
    elif pattern.endswith("+"):
        matched = name.startswith(pattern[:-1])
    else:
        matched = name == pattern
    return matched != negated


def port_in(port, specs):
    # type: (Optional[int], Tuple[str, ...]) -> bool
    """Whether a port lies in iptables' port specs ('443', '8000:8080'); no specs: any port."""
    if not specs:
        return True
    if port is None:
        return False
    for spec in specs:
        bounds = spec.split(":")
        if int(bounds[0]) <= port <= int(bounds[-1]):
            return True
    return False


def _flag_set(text):
    # type: (str) -> FrozenSet[str]
    if text == "NONE":
        return frozenset()
    if text == "ALL":
        return frozenset(TCP_FLAGS)
    return frozenset(text.split(","))


def _tcp_flags_match(rule, packet):
    # type: (Rule, Packet) -> bool
    mask_text, comparison_text = rule.tcp_flags.split(" ")  # type: ignore[union-attr]
    mask = _flag_set(mask_text)
    matched = (packet.tcp_flags & mask) == _flag_set(comparison_text)
    return matched != rule.tcp_flags_negated


def _icmp_matches(rule, packet):
    # type: (Rule, Packet) -> bool
    if rule.icmp_type is None or rule.icmp_type == "any":
        return True
    numbers = [int(part) for part in rule.icmp_type.split("/")]
    if rule.protocol == "icmp" and numbers[0] == 255:
        # ip_tables reads IPv4 ICMP type 255 as "any type" (iptables-save prints "any").
        return True
    if packet.icmp_type is None:
        return False
    if numbers[0] != packet.icmp_type:
        return False
    return len(numbers) == 1 or numbers[1] == packet.icmp_code


def rule_matches(rule, packet, sets=None):
    # type: (Rule, Packet, Optional[Mapping[str, SetIndex]]) -> bool
    source, destination = _address(packet.source), _address(packet.destination)
    return _rule_matches(rule, packet, source, destination, sets)


def set_indexes(family_ruleset):
    # type: (FamilyRuleset) -> Dict[str, SetIndex]
    """Membership indexes of a ruleset's address sets, built once per ruleset."""
    cached = _SET_INDEXES.get(id(family_ruleset))
    if cached is not None and cached[0] is family_ruleset:
        return cached[1]
    indexes = {address_set.name: SetIndex(address_set) for address_set in family_ruleset.sets}
    if len(_SET_INDEXES) > 64:
        _SET_INDEXES.clear()
    _SET_INDEXES[id(family_ruleset)] = (family_ruleset, indexes)
    return indexes


def _set_matches(rule, source, destination, sets):
    # type: (Rule, Any, Any, Mapping[str, SetIndex]) -> bool
    for name, negated, address in (
        (rule.source_set, rule.source_set_negated, source),
        (rule.destination_set, rule.destination_set_negated, destination),
    ):
        if name is None:
            continue
        if name not in sets:
            raise ValueError("a rule refers to the address set %s, which the ruleset does not define" % name)
        if (address in sets[name]) == negated:
            return False
    return True


def _rule_matches(rule, packet, source, destination, sets=None):
    # type: (Rule, Packet, Any, Any, Optional[Mapping[str, SetIndex]]) -> bool
    """rule_matches with the packet's addresses parsed once, not once per rule."""
    if rule.source and source not in _network(rule.source):
        return False
    if rule.destination and destination not in _network(rule.destination):
        return False
    if (rule.source_set or rule.destination_set) and not _set_matches(rule, source, destination, sets or {}):
        return False
    if not _interface_matches(rule.in_interface, packet.in_interface, rule.in_interface_negated):
        return False
    if not _interface_matches(rule.out_interface, packet.out_interface, rule.out_interface_negated):
        return False
    if rule.protocol is not None:
        if packet.protocol != rule.protocol:
            return False
        if not port_in(packet.source_port, rule.source_ports):
            return False
        if not port_in(packet.destination_port, rule.destination_ports):
            return False
        if rule.tcp_flags and not _tcp_flags_match(rule, packet):
            return False
        if rule.protocol in ("icmp", "ipv6-icmp") and not _icmp_matches(rule, packet):
            return False
    if rule.hop_limit is not None and packet.hop_limit != rule.hop_limit:
        return False
    if rule.ctstate and packet.state not in rule.ctstate and not (packet.translated and "DNAT" in rule.ctstate):
        return False
    return True


def _within_limits_matches(rule, packet):
    # type: (Rule, Packet) -> bool
    """Whether a rate-dependent rule matches the packet, as Packet.over_limits assumes the traffic before it."""
    above = bool((rule.hashlimit and rule.hashlimit.above) or (rule.connlimit and rule.connlimit.above))
    return above == packet.over_limits


def _split_destination(text):
    # type: (str) -> Tuple[str, Optional[str]]
    """'10.0.2.1:8443', '[fd00::1]:8443', 'fd00::1' -> (address, port or port range or None)."""
    if text.startswith("["):
        address, _bracket, port = text[1:].partition("]:")
        return address, port or None
    if text.count(":") == 1:
        address, _colon, port = text.partition(":")
        return address, port
    return text, None


def _translated_port(port_text, original):
    # type: (Optional[str], Optional[int]) -> Optional[int]
    """The port after DNAT/REDIRECT: the kernel keeps the original port when it lies in the range given."""
    if port_text is None:
        return original
    low, _dash, high = port_text.partition("-")
    if original is not None and high and int(low) <= original <= int(high):
        return original
    return int(low)


def translate(family_ruleset, packet):
    # type: (FamilyRuleset, Packet) -> Tuple[Packet, Optional[str]]
    """A packet from outside after the nat table's PREROUTING, and the DNAT or REDIRECT rule that rewrote it.

    REDIRECT keeps it for the host (INPUT); DNAT sends it on to the new destination (FORWARD), taken to be
    another host. Without a nat table, or for a packet of the host's own (OUTPUT), nothing changes."""
    translated, rule = translating_rule(family_ruleset, packet)
    return translated, None if rule is None else render_rule("PREROUTING", rule)


def translating_rule(family_ruleset, packet):
    # type: (FamilyRuleset, Packet) -> Tuple[Packet, Optional[Rule]]
    """translate(), with the rewriting rule itself rather than its text."""
    nat = [table for table in family_ruleset.tables if table.name == "nat"]
    if not nat or packet.translated or packet.chain not in ("INPUT", "FORWARD"):
        return packet, None
    arriving = packet._replace(out_interface=None)  # PREROUTING comes before the routing decision
    source, destination = _address(packet.source), _address(packet.destination)
    for rule in nat[0].chain("PREROUTING").rules:
        if rule.target not in ("DNAT", "REDIRECT") or not _rule_matches(rule, arriving, source, destination, {}):
            continue
        if rule.target == "REDIRECT":
            port = _translated_port(rule.to_ports, packet.destination_port)
            return packet._replace(chain="INPUT", destination_port=port, translated=True), rule
        address, port_text = _split_destination(rule.to_destination or "")
        port = _translated_port(port_text, packet.destination_port)
        if _address(address) == destination and port == packet.destination_port:
            return packet, None  # the kernel changes nothing, so conntrack records no DNAT
        return packet._replace(chain="FORWARD", destination=address, destination_port=port, translated=True), rule
    return packet, None


def simulate(family_ruleset, packet, table="filter"):
    # type: (FamilyRuleset, Packet, str) -> Verdict
    """First terminal rule that matches decides; else the chain's policy. A packet a port forward or redirect
    rewrites (translate) is decided as the filter table sees it after the rewrite."""
    if packet.family != family_ruleset.family:
        raise ValueError(
            "an IPv%d packet cannot be checked against the IPv%d ruleset" % (packet.family, family_ruleset.family)
        )
    translated_by = None  # type: Optional[str]
    if table == "filter":
        packet, translated_by = translate(family_ruleset, packet)
    try:
        chains = {chain.name: chain for chain in family_ruleset.table(table).chains}
    except KeyError:
        raise ValueError("the IPv%d ruleset has no %s table" % (family_ruleset.family, table))
    if packet.chain not in chains:
        raise ValueError("the IPv%d ruleset has no %s chain" % (family_ruleset.family, packet.chain))
    logged = []  # type: List[str]
    rate_dependent = []  # type: List[str]
    source = _address(packet.source)
    destination = _address(packet.destination)
    sets = set_indexes(family_ruleset)

    def walk(chain_name, depth):
        # type: (str, int) -> Optional[Verdict]
        if depth > 32:
            raise ValueError("jumps nest deeper than 32 chains")
        for index, rule in enumerate(chains[chain_name].rules):
            if not _rule_matches(rule, packet, source, destination, sets):
                continue
            if rule.target != "LOG" and is_rate_dependent(rule):
                # LOG rules are passed over: what they log, not the verdict, depends on their rate.
                rate_dependent.append(render_rule(chain_name, rule))
                if not _within_limits_matches(rule, packet):
                    continue
            if rule.target in TERMINAL_TARGETS:
                text = render_rule(chain_name, rule)
                return Verdict(rule.target, chain_name, index, text, rule.comment, tuple(logged), tuple(rate_dependent),
                               translated_by)
            if rule.target == "LOG":
                logged.append(render_rule(chain_name, rule))
            elif rule.target == "RETURN":
                return None
            elif rule.target in chains:
                verdict = walk(rule.target, depth + 1)
                if verdict is not None:
                    return verdict
        return None

    verdict = walk(packet.chain, 0)
    if verdict is not None:
        return verdict
    policy = chains[packet.chain].policy or "ACCEPT"
    return Verdict(policy, packet.chain, None, None, None, tuple(logged), tuple(rate_dependent), translated_by)


def verdict_to_dict(verdict):
    # type: (Verdict) -> Dict[str, Any]
    return {
        "verdict": verdict.verdict,
        "chain": verdict.chain,
        "rule_index": verdict.rule_index,
        "rule": verdict.rule,
        "comment": verdict.comment,
        "logged_by": list(verdict.logged_by),
        "rate_dependent": list(verdict.rate_dependent),
        "translated_by": verdict.translated_by,
    }

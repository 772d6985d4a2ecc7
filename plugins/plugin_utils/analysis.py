# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Analysis beside the compiler: warnings about what a policy means.

Private to the fleetwall.iptables collection. Pure logic over parsed rules
and their expansions: shadowed and redundant rules (found through an index of
the earlier rules of a chain, never by comparing every pair), definitions
nothing uses, rules that can never match on the host that receives them,
rules that expand into very many iptables rules, and hosts that SSH cannot
reach. Controller-side only (plugin_utils): the compiler imports it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import socket
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import (
    FamilyNetworks,
    intervals_contain,
    network_intervals,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Rule
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.nat import NAT_KINDS, NatEntry
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy_values import KEY_ALIASES
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy import (
    DIRECTIONS,
    FleetPolicy,
    PolicyRule,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import (
    BUILTIN_SERVICES,
    PORT_PROTOCOLS,
    PortRange,
    ServiceEntry,
    merge_port_ranges,
)

# What the compiler keeps of a rule: IPv4 rules, IPv6 rules, warnings, then
# the resolved from and to (None: any address).
Expansion = Tuple[Tuple[Rule, ...], Tuple[Rule, ...], Tuple[str, ...], Optional[FamilyNetworks], Optional[FamilyNetworks]]
IntervalCache = Dict[Tuple[str, ...], Tuple[Tuple[int, int], ...]]


# ---------------------------------------------------------------- rule coverage (shadowed rules)

_ALL_PORTS = (PortRange(1, 65535),)
NO_NAMES = frozenset()  # type: frozenset
_FULL_FAMILY = {4: ("0.0.0.0/0",), 6: ("::/0",)}
_VERBS = {"accept": ("accepts", "accept"), "drop": ("drops", "drop"), "reject": ("rejects", "reject")}


def _ports_cover(outer, inner):
    # type: (Tuple[PortRange, ...], Tuple[PortRange, ...]) -> bool
    """Merged port ranges (empty: every port) ``outer`` hold every port of ``inner``."""
    if not outer or outer == _ALL_PORTS:
        return True
    if not inner:
        return False
    for part in inner:
        for span in outer:
            if span.low <= part.low and part.high <= span.high:
                break
        else:
            return False
    return True


def _icmp_type_covers(outer, inner):
    # type: (Optional[str], Optional[str]) -> bool
    """None is every type; a type without a code holds all of its codes."""
    if outer is None or outer == inner:
        return True
    return inner is not None and "/" not in outer and inner.startswith(outer + "/")


def _entry_covered(outer, entry):
    # type: (Sequence[ServiceEntry], ServiceEntry) -> bool
    """Every packet ``entry`` matches is matched by the entries ``outer`` (ports may add up over entries)."""
    protocol = entry.protocol
    if protocol not in PORT_PROTOCOLS:
        for candidate in outer:
            if candidate.protocol == protocol and _icmp_type_covers(candidate.icmp_type, entry.icmp_type):
                return True
        return False
    found = []  # type: List[Tuple[PortRange, ...]]
    for candidate in outer:
        if candidate.protocol != protocol:
            continue
        if candidate.source_ports and not _ports_cover(
            merge_port_ranges(list(candidate.source_ports)), entry.source_ports
        ):
            continue
        if not candidate.ports:
            return True
        found.append(candidate.ports)
    if not found:
        return False
    ranges = found[0] if len(found) == 1 else merge_port_ranges([part for ports in found for part in ports])
    return _ports_cover(ranges, entry.ports)


def _entries_cover(outer, inner, families):
    # type: (Tuple[ServiceEntry, ...], Tuple[ServiceEntry, ...], Sequence[int]) -> bool
    """No entries is every protocol; an entry of a protocol of one family counts only if that family is in ``families``.

    Only an entry of the same protocol covers another, and a protocol has one
    family or both, so the families need not be compared entry by entry.
    """
    if not outer:
        return True
    if not inner:
        return False
    for entry in inner:
        family = entry.family
        if (family is None or family in families) and not _entry_covered(outer, entry):
            return False
    return True


def _interface_covers(outer, inner):
    # type: (Optional[str], Optional[str]) -> bool
    """None is any interface; 'eth+' holds 'eth0' and 'eth1+'; a negation holds only itself."""
    if outer is None or outer == inner:
        return True
    if inner is None or outer.startswith("!") or inner.startswith("!") or not outer.endswith("+"):
        return False
    return inner.startswith(outer[:-1])


def _addresses_cover(outer, inner, family, intervals):
    # type: (Optional[FamilyNetworks], Optional[FamilyNetworks], int, IntervalCache) -> bool
    """``intervals`` caches network_intervals() by CIDR list: large groups recur in many comparisons."""
    if outer is None:
        return True
    outer_networks = outer.family(family)
    inner_networks = _FULL_FAMILY[family] if inner is None else inner.family(family)
    if outer_networks == inner_networks or outer_networks == _FULL_FAMILY[family]:
        return True
    if inner_networks == _FULL_FAMILY[family]:
        return False
    ranges = []
    for networks in (outer_networks, inner_networks):
        cached = intervals.get(networks)
        if cached is None:
            cached = intervals[networks] = network_intervals(networks)
        ranges.append(cached)
    return intervals_contain(ranges[0], ranges[1])


def rule_covers(outer, outer_expansion, inner, inner_expansion, intervals=None):
    # type: (PolicyRule, Expansion, PolicyRule, Expansion, Optional[IntervalCache]) -> bool
    """Whether ``outer`` matches every packet ``inner`` matches, in every family ``inner`` has rules in.

    Both rules are of one direction (chain). Actions, log flags, comments and
    priorities do not matter here; the caller knows which rule comes first.
    """
    if intervals is None:
        intervals = {}
    if outer.rate_limit is not None or outer.max_connections is not None:
        return False  # it matches only some of the packets, depending on the traffic before them
    if outer.in_interface is not None and not _interface_covers(outer.in_interface, inner.in_interface):
        return False
    if outer.out_interface is not None and not _interface_covers(outer.out_interface, inner.out_interface):
        return False
    if inner_expansion[0]:
        if not outer_expansion[0]:
            return False
        families = (4, 6) if inner_expansion[1] else (4,)
    else:
        families = (6,)
    if inner_expansion[1] and not outer_expansion[1]:
        return False
    if outer.entries and not _entries_cover(outer.entries, inner.entries, families):
        return False
    for family in families:
        if not _addresses_cover(outer_expansion[3], inner_expansion[3], family, intervals):
            return False
        if not _addresses_cover(outer_expansion[4], inner_expansion[4], family, intervals):
            return False
    return True


def _shadow_message(earlier, later):
    # type: (PolicyRule, PolicyRule) -> str
    if earlier.action == later.action:
        return "%s is redundant: %s comes first and already %s every packet it matches" % (
            later.origin,
            earlier.origin,
            _VERBS[earlier.action][0],
        )
    return "%s never matches: %s comes first and already %s every packet it would %s" % (
        later.origin,
        earlier.origin,
        _VERBS[earlier.action][0],
        _VERBS[later.action][1],
    )


def is_host_rule(rule):
    # type: (PolicyRule) -> bool
    return rule.origin.startswith("hostvars[")


def raw_references(raw_rules):
    # type: (Any) -> Tuple[Set[str], Set[str]]
    """(service names, address set names) a raw fleetwall_host_rules value may refer to.

    Read from the raw value, not the parsed rules, so that a rule with a
    problem of its own still counts as a use: a name is never called unused
    because of a typo elsewhere in the rule.
    """
    services = set()  # type: Set[str]
    sets = set()  # type: Set[str]
    if not hasattr(raw_rules, "values"):
        return services, sets
    for rule_list in raw_rules.values():
        if not isinstance(rule_list, (list, tuple)):
            continue
        for raw_rule in rule_list:
            if not hasattr(raw_rule, "items"):
                continue
            if len(raw_rule) == 1 and list(raw_rule)[0] in NAT_KINDS and hasattr(list(raw_rule.values())[0], "items"):
                raw_rule = list(raw_rule.values())[0]  # a NAT entry: its fields name addresses like a rule's
            for key, value in raw_rule.items():
                canonical = KEY_ALIASES.get(key, key)
                if canonical not in ("service", "from", "to", "destination"):
                    continue
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    if not isinstance(item, str):
                        continue
                    text = item.strip()
                    if canonical == "service":
                        services.add(text)
                        continue
                    text = text[1:].strip() if text.startswith("!") else text
                    sets.add(text[4:] if text.startswith("set:") else text)
    return services, sets


def rule_references(rules, nat_entries=()):
    # type: (Iterable[PolicyRule], Iterable[NatEntry]) -> Tuple[Set[str], Set[str]]
    """(service names, address set names) parsed rules and NAT entries use."""
    services = set()  # type: Set[str]
    address_lists = []  # type: List[Any]
    for rule in rules:
        services.update(rule.services)
        address_lists += [rule.sources, rule.destinations]
    for entry in nat_entries:
        address_lists += [entry.sources, entry.destinations, entry.backend]
    sets = set(ref.value for refs in address_lists for ref in refs or () if ref.kind == "set")
    return services, sets


# ---------------------------------------------------------------- the index of earlier rules

# A port range at most this wide is indexed port by port; a wider one by blocks of ports.
_PORT_BLOCK_BITS = 8
_WIDTH = {4: 32, 6: 128}


def _address_integer(cidr):
    # type: (str) -> Tuple[int, int, int]
    """A canonical CIDR -> (family, prefix length, first address as an integer)."""
    address, _slash, prefix = cidr.partition("/")
    if ":" in address:
        return 6, int(prefix or 128), int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
    return 4, int(prefix or 32), int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")


def _address_keys(networks):
    # type: (Optional[FamilyNetworks]) -> List[Any]
    """Index keys of a rule's from or to: one per network, or 'any'."""
    if networks is None:
        return ["any"]
    return [_address_integer(cidr) for cidr in networks.ipv4 + networks.ipv6]


def _address_queries(networks, family):
    # type: (Optional[FamilyNetworks], int) -> List[Any]
    """The keys under which every rule whose from (or to) may hold all of ``networks`` is indexed.

    Such a rule holds the first address of ``networks`` in one of its
    networks: one lookup per prefix length finds it."""
    width = _WIDTH[family]
    if networks is None or not networks.family(family):
        return ["any", (family, 0, 0)]
    _family, _prefix, first = _address_integer(networks.family(family)[0])
    keys = ["any"]  # type: List[Any]
    for prefix in range(width + 1):
        keys.append((family, prefix, first >> (width - prefix) << (width - prefix)))
    return keys


def _port_keys(protocol, ranges):
    # type: (str, Tuple[PortRange, ...]) -> List[Any]
    keys = []  # type: List[Any]
    for span in ranges:
        if span.high - span.low < (1 << _PORT_BLOCK_BITS):
            keys.extend((protocol, port) for port in range(span.low, span.high + 1))
        else:
            first, last = span.low >> _PORT_BLOCK_BITS, span.high >> _PORT_BLOCK_BITS
            keys.extend((protocol, "ports", block) for block in range(first, last + 1))
    return keys


def _service_keys(entries):
    # type: (Tuple[ServiceEntry, ...]) -> List[Any]
    """Index keys of a rule's protocols: 'all', (protocol, ICMP type), (protocol, 'any') or its ports."""
    if not entries:
        return ["all"]
    keys = []  # type: List[Any]
    ports = {}  # type: Dict[str, List[PortRange]]
    for entry in entries:
        if entry.protocol not in PORT_PROTOCOLS:
            keys.append((entry.protocol, entry.icmp_type))
        elif not entry.ports:
            ports[entry.protocol] = []
        elif ports.get(entry.protocol, True) != []:
            ports.setdefault(entry.protocol, []).extend(entry.ports)
    for protocol, ranges in sorted(ports.items()):
        merged = merge_port_ranges(ranges)
        keys.extend([(protocol, "any")] if not merged or merged == _ALL_PORTS else _port_keys(protocol, merged))
    return keys


def _service_queries(entries, families):
    # type: (Tuple[ServiceEntry, ...], Sequence[int]) -> Optional[List[Any]]
    """Keys of every rule whose protocols may cover ``entries``; None: any rule may."""
    relevant = [entry for entry in entries if entry.family is None or entry.family in families]
    if not entries:
        return ["all"]
    if not relevant:
        return None
    entry = relevant[0]
    if entry.protocol not in PORT_PROTOCOLS:
        types = [None] + ([entry.icmp_type, entry.icmp_type.split("/")[0]] if entry.icmp_type else [])
        return ["all"] + [(entry.protocol, icmp_type) for icmp_type in sorted(set(types), key=str)]
    keys = ["all", (entry.protocol, "any")]  # type: List[Any]
    if entry.ports:
        port = entry.ports[0].low
        keys += [(entry.protocol, port), (entry.protocol, "ports", port >> _PORT_BLOCK_BITS)]
    return keys


def _interface_queries(interface):
    # type: (Optional[str]) -> List[Any]
    """None, the name itself, and every 'prefix+' that holds it."""
    if interface is None:
        return [None]
    if interface.startswith("!"):
        return [None, interface]
    stem = interface[:-1] if interface.endswith("+") else interface
    return [None, interface] + [stem[:length] + "+" for length in range(len(stem) + 1)]


class CoverIndex:
    """The earlier rules of one chain, indexed so that the rules that may cover a
    later one are found without looking at every earlier rule.

    Each dimension (protocol and port, from, to, interfaces) maps keys to the
    positions of the rules indexed under them; a rule that covers another is
    always found under the other's query keys in every dimension, so the
    smallest dimension's candidates are enough to check."""

    def __init__(self):
        # type: () -> None
        self._buckets = tuple({} for _dimension in range(5))  # type: Tuple[Dict[Any, List[int]], ...]

    def add(self, position, rule, expansion):
        # type: (int, PolicyRule, Expansion) -> None
        keys = (
            _service_keys(rule.entries),
            _address_keys(expansion[3]),
            _address_keys(expansion[4]),
            [rule.in_interface],
            [rule.out_interface],
        )
        for buckets, dimension_keys in zip(self._buckets, keys):
            for key in set(dimension_keys):
                buckets.setdefault(key, []).append(position)

    DIMENSIONS = ("service", "from", "to", "in_interface", "out_interface")

    def candidates(self, rule, expansion, dimensions=DIMENSIONS):
        # type: (PolicyRule, Expansion, Sequence[str]) -> Optional[List[int]]
        """Positions of earlier rules that may cover ``rule``, in order; None: any of them may.

        The smallest of ``dimensions`` answers (one alone: the tests check each)."""
        families = (4, 6) if expansion[0] and expansion[1] else ((4,) if expansion[0] else (6,))
        queries = (
            _service_queries(rule.entries, families),
            _address_queries(expansion[3], families[0]),
            _address_queries(expansion[4], families[0]),
            _interface_queries(rule.in_interface),
            _interface_queries(rule.out_interface),
        )
        best = None  # type: Optional[List[List[int]]]
        best_size = 0
        for name, buckets, keys in zip(self.DIMENSIONS, self._buckets, queries):
            if keys is None or name not in dimensions:
                continue
            found = [buckets[key] for key in set(keys) if key in buckets]
            size = sum(len(positions) for positions in found)
            if best is None or size < best_size:
                best, best_size = found, size
        if best is None:
            return None
        return sorted(set(position for positions in best for position in positions))


def shadow_warnings(received, known_covers, intervals):
    # type: (Iterable[Tuple[PolicyRule, Expansion]], Dict[str, Dict[str, bool]], IntervalCache) -> Tuple[str, ...]
    """A warning for each rule that an earlier rule of its chain, alone, matches entirely.

    ``known_covers`` keeps, per later group rule and earlier group rule,
    whether one covers the other: that holds for every host receiving both."""
    chains = {}  # type: Dict[str, List[Tuple[PolicyRule, Expansion]]]
    for rule, expanded in received:
        if expanded[0] or expanded[1]:
            # Published forward rules have a chain of their own (DOCKER-USER).
            chains.setdefault("published" if rule.published else rule.direction, []).append((rule, expanded))
    warnings = []  # type: List[str]
    for direction in DIRECTIONS + ("published",):
        chain = chains.get(direction, [])
        index = CoverIndex()
        for position, (later, later_expanded) in enumerate(chain):
            candidates = index.candidates(later, later_expanded)
            known = {} if is_host_rule(later) else known_covers.setdefault(later.origin, {})
            for earlier_position in range(position) if candidates is None else candidates:
                earlier, earlier_expanded = chain[earlier_position]
                covered = None if is_host_rule(earlier) else known.get(earlier.origin)
                if covered is None:
                    covered = rule_covers(earlier, earlier_expanded, later, later_expanded, intervals)
                    if not is_host_rule(earlier):
                        known[earlier.origin] = covered
                if covered:
                    warnings.append(_shadow_message(earlier, later))
                    break
            index.add(position, later, later_expanded)
    return tuple(warnings)


def unused_definitions(policy, raw_services, host_services, host_sets):
    # type: (FleetPolicy, Any, Set[str], Set[str]) -> List[str]
    """Services of fleetwall_services and sets of fleetwall_addresses that no rule or set of one policy uses.

    ``host_services`` and ``host_sets`` are what host rules use; built-in
    services never count as unused, even when redefined."""
    services, sets = rule_references((rule for rules in policy.group_rules.values() for rule in rules),
                                     (entry for entries in policy.group_nat.values() for entry in entries))
    services.update(host_services)
    sets.update(host_sets)
    for refs in policy.address_sets.values():
        sets.update(ref.value for ref in refs if ref.kind == "set")
    warnings = []  # type: List[str]
    for name in sorted(name for name in (raw_services if hasattr(raw_services, "keys") else {}) if isinstance(name, str)):
        if name in policy.services and name not in BUILTIN_SERVICES and name not in services:
            warnings.append("fleetwall_services.%s is defined but no rule uses it" % name)
    for name in sorted(policy.address_sets):
        if name not in sets:
            warnings.append("fleetwall_addresses.%s is defined but no rule or address set uses it" % name)
    return warnings


# ---------------------------------------------------------------- per-host findings

# Past this many iptables rules from one policy rule, a warning says how big it got.
EXPANSION_WARNING = 1000
_NON_SSH_CONNECTIONS = ("local", "docker", "podman", "chroot", "lxd", "lxc", "jail", "zone", "winrm", "psrp")


def expansion_warning(rule, expansion):
    # type: (PolicyRule, Expansion) -> Optional[str]
    """A warning when one rule became more than EXPANSION_WARNING iptables rules."""
    size = len(expansion[0]) + len(expansion[1])
    if size <= EXPANSION_WARNING:
        return None
    counts = []  # type: List[str]
    for key, networks in (("from", expansion[3]), ("to", expansion[4])):
        if networks is not None:
            counts.append("%s: %s networks" % (key, "{:,}".format(len(networks.ipv4) + len(networks.ipv6))))
    return "%s expands into %s iptables rules (more than %s: one per combination of %s); narrow it or split it" % (
        rule.origin,
        "{:,}".format(size),
        "{:,}".format(EXPANSION_WARNING),
        " x ".join(counts + ["protocol match"]),
    )


def foreign_address_warning(rule, host, host_groups):
    # type: (PolicyRule, str, Sequence[str]) -> Optional[str]
    """An inbound rule whose to (an outbound rule whose from) names only other inventory hosts never matches here."""
    if rule.direction == "inbound":
        refs, key, how = rule.destinations, "to", "addressed to"
    elif rule.direction == "outbound":
        refs, key, how = rule.sources, "from", "sent from"
    else:
        return None
    named = [ref for ref in refs or () if not ref.negated]
    if not named or any(ref.kind not in ("host", "group") for ref in named):
        return None
    for ref in named:
        if (ref.kind == "host" and ref.value == host) or (ref.kind == "group" and ref.value in host_groups):
            return None
    return "%s.%s names only other hosts (%s): on host '%s' every %s packet is %s '%s', so the rule never matches" % (
        rule.origin,
        key,
        ", ".join(ref.label() for ref in named),
        host,
        rule.direction,
        how,
        host,
    )


def connection_port(host_vars):
    # type: (Mapping[str, Any]) -> Optional[int]
    """The TCP port Ansible reaches the host on over SSH; None if it does not use SSH or the port is unclear."""
    connection = str(host_vars.get("ansible_connection") or "ssh").rsplit(".", maxsplit=1)[-1]
    if connection in _NON_SSH_CONNECTIONS:
        return None
    port = host_vars.get("ansible_port", host_vars.get("ansible_ssh_port", 22))
    try:
        number = int(port)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 65535 else None


def _admits_tcp_port(entries, port):
    # type: (Sequence[ServiceEntry], int) -> bool
    if not entries:
        return True
    for entry in entries:
        if entry.protocol == "tcp" and not entry.source_ports:
            if not entry.ports or any(span.low <= port <= span.high for span in entry.ports):
                return True
    return False


def ssh_warnings(host, port, default_inbound, received, services):
    # type: (str, int, str, Iterable[Tuple[PolicyRule, Expansion]], Mapping[str, Tuple[ServiceEntry, ...]]) -> List[str]
    """No rule admits SSH on a host that drops by default; the ssh service redefined away from the port in use."""
    warnings = []  # type: List[str]
    ssh = services.get("ssh", ())
    if ssh != BUILTIN_SERVICES["ssh"] and not _admits_tcp_port(ssh, port):
        warnings.append(
            "fleetwall_services.ssh: redefined without tcp/%d, the port Ansible connects to host '%s' on "
            "(ansible_port); rules with service ssh do not admit that connection" % (port, host)
        )
    if default_inbound == "accept":
        return warnings
    for rule, expansion in received:
        if rule.direction == "inbound" and rule.action == "accept" and (expansion[0] or expansion[1]):
            if _admits_tcp_port(rule.entries, port):
                return warnings
    warnings.append(
        "host '%s': no inbound rule accepts SSH (tcp/%d, the port Ansible connects to) and the inbound default is "
        "%s, so Ansible cannot connect once this ruleset is applied" % (host, port, default_inbound)
    )
    return warnings

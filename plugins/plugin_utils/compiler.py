# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile a host's policy into per-family rulesets (the IR).

Private to the fleetwall.iptables collection. Pure logic: inventory data in,
IR out. Everything a group rule expands to is independent of the host that
receives it, so a FleetCompiler expands each group rule once and shares the
result across the fleet. Controller-side only (plugin_utils): the
filters import it; nothing on a target host does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import gc
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import (
    AddressRef,
    AddressResolver,
    FamilyNetworks,
    HostAddresses,
    included_sets_in_order,
)
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.analysis import (
    NO_NAMES,
    Expansion,
    IntervalCache,
    connection_port,
    expansion_warning,
    foreign_address_warning,
    is_host_rule,
    raw_references,
    rule_references,
    shadow_warnings,
    ssh_warnings,
    unused_definitions,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import AddressSet, address_set, set_name
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import (
    DOCKER_USER,
    Chain,
    FamilyRuleset,
    HostRuleset,
    Rule,
    Table,
)
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.nat import compile_host_nat, docker_user_chain, nat_table
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.rule_rates import log_rule, rate_fields
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy import (
    REJECT_WITH,
    FleetPolicy,
    HostSettings,
    PolicyRule,
    parse_fleet_policy,
    parse_host_settings,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import (
    PORT_PROTOCOLS,
    PortRange,
    ServiceEntry,
    merge_port_ranges,
)

FLEET_VARIABLES = ("fleetwall_services", "fleetwall_addresses", "fleetwall_policy")
CHAIN_OF = {"inbound": "INPUT", "outbound": "OUTPUT", "forward": "FORWARD"}
# multiport takes at most 15 ports, a range counting as two.
MULTIPORT_SLOTS = 15
ICMPV6_NEIGHBOUR_DISCOVERY = ("133", "134", "135", "136")
DEFAULT_LOG_LIMIT = "5/min"
MAX_COMMENT = 255  # xt_comment keeps 255 characters; a longer one would never compare equal

_ExpandedRule = Tuple[Tuple[Rule, ...], Tuple[Rule, ...], Tuple[str, ...]]
# A rule whose from: or to: resolves to more CIDRs than this in one family matches
# one ipset set instead of one rule per CIDR (host variable fleetwall_set_threshold;
# 0 turns sets off). 16: a group or list of a few hosts stays plain rules that are
# easy to read; past that, a set costs every new connection one lookup instead of a walk.
DEFAULT_SET_THRESHOLD = 16
SET_THRESHOLD_VARIABLE = "fleetwall_set_threshold"
# One side of a rule: (CIDR or None, set name or None, whether the set match is negated).
_Side = Tuple[Optional[str], Optional[str], bool]
_NO_ADDRESS = ((None, None, False),)  # type: Tuple[_Side, ...]


class AddressSets:
    """The ipset sets one policy's rules use: one per reference list and family,
    shared by every rule and host that names the same references."""

    def __init__(self, resolve):
        # type: (Callable[[Sequence[AddressRef], str], FamilyNetworks]) -> None
        self._resolve = resolve
        self._sets = {}  # type: Dict[str, AddressSet]
        self._labels = {}  # type: Dict[str, Tuple[str, ...]]

    def get(self, name):
        # type: (str) -> AddressSet
        return self._sets[name]

    def side(self, refs, networks, family, threshold, path):
        # type: (Sequence[AddressRef], FamilyNetworks, int, int, str) -> Tuple[_Side, ...]
        """One rule side in one family: a rule per CIDR, or one set match when the
        CIDRs are more than ``threshold``. A list of exceptions only (``!host:web1``)
        (which the policy reads as ``any`` less them) is the negated set of what it
        excepts, not the complement's many CIDRs."""
        cidrs = networks.family(family)
        if not threshold or len(cidrs) <= threshold:
            return tuple((cidr, None, False) for cidr in cidrs)
        excepted_refs = [ref._replace(negated=False) for ref in refs if ref.negated]
        if excepted_refs and all(ref.kind == "any" for ref in refs if not ref.negated):
            excepted = self._resolve(excepted_refs, path).family(family)
            return ((None, self._register(family, excepted_refs, excepted, path), True),)
        return ((None, self._register(family, refs, cidrs, path), False),)

    def _register(self, family, refs, cidrs, path):
        # type: (int, Sequence[AddressRef], Sequence[str], str) -> str
        labels = tuple(ref.label() for ref in refs)
        name = set_name(family, labels)
        known = self._labels.get(name)
        if known is None:
            # The resolver's CIDRs are merged, sorted and canonical: no second parse.
            self._sets[name] = address_set(name, family, cidrs, merged=True)
            self._labels[name] = labels
        elif known != labels:
            raise PolicyError(["%s: the ipset name %s is already taken by %s; reorder or rename the references" % (path, name, " ".join(known))])
        return name


def _port_chunks(ranges):
    # type: (Tuple[PortRange, ...]) -> List[Tuple[str, ...]]
    chunks = []  # type: List[Tuple[str, ...]]
    current = []  # type: List[str]
    used = 0
    for port_range in ranges:
        cost = 1 if port_range.low == port_range.high else 2
        if used + cost > MULTIPORT_SLOTS:
            chunks.append(tuple(current))
            current, used = [], 0
        current.append(port_range.render())
        used += cost
    if current:
        chunks.append(tuple(current))
    return chunks or [()]


class _Match:
    """The protocol part of a rule: what one ServiceEntry group becomes."""

    __slots__ = ("protocol", "source_ports", "destination_ports", "icmp_type")

    def __init__(self, protocol, source_ports=(), destination_ports=(), icmp_type=None):
        # type: (Optional[str], Tuple[str, ...], Tuple[str, ...], Optional[str]) -> None
        self.protocol = protocol
        self.source_ports = source_ports
        self.destination_ports = destination_ports
        self.icmp_type = icmp_type


def protocol_matches(entries, family):
    # type: (Sequence[ServiceEntry], int) -> List[_Match]
    """Group a rule's service entries per protocol, merging ports into multiport lists."""
    if not entries:
        return [_Match(None)]
    relevant = [entry for entry in entries if entry.family in (None, family)]
    matches = []  # type: List[_Match]
    by_key = {}  # type: Dict[Tuple[str, Tuple[PortRange, ...]], List[PortRange]]
    any_port = set()  # type: Set[Tuple[str, Tuple[PortRange, ...]]]
    icmp_seen = set()  # type: Set[Tuple[str, Optional[str]]]
    order = []  # type: List[Tuple[Any, ...]]
    for entry in relevant:
        if entry.protocol in PORT_PROTOCOLS:
            key = (entry.protocol, entry.source_ports)
            if key not in by_key:
                by_key[key] = []
                order.append(("ports",) + key)
            if entry.ports:
                by_key[key].extend(entry.ports)
            else:
                any_port.add(key)
        else:
            icmp_key = (entry.protocol, entry.icmp_type)
            if icmp_key not in icmp_seen:
                icmp_seen.add(icmp_key)
                order.append(("plain",) + icmp_key)
    for item in order:
        if item[0] == "ports":
            key = (item[1], item[2])
            destination = () if key in any_port else merge_port_ranges(by_key[key])
            sources = _port_chunks(merge_port_ranges(list(item[2]))) if item[2] else [()]
            for source_chunk in sources:
                for destination_chunk in _port_chunks(destination):
                    matches.append(_Match(item[1], source_chunk, destination_chunk))
        elif (item[1], None) in icmp_seen and item[2] is not None:
            continue  # every type of this protocol is already matched
        else:
            matches.append(_Match(item[1], icmp_type=item[2]))
    return matches


def comment_label(origin):
    # type: (str) -> str
    """The policy path as a rule comment; host paths drop the quoted host name."""
    if origin.startswith("hostvars["):
        return origin.split("].", 1)[1]
    return origin


def expand_rule(rule, resolve):
    # type: (PolicyRule, Any) -> _ExpandedRule
    """A policy rule -> (IPv4 rules, IPv6 rules, warnings)."""
    expanded = _expand(rule, resolve)
    return expanded[0], expanded[1], expanded[2]


def _sides(refs, networks, family, address_sets, threshold, path):
    # type: (Optional[Sequence[AddressRef]], Optional[FamilyNetworks], int, Optional[AddressSets], int, str) -> Tuple[_Side, ...]
    if networks is None or refs is None:
        return _NO_ADDRESS
    if address_sets is None:
        return tuple((cidr, None, False) for cidr in networks.family(family))
    return address_sets.side(refs, networks, family, threshold, path)


def _expand(rule, resolve, address_sets=None, threshold=0):
    # type: (PolicyRule, Any, Optional[AddressSets], int) -> Expansion
    """expand_rule, plus the resolved sources and destinations."""
    warnings = list(rule.warnings)
    sources = resolve(rule.sources, rule.origin + ".from") if rule.sources is not None else None
    destinations = resolve(rule.destinations, rule.origin + ".to") if rule.destinations is not None else None
    for networks, key in ((sources, "from"), (destinations, "to")):
        if networks is not None and not networks.ipv4 and not networks.ipv6:
            warnings.append("%s.%s matches no address; the rule is left out" % (rule.origin, key))
    comment = comment_label(rule.origin)
    if rule.comment:
        comment = (comment + ": " + rule.comment)[:MAX_COMMENT]
    chain_target = rule.action.upper()
    rates = (rate_fields(rule, 4), rate_fields(rule, 6))
    results = []  # type: List[Tuple[Rule, ...]]
    for family in (4, 6):
        family_rules = []  # type: List[Rule]
        family_sources = _sides(rule.sources, sources, family, address_sets, threshold, rule.origin + ".from")
        family_destinations = _sides(rule.destinations, destinations, family, address_sets, threshold, rule.origin + ".to")
        matches = protocol_matches(rule.entries, family)
        reject_with = None
        if rule.action == "reject":
            reject_with = REJECT_WITH[rule.reject_with or "port-unreachable"][family == 6]
        log_prefix = None
        if rule.log_prefix is not None:
            log_prefix = rule.log_prefix or _generated_log_prefix(rule)
        for source in family_sources:
            for destination in family_destinations:
                for match in matches:
                    base = Rule(
                        target=chain_target,
                        source=source[0],
                        destination=destination[0],
                        source_set=source[1],
                        source_set_negated=source[2],
                        destination_set=destination[1],
                        destination_set_negated=destination[2],
                        in_interface=_bare(rule.in_interface),
                        in_interface_negated=_negated(rule.in_interface),
                        out_interface=_bare(rule.out_interface),
                        out_interface_negated=_negated(rule.out_interface),
                        protocol=match.protocol,
                        source_ports=match.source_ports,
                        destination_ports=match.destination_ports,
                        icmp_type=match.icmp_type,
                        comment=comment,
                        reject_with=reject_with,
                        **rates[family == 6]
                    )
                    if log_prefix is not None:
                        family_rules.append(log_rule(base, log_prefix, rule.log_limit))
                    family_rules.append(base)
        results.append(tuple(family_rules))
    if not results[0] and not results[1] and not warnings:
        warnings.append(
            "%s produces no rule: its addresses and protocols have no address family in common; the rule is left out"
            % rule.origin
        )
    too_big = expansion_warning(rule, (results[0], results[1], (), sources, destinations))
    if too_big:
        warnings.append(too_big)
    return results[0], results[1], tuple(warnings), sources, destinations


def _bare(interface):
    # type: (Optional[str]) -> Optional[str]
    return interface[1:] if interface and interface.startswith("!") else interface


def _negated(interface):
    # type: (Optional[str]) -> bool
    return bool(interface and interface.startswith("!"))


_ORIGIN = re.compile(r"^(?:fleetwall_policy\.(?P<group>.+)|fleetwall_host_rules)\.(?P<direction>\w+)\[(?P<index>\d+)\]$")
_SHORT_DIRECTION = {"inbound": "in", "outbound": "out", "forward": "fwd"}


def _generated_log_prefix(rule):
    # type: (PolicyRule) -> str
    """'fw DROP web.in[0] ': the action and where the rule came from, within 29 characters."""
    match = _ORIGIN.match(comment_label(rule.origin))
    label = comment_label(rule.origin)
    if match:
        label = "%s.%s[%s]" % (
            match.group("group") or "host",
            _SHORT_DIRECTION.get(match.group("direction"), match.group("direction")),
            match.group("index"),
        )
    return ("fw %s %s" % (rule.action.upper(), label))[:27].rstrip() + " "


def _baseline_rules(family, chain, settings):
    # type: (int, str, HostSettings) -> List[Rule]
    """The rules every host gets ahead of its policy, per chain."""
    baseline = settings.baseline
    direction = {"INPUT": "inbound", "OUTPUT": "outbound", "FORWARD": "forward"}[chain]
    restrictive = settings.default_policy[direction] != "accept"
    rules = []  # type: List[Rule]

    def add(comment, **fields):
        # type: (str, Any) -> None
        rules.append(Rule(comment="fleetwall baseline: " + comment, **fields))

    loopback = "127.0.0.0/8" if family == 4 else "::1/128"
    if chain == "INPUT":
        if baseline["loopback"]:
            add("loopback", target="ACCEPT", in_interface="lo")
        if baseline["antispoof"]:
            add("loopback anti-spoofing", target="DROP", source=loopback, in_interface="lo", in_interface_negated=True)
    if chain == "OUTPUT" and restrictive and baseline["loopback"]:
        add("loopback", target="ACCEPT", out_interface="lo")
    if family == 6 and baseline["icmpv6_essentials"] and restrictive and chain in ("INPUT", "OUTPUT"):
        for icmp_type in ICMPV6_NEIGHBOUR_DISCOVERY:
            add(
                "IPv6 neighbour discovery",
                target="ACCEPT",
                protocol="ipv6-icmp",
                icmp_type=icmp_type,
                hop_limit=255,
            )
        add("IPv6 packet too big", target="ACCEPT", protocol="ipv6-icmp", icmp_type="2")
    if baseline["established"] and (chain == "INPUT" or restrictive):
        add("established", target="ACCEPT", ctstate=("RELATED", "ESTABLISHED"))
    if chain == "INPUT" and baseline["drop_invalid"]:
        add("invalid", target="DROP", ctstate=("INVALID",))
    if chain == "INPUT" and baseline["tcp_flag_sanity"]:
        add("TCP null scan", target="DROP", protocol="tcp", tcp_flags="FIN,SYN,RST,PSH,ACK,URG NONE")
        add("TCP xmas scan", target="DROP", protocol="tcp", tcp_flags="FIN,SYN,RST,PSH,ACK,URG FIN,PSH,URG")
        add(
            "TCP new without SYN",
            target="DROP",
            protocol="tcp",
            tcp_flags="FIN,SYN,RST,ACK SYN",
            tcp_flags_negated=True,
            ctstate=("NEW",),
        )
    return rules


def _tail_rules(family, chain, settings):
    # type: (int, str, HostSettings) -> List[Rule]
    direction = {"INPUT": "inbound", "OUTPUT": "outbound", "FORWARD": "forward"}[chain]
    default = settings.default_policy[direction]
    rules = []  # type: List[Rule]
    if default == "accept":
        return rules
    if settings.log_default:
        rules.append(
            Rule(
                target="LOG",
                limit=DEFAULT_LOG_LIMIT,
                comment="fleetwall default %s %s" % (direction, default),
                log_prefix="fw %s %s " % (chain, default.upper()),
            )
        )
    if default == "reject":
        rules.append(
            Rule(
                target="REJECT",
                comment="fleetwall default %s reject" % direction,
                reject_with=REJECT_WITH["port-unreachable"][family == 6],
            )
        )
    return rules


class _PolicyVariant(NamedTuple):
    raw: Tuple[Any, ...]
    policy: FleetPolicy
    resolver: AddressResolver
    expansions: Dict[str, Expansion]  # per group rule origin
    first_host: str
    identity: Optional[Tuple[Any, ...]]
    covers: Dict[str, Dict[str, bool]]  # later group rule origin -> earlier one -> rule_covers()
    shadows: Dict[Tuple[str, ...], Tuple[str, ...]]  # the origins a host receives, in order -> shadow warnings
    set_uses_hosts: Dict[str, bool]  # address set name -> whether it takes addresses from inventory hosts
    address_sets: AddressSets  # the ipset sets its rules use


class ParsedFleet(NamedTuple):
    """What a FleetCompiler parsed of an inventory: its groups and hosts, and the fleet policy as one host sees it."""

    groups: Dict[str, List[str]]
    hosts: Set[str]
    host_addresses: HostAddresses
    policy: FleetPolicy
    resolver: AddressResolver


class FleetCompiler:
    """Compiles rulesets for the hosts of one inventory.

    ``hostvars`` maps each host to its variables (Ansible's hostvars works);
    ``groups`` maps each group to its hosts (Ansible's groups). Parsed
    policies and expanded group rules are cached, so compiling a whole fleet
    costs little more than the sum of what each host receives.
    """

    def __init__(self, hostvars, groups, raw_fleet_variables=None):
        # type: (Mapping[str, Mapping[str, Any]], Mapping[str, Sequence[str]], Optional[Callable[[str], Tuple[Any, ...]]]) -> None
        """``raw_fleet_variables(host)``, when given, returns the host's fleet
        variables before templating; hosts whose values are the very same
        objects (group_vars/all) share one parse without their templated
        values being compared, which in Ansible costs a templating pass over
        the whole policy per host."""
        self._hostvars = hostvars
        self._raw_fleet_variables = raw_fleet_variables
        self._baselines = {}  # type: Dict[Tuple[Any, ...], Tuple[Tuple[Rule, ...], Tuple[Rule, ...]]]
        self._groups = {str(name): [str(host) for host in hosts] for name, hosts in groups.items()}
        hosts = set(self._groups.get("all", ()))
        for members in self._groups.values():
            hosts.update(members)
        self._hosts = hosts
        self._host_groups = {}  # type: Dict[str, List[str]]
        for group in sorted(self._groups):
            for host in self._groups[group]:
                self._host_groups.setdefault(host, []).append(group)
        self._host_addresses = HostAddresses(hostvars)
        self._variants = []  # type: List[_PolicyVariant]
        self._fleet_families = None  # type: Optional[Set[int]]
        self._intervals = {}  # type: IntervalCache
        # Per compiled host: its policy variant and the (services, address sets) its own rules use.
        self._host_references = {}  # type: Dict[str, Tuple[_PolicyVariant, Set[str], Set[str]]]

    def _fleet(self, host, host_vars):
        # type: (str, Mapping[str, Any]) -> _PolicyVariant
        """The parsed fleet-wide variables as this host sees them, parsed once per distinct value."""
        identity = self._raw_fleet_variables(host) if self._raw_fleet_variables else None
        if identity is not None:
            for variant in self._variants:
                if variant.identity is not None and all(a is b for a, b in zip(variant.identity, identity)):
                    return variant
        raw = tuple(host_vars.get(name) for name in FLEET_VARIABLES)
        for variant in self._variants:
            if variant.raw == raw:
                return variant
        policy = parse_fleet_policy(raw[0], raw[1], raw[2], self._groups, self._hosts)
        resolver = AddressResolver(policy.address_sets, self._groups, self._host_addresses)
        variant = _PolicyVariant(raw, policy, resolver, {}, host, identity, {}, {}, {}, AddressSets(resolver.resolve))
        self._variants.append(variant)
        return variant

    def groups_of(self, host):
        # type: (str) -> List[str]
        """'all' first, then the host's other groups by name: never inventory order."""
        groups = self._host_groups.get(host, [])
        return (["all"] if "all" in groups else []) + [group for group in groups if group != "all"]

    def parsed_fleet(self, host=None):
        # type: (Optional[str]) -> ParsedFleet
        """The inventory and the fleet policy as ``host`` (default: the first inventory host by name) sees it.

        Parsed once per distinct policy and shared with compile_host, so that
        code reading the policy beside the compiler never parses it again."""
        if host is None:
            if not self._hosts:
                raise PolicyError(["groups: the inventory has no host"])
            host = min(self._hosts)
        variant = self._fleet(host, self._hostvars[host])
        return ParsedFleet(self._groups, self._hosts, self._host_addresses, variant.policy, variant.resolver)

    def compile_host(self, host):
        # type: (str) -> HostRuleset
        if host not in self._hostvars:
            raise PolicyError(["inventory_hostname: unknown host '%s'" % host])
        host_vars = self._hostvars[host]
        if not hasattr(host_vars, "get"):
            raise PolicyError(["hostvars['%s']: must be a mapping of variables" % host])
        variant = self._fleet(host, host_vars)
        policy, expansions = variant.policy, variant.expansions
        settings = parse_host_settings(
            host,
            host_vars.get("fleetwall_default_policy"),
            host_vars.get("fleetwall_baseline"),
            host_vars.get("fleetwall_host_rules"),
            policy,
            self._groups,
            self._hosts,
        )
        rules = []  # type: List[PolicyRule]
        for group in self.groups_of(host):
            rules.extend(policy.group_rules.get(group, ()))
        rules.extend(settings.host_rules)
        # A stable sort: equal priorities keep the order above.
        rules.sort(key=lambda rule: rule.priority)

        per_chain = {4: {}, 6: {}}  # type: Dict[int, Dict[str, List[Rule]]]
        warnings = []  # type: List[str]
        if variant is not self._variants[0]:
            warnings.append(
                "host '%s' sees different %s than host '%s'; define them once for the fleet (group_vars/all)"
                % (host, " / ".join(FLEET_VARIABLES), self._variants[0].first_host)
            )
        warnings.extend(policy.warnings)
        received = []  # type: List[Expansion]
        threshold = set_threshold(host, host_vars)
        for rule in rules:
            key = rule.origin if threshold == DEFAULT_SET_THRESHOLD else "%s@%d" % (rule.origin, threshold)
            expanded = expansions.get(key)
            if expanded is None:
                expanded = self._expand(variant, rule, threshold)
                if not is_host_rule(rule):
                    expansions[key] = expanded
            chain = DOCKER_USER if rule.published else CHAIN_OF[rule.direction]
            per_chain[4].setdefault(chain, []).extend(expanded[0])
            per_chain[6].setdefault(chain, []).extend(expanded[1])
            warnings.extend(expanded[2])
            received.append(expanded)
        if settings.host_rules:
            warnings.extend(shadow_warnings(zip(rules, received), variant.covers, self._intervals))
        else:
            # Hosts of the same groups receive the same rules: one check for all of them.
            key = tuple([rule.origin for rule in rules])
            shadows = variant.shadows.get(key)
            if shadows is None:
                shadows = shadow_warnings(zip(rules, received), variant.covers, self._intervals)
                variant.shadows[key] = shadows
            warnings.extend(shadows)
        references = rule_references(settings.host_rules, settings.host_nat) if settings.host_rules or settings.host_nat else None
        self._host_references[host] = (variant,) + (references or (NO_NAMES, NO_NAMES))
        warnings.extend(self._host_warnings(host, host_vars, variant, settings, zip(rules, received)))

        nat_entries = [entry for group in self.groups_of(host) for entry in policy.group_nat.get(group, ())]
        nat_entries += settings.host_nat
        nat = compile_host_nat(nat_entries, variant.resolver.resolve, comment_label) if nat_entries else None
        families = []  # type: List[FamilyRuleset]
        for family in (4, 6):
            chains = []  # type: List[Chain]
            nat_filter = nat[family].filter if nat else {}
            for chain_name, direction in (("INPUT", "inbound"), ("FORWARD", "forward"), ("OUTPUT", "outbound")):
                head, tail = self._fixed_rules(family, chain_name, settings)
                policy_rules = tuple(per_chain[family].get(chain_name, ())) + tuple(nat_filter.get(chain_name, ()))
                chain_rules = head + policy_rules + tail
                policy_target = "ACCEPT" if settings.default_policy[direction] == "accept" else "DROP"
                chains.append(Chain(chain_name, policy_target, tuple(chain_rules)))
            if any(rule.published for rule in rules):
                chains.append(docker_user_chain(per_chain[family].get(DOCKER_USER, ())))
            sets = tuple(variant.address_sets.get(name) for name in sorted(set_names_of(chains))) if threshold else ()
            tables = (Table("filter", tuple(chains)),) + ((nat_table(nat[family]),) if nat else ())
            families.append(FamilyRuleset(family, tables, sets))
        return HostRuleset(host=host, ipv4=families[0], ipv6=families[1], warnings=tuple(warnings))

    def _host_warnings(self, host, host_vars, variant, settings, received):
        # type: (str, Mapping[str, Any], _PolicyVariant, HostSettings, Iterable[Tuple[PolicyRule, Expansion]]) -> List[str]
        """What only this host makes of its rules: rules naming only other hosts, and SSH."""
        received = list(received)
        host_groups = self.groups_of(host)
        warnings = []  # type: List[str]
        for rule, _expansion in received:
            foreign = foreign_address_warning(rule, host, host_groups)
            if foreign:
                warnings.append(foreign)
        port = connection_port(host_vars)
        if port is not None:
            warnings.extend(
                ssh_warnings(host, port, settings.default_policy["inbound"], received, variant.policy.services)
            )
        return warnings

    def _expand(self, variant, rule, threshold):
        # type: (_PolicyVariant, PolicyRule, int) -> Expansion
        """expand_rule with the warning about a family left empty by inventory addresses."""
        expanded = _expand(rule, variant.resolver.resolve, variant.address_sets, threshold)
        if bool(expanded[0]) == bool(expanded[1]):
            return expanded
        present, missing = (4, 6) if expanded[0] else (6, 4)
        if rule.entries and all(entry.family not in (None, missing) for entry in rule.entries):
            return expanded  # the rule's protocols have no place in the other family anyway
        lacking = []  # type: List[str]
        for key, networks, refs in (("from", expanded[3], rule.sources), ("to", expanded[4], rule.destinations)):
            if networks is not None and refs is not None and not networks.family(missing):
                if not self._uses_hosts(variant, refs):
                    # Written with addresses of one family on purpose (a literal network, a set of them).
                    return expanded
                lacking.append(key)
        if not lacking or not self._fleet_has_family(missing):
            return expanded  # no address field to blame, or a single-stack fleet
        warnings = tuple(
            "%s.%s has no IPv%d address; the rule exists only in the IPv%d ruleset" % (rule.origin, key, missing, present)
            for key in lacking
        )
        return expanded[0], expanded[1], expanded[2] + warnings, expanded[3], expanded[4]

    def _uses_hosts(self, variant, refs):
        # type: (_PolicyVariant, Sequence[AddressRef]) -> bool
        """Whether addresses take (not only except) addresses of inventory hosts, directly or through sets."""
        for ref in refs:
            if ref.negated:
                continue
            if ref.kind in ("group", "host"):
                return True
            if ref.kind == "set" and self._set_uses_hosts(variant, ref.value):
                return True
        return False

    def _set_uses_hosts(self, variant, name):
        # type: (_PolicyVariant, str) -> bool
        """_uses_hosts of an address set, its included sets answered first (chains of sets may be long)."""
        known = variant.set_uses_hosts
        if name not in known:
            sets = variant.policy.address_sets
            for included in included_sets_in_order(sets, [name]):
                if included not in known:
                    known[included] = self._uses_hosts(variant, sets[included])
        return known.get(name, False)

    def _fleet_has_family(self, family):
        # type: (int) -> bool
        """Whether any inventory host has an address of this family (hosts without any are passed over).

        The hosts looked up already answer most fleets; only a fleet that is
        single-stack so far has every host looked up, once per compiler."""
        if self._fleet_families is None:
            if self._host_addresses.found_family(family):
                return True
            families = set()  # type: Set[int]
            for host in sorted(self._hosts):
                try:
                    addresses = self._host_addresses.of(host, "hostvars['%s']" % host)
                except PolicyError:
                    continue
                families.update(address.version for address in addresses)
                if len(families) == 2:
                    break
            self._fleet_families = families
        return family in self._fleet_families

    def unused_definition_warnings(self, hosts=None):
        # type: (Optional[Iterable[str]]) -> Tuple[str, ...]
        """Services of fleetwall_services and sets of fleetwall_addresses that nothing uses.

        A fleet-wide finding: the group rules, the address sets and the
        ``fleetwall_host_rules`` of ``hosts`` (default: every inventory host)
        are looked at, so pass every host whose rules count, never a sample.
        Hosts compiled already are not read again. Built-in services never
        count as unused. A host whose fleet variables do not parse is passed
        over (compiling it fails anyway).
        """
        names = sorted(self._hosts) if hosts is None else sorted(set(str(host) for host in hosts))
        variants = []  # type: List[_PolicyVariant]
        host_services = set()  # type: Set[str]
        host_sets = set()  # type: Set[str]
        for host in names:
            known = self._host_references.get(host)
            if known is None:
                host_vars = self._hostvars[host] if host in self._hostvars else None
                if not hasattr(host_vars, "get"):
                    continue
                try:
                    variant = self._fleet(host, host_vars)
                except PolicyError:
                    continue
                known = (variant,) + raw_references(host_vars.get("fleetwall_host_rules"))
            if not any(known[0] is seen for seen in variants):
                variants.append(known[0])
            host_services.update(known[1])
            host_sets.update(known[2])
        warnings = []  # type: List[str]
        for variant in variants:
            for warning in unused_definitions(variant.policy, variant.raw[0], host_services, host_sets):
                if warning not in warnings:
                    warnings.append(warning)
        return tuple(warnings)

    def _fixed_rules(self, family, chain, settings):
        # type: (int, str, HostSettings) -> Tuple[Tuple[Rule, ...], Tuple[Rule, ...]]
        """Baseline and default-policy rules, shared by every host with the same settings."""
        key = (
            family,
            chain,
            tuple(sorted(settings.baseline.items())),
            tuple(sorted(settings.default_policy.items())),
            settings.log_default,
        )
        cached = self._baselines.get(key)
        if cached is None:
            cached = (tuple(_baseline_rules(family, chain, settings)), tuple(_tail_rules(family, chain, settings)))
            self._baselines[key] = cached
        return cached

    def compile_hosts(self, hosts):
        # type: (Iterable[str]) -> Dict[str, HostRuleset]
        """Many hosts at once. The garbage collector is paused meanwhile: the
        shared rule tuples are long-lived, and rescanning them on every
        collection would cost as much as the compilation itself."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            return {host: self.compile_host(host) for host in hosts}
        finally:
            if enabled:
                gc.enable()


def set_threshold(host, host_vars):
    # type: (str, Mapping[str, Any]) -> int
    value = host_vars.get(SET_THRESHOLD_VARIABLE, DEFAULT_SET_THRESHOLD)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # as `-e fleetwall_set_threshold=16` gives it
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(
            [
                "hostvars['%s'].%s: must be a whole number of addresses, 0 or more (0 turns ipset sets off), got %r"
                % (host, SET_THRESHOLD_VARIABLE, value)
            ]
        )
    return value


def set_names_of(chains):
    # type: (Iterable[Chain]) -> Set[str]
    """The ipset sets the rules of some chains refer to."""
    names = set()  # type: Set[str]
    for chain in chains:
        for rule in chain.rules:
            if rule.source_set:
                names.add(rule.source_set)
            if rule.destination_set:
                names.add(rule.destination_set)
    return names


def compile_host_ruleset(hostvars, groups, host):
    # type: (Mapping[str, Mapping[str, Any]], Mapping[str, Sequence[str]], str) -> HostRuleset
    """One host's ruleset from Ansible's hostvars, groups and inventory_hostname."""
    return FleetCompiler(hostvars, groups).compile_host(host)


__all__ = ["FleetCompiler", "ParsedFleet", "compile_host_ruleset", "FamilyNetworks"]

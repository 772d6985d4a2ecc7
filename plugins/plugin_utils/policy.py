# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse and validate what operators write into a typed policy model.

Private to the fleetwall.iptables collection. Pure functions, no I/O. Every
problem is reported with the path of the offending value, e.g.
``fleetwall_policy.db.inbound[2].from[0]: unknown group 'wbe'``, and all
problems of one policy are reported together. Controller-side only (plugin_utils): the
filters import it; nothing on a target host does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Any, Collection, Dict, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import (
    AddressRef,
    included_sets_in_order,
    ipv4_mapped_warning,
    parse_network,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import (
    Problems,
    did_you_mean,
    item_path,
    type_name,
)
# The rule keys' aliases belong with the rule keys below; they are defined where canonical_keys() reads them.
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy_values import (  # noqa: F401  pylint: disable=unused-import
    KEY_ALIASES,
)
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy_values import (
    SAFE_TEXT,
    UNSAFE_CHARS,
    RateLimit,
    as_list,
    canonical_keys,
    check_keys,
    check_not_null,
    check_text,
    Findings,
    is_list,
    is_mapping,
    parse_max_connections,
    parse_protocol,
    parse_rate_limit,
    parse_services,
    parse_shorthand,
    printable,
    service_entry,
    warnings_of,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import ServiceEntry, SpecError
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.nat import NatEntry, parse_nat_entries

DIRECTIONS = ("inbound", "outbound", "forward")
ACTIONS = ("accept", "drop", "reject")
DEFAULT_POLICY = {"inbound": "drop", "outbound": "accept", "forward": "drop"}
BASELINE_DEFAULTS = {
    "loopback": True,
    "established": True,
    "drop_invalid": True,
    "antispoof": True,
    "icmpv6_essentials": True,
    "tcp_flag_sanity": False,
}
# Family-neutral names -> (IPv4, IPv6) --reject-with values.
REJECT_WITH = {
    "port-unreachable": ("icmp-port-unreachable", "icmp6-port-unreachable"),
    "admin-prohibited": ("icmp-admin-prohibited", "icmp6-adm-prohibited"),
    "host-unreachable": ("icmp-host-unreachable", "icmp6-addr-unreachable"),
    "net-unreachable": ("icmp-net-unreachable", "icmp6-no-route"),
    "tcp-reset": ("tcp-reset", "tcp-reset"),
}
RULE_KEYS = {
    "inbound": ("interface",),
    "outbound": ("interface",),
    "forward": ("in_interface", "out_interface", "published"),
}
COMMON_RULE_KEYS = (
    "service",
    "proto",
    "port",
    "source_port",
    "icmp_type",
    "from",
    "to",
    "action",
    "reject_with",
    "log",
    "comment",
    "priority",
    "limit",
    "max_connections",
)
# A rule needs one of these: without any, it would match every packet.
MATCH_KEYS = ("service", "proto", "from", "to", "interface", "in_interface", "out_interface")
DEFAULT_PRIORITY = 500

# The kernel's rule for names (no '/', ':' or spaces; not '.' or '..'), and
# iptables' limit of 15 characters, a trailing '+' included.
_INTERFACE = re.compile(r"^[A-Za-z0-9_.@-]{1,14}\+$|^[A-Za-z0-9_.@-]{1,15}$|^\+$")


class PolicyRule(NamedTuple):
    """One validated rule, with the path it came from."""

    origin: str
    direction: str
    entries: Tuple[ServiceEntry, ...]  # empty: every protocol
    services: Tuple[str, ...]
    sources: Optional[Tuple[AddressRef, ...]]  # None: any address
    destinations: Optional[Tuple[AddressRef, ...]]
    in_interface: Optional[str]
    out_interface: Optional[str]
    action: str
    reject_with: Optional[str]
    log_prefix: Optional[str]
    comment: Optional[str]
    priority: int
    warnings: Tuple[str, ...] = ()  # accepted, but perhaps not what was meant
    rate_limit: Optional[RateLimit] = None  # the rule matches only within this rate (accept) or beyond it (drop, reject)
    max_connections: Optional[int] = None  # likewise, per source address, for its tracked connections
    log_limit: Optional[RateLimit] = None  # at most this many log lines
    published: bool = False  # a forward rule for connections to Docker-published ports (Docker's DOCKER-USER chain)


class FleetPolicy(NamedTuple):
    """The fleet-wide definitions: services, address sets, group rules."""

    services: Dict[str, Tuple[ServiceEntry, ...]]
    address_sets: Dict[str, Tuple[AddressRef, ...]]
    group_rules: Dict[str, Tuple[PolicyRule, ...]]
    warnings: Tuple[str, ...] = ()  # about definitions (services), not about one rule
    group_nat: Mapping[str, Tuple[NatEntry, ...]] = {}  # only groups with a nat: list


class HostSettings(NamedTuple):
    default_policy: Dict[str, str]
    log_default: bool
    baseline: Dict[str, bool]
    host_rules: Tuple[PolicyRule, ...]
    host_nat: Tuple[NatEntry, ...] = ()


# ---------------------------------------------------------------- addresses


def _parse_address_item(value, path, problems, set_names, groups, hosts):
    # type: (Any, str, Problems, Collection[str], Collection[str], Collection[str]) -> Optional[AddressRef]
    if not isinstance(value, str):
        problems.add(
            path, "expected an address, CIDR, set name, group:NAME or host:NAME, got %s" % type_name(value)
        )
        return None
    text = value.strip()
    negated = text.startswith("!")
    if negated:
        text = text[1:].strip()
    if not text:
        problems.add(path, "empty address")
        return None
    kind, name = text.split(":", 1) if ":" in text else (text, "")
    if kind in ("group", "host", "set") and not name.strip():
        problems.add(path, "'%s' needs a name after the colon, e.g. %s:web" % (text, kind))
        return None
    if kind == "group" and name:
        if name not in groups:
            problems.add(path, "unknown group '%s'%s" % (name, did_you_mean(name, groups)))
            return None
        return AddressRef("group", name, negated)
    if kind == "host" and name:
        if name not in hosts:
            problems.add(path, "unknown host '%s'%s" % (name, did_you_mean(name, hosts)))
            return None
        return AddressRef("host", name, negated)
    if kind == "set" and name:
        text = name
    elif text == "any":
        return AddressRef("any", "any", negated)
    elif ":" in text or "/" in text or text[:1].isdigit():
        try:
            cidr = parse_network(text)
        except SpecError as exc:
            problems.add(path, str(exc))
            return None
        mapped = ipv4_mapped_warning(cidr)
        if mapped and isinstance(problems, Findings):
            problems.warn(path, mapped)
        return AddressRef("network", cidr, negated)
    if text in set_names:
        return AddressRef("set", text, negated)
    hint = did_you_mean(text, set_names)
    if not hint and text in groups:
        hint = " (did you mean 'group:%s'?)" % text
    elif not hint and text in hosts:
        hint = " (did you mean 'host:%s'?)" % text
    problems.add(path, "unknown address set '%s'%s" % (text, hint))
    return None


def parse_addresses_field(value, path, problems, set_names, groups, hosts):
    # type: (Any, str, Problems, Collection[str], Collection[str], Collection[str]) -> Optional[Tuple[AddressRef, ...]]
    items = as_list(value, path, problems, "address")
    if items is None:
        return None
    refs = [_parse_address_item(item, item_path_, problems, set_names, groups, hosts) for item_path_, item in items]
    if any(ref is None for ref in refs):
        return None
    if all(ref.negated for ref in refs if ref is not None):
        # Only exceptions: they are cut out of "any".
        refs.insert(0, AddressRef("any", "any", False))
    return tuple(ref for ref in refs if ref is not None)


def parse_address_sets(raw, problems, groups, hosts):
    # type: (Any, Problems, Collection[str], Collection[str]) -> Dict[str, Tuple[AddressRef, ...]]
    path = "fleetwall_addresses"
    if raw is None:
        return {}
    if not is_mapping(raw):
        problems.add(path, "must be a mapping of set name to addresses, got %s" % type_name(raw))
        return {}
    names = set()  # type: Set[str]
    for name in raw:
        set_path = "%s.%s" % (path, name)
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", name) or name == "any":
            problems.add(
                set_path, "set names start with a letter or '_' and use letters, digits, '_', '.' and '-' ('any' is taken)"
            )
            continue
        names.add(name)
    sets = {}  # type: Dict[str, Tuple[AddressRef, ...]]
    for name in sorted(names):
        refs = parse_addresses_field(raw[name], "%s.%s" % (path, name), problems, names, groups, hosts)
        if refs is not None:
            sets[name] = refs
    _report_set_loops(sets, problems)
    return sets


def _report_set_loops(sets, problems):
    # type: (Dict[str, Tuple[AddressRef, ...]], Problems) -> None
    reported = set()  # type: Set[str]

    def report(loop):
        # type: (List[str]) -> None
        key = min(loop[:-1])
        if key not in reported:
            reported.add(key)
            problems.add(
                "fleetwall_addresses.%s" % loop[0], "address sets include each other in a loop: %s" % " -> ".join(loop)
            )

    included_sets_in_order(sets, sorted(sets), report)


# ---------------------------------------------------------------- rules


def _parse_interface(value, path, problems):
    # type: (Any, str, Problems) -> Optional[str]
    if not isinstance(value, str):
        problems.add(path, "interface must be a string, got %s" % type_name(value))
        return None
    name = value.strip()
    bare = name[1:].strip() if name.startswith("!") else name
    if bare == "+" and name.startswith("!") and isinstance(problems, Findings):
        problems.warn(path, "'!+' matches no interface (every interface matches '+'), so the rule never matches")
    peer = re.match(r"^([^@]+)@(?:if[0-9]+|NONE)$", bare)
    if peer:
        problems.add(
            path,
            "%r is how 'ip link' shows interface %r with its peer; iptables sees %r" % (value, peer.group(1), peer.group(1)),
        )
        return None
    if ":" in bare and _INTERFACE.match(bare.split(":", 1)[0]):
        problems.add(
            path,
            "%r is an address label, not an interface: iptables sees its packets on %r"
            % (value, bare.split(":", 1)[0]),
        )
        return None
    if not _INTERFACE.match(bare) or bare in (".", ".."):
        problems.add(
            path,
            "invalid interface name %r: at most 15 characters in all: letters, digits or _.@-, optionally ending in "
            "'+' (prefix match), optionally preceded by '!' (negation)" % (value,),
        )
        return None
    return ("!" + bare) if name.startswith("!") else bare


def _parse_log(value, path, problems):
    # type: (Any, str, Problems) -> Tuple[Optional[str], Optional[RateLimit]]
    """(prefix, limit): prefix '' means 'log with the generated prefix'; None means no logging."""
    if value is None or value is False:
        return None, None
    if value is True:
        return "", None
    if not is_mapping(value):
        return check_text(value, path, problems, "log prefix", 28), None
    check_keys(value, ("prefix", "limit"), path, problems)
    prefix = check_text(value["prefix"], path + ".prefix", problems, "log prefix", 28) if "prefix" in value else ""
    limit = parse_rate_limit(value["limit"], path + ".limit", problems, per_source_allowed=False) if "limit" in value else None
    return prefix, limit


def _rule_rates(data, action, path, problems):
    # type: (Mapping[str, Any], str, str, Problems) -> Tuple[Optional[RateLimit], Optional[int]]
    """(limit, max_connections) of a rule."""
    limit = parse_rate_limit(data["limit"], path + ".limit", problems) if "limit" in data else None
    if limit is not None and not limit.per_source and action != "accept":
        problems.add(
            path + ".limit",
            "a %s rule's limit needs per: source: iptables' limit match counts what is within a rate, and a %s rule "
            "drops what exceeds it (an accept rule takes a limit per rule or per source)" % (action, action),
        )
        limit = None
    connections = None
    if "max_connections" in data:
        connections = parse_max_connections(data["max_connections"], path + ".max_connections", problems)
    return limit, connections


def _check_rule_keys(data, direction, path, problems):
    # type: (Mapping[Any, Any], str, str, Problems) -> None
    allowed = COMMON_RULE_KEYS + RULE_KEYS[direction]
    for key in data:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            if key in ("in_interface", "out_interface") and direction != "forward":
                hint = " (%s rules take 'interface': the %s interface)" % (
                    direction,
                    "incoming" if direction == "inbound" else "outgoing",
                )
            elif key == "interface" and direction == "forward":
                hint = " (forward rules take 'in_interface' and 'out_interface')"
            problems.add("%s.%s" % (path, key), "unknown key '%s'%s" % (key, hint))


def _rule_services(data, path, problems, services):
    # type: (Mapping[str, Any], str, Problems, Mapping[str, Optional[Tuple[ServiceEntry, ...]]]) -> Tuple[List[ServiceEntry], List[str], bool]
    """(service entries, service names, refused): refused when a service used has problems of its own."""
    entries = []  # type: List[ServiceEntry]
    service_names = []  # type: List[str]
    refused = False
    for service_path, name in as_list(data["service"], path + ".service", problems, "service name") or ():
        if not isinstance(name, str):
            problems.add(service_path, "a service name must be a string, got %s" % type_name(name))
        elif name not in services and "/" in name:
            entry = parse_shorthand(name, service_path, problems)
            if entry is not None:
                service_names.append(name)
                entries.append(entry)
        elif name not in services:
            problems.add(service_path, "unknown service '%s'%s" % (name, did_you_mean(name, services)))
        elif services[name] is None:
            refused = True  # a defined service with problems of its own, reported there
        else:
            service_names.append(name)
            entries.extend(services[name] or ())
    return entries, service_names, refused


def _rule_protocol(data, path, problems):
    # type: (Mapping[str, Any], str, Problems) -> Optional[ServiceEntry]
    """The rule's own proto/port/source_port/icmp_type, if it has them."""
    if "proto" not in data:
        for key in ("port", "source_port", "icmp_type"):
            if key in data:
                problems.add("%s.%s" % (path, key), "'%s' needs 'proto' in the same rule (or use a service)" % key)
        return None
    protocol = parse_protocol(data["proto"], path + ".proto", problems)
    if protocol is None or not check_not_null(data, ("port", "source_port", "icmp_type"), path, problems):
        return None
    return service_entry(protocol, data.get("port"), data.get("source_port"), data.get("icmp_type"), path, problems)


def _rule_interfaces(data, direction, path, problems):
    # type: (Mapping[str, Any], str, str, Problems) -> Tuple[Optional[str], Optional[str]]
    """(incoming, outgoing) interface of a rule."""
    if direction != "forward":
        parsed = _parse_interface(data["interface"], path + ".interface", problems) if "interface" in data else None
        return (parsed, None) if direction == "inbound" else (None, parsed)
    in_interface = out_interface = None  # type: Optional[str]
    if "in_interface" in data:
        in_interface = _parse_interface(data["in_interface"], path + ".in_interface", problems)
    if "out_interface" in data:
        out_interface = _parse_interface(data["out_interface"], path + ".out_interface", problems)
    return in_interface, out_interface


def _rule_action(data, entries, path, problems):
    # type: (Mapping[str, Any], Sequence[ServiceEntry], str, Problems) -> Tuple[str, Optional[str]]
    """(action, reject_with)."""
    action = "accept"
    if "action" in data:
        value = data["action"]
        if not isinstance(value, str) or value.lower() not in ACTIONS:
            problems.add(
                path + ".action",
                "action must be one of %s, got %r%s"
                % (", ".join(ACTIONS), value, did_you_mean(str(value).lower(), ACTIONS)),
            )
        else:
            action = value.lower()
    if "reject_with" not in data:
        return action, None
    value = data["reject_with"]
    if action != "reject":
        problems.add(path + ".reject_with", "reject_with only applies to action: reject")
    elif not isinstance(value, str) or value not in REJECT_WITH:
        problems.add(
            path + ".reject_with",
            "reject_with must be one of %s, got %r%s"
            % (", ".join(sorted(REJECT_WITH)), value, did_you_mean(value, REJECT_WITH) if isinstance(value, str) else ""),
        )
    elif value == "tcp-reset" and (not entries or any(entry.protocol != "tcp" for entry in entries)):
        problems.add(path + ".reject_with", "tcp-reset needs a rule that matches protocol tcp only")
    else:
        return action, value
    return action, None


def _rule_priority(data, path, problems):
    # type: (Mapping[str, Any], str, Problems) -> int
    value = data.get("priority", DEFAULT_PRIORITY)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        problems.add(path + ".priority", "priority must be an integer from 0 to 1000, got %r" % (value,))
        return DEFAULT_PRIORITY
    return value


def parse_rule(raw, path, direction, problems, services, set_names, groups, hosts):
    # type: (Any, str, str, Problems, Mapping[str, Optional[Tuple[ServiceEntry, ...]]], Collection[str], Collection[str], Collection[str]) -> Optional[PolicyRule]  # noqa: E501
    if not is_mapping(raw):
        problems.add(path, "a rule must be a mapping, got %s" % type_name(raw))
        return None
    start = len(problems.messages)
    first_warning = len(warnings_of(problems))
    data = canonical_keys(raw, path, problems)
    _check_rule_keys(data, direction, path, problems)
    entries, service_names, refused = _rule_services(data, path, problems, services) if "service" in data else ([], [], False)
    own_entry = _rule_protocol(data, path, problems)
    if own_entry is not None:
        entries.append(own_entry)
    sources = destinations = None  # type: Optional[Tuple[AddressRef, ...]]
    if "from" in data:
        sources = parse_addresses_field(data["from"], path + ".from", problems, set_names, groups, hosts)
    if "to" in data:
        destinations = parse_addresses_field(data["to"], path + ".to", problems, set_names, groups, hosts)
    in_interface, out_interface = _rule_interfaces(data, direction, path, problems)
    action, reject_with = _rule_action(data, entries, path, problems)
    log_prefix, log_limit = _parse_log(data.get("log"), path + ".log", problems)
    rate_limit, max_connections = _rule_rates(data, action, path, problems)
    if log_limit is not None and rate_limit is not None and not rate_limit.per_source:
        problems.add(path + ".log.limit", "the rule's own limit (per rule) already caps what it logs; leave this out")
    comment = check_text(data["comment"], path + ".comment", problems, "comment", 200) if "comment" in data else None
    priority = _rule_priority(data, path, problems)
    if not isinstance(data.get("published", False), bool):
        problems.add(path + ".published", "published must be true or false, got %r" % (data["published"],))
    if len(problems.messages) == start and not any(key in data for key in MATCH_KEYS):
        problems.add(
            path,
            "this rule names no service, proto, from, to or interface, so it would match every packet; "
            "if that is meant, say so with 'from: any'",
        )
    if refused or len(problems.messages) != start:
        return None
    rule_warnings = warnings_of(problems)[first_warning:]
    del warnings_of(problems)[first_warning:]
    return PolicyRule(
        origin=path,
        direction=direction,
        entries=tuple(entries),
        services=tuple(service_names),
        sources=sources,
        destinations=destinations,
        in_interface=in_interface,
        out_interface=out_interface,
        action=action,
        reject_with=reject_with,
        log_prefix=log_prefix,
        comment=comment,
        priority=priority,
        warnings=tuple(rule_warnings),
        rate_limit=rate_limit,
        max_connections=max_connections,
        log_limit=log_limit,
        published=data.get("published") is True,
    )


def parse_rule_lists(raw, path, problems, services, set_names, groups, hosts):
    # type: (Any, str, Problems, Mapping[str, Tuple[ServiceEntry, ...]], Collection[str], Collection[str], Collection[str]) -> Tuple[PolicyRule, ...]  # noqa: E501
    """{inbound: [...], outbound: [...], forward: [...]} -> rules in that order."""
    if raw is None:
        return ()
    if not is_mapping(raw):
        problems.add(path, "must be a mapping with inbound, outbound and/or forward rule lists, got %s" % type_name(raw))
        return ()
    check_keys(raw, DIRECTIONS + ("nat",), path, problems)
    rules = []  # type: List[PolicyRule]
    for direction in DIRECTIONS:
        if direction not in raw or raw[direction] is None:
            continue
        direction_path = "%s.%s" % (path, direction)
        value = raw[direction]
        if not is_list(value):
            problems.add(direction_path, "must be a list of rules, got %s" % type_name(value))
            continue
        for index, item in enumerate(value):
            rule = parse_rule(
                item, item_path(direction_path, index), direction, problems, services, set_names, groups, hosts
            )
            if rule is not None:
                rules.append(rule)
    return tuple(rules)


def parse_nat_list(raw, path, problems, set_names, groups, hosts):
    # type: (Any, str, Problems, Collection[str], Collection[str], Collection[str]) -> Tuple[NatEntry, ...]
    """The nat: list of a group's or a host's rules (plugin_utils/nat.py), read with the rules' own readers."""
    if not is_mapping(raw) or raw.get("nat") is None:
        return ()
    return parse_nat_entries(
        raw["nat"],
        path + ".nat",
        problems,
        lambda value, where: parse_addresses_field(value, where, problems, set_names, groups, hosts),
        lambda value, where: _parse_interface(value, where, problems),
        lambda value, where: check_text(value, where, problems, "comment", 200),
    )


def parse_fleet_policy(raw_services, raw_addresses, raw_policy, groups, hosts):
    # type: (Any, Any, Any, Collection[str], Collection[str]) -> FleetPolicy
    """Validate the fleet-wide variables; raise PolicyError listing every problem."""
    problems = Findings()
    services = parse_services(raw_services, problems)
    address_sets = parse_address_sets(raw_addresses, problems, groups, hosts)
    set_names = set(address_sets)
    if is_mapping(raw_addresses):
        # A set with its own problems still counts as defined, so references
        # to it do not add a second, misleading "unknown set" problem.
        set_names.update(name for name in raw_addresses if isinstance(name, str))
    # Likewise a service with problems: rules using it are refused without a second problem.
    usable_services = dict(services)  # type: Dict[str, Optional[Tuple[ServiceEntry, ...]]]
    if is_mapping(raw_services):
        usable_services.update((name, None) for name in raw_services if isinstance(name, str) and name not in services)
    group_rules = {}  # type: Dict[str, Tuple[PolicyRule, ...]]
    group_nat = {}  # type: Dict[str, Tuple[NatEntry, ...]]
    if raw_policy is not None and not is_mapping(raw_policy):
        problems.add("fleetwall_policy", "must be a mapping of inventory group to rules, got %s" % type_name(raw_policy))
    elif raw_policy is not None:
        for group in sorted(raw_policy, key=str):
            group_path = "fleetwall_policy.%s" % printable(group)
            if group not in groups:
                problems.add(group_path, "unknown group '%s'%s" % (printable(group), did_you_mean(str(group), groups)))
                continue
            if not SAFE_TEXT.match(group) or any(char in group for char in UNSAFE_CHARS):
                problems.add(
                    group_path,
                    "a group with rules names them in iptables comments, so its name may hold printable ASCII "
                    "only, without quotes or backslashes",
                )
                continue
            group_rules[group] = parse_rule_lists(
                raw_policy[group], group_path, problems, usable_services, set_names, groups, hosts
            )
            nat = parse_nat_list(raw_policy[group], group_path, problems, set_names, groups, hosts)
            if nat:
                group_nat[group] = nat
    problems.raise_if_any()
    return FleetPolicy(
        services=services, address_sets=address_sets, group_rules=group_rules, warnings=tuple(problems.warnings),
        group_nat=group_nat,
    )


def parse_host_settings(host, raw_default_policy, raw_baseline, raw_host_rules, fleet, groups, hosts):
    # type: (str, Any, Any, Any, FleetPolicy, Collection[str], Collection[str]) -> HostSettings
    """One host's own variables; raise PolicyError listing every problem."""
    problems = Findings()
    prefix = "hostvars['%s']." % host
    default_policy = dict(DEFAULT_POLICY)
    log_default = False
    if raw_default_policy is not None:
        path = prefix + "fleetwall_default_policy"
        if not is_mapping(raw_default_policy):
            problems.add(path, "must be a mapping like {inbound: drop, outbound: accept}, got %s" % type_name(raw_default_policy))
        else:
            check_keys(raw_default_policy, DIRECTIONS + ("log",), path, problems)
            for direction in DIRECTIONS:
                if direction in raw_default_policy:
                    value = raw_default_policy[direction]
                    if not isinstance(value, str) or value.lower() not in ACTIONS:
                        problems.add(
                            "%s.%s" % (path, direction),
                            "default policy must be one of %s, got %r" % (", ".join(ACTIONS), value),
                        )
                    else:
                        default_policy[direction] = value.lower()
            if "log" in raw_default_policy:
                if not isinstance(raw_default_policy["log"], bool):
                    problems.add(path + ".log", "log must be true or false, got %r" % (raw_default_policy["log"],))
                else:
                    log_default = raw_default_policy["log"]
    baseline = dict(BASELINE_DEFAULTS)
    if raw_baseline is not None:
        path = prefix + "fleetwall_baseline"
        if isinstance(raw_baseline, bool):
            baseline = {key: raw_baseline and value for key, value in BASELINE_DEFAULTS.items()}
        elif not is_mapping(raw_baseline):
            problems.add(path, "must be true, false or a mapping of baseline item to true/false, got %s" % type_name(raw_baseline))
        else:
            check_keys(raw_baseline, tuple(BASELINE_DEFAULTS), path, problems)
            for key in BASELINE_DEFAULTS:
                if key in raw_baseline:
                    if not isinstance(raw_baseline[key], bool):
                        problems.add("%s.%s" % (path, key), "must be true or false, got %r" % (raw_baseline[key],))
                    else:
                        baseline[key] = raw_baseline[key]
    host_rules = parse_rule_lists(
        raw_host_rules,
        prefix + "fleetwall_host_rules",
        problems,
        fleet.services,
        set(fleet.address_sets),
        groups,
        hosts,
    )
    host_nat = parse_nat_list(
        raw_host_rules, prefix + "fleetwall_host_rules", problems, set(fleet.address_sets), groups, hosts
    )
    problems.raise_if_any()
    return HostSettings(
        default_policy=default_policy, log_default=log_default, baseline=baseline, host_rules=host_rules, host_nat=host_nat
    )

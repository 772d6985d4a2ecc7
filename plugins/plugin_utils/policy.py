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
from typing import Any, Collection, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import (
    AddressRef,
    parse_network,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import (
    Problems,
    did_you_mean,
    item_path,
    type_name,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import (
    BUILTIN_SERVICES,
    PORT_PROTOCOLS,
    PROTOCOLS,
    PortRange,
    ServiceEntry,
    SpecError,
    merge_port_ranges,
    parse_icmp_type,
    parse_port,
    parse_protocol,
)

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
    "forward": ("in_interface", "out_interface"),
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
)
KEY_ALIASES = {"services": "service", "protocol": "proto", "ports": "port", "source_ports": "source_port"}
DEFAULT_PRIORITY = 500

# The kernel's rule for names (no '/', ':' or spaces; not '.' or '..'), and
# iptables' limit of 15 characters, a trailing '+' included.
_INTERFACE = re.compile(r"^[A-Za-z0-9_.@-]{1,14}\+$|^[A-Za-z0-9_.@-]{1,15}$|^\+$")
_SAFE_TEXT = re.compile(r"^[\x20-\x7e]*$")
_UNSAFE_CHARS = "\"'\\"


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


class FleetPolicy(NamedTuple):
    """The fleet-wide definitions: services, address sets, group rules."""

    services: Dict[str, Tuple[ServiceEntry, ...]]
    address_sets: Dict[str, Tuple[AddressRef, ...]]
    group_rules: Dict[str, Tuple[PolicyRule, ...]]


class HostSettings(NamedTuple):
    default_policy: Dict[str, str]
    log_default: bool
    baseline: Dict[str, bool]
    host_rules: Tuple[PolicyRule, ...]


def _is_mapping(value):
    # type: (Any) -> bool
    return isinstance(value, Mapping) or (hasattr(value, "keys") and hasattr(value, "__getitem__"))


def _is_list(value):
    # type: (Any) -> bool
    return isinstance(value, (list, tuple))


def _as_list(value, path, problems, what, mapping_is_item=False):
    # type: (Any, str, Problems, str, bool) -> Optional[List[Tuple[str, Any]]]
    """A scalar (or a mapping, if that is an item) or a list -> [(path, item)]; None after reporting a problem."""
    if _is_list(value):
        if not value:
            problems.add(path, "empty list; give at least one %s" % what)
            return None
        return [(item_path(path, index), item) for index, item in enumerate(value)]
    if value is None or (_is_mapping(value) and not mapping_is_item):
        article = "an" if what[:1] in "aeiou" else "a"
        problems.add(path, "expected %s %s or a list of them, got %s" % (article, what, type_name(value)))
        return None
    return [(path, value)]


def _canonical_keys(raw, path, problems):
    # type: (Mapping[Any, Any], str, Problems) -> Dict[Any, Any]
    """Aliases (services, ports, ...) -> canonical keys; a key given under two spellings is a problem."""
    data = {}  # type: Dict[Any, Any]
    spelling = {}  # type: Dict[Any, Any]
    for key, value in raw.items():
        canonical = KEY_ALIASES.get(key, key)
        if canonical in data:
            problems.add(
                "%s.%s" % (path, key),
                "'%s' is given twice, as '%s' and as '%s'; keep one" % (canonical, spelling[canonical], key),
            )
        data[canonical] = value
        spelling[canonical] = key
    return data


def _check_not_null(data, keys, path, problems):
    # type: (Mapping[Any, Any], Collection[str], str, Problems) -> bool
    """port: ~ is a slip, not 'every port': leaving the key out says that."""
    ok = True
    for key in keys:
        if key in data and data[key] is None:
            problems.add("%s.%s" % (path, key), "'%s' has no value; give one or leave the key out" % key)
            ok = False
    return ok


def _check_keys(data, allowed, path, problems):
    # type: (Mapping[str, Any], Collection[str], str, Problems) -> None
    for key in data:
        if key not in allowed:
            problems.add(
                "%s.%s" % (path, key),
                "unknown key '%s'%s; allowed: %s" % (key, did_you_mean(str(key), allowed), ", ".join(allowed)),
            )


def _check_text(value, path, problems, what, max_length):
    # type: (Any, str, Problems, str, int) -> Optional[str]
    if not isinstance(value, str):
        problems.add(path, "%s must be a string, got %s" % (what, type_name(value)))
        return None
    if not value.strip():
        problems.add(path, "%s must not be empty" % what)
        return None
    if len(value) > max_length:
        problems.add(path, "%s is %d characters long; at most %d fit" % (what, len(value), max_length))
        return None
    if not _SAFE_TEXT.match(value) or any(char in value for char in _UNSAFE_CHARS):
        problems.add(path, "%s may hold printable ASCII only, without quotes or backslashes" % what)
        return None
    return value


# ---------------------------------------------------------------- services


def _parse_ports(value, path, problems):
    # type: (Any, str, Problems) -> Optional[Tuple[PortRange, ...]]
    items = _as_list(value, path, problems, "port or port range")
    if items is None:
        return None
    ranges = []  # type: List[PortRange]
    for item_path_, item in items:
        if isinstance(item, str) and "," in item:
            problems.add(item_path_, "write several ports as a list, not %r" % (item,))
            continue
        try:
            ranges.append(parse_port(item))
        except SpecError as exc:
            problems.add(item_path_, str(exc))
    if len(ranges) != len(items):
        return None
    return merge_port_ranges(ranges)


def _parse_protocol(value, path, problems):
    # type: (Any, str, Problems) -> Optional[str]
    try:
        return parse_protocol(value)
    except SpecError as exc:
        problems.add(path, str(exc))
        return None


def _entry(protocol, ports, source_ports, icmp_type, path, problems):
    # type: (str, Any, Any, Any, str, Problems) -> Optional[ServiceEntry]
    """Validate the combination of protocol, ports and ICMP type."""
    ok = True
    parsed_ports = ()  # type: Tuple[PortRange, ...]
    parsed_source_ports = ()  # type: Tuple[PortRange, ...]
    canonical_icmp = None  # type: Optional[str]
    if ports is not None or source_ports is not None:
        if protocol not in PORT_PROTOCOLS:
            problems.add(path, "protocol %s takes no port (only %s do)" % (protocol, ", ".join(PORT_PROTOCOLS)))
            return None
    if ports is not None:
        result = _parse_ports(ports, path + ".port", problems)
        ok = ok and result is not None
        parsed_ports = result or ()
    if source_ports is not None:
        result = _parse_ports(source_ports, path + ".source_port", problems)
        ok = ok and result is not None
        parsed_source_ports = result or ()
    if icmp_type is not None:
        if protocol not in ("icmp", "ipv6-icmp"):
            problems.add(path + ".icmp_type", "icmp_type needs protocol icmp or icmpv6, not %s" % protocol)
            return None
        try:
            canonical_icmp = parse_icmp_type(protocol, icmp_type)
        except SpecError as exc:
            problems.add(path + ".icmp_type", str(exc))
            ok = False
    if not ok:
        return None
    return ServiceEntry(protocol, parsed_ports, parsed_source_ports, canonical_icmp)


def _parse_shorthand(text, path, problems):
    # type: (str, str, Problems) -> Optional[ServiceEntry]
    """'tcp/22', 'udp/5000-5010', 'icmp/echo-request', 'gre'."""
    protocol_text, slash, detail = text.partition("/")
    known = protocol_text.strip().lower() in PROTOCOLS
    if not known:
        problems.add(
            path,
            "unknown protocol '%s' in %r%s; a service entry is PROTOCOL[/PORT] (e.g. tcp/8080) or a mapping; "
            "to combine services, list them in a rule's service field"
            % (protocol_text, text, did_you_mean(protocol_text.strip().lower(), PROTOCOLS)),
        )
        return None
    protocol = PROTOCOLS[protocol_text.strip().lower()]
    if slash and not detail.strip():
        problems.add(path, "nothing after the '/' in %r; write %s alone to match all of it" % (text, protocol_text))
        return None
    if not detail:
        return ServiceEntry(protocol)
    if protocol in ("icmp", "ipv6-icmp"):
        return _entry(protocol, None, None, detail, path, problems)
    if protocol not in PORT_PROTOCOLS:
        problems.add(path, "protocol %s takes no port (only %s do)" % (protocol, ", ".join(PORT_PROTOCOLS)))
        return None
    return _entry(protocol, detail.split(","), None, None, path, problems)


def _parse_service_entry(value, path, problems):
    # type: (Any, str, Problems) -> Optional[ServiceEntry]
    if isinstance(value, str):
        return _parse_shorthand(value, path, problems)
    if not _is_mapping(value):
        problems.add(path, "a service entry is a string like tcp/8080 or a mapping, got %s" % type_name(value))
        return None
    data = _canonical_keys(value, path, problems)
    _check_keys(data, ("proto", "port", "source_port", "icmp_type"), path, problems)
    if "proto" not in data:
        problems.add(path, "a service entry needs 'proto'")
        return None
    protocol = _parse_protocol(data["proto"], path + ".proto", problems)
    if protocol is None or not _check_not_null(data, ("port", "source_port", "icmp_type"), path, problems):
        return None
    return _entry(protocol, data.get("port"), data.get("source_port"), data.get("icmp_type"), path, problems)


def parse_services(raw, problems):
    # type: (Any, Problems) -> Dict[str, Tuple[ServiceEntry, ...]]
    """The built-in catalog extended (or overridden) by fleetwall_services."""
    services = dict(BUILTIN_SERVICES)
    if raw is None:
        return services
    path = "fleetwall_services"
    if not _is_mapping(raw):
        problems.add(path, "must be a mapping of service name to definition, got %s" % type_name(raw))
        return services
    for name in sorted(raw, key=str):
        service_path = "%s.%s" % (path, name)
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]+$", name):
            problems.add(service_path, "service names may use letters, digits, '_', '.' and '-' only")
            continue
        items = _as_list(raw[name], service_path, problems, "service entry", mapping_is_item=True)
        if items is None:
            continue
        entries = [_parse_service_entry(item, item_path_, problems) for item_path_, item in items]
        if all(entry is not None for entry in entries):
            services[name] = tuple(entry for entry in entries if entry is not None)
    return services


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
            return AddressRef("network", parse_network(text), negated)
        except SpecError as exc:
            problems.add(path, str(exc))
            return None
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
    items = _as_list(value, path, problems, "address")
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
    if not _is_mapping(raw):
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

    def visit(name, trail):
        # type: (str, List[str]) -> None
        if name in trail:
            loop = trail[trail.index(name):] + [name]
            key = min(loop[:-1])
            if key not in reported:
                reported.add(key)
                problems.add(
                    "fleetwall_addresses.%s" % loop[0],
                    "address sets include each other in a loop: %s" % " -> ".join(loop),
                )
            return
        for ref in sets.get(name, ()):
            if ref.kind == "set":
                visit(ref.value, trail + [name])

    for name in sorted(sets):
        visit(name, [])


# ---------------------------------------------------------------- rules


def _parse_interface(value, path, problems):
    # type: (Any, str, Problems) -> Optional[str]
    if not isinstance(value, str):
        problems.add(path, "interface must be a string, got %s" % type_name(value))
        return None
    name = value.strip()
    bare = name[1:].strip() if name.startswith("!") else name
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
    # type: (Any, str, Problems) -> Optional[str]
    """'' means 'log with the generated prefix'; None means no logging."""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    prefix = _check_text(value, path, problems, "log prefix", 28)
    return prefix


def parse_rule(raw, path, direction, problems, services, set_names, groups, hosts):
    # type: (Any, str, str, Problems, Mapping[str, Tuple[ServiceEntry, ...]], Collection[str], Collection[str], Collection[str]) -> Optional[PolicyRule]  # noqa: E501
    if not _is_mapping(raw):
        problems.add(path, "a rule must be a mapping, got %s" % type_name(raw))
        return None
    start = len(problems.messages)
    refused = False
    data = _canonical_keys(raw, path, problems)
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

    entries = []  # type: List[ServiceEntry]
    service_names = []  # type: List[str]
    if "service" in data:
        for service_path, name in _as_list(data["service"], path + ".service", problems, "service name") or ():
            if not isinstance(name, str):
                problems.add(service_path, "a service name must be a string, got %s" % type_name(name))
            elif name not in services and "/" in name:
                entry = _parse_shorthand(name, service_path, problems)
                if entry is not None:
                    service_names.append(name)
                    entries.append(entry)
            elif name not in services:
                problems.add(service_path, "unknown service '%s'%s" % (name, did_you_mean(name, services)))
            elif services[name] is None:
                refused = True  # a defined service with problems of its own, reported there
            else:
                service_names.append(name)
                entries.extend(services[name])
    if "proto" in data:
        protocol = _parse_protocol(data["proto"], path + ".proto", problems)
        if protocol is not None and _check_not_null(data, ("port", "source_port", "icmp_type"), path, problems):
            entry = _entry(protocol, data.get("port"), data.get("source_port"), data.get("icmp_type"), path, problems)
            if entry is not None:
                entries.append(entry)
    else:
        for key in ("port", "source_port", "icmp_type"):
            if key in data:
                problems.add("%s.%s" % (path, key), "'%s' needs 'proto' in the same rule (or use a service)" % key)

    sources = destinations = None  # type: Optional[Tuple[AddressRef, ...]]
    if "from" in data:
        sources = parse_addresses_field(data["from"], path + ".from", problems, set_names, groups, hosts)
    if "to" in data:
        destinations = parse_addresses_field(data["to"], path + ".to", problems, set_names, groups, hosts)

    in_interface = out_interface = None  # type: Optional[str]
    if "interface" in data and direction != "forward":
        parsed = _parse_interface(data["interface"], path + ".interface", problems)
        if direction == "inbound":
            in_interface = parsed
        else:
            out_interface = parsed
    if "in_interface" in data and direction == "forward":
        in_interface = _parse_interface(data["in_interface"], path + ".in_interface", problems)
    if "out_interface" in data and direction == "forward":
        out_interface = _parse_interface(data["out_interface"], path + ".out_interface", problems)

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
    reject_with = None  # type: Optional[str]
    if "reject_with" in data:
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
            reject_with = value

    log_prefix = _parse_log(data.get("log"), path + ".log", problems)
    comment = None  # type: Optional[str]
    if "comment" in data:
        comment = _check_text(data["comment"], path + ".comment", problems, "comment", 200)
    priority = DEFAULT_PRIORITY
    if "priority" in data:
        value = data["priority"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
            problems.add(path + ".priority", "priority must be an integer from 0 to 1000, got %r" % (value,))
        else:
            priority = value

    if refused or len(problems.messages) != start:
        return None
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
    )


def parse_rule_lists(raw, path, problems, services, set_names, groups, hosts):
    # type: (Any, str, Problems, Mapping[str, Tuple[ServiceEntry, ...]], Collection[str], Collection[str], Collection[str]) -> Tuple[PolicyRule, ...]  # noqa: E501
    """{inbound: [...], outbound: [...], forward: [...]} -> rules in that order."""
    if raw is None:
        return ()
    if not _is_mapping(raw):
        problems.add(path, "must be a mapping with inbound, outbound and/or forward rule lists, got %s" % type_name(raw))
        return ()
    _check_keys(raw, DIRECTIONS, path, problems)
    rules = []  # type: List[PolicyRule]
    for direction in DIRECTIONS:
        if direction not in raw or raw[direction] is None:
            continue
        direction_path = "%s.%s" % (path, direction)
        value = raw[direction]
        if not _is_list(value):
            problems.add(direction_path, "must be a list of rules, got %s" % type_name(value))
            continue
        for index, item in enumerate(value):
            rule = parse_rule(
                item, item_path(direction_path, index), direction, problems, services, set_names, groups, hosts
            )
            if rule is not None:
                rules.append(rule)
    return tuple(rules)


def parse_fleet_policy(raw_services, raw_addresses, raw_policy, groups, hosts):
    # type: (Any, Any, Any, Collection[str], Collection[str]) -> FleetPolicy
    """Validate the fleet-wide variables; raise PolicyError listing every problem."""
    problems = Problems()
    services = parse_services(raw_services, problems)
    address_sets = parse_address_sets(raw_addresses, problems, groups, hosts)
    set_names = set(address_sets)
    if _is_mapping(raw_addresses):
        # A set with its own problems still counts as defined, so references
        # to it do not add a second, misleading "unknown set" problem.
        set_names.update(name for name in raw_addresses if isinstance(name, str))
    # Likewise a service with problems: rules using it are refused without a second problem.
    usable_services = dict(services)  # type: Dict[str, Optional[Tuple[ServiceEntry, ...]]]
    if _is_mapping(raw_services):
        usable_services.update((name, None) for name in raw_services if isinstance(name, str) and name not in services)
    group_rules = {}  # type: Dict[str, Tuple[PolicyRule, ...]]
    if raw_policy is not None and not _is_mapping(raw_policy):
        problems.add("fleetwall_policy", "must be a mapping of inventory group to rules, got %s" % type_name(raw_policy))
    elif raw_policy is not None:
        for group in sorted(raw_policy, key=str):
            group_path = "fleetwall_policy.%s" % group
            if group not in groups:
                problems.add(group_path, "unknown group '%s'%s" % (group, did_you_mean(str(group), groups)))
                continue
            group_rules[group] = parse_rule_lists(
                raw_policy[group], group_path, problems, usable_services, set_names, groups, hosts
            )
    problems.raise_if_any()
    return FleetPolicy(services=services, address_sets=address_sets, group_rules=group_rules)


def parse_host_settings(host, raw_default_policy, raw_baseline, raw_host_rules, fleet, groups, hosts):
    # type: (str, Any, Any, Any, FleetPolicy, Collection[str], Collection[str]) -> HostSettings
    """One host's own variables; raise PolicyError listing every problem."""
    problems = Problems()
    prefix = "hostvars['%s']." % host
    default_policy = dict(DEFAULT_POLICY)
    log_default = False
    if raw_default_policy is not None:
        path = prefix + "fleetwall_default_policy"
        if not _is_mapping(raw_default_policy):
            problems.add(path, "must be a mapping like {inbound: drop, outbound: accept}, got %s" % type_name(raw_default_policy))
        else:
            _check_keys(raw_default_policy, DIRECTIONS + ("log",), path, problems)
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
        elif not _is_mapping(raw_baseline):
            problems.add(path, "must be true, false or a mapping of baseline item to true/false, got %s" % type_name(raw_baseline))
        else:
            _check_keys(raw_baseline, tuple(BASELINE_DEFAULTS), path, problems)
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
    problems.raise_if_any()
    return HostSettings(default_policy=default_policy, log_default=log_default, baseline=baseline, host_rules=host_rules)

# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the values operators write: lists, keys, text, ports and service definitions.

Private to the fleetwall.iptables collection. The building blocks of the
policy parser (policy.py): each reports problems with their path and returns
None for a value it refuses; warnings (accepted, but perhaps not meant) go to
a Findings. Controller-side only (plugin_utils).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Any, Collection, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

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
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import parse_protocol as services_parse_protocol
from ansible_collections.fleetwall.iptables.plugins.module_utils.rates import (
    DEFAULT_BURST,
    HASHLIMIT_SCALE,
    LIMIT_SCALE,
    MAX_BURST,
    canonical_rate,
)

KEY_ALIASES = {"services": "service", "protocol": "proto", "ports": "port", "source_ports": "source_port"}

SAFE_TEXT = re.compile(r"^[\x20-\x7e]*\Z")
UNSAFE_CHARS = "\"'\\"


class Findings(Problems):
    """Problems, plus warnings: what is accepted although it may not mean what was written."""

    def __init__(self):
        # type: () -> None
        super(Findings, self).__init__()
        self.warnings = []  # type: List[str]

    def warn(self, path, message):
        # type: (str, str) -> None
        self.warnings.append("%s: %s" % (path, message))


def warnings_of(problems):
    # type: (Problems) -> List[str]
    """The warnings list of a Findings; a fresh, discarded list for plain Problems."""
    return problems.warnings if isinstance(problems, Findings) else []


def is_mapping(value):
    # type: (Any) -> bool
    return isinstance(value, Mapping) or (hasattr(value, "keys") and hasattr(value, "__getitem__"))


def is_list(value):
    # type: (Any) -> bool
    return isinstance(value, (list, tuple))


def as_list(value, path, problems, what, mapping_is_item=False):
    # type: (Any, str, Problems, str, bool) -> Optional[List[Tuple[str, Any]]]
    """A scalar (or a mapping, if that is an item) or a list -> [(path, item)]; None after reporting a problem."""
    if is_list(value):
        if not value:
            problems.add(path, "empty list; give at least one %s" % what)
            return None
        return [(item_path(path, index), item) for index, item in enumerate(value)]
    if value is None or (is_mapping(value) and not mapping_is_item):
        article = "an" if what[:1] in "aeiou" else "a"
        problems.add(path, "expected %s %s or a list of them, got %s" % (article, what, type_name(value)))
        return None
    return [(path, value)]


def canonical_keys(raw, path, problems):
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


def printable(name):
    # type: (Any) -> str
    """A name as it may appear in a message: control and non-ASCII characters escaped."""
    return str(name).encode("unicode_escape").decode("ascii")


def check_not_null(data, keys, path, problems):
    # type: (Mapping[Any, Any], Collection[str], str, Problems) -> bool
    """port: ~ is a slip, not 'every port': leaving the key out says that."""
    ok = True
    for key in keys:
        if key in data and data[key] is None:
            problems.add("%s.%s" % (path, key), "'%s' has no value; give one or leave the key out" % key)
            ok = False
    return ok


def check_keys(data, allowed, path, problems):
    # type: (Mapping[str, Any], Collection[str], str, Problems) -> None
    for key in data:
        if key not in allowed:
            problems.add(
                "%s.%s" % (path, key),
                "unknown key '%s'%s; allowed: %s" % (key, did_you_mean(str(key), allowed), ", ".join(allowed)),
            )


def check_text(value, path, problems, what, max_length):
    # type: (Any, str, Problems, str, int) -> Optional[str]
    if not isinstance(value, str):
        problems.add(path, "%s must be a string, got %s" % (what, type_name(value)))
        return None
    if not value.strip():
        problems.add(path, "%s must not be empty" % what)
        return None
    if value.rstrip(" ") != value.rstrip():
        problems.add(
            path,
            "%s ends in a line break (what YAML's '>' and '|' add); use '>-' or '|-', or a quoted string" % what,
        )
        return None
    if len(value) > max_length:
        problems.add(path, "%s is %d characters long; at most %d fit" % (what, len(value), max_length))
        return None
    if not SAFE_TEXT.match(value) or any(char in value for char in UNSAFE_CHARS):
        problems.add(path, "%s may hold printable ASCII only, without quotes or backslashes" % what)
        return None
    return value


# ---------------------------------------------------------------- services


def parse_ports(value, path, problems):
    # type: (Any, str, Problems) -> Optional[Tuple[PortRange, ...]]
    items = as_list(value, path, problems, "port or port range")
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
            continue
        trap = yaml_number_trap(item)
        if trap and isinstance(problems, Findings):
            problems.warn(item_path_, trap)
    if len(ranges) != len(items):
        return None
    return merge_port_ranges(ranges)


def _builtin_ports():
    # type: () -> Set[int]
    return set(
        port
        for entries in BUILTIN_SERVICES.values()
        for entry in entries
        for span in entry.ports
        for port in range(span.low, span.high + 1)
    )


_BUILTIN_PORTS = _builtin_ports()
# Written as themselves far more often than as YAML octal (025 is 21, 027 is 23).
_FTP_AND_TELNET = (20, 21, 23)


def yaml_number_trap(value):
    # type: (Any) -> Optional[str]
    """Why an unquoted integer port may be YAML 1.1's reading of something else, or None.

    YAML 1.1 (Ansible's) reads 20:21 as the base-60 number 1221 and 022 as the
    octal number 18. Only a reading that makes sense is suspected: a range
    H:M with H < M, or octal digits that spell a well-known port. Ports of
    built-in services and round numbers (1000, 1200) are never suspected; a
    quoted port is never an integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value in _BUILTIN_PORTS:
        return None
    octal = "%o" % value
    if value >= 8 and value not in _FTP_AND_TELNET and int(octal) in _BUILTIN_PORTS:
        return (
            "port %d may be YAML's octal reading of the unquoted 0%s; write '%d' (quoted, without the leading 0) "
            "if port %s is meant, or quote the port ('%d') if %d is meant" % (value, octal, int(octal), octal, value, value)
        )
    hours, minutes = divmod(value, 60)
    if 1 <= hours < minutes and value % 10:
        return (
            "port %d may be YAML's base-60 reading of the unquoted range %d:%d; write a range quoted, as '%d-%d', "
            "or quote the port ('%d') if %d is meant" % (value, hours, minutes, hours, minutes, value, value)
        )
    return None


def parse_protocol(value, path, problems):
    # type: (Any, str, Problems) -> Optional[str]
    try:
        return services_parse_protocol(value)
    except SpecError as exc:
        problems.add(path, str(exc))
        return None


def service_entry(protocol, ports, source_ports, icmp_type, path, problems):
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
        result = parse_ports(ports, path + ".port", problems)
        ok = ok and result is not None
        parsed_ports = result or ()
    if source_ports is not None:
        result = parse_ports(source_ports, path + ".source_port", problems)
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


def parse_shorthand(text, path, problems):
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
        return service_entry(protocol, None, None, detail, path, problems)
    if protocol not in PORT_PROTOCOLS:
        problems.add(path, "protocol %s takes no port (only %s do)" % (protocol, ", ".join(PORT_PROTOCOLS)))
        return None
    return service_entry(protocol, detail.split(","), None, None, path, problems)


def _parse_service_entry(value, path, problems):
    # type: (Any, str, Problems) -> Optional[ServiceEntry]
    if isinstance(value, str):
        return parse_shorthand(value, path, problems)
    if not is_mapping(value):
        problems.add(path, "a service entry is a string like tcp/8080 or a mapping, got %s" % type_name(value))
        return None
    data = canonical_keys(value, path, problems)
    check_keys(data, ("proto", "port", "source_port", "icmp_type"), path, problems)
    if "proto" not in data:
        problems.add(path, "a service entry needs 'proto'")
        return None
    protocol = parse_protocol(data["proto"], path + ".proto", problems)
    if protocol is None or not check_not_null(data, ("port", "source_port", "icmp_type"), path, problems):
        return None
    return service_entry(protocol, data.get("port"), data.get("source_port"), data.get("icmp_type"), path, problems)


def parse_services(raw, problems):
    # type: (Any, Problems) -> Dict[str, Tuple[ServiceEntry, ...]]
    """The built-in catalog extended (or overridden) by fleetwall_services."""
    services = dict(BUILTIN_SERVICES)
    if raw is None:
        return services
    path = "fleetwall_services"
    if not is_mapping(raw):
        problems.add(path, "must be a mapping of service name to definition, got %s" % type_name(raw))
        return services
    for name in sorted(raw, key=str):
        service_path = "%s.%s" % (path, name)
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]+$", name):
            problems.add(service_path, "service names may use letters, digits, '_', '.' and '-' only")
            continue
        items = as_list(raw[name], service_path, problems, "service entry", mapping_is_item=True)
        if items is None:
            continue
        entries = [_parse_service_entry(item, item_path_, problems) for item_path_, item in items]
        if all(entry is not None for entry in entries):
            services[name] = tuple(entry for entry in entries if entry is not None)
    return services


# ---------------------------------------------------------------- rate limits


class RateLimit(NamedTuple):
    """A rule's limit: its rate as iptables-save prints it (rates.py), its burst, and whether each source has its own."""

    rate: str
    burst: int
    per_source: bool


RATE_LIMIT_KEYS = ("rate", "burst", "per")
MAX_CONNECTIONS = 1000000


def _parse_burst(value, path, problems):
    # type: (Any, str, Problems) -> Optional[int]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BURST:
        problems.add(path, "burst must be a whole number of packets from 1 to %d, got %r" % (MAX_BURST, value))
        return None
    return value


def parse_rate_limit(value, path, problems, per_source_allowed=True):
    # type: (Any, str, Problems, bool) -> Optional[RateLimit]
    """'3/min' or {rate: 3/min, burst: 5, per: source|rule} -> RateLimit, its rate in iptables-save's form."""
    data = {"rate": value} if isinstance(value, str) else value
    if not is_mapping(data):
        problems.add(path, "a limit is a rate like 3/min or a mapping with rate, burst and per, got %s" % type_name(value))
        return None
    check_keys(data, RATE_LIMIT_KEYS if per_source_allowed else RATE_LIMIT_KEYS[:2], path, problems)
    if "rate" not in data:
        problems.add(path, "a limit needs 'rate', e.g. rate: 3/min")
        return None
    burst = _parse_burst(data["burst"], path + ".burst", problems) if "burst" in data else DEFAULT_BURST
    per = data.get("per", "rule")
    if per not in ("rule", "source"):
        problems.add(path + ".per", "per must be 'rule' (one limit for every packet the rule matches) or 'source' "
                                    "(a limit for each source address), got %r" % (per,))
        return None
    if burst is None:
        return None
    scale = HASHLIMIT_SCALE if per == "source" else LIMIT_SCALE
    rate_path = path if isinstance(value, str) else path + ".rate"
    try:
        rate = canonical_rate(data["rate"], scale, burst)[0] if isinstance(data["rate"], str) else None
    except ValueError as exc:
        problems.add(rate_path, str(exc))
        return None
    if rate is None:
        problems.add(rate_path, "a rate is a string like 3/min, got %s" % type_name(data["rate"]))
        return None
    return RateLimit(rate, burst, per == "source")


def parse_max_connections(value, path, problems):
    # type: (Any, str, Problems) -> Optional[int]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONNECTIONS:
        problems.add(
            path, "max_connections must be a whole number of connections per source from 1 to %d, got %r" % (MAX_CONNECTIONS, value)
        )
        return None
    return value

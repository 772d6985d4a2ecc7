# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Services: protocols, ports, ICMP types, and the built-in catalog.

Private to the fleetwall.iptables collection. Pure data and parsing helpers,
no I/O. Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import did_you_mean, type_name

# Protocol names as users write them -> the name iptables-save prints.
PROTOCOLS = {
    "tcp": "tcp",
    "udp": "udp",
    "sctp": "sctp",
    "udplite": "udplite",
    "icmp": "icmp",
    "icmpv6": "ipv6-icmp",
    "ipv6-icmp": "ipv6-icmp",
    "esp": "esp",
    "ah": "ah",
    "gre": "gre",
    "vrrp": "vrrp",
}
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
# A protocol that exists in only one address family.
PROTOCOL_FAMILY = {"icmp": 4, "ipv6-icmp": 6}

ICMP_TYPES = {
    "any": None,
    "echo-reply": "0",
    "destination-unreachable": "3",
    "network-unreachable": "3/0",
    "host-unreachable": "3/1",
    "protocol-unreachable": "3/2",
    "port-unreachable": "3/3",
    "fragmentation-needed": "3/4",
    "source-route-failed": "3/5",
    "network-prohibited": "3/9",
    "host-prohibited": "3/10",
    "communication-prohibited": "3/13",
    "source-quench": "4",
    "redirect": "5",
    "echo-request": "8",
    "router-advertisement": "9",
    "router-solicitation": "10",
    "time-exceeded": "11",
    "ttl-zero-during-transit": "11/0",
    "ttl-zero-during-reassembly": "11/1",
    "parameter-problem": "12",
    "timestamp-request": "13",
    "timestamp-reply": "14",
    "address-mask-request": "17",
    "address-mask-reply": "18",
}
ICMPV6_TYPES = {
    "any": None,
    "destination-unreachable": "1",
    "no-route": "1/0",
    "communication-prohibited": "1/1",
    "address-unreachable": "1/3",
    "port-unreachable": "1/4",
    "packet-too-big": "2",
    "time-exceeded": "3",
    "parameter-problem": "4",
    "echo-request": "128",
    "echo-reply": "129",
    "router-solicitation": "133",
    "router-advertisement": "134",
    "neighbour-solicitation": "135",
    "neighbor-solicitation": "135",
    "neighbour-advertisement": "136",
    "neighbor-advertisement": "136",
    "redirect": "137",
}


class PortRange(NamedTuple):
    low: int
    high: int

    def render(self):
        # type: () -> str
        return str(self.low) if self.low == self.high else "%d:%d" % (self.low, self.high)


class ServiceEntry(NamedTuple):
    """One (protocol, ports) or (ICMP protocol, type) pair of a service."""

    protocol: str  # as iptables-save prints it, e.g. "tcp", "ipv6-icmp"
    ports: Tuple[PortRange, ...] = ()
    source_ports: Tuple[PortRange, ...] = ()
    icmp_type: Optional[str] = None  # canonical "8" or "3/4"; None for all types

    @property
    def family(self):
        # type: () -> Optional[int]
        return PROTOCOL_FAMILY.get(self.protocol)


class SpecError(ValueError):
    """A malformed value; the caller adds the path."""


# int() also takes "+80", "8_0" and non-ASCII digits; iptables takes none of them.
_NUMBER = re.compile(r"^[0-9]+$")
_SIGNED_NUMBER = re.compile(r"^-?[0-9]+$")  # the sign only to say "out of range" for -1


def _number(text):
    # type: (str) -> int
    text = text.strip()
    if not _NUMBER.match(text):
        raise ValueError(text)
    return int(text)


def parse_port(value):
    # type: (object) -> PortRange
    """One port or range: 22, "22", "8000-8100", "8000:8100"."""
    if isinstance(value, bool):
        raise SpecError("port must be a number or a range like '8000-8100', got %r" % (value,))
    if isinstance(value, int):
        low = high = value
    elif isinstance(value, str):
        text = value.strip()
        separator = "-" if "-" in text else ":" if ":" in text else None
        try:
            if separator:
                low_text, high_text = text.split(separator, 1)
                low, high = _number(low_text), _number(high_text)
            else:
                low = high = _number(text)
        except ValueError:
            raise SpecError("port must be a number or a range like '8000-8100', got %r" % (value,))
    else:
        raise SpecError("port must be a number or a range like '8000-8100', got %s" % type(value).__name__)
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise SpecError("port %d is out of range (1-65535)" % port)
    if low > high:
        raise SpecError("port range %r is reversed (%d > %d)" % (value, low, high))
    return PortRange(low, high)


def parse_protocol(value):
    # type: (object) -> str
    """A protocol as users write it ("TCP", "icmpv6") -> the name iptables-save prints ("tcp", "ipv6-icmp")."""
    if not isinstance(value, str):
        raise SpecError("protocol must be a string, got %s" % type_name(value))
    name = value.strip().lower()
    if name not in PROTOCOLS:
        raise SpecError("unknown protocol '%s'%s; known: %s" % (value, did_you_mean(name, PROTOCOLS), ", ".join(sorted(PROTOCOLS))))
    return PROTOCOLS[name]


def merge_port_ranges(ranges):
    # type: (List[PortRange]) -> Tuple[PortRange, ...]
    """Sorted, with overlapping and adjacent ranges joined."""
    merged = []  # type: List[PortRange]
    for current in sorted(ranges):
        if merged and current.low <= merged[-1].high + 1:
            last = merged[-1]
            merged[-1] = PortRange(last.low, max(last.high, current.high))
        else:
            merged.append(current)
    return tuple(merged)


def parse_icmp_type(protocol, value):
    # type: (str, object) -> Optional[str]
    """Name, number or "type/code" -> the canonical form iptables-save prints."""
    names = ICMP_TYPES if protocol == "icmp" else ICMPV6_TYPES
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SpecError("icmp_type must be a name, a number or TYPE/CODE, got %s" % type_name(value))
    text = str(value).strip().lower()
    if text in names:
        return names[text]
    parts = text.split("/")
    if not all(_SIGNED_NUMBER.match(part) for part in parts):
        known = ", ".join(sorted(name for name in names if name != "any"))
        raise SpecError(
            "unknown %s type %r%s (known: %s)"
            % ("ICMP" if protocol == "icmp" else "ICMPv6", value, did_you_mean(text, names), known)
        )
    numbers = [int(part) for part in parts]
    if len(numbers) > 2 or not all(0 <= number <= 255 for number in numbers):
        raise SpecError("ICMP type %r must be TYPE or TYPE/CODE with numbers 0-255" % (value,))
    if protocol == "icmp" and numbers[0] == 255:
        # iptables reads IPv4 type 255 as "any type": say so rather than open everything quietly.
        raise SpecError("ICMP type 255 means every ICMP type to iptables; write icmp_type: any (or leave it out)")
    return "/".join(str(number) for number in numbers)


def _tcp_udp(*ports):
    # type: (int) -> Tuple[ServiceEntry, ...]
    ranges = tuple(PortRange(port, port) for port in ports)
    return (ServiceEntry("tcp", ranges), ServiceEntry("udp", ranges))


def _tcp(*ports):
    # type: (int) -> Tuple[ServiceEntry, ...]
    return (ServiceEntry("tcp", tuple(PortRange(port, port) for port in ports)),)


def _udp(*ports):
    # type: (int) -> Tuple[ServiceEntry, ...]
    return (ServiceEntry("udp", tuple(PortRange(port, port) for port in ports)),)


BUILTIN_SERVICES = {
    "ssh": _tcp(22),
    "http": _tcp(80),
    "https": _tcp(443),
    "http-alt": _tcp(8080),
    "dns": _tcp_udp(53),
    "ntp": _udp(123),
    "dhcp": _udp(67),
    "dhcp-client": _udp(68),
    "dhcpv6": _udp(547),
    "dhcpv6-client": _udp(546),
    "smtp": _tcp(25),
    "submission": _tcp(587),
    "smtps": _tcp(465),
    "pop3": _tcp(110),
    "pop3s": _tcp(995),
    "imap": _tcp(143),
    "imaps": _tcp(993),
    "ldap": _tcp(389),
    "ldaps": _tcp(636),
    "kerberos": _tcp_udp(88),
    "postgres": _tcp(5432),
    "mysql": _tcp(3306),
    "mssql": _tcp(1433),
    "redis": _tcp(6379),
    "memcached": _tcp(11211),
    "mongodb": _tcp(27017),
    "elasticsearch": _tcp(9200),
    "rabbitmq": _tcp(5672),
    "amqps": _tcp(5671),
    "mqtt": _tcp(1883),
    "nfs": _tcp_udp(2049),
    "rsync": _tcp(873),
    "git": _tcp(9418),
    "rdp": _tcp(3389),
    "snmp": _udp(161),
    "snmp-trap": _udp(162),
    "syslog": _udp(514),
    "syslog-tls": _tcp(6514),
    "openvpn": _udp(1194),
    "wireguard": _udp(51820),
    "bgp": _tcp(179),
    "mdns": _udp(5353),
    "squid": _tcp(3128),
    "node-exporter": _tcp(9100),
    "prometheus": _tcp(9090),
    "kubernetes-api": _tcp(6443),
    "kubelet": _tcp(10250),
    "etcd": (ServiceEntry("tcp", (PortRange(2379, 2380),)),),
    "zabbix": (ServiceEntry("tcp", (PortRange(10050, 10051),)),),
    "ipsec": (
        ServiceEntry("udp", (PortRange(500, 500), PortRange(4500, 4500))),
        ServiceEntry("esp"),
    ),
    "gre": (ServiceEntry("gre"),),
    "vrrp": (ServiceEntry("vrrp"),),
    "ping": (ServiceEntry("icmp", icmp_type="8"), ServiceEntry("ipv6-icmp", icmp_type="128")),
    "icmp": (ServiceEntry("icmp"),),
    "icmpv6": (ServiceEntry("ipv6-icmp"),),
}  # type: Dict[str, Tuple[ServiceEntry, ...]]

"""Policies for the integration tests: a fixed corpus and a Hypothesis strategy.

Both produce the keyword arguments of the unit tests' ``inventory()`` fixture
(policy, addresses, services, host_vars, groups), so a failing example can be
pasted into a unit test as it is.
"""

from __future__ import annotations

import ipaddress
import string
from typing import Any, Dict, List, Optional

from hypothesis import strategies as st

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy import REJECT_WITH
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import ICMP_TYPES, ICMPV6_TYPES

# Printable ASCII that policy.py accepts in comments and log prefixes.
SAFE_TEXT = "".join(char for char in string.printable if 32 <= ord(char) < 127 and char not in "\"'\\")
PUNCTUATION = "a b!#$%&()*+,-./:;<=>?@[]^_`{|}~ z"

# ---------------------------------------------------------------- corpus

CORPUS: Dict[str, Dict[str, Any]] = {
    "the unit tests' fleet": {},
    "multiport chunks, port ranges and source ports": {
        "services": {
            "app": [{"proto": "tcp", "port": [8080, "8443-8445"]}, "udp/9000-9010", {"proto": "sctp", "port": 5000}],
            "legacy": [{"proto": "udp", "port": 69, "source_port": [1024, "2000:2010"]}],
        },
        "policy": {
            "web": {
                "inbound": [
                    {"proto": "tcp", "port": list(range(1000, 1060, 2)) + ["2000-2100", "3000:3005", 65535]},
                    {"proto": "udp", "port": [53, 67, "5000-5010"], "source_port": list(range(100, 140, 2))},
                    {"proto": "sctp", "port": [2905, "3868-3870"], "source_port": 9},
                    {"proto": "tcp", "source_port": "1024-65535", "port": 22},
                    {"proto": "udp", "source_port": [123]},
                    {"proto": "tcp", "port": "1-65535", "action": "drop"},
                    {"proto": "tcp", "port": ["1", "65535", "2-65534"]},
                    {"service": ["dns", "ntp", "ssh", "http", "https", "etcd", "zabbix", "app", "legacy"]},
                    {"service": "app", "proto": "tcp", "port": [8081, 8082]},
                ]
            }
        },
    },
    "ICMP and ICMPv6 types, with and without codes": {
        "policy": {
            "all": {
                "inbound": [
                    {"proto": "icmp", "icmp_type": "echo-request"},
                    {"proto": "icmp", "icmp_type": "3/4"},
                    {"proto": "icmp", "icmp_type": "host-unreachable", "action": "drop"},
                    {"proto": "icmp", "icmp_type": 11},
                    {"proto": "icmp", "icmp_type": "timestamp-request", "action": "reject"},
                    {"proto": "icmp", "icmp_type": "0/0"},
                    {"proto": "icmp", "icmp_type": "254/255"},
                    {"proto": "icmp", "icmp_type": "any", "from": "198.51.100.0/24"},
                    {"proto": "icmpv6", "icmp_type": "echo-request"},
                    {"proto": "icmpv6", "icmp_type": "1/3"},
                    {"proto": "icmpv6", "icmp_type": "packet-too-big"},
                    {"proto": "ipv6-icmp", "icmp_type": 135, "action": "drop"},
                    {"proto": "icmpv6", "icmp_type": "128/0"},
                    {"proto": "icmpv6", "icmp_type": "no-route", "action": "reject", "reject_with": "admin-prohibited"},
                    {"proto": "icmpv6", "icmp_type": 255},
                    {"service": ["icmp", "ping"]},
                    {"service": "icmpv6", "from": "2001:db8::/32"},
                    {"proto": "icmp"},
                ],
                "outbound": [{"service": "ping", "action": "drop"}],
            }
        },
    },
    "every other protocol": {
        "policy": {
            "all": {
                "inbound": [
                    {"service": ["gre", "vrrp"]},
                    {"service": "ipsec", "from": ["192.0.2.0/24", "2001:db8:1::/48"]},
                    {"proto": "esp", "action": "drop"},
                    {"proto": "ah"},
                    {"proto": "sctp"},
                    {"proto": "udplite", "action": "reject"},
                    {"proto": "vrrp", "to": "224.0.0.18"},
                ],
                "forward": [{"proto": "esp"}, {"proto": "gre", "action": "reject", "reject_with": "host-unreachable"}],
            }
        },
    },
    "interface names, prefixes and negations": {
        "policy": {
            "web": {
                "inbound": [
                    {"service": "http", "interface": "eth0"},
                    {"service": "https", "interface": "veth+"},
                    {"service": "ssh", "interface": "!eth1"},
                    {"service": "dns", "interface": "!ppp+"},
                    {"service": "ntp", "interface": "+"},
                    {"service": "smtp", "interface": "!+"},
                    {"service": "imap", "interface": "abcdefghijklmno"},
                    {"service": "imaps", "interface": "abcdefghijklmn+"},
                    {"service": "ldap", "interface": "br-lan.10"},
                    {"service": "ldaps", "interface": "wg.0+"},
                    {"service": "mysql", "interface": "ab@c"},
                    {"service": "redis", "interface": "x_y-z"},
                ],
                "outbound": [{"service": "dns", "interface": "!lo"}, {"service": "ntp", "interface": "tun+"}],
                "forward": [
                    {"in_interface": "eth0", "out_interface": "eth1"},
                    {"in_interface": "!wg+", "service": "ssh"},
                    {"out_interface": "!br0", "action": "drop"},
                    {"in_interface": "+", "out_interface": "!+"},
                ],
            }
        },
    },
    "every reject variant": {
        "policy": {
            "web": {
                "inbound": (
                    [{"service": "ssh", "action": "reject", "reject_with": name, "comment": name} for name in sorted(REJECT_WITH)]
                    + [
                        {"proto": "udp", "port": 9, "action": "reject", "reject_with": name}
                        for name in sorted(REJECT_WITH)
                        if name != "tcp-reset"
                    ]
                    + [{"proto": "tcp", "port": [1, 2, 3], "action": "reject", "reject_with": "tcp-reset"}, {"action": "reject", "from": "any"}]
                ),
                "outbound": [{"service": "smtp", "action": "reject", "reject_with": "admin-prohibited"}],
                "forward": [{"service": "http", "action": "reject", "reject_with": "tcp-reset"}],
            }
        },
        "host_vars": {
            "web1": {"fleetwall_default_policy": {"inbound": "reject", "outbound": "reject", "forward": "reject"}},
        },
    },
    "rate limits: limit, per-source hashlimit, connlimit and log limits": {
        "policy": {
            "all": {
                "inbound": [
                    {"service": "ssh", "action": "drop", "limit": {"rate": "3/min", "burst": 4, "per": "source"},
                     "log": {"prefix": "ssh-flood ", "limit": "6/min"}},
                    {"service": "ssh", "action": "reject", "reject_with": "tcp-reset", "max_connections": 3},
                    {"service": "http", "limit": "60/min"},
                    {"service": "https", "limit": {"rate": "90/min", "burst": 10000}},
                    {"proto": "udp", "port": 514, "limit": {"rate": "100000/min", "burst": 1, "per": "source"}, "log": True},
                    {"proto": "udp", "port": 515, "limit": "24/day", "max_connections": 1000000},
                    {"service": "dns", "log": {"limit": {"rate": "1/hour", "burst": 2}}},
                ],
                "outbound": [{"service": "smtp", "max_connections": 10, "limit": {"rate": "5/sec", "per": "source"}}],
                "forward": [{"service": "http", "action": "reject", "limit": {"rate": "7/hour", "per": "source"}}],
            }
        },
    },
    "nat: port forwards, masquerade, snat and redirects in both families": {
        "host_vars": {
            "web1": {"fleetwall_host_rules": {"nat": [
                {"port_forward": {"in_interface": "eth0", "proto": "tcp", "port": 443, "to": "host:db1", "to_port": 8443,
                                  "comment": "shop"}},
                {"port_forward": {"proto": "udp", "port": "5000-5010", "to": "10.0.2.30", "from": "192.0.2.0/24",
                                  "destination": "198.51.100.1"}},
                {"masquerade": {"out_interface": "eth0", "from": ["10.0.0.0/8", "fd00::/16"], "to": "!10.0.0.0/8"}},
                {"snat": {"out_interface": "eth1+", "to_source": ["203.0.113.5", "2001:db8::5"]}},
                {"redirect": {"proto": "tcp", "port": 80, "to_port": 8080, "local": True, "in_interface": "eth0"}},
            ]}},
        },
    },
    "logging, with generated and given prefixes": {
        "policy": {
            "all": {
                "inbound": [
                    {"service": "ssh", "log": True},
                    {"service": "http", "action": "drop", "log": True},
                    {"service": "https", "action": "reject", "log": "https: refused, sorry! "},
                    {"proto": "udp", "port": 9, "log": "bare-prefix"},
                    {"proto": "udp", "port": 10, "log": "x"},
                    {"proto": "udp", "port": 11, "log": "exactly twenty-eight chars!"[:28]},
                    {"proto": "udp", "port": 12, "log": "-j DROP #not a comment"},
                    {"proto": "tcp", "port": 13, "log": False},
                ],
                "outbound": [{"service": "smtp", "action": "drop", "log": True}],
                "forward": [{"service": "dns", "action": "reject", "log": True}],
            }
        },
        "host_vars": {
            "web1": {"fleetwall_default_policy": {"inbound": "drop", "outbound": "drop", "forward": "reject", "log": True}},
            "web2": {"fleetwall_default_policy": {"inbound": "reject", "log": True}},
            "db1": {"fleetwall_default_policy": {"inbound": "accept", "outbound": "accept", "forward": "accept", "log": True}},
        },
    },
    "comments with spaces and punctuation": {
        "policy": {
            "web": {
                "inbound": [
                    {"service": "http", "comment": PUNCTUATION},
                    {"service": "https", "comment": "  leading and trailing spaces  "},
                    {"service": "ssh", "comment": "x"},
                    {"service": "dns", "comment": "--comment -j DROP"},
                    {"service": "ntp", "comment": "#not a comment"},
                    {"service": "smtp", "comment": "*filter"},
                    {"service": "imap", "comment": "COMMIT"},
                    {"service": "ldap", "comment": "Bare_word-01"},
                ]
            }
        },
        "host_vars": {
            "web1": {"fleetwall_host_rules": {"inbound": [{"service": "rdp", "comment": ("0123456789" * 20)}]}},
        },
    },
    "baseline off, partial, and with TCP flag sanity": {
        "host_vars": {
            "web1": {"fleetwall_baseline": False},
            "web2": {"fleetwall_baseline": {"tcp_flag_sanity": True, "loopback": False}},
            "db1": {"fleetwall_baseline": {"icmpv6_essentials": False, "antispoof": False}},
            "bastion": {"fleetwall_baseline": {"established": False, "drop_invalid": False, "tcp_flag_sanity": True}},
        },
    },
    "default policies accept, drop and reject": {
        "host_vars": {
            "web1": {"fleetwall_default_policy": {"inbound": "accept", "outbound": "drop", "forward": "reject"}},
            "web2": {"fleetwall_default_policy": {"inbound": "reject", "outbound": "reject", "forward": "accept"}},
            "db1": {"fleetwall_default_policy": {"inbound": "drop", "outbound": "drop", "forward": "drop"}},
            "bastion": {"fleetwall_default_policy": {"inbound": "accept", "outbound": "accept", "forward": "accept", "log": True}},
        },
    },
    "forward rules": {
        "addresses": {"lan": ["10.10.0.0/16", "fd10::/48"], "dmz": ["10.20.0.0/24", "fd20::/64"]},
        "policy": {
            "bastion": {
                "forward": [
                    {"from": "lan", "to": "dmz", "service": ["http", "https"], "in_interface": "eth1", "out_interface": "eth2"},
                    {"from": "dmz", "to": "lan", "action": "drop", "log": True},
                    {"from": ["lan", "!10.10.5.0/24"], "service": "dns", "priority": 100},
                    {"to": "group:db", "service": "postgres", "in_interface": "!eth0"},
                ]
            }
        },
        "host_vars": {"bastion": {"fleetwall_default_policy": {"forward": "reject"}}},
    },
    "IPv6 addresses in every notation": {
        "addresses": {
            "six": [
                "2001:DB8:0:0:1::1",
                "2001:db8:0:0:1:0:0:1",
                "2001:0db8:0000:0001:0001:0001:0001:0001",
                "::ffff:192.0.2.1",
                "::ffff:0:0/96",
                "::1.2.3.4",
                "::0:1:0/112",
                "fe80::/10",
                "64:ff9b::c000:201",
                "1:0:0:2:0:0:0:0",
                "0:0:1::/48",
            ],
            "cut": ["2001:db8::/32", "!2001:db8:8000::/33", "!2001:db8::1", "!2001:db8:0:ffff::/64"],
        },
        "policy": {
            "all": {
                "inbound": [
                    {"from": "six", "service": "ssh"},
                    {"from": "cut", "service": "http"},
                    {"from": "::/0", "service": "https"},
                    {"from": "0.0.0.0/0", "service": "imap"},
                    {"from": "any", "service": "smtp"},
                    {"from": ["!::ffff:0:0/96"], "service": "pop3"},
                    {"to": ["fd00::1:1", "::1"], "service": "rdp"},
                ]
            }
        },
        "host_vars": {"web1": {"ansible_default_ipv6": {"address": "FD00:0:0:0:0:0:1:1"}}},
    },
    "address sets, groups, hosts and exceptions": {
        "addresses": {
            "office": ["203.0.113.0/24", "2001:db8:100::/48"],
            "vpn": ["office", "!203.0.113.128/25", "group:bastion", "198.51.100.7"],
            "everyone_but_db": ["!group:db"],
            "trusted": ["host:bastion", "set:vpn", "!2001:db8:100:ff::/64"],
        },
        "policy": {
            "all": {"inbound": [{"service": "ssh", "from": ["trusted", "!host:web2"]}]},
            "web": {
                "inbound": [
                    {"service": "http", "from": "everyone_but_db"},
                    {"service": "https", "from": ["!10.0.0.0/8", "!fd00::/8"]},
                    {"service": "node-exporter", "from": "group:bastion", "to": "group:web"},
                ],
                "outbound": [{"service": "postgres", "to": ["group:db", "!host:db1"], "action": "drop"}],
            },
        },
    },
    "priorities across groups and host rules": {
        "policy": {
            "all": {"inbound": [{"from": "198.51.100.0/24", "action": "drop", "priority": 10}, {"service": "ssh", "priority": 900}]},
            "web": {"inbound": [{"service": "http", "priority": 0}, {"service": "https", "priority": 1000}]},
            "db": {"inbound": [{"service": "postgres", "priority": 500}]},
        },
        "host_vars": {
            "web1": {"fleetwall_host_rules": {"inbound": [{"service": "rdp", "priority": 5}, {"service": "git"}]}},
        },
    },
    "outbound rules": {
        "policy": {
            "all": {
                "outbound": [
                    {"service": ["dns", "ntp"], "to": ["9.9.9.9", "2620:fe::fe"]},
                    {"service": "smtp", "action": "reject", "reject_with": "tcp-reset", "interface": "eth0"},
                    {"to": "192.0.2.0/24", "action": "drop", "log": True, "interface": "!lo"},
                ]
            }
        },
        "host_vars": {host: {"fleetwall_default_policy": {"outbound": "drop"}} for host in ("web1", "db1")},
    },
    "host rules in every direction": {
        "host_vars": {
            "web1": {
                "fleetwall_host_rules": {
                    "inbound": [{"proto": "udp", "port": 9999, "from": "host:db1"}],
                    "outbound": [{"service": "https", "to": "group:db", "action": "reject"}],
                    "forward": [{"in_interface": "wg0", "out_interface": "eth0", "service": "ssh"}],
                }
            }
        },
    },
}

# ---------------------------------------------------------------- strategy

GROUPS = ("web", "db", "cache", "lb_01")
HOSTS = ("h0", "h1", "h2")
BUILTIN_SERVICE_NAMES = (
    "ssh", "http", "https", "dns", "ntp", "postgres", "etcd", "zabbix", "ipsec", "gre", "vrrp", "ping", "icmp",
    "icmpv6", "kerberos", "nfs", "snmp", "wireguard",
)
OTHER_PROTOCOLS = ("gre", "esp", "ah", "udplite", "vrrp", "sctp")
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
# IPv4 type 255 means "any" to iptables, so the policy refuses it (tests/unit covers that).
ICMP_NUMBERS = st.integers(0, 254)
ICMPV6_NUMBERS = st.integers(0, 255)


def _ipv6_words(draw) -> List[int]:
    word = st.one_of(st.just(0), st.just(0), st.sampled_from([1, 0xFFFF, 0xDB8, 0x2001, 0xFE80]), st.integers(0, 0xFFFF))
    words = draw(st.lists(word, min_size=8, max_size=8))
    shape = draw(st.sampled_from(["plain", "plain", "mapped", "compat", "zero-runs"]))
    if shape == "mapped":
        words[:6] = [0, 0, 0, 0, 0, 0xFFFF]
    elif shape == "compat":
        words[:6] = [0] * 6
    elif shape == "zero-runs":
        start = draw(st.integers(0, 6))
        length = draw(st.integers(1, 8 - start))
        words[start:start + length] = [0] * length
    return words


@st.composite
def ipv4_network(draw) -> ipaddress.IPv4Network:
    prefix = draw(st.one_of(st.sampled_from([8, 16, 24, 32, 32]), st.integers(0, 32)))
    value = draw(st.one_of(st.integers(0, 2 ** 32 - 1), st.sampled_from([0x0A000000, 0xC0000200, 0xC6336400, 0xCB007100])))
    return ipaddress.IPv4Network((value, prefix), strict=False)


@st.composite
def ipv6_network(draw) -> ipaddress.IPv6Network:
    value = 0
    for word in _ipv6_words(draw):
        value = value << 16 | word
    prefix = draw(st.one_of(st.sampled_from([32, 48, 64, 96, 112, 127, 128, 128]), st.integers(0, 128)))
    return ipaddress.IPv6Network((value, prefix), strict=False)


def ipv6_text(draw, address: ipaddress.IPv6Address) -> str:
    """One of the many ways to write an IPv6 address."""
    style = draw(st.sampled_from(["compressed", "exploded", "upper", "dotted", "unpadded"]))
    if style == "exploded":
        return address.exploded
    if style == "upper":
        return address.compressed.upper()
    if style == "unpadded":
        return ":".join("%x" % int(part, 16) for part in address.exploded.split(":"))
    if style == "dotted":
        packed = address.packed
        head = ":".join("%x" % (packed[index] << 8 | packed[index + 1]) for index in range(0, 12, 2))
        return "%s:%d.%d.%d.%d" % ((head,) + tuple(packed[12:]))
    return address.compressed


def network_text(draw, network) -> str:
    if network.version == 6:
        address = ipv6_text(draw, network.network_address)
    else:
        address = str(network.network_address)
    if network.prefixlen == network.max_prefixlen and draw(st.booleans()):
        return address
    return "%s/%d" % (address, network.prefixlen)


@st.composite
def network_item(draw) -> List[str]:
    """A literal network, sometimes followed by exceptions cut out of it."""
    network = draw(st.one_of(ipv4_network(), ipv6_network()))
    items = [network_text(draw, network)]
    room = network.max_prefixlen - network.prefixlen
    for dummy in range(draw(st.integers(0, 2 if room else 0))):
        longer = network.prefixlen + draw(st.integers(1, min(room, 4)))
        subnets = 2 ** (longer - network.prefixlen)
        index = draw(st.integers(0, subnets - 1))
        size = 2 ** (network.max_prefixlen - longer)
        exception = ipaddress.ip_network((int(network.network_address) + index * size, longer))
        items.append("!" + network_text(draw, exception))
    return items


@st.composite
def address_list(draw, set_names, groups, hosts) -> Any:
    items: List[str] = []
    for dummy in range(draw(st.integers(1, 3))):
        kinds = ["network", "network", "network", "group", "host", "any"] + (["set"] if set_names else [])
        kind = draw(st.sampled_from(kinds))
        negated = draw(st.integers(0, 4)) == 0
        if kind == "network":
            items.extend(draw(network_item()))
            continue
        if kind == "group":
            item = "group:" + draw(st.sampled_from(sorted(groups)))
        elif kind == "host":
            item = "host:" + draw(st.sampled_from(sorted(hosts)))
        elif kind == "set":
            name = draw(st.sampled_from(sorted(set_names)))
            item = draw(st.sampled_from([name, "set:" + name]))
        else:
            item = "any"
            negated = False
        items.append(("!" if negated else "") + item)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return items


def port_value(draw, protocol_max: int = 65535) -> Any:
    low = draw(st.one_of(st.integers(1, protocol_max), st.sampled_from([1, 22, 53, 80, 443, 1024, 65535])))
    if draw(st.booleans()):
        return draw(st.sampled_from([low, str(low)]))
    high = draw(st.integers(low, min(protocol_max, low + draw(st.sampled_from([1, 10, 1000, 65535])))))
    return draw(st.sampled_from(["%d-%d" % (low, high), "%d:%d" % (low, high)]))


@st.composite
def ports(draw) -> Any:
    if draw(st.booleans()):
        return port_value(draw)
    return [port_value(draw) for dummy in range(draw(st.integers(1, 24)))]


@st.composite
def icmp_type(draw, protocol: str) -> Any:
    names = ICMP_TYPES if protocol == "icmp" else ICMPV6_TYPES
    numbers = ICMP_NUMBERS if protocol == "icmp" else ICMPV6_NUMBERS
    choice = draw(st.sampled_from(["name", "number", "type/code"]))
    if choice == "name":
        return draw(st.sampled_from(sorted(names)))
    if choice == "number":
        return draw(st.one_of(numbers, numbers.map(str)))
    return "%d/%d" % (draw(numbers), draw(st.integers(0, 255)))


@st.composite
def protocol_part(draw, service_names) -> Dict[str, Any]:
    kind = draw(st.sampled_from(["none", "service", "service", "ports", "ports", "icmp", "other", "service+ports"]))
    part: Dict[str, Any] = {}
    if kind in ("service", "service+ports"):
        names = draw(st.lists(st.sampled_from(sorted(service_names)), min_size=1, max_size=3, unique=True))
        part["service"] = names[0] if len(names) == 1 and draw(st.booleans()) else names
    if kind in ("ports", "service+ports"):
        part["proto"] = draw(st.sampled_from(PORT_PROTOCOLS))
        if draw(st.integers(0, 3)):
            part["port"] = draw(ports())
        if draw(st.integers(0, 3)) == 0:
            part["source_port"] = draw(ports())
    elif kind == "icmp":
        part["proto"] = draw(st.sampled_from(["icmp", "icmpv6", "ipv6-icmp"]))
        if draw(st.booleans()):
            part["icmp_type"] = draw(icmp_type("icmp" if part["proto"] == "icmp" else "ipv6-icmp"))
    elif kind == "other":
        part["proto"] = draw(st.sampled_from(OTHER_PROTOCOLS))
    return part


@st.composite
def service_entry(draw) -> Any:
    """A fleetwall_services entry: a mapping, or the PROTOCOL[/DETAIL] shorthand."""
    kind = draw(st.sampled_from(["ports", "ports", "icmp", "other"]))
    if kind == "ports":
        entry: Dict[str, Any] = {"proto": draw(st.sampled_from(PORT_PROTOCOLS))}
        if draw(st.integers(0, 3)):
            entry["port"] = draw(ports())
        if draw(st.integers(0, 4)) == 0:
            entry["source_port"] = draw(ports())
        if "port" in entry and "source_port" not in entry and draw(st.booleans()):
            values = entry["port"] if isinstance(entry["port"], list) else [entry["port"]]
            return "%s/%s" % (entry["proto"], ",".join(str(value) for value in values))
        return entry
    if kind == "icmp":
        protocol = draw(st.sampled_from(["icmp", "icmpv6"]))
        if draw(st.booleans()):
            return protocol
        detail = draw(icmp_type("icmp" if protocol == "icmp" else "ipv6-icmp"))
        if draw(st.booleans()):
            return "%s/%s" % (protocol, detail)
        return {"proto": protocol, "icmp_type": detail}
    protocol = draw(st.sampled_from(OTHER_PROTOCOLS))
    return draw(st.sampled_from([protocol, {"proto": protocol}]))


interface_names = st.text(alphabet=string.ascii_letters + string.digits + "_.@-", min_size=1, max_size=14).filter(
    lambda name: name not in (".", "..")
)


@st.composite
def interface(draw) -> str:
    name = draw(st.one_of(st.sampled_from(["eth0", "lo", "veth+", "wg0", "+", "br-lan.10"]), interface_names))
    if not name.endswith("+") and len(name) < 15 and draw(st.integers(0, 3)) == 0:
        name += "+"
    return ("!" if draw(st.integers(0, 3)) == 0 else "") + name


safe_text = st.text(alphabet=SAFE_TEXT, min_size=1, max_size=120).filter(lambda text: text.strip())


@st.composite
def rule(draw, direction, service_names, set_names, groups, hosts) -> Dict[str, Any]:
    data = draw(protocol_part(service_names))
    if draw(st.integers(0, 2)) == 0:
        data["from"] = draw(address_list(set_names, groups, hosts))
    if draw(st.integers(0, 3)) == 0:
        data["to"] = draw(address_list(set_names, groups, hosts))
    if direction == "forward":
        for key in ("in_interface", "out_interface"):
            if draw(st.integers(0, 3)) == 0:
                data[key] = draw(interface())
    elif draw(st.integers(0, 3)) == 0:
        data["interface"] = draw(interface())
    if not any(key in data for key in ("service", "proto", "from", "to")):
        # The policy refuses a rule that matches every packet without saying so; an interface would
        # do too, but some tests take interfaces out of the rules.
        data["from"] = "any"
    action = draw(st.sampled_from(["accept", "accept", "drop", "reject"]))
    if action != "accept" or draw(st.booleans()):
        data["action"] = action
    if action == "reject" and draw(st.booleans()):
        tcp_only = data.get("proto") == "tcp" and "service" not in data
        choices = sorted(name for name in REJECT_WITH if tcp_only or name != "tcp-reset")
        data["reject_with"] = draw(st.sampled_from(choices))
    if draw(st.integers(0, 4)) == 0:
        data["log"] = draw(st.one_of(st.booleans(), st.text(alphabet=SAFE_TEXT, min_size=1, max_size=28).filter(str.strip)))
    if draw(st.integers(0, 2)) == 0:
        data["comment"] = draw(safe_text)
    if draw(st.integers(0, 2)) == 0:
        data["priority"] = draw(st.one_of(st.integers(0, 1000), st.sampled_from([0, 500, 1000])))
    return data


@st.composite
def rule_lists(draw, service_names, set_names, groups, hosts) -> Dict[str, Any]:
    lists: Dict[str, Any] = {}
    for direction, most in (("inbound", 5), ("outbound", 2), ("forward", 2)):
        count = draw(st.integers(0, most))
        if count:
            lists[direction] = [draw(rule(direction, service_names, set_names, groups, hosts)) for dummy in range(count)]
    return lists


@st.composite
def host_address_vars(draw) -> Dict[str, Any]:
    ipv4 = str(draw(ipv4_network()).network_address)
    ipv6 = draw(ipv6_network()).network_address
    shape = draw(st.sampled_from(["facts", "facts", "explicit", "ipv4-only"]))
    if shape == "facts":
        return {"ansible_host": ipv4, "ansible_default_ipv6": {"address": ipv6_text(draw, ipv6)}}
    if shape == "explicit":
        extra = str(draw(ipv4_network()).network_address)
        return {"ansible_host": "name.invalid", "fleetwall_host_addresses": [ipv4, ipv6_text(draw, ipv6), extra]}
    return {"ansible_host": ipv4}


@st.composite
def host_settings(draw, service_names, set_names, groups, hosts) -> Dict[str, Any]:
    settings: Dict[str, Any] = {}
    if draw(st.booleans()):
        default = {
            direction: draw(st.sampled_from(["accept", "drop", "reject"]))
            for direction in ("inbound", "outbound", "forward")
            if draw(st.booleans())
        }
        if draw(st.booleans()):
            default["log"] = draw(st.booleans())
        settings["fleetwall_default_policy"] = default
    if draw(st.integers(0, 2)) == 0:
        keys = ("loopback", "established", "drop_invalid", "antispoof", "icmpv6_essentials", "tcp_flag_sanity")
        settings["fleetwall_baseline"] = draw(
            st.one_of(st.booleans(), st.dictionaries(st.sampled_from(keys), st.booleans(), max_size=6))
        )
    if draw(st.integers(0, 3)) == 0:
        settings["fleetwall_host_rules"] = draw(rule_lists(service_names, set_names, groups, hosts))
    return settings


@st.composite
def fleets(draw) -> Dict[str, Any]:
    """inventory() keyword arguments for a random valid fleet of 1 to 3 hosts."""
    hosts = draw(st.lists(st.sampled_from(HOSTS), min_size=1, max_size=3, unique=True))
    groups: Dict[str, List[str]] = {"all": sorted(hosts), "ungrouped": []}
    for group in draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3, unique=True)):
        groups[group] = draw(st.lists(st.sampled_from(hosts), max_size=len(hosts), unique=True))
    group_names = sorted(groups)

    services: Dict[str, Any] = {}
    for index in range(draw(st.integers(0, 2))):
        entries = []
        for dummy in range(draw(st.integers(1, 3))):
            entries.append(draw(service_entry()))
        services["svc%d" % index] = entries
    service_names = set(BUILTIN_SERVICE_NAMES) | set(services)

    addresses: Dict[str, Any] = {}
    for index in range(draw(st.integers(0, 3))):
        # Each set may only use the sets before it: no loops.
        addresses["set%d" % index] = draw(address_list(set(addresses), group_names, hosts))
    set_names = set(addresses)

    policy: Dict[str, Any] = {}
    for group in draw(st.lists(st.sampled_from(group_names), max_size=3, unique=True)):
        policy[group] = draw(rule_lists(service_names, set_names, group_names, hosts))

    host_vars: Dict[str, Dict[str, Any]] = {}
    for host in hosts:
        host_vars[host] = draw(host_address_vars())
        host_vars[host].update(draw(host_settings(service_names, set_names, group_names, hosts)))
    return {"policy": policy, "addresses": addresses, "services": services or None, "host_vars": host_vars, "groups": groups}


def fleet_kwargs(example: Dict[str, Any]) -> Dict[str, Any]:
    """Drop None values: inventory() treats a missing argument as 'use the default'."""
    return {key: value for key, value in example.items() if value is not None}


def describe(example: Optional[Dict[str, Any]]) -> str:
    import json

    return json.dumps(example, indent=1, sort_keys=True, default=str)

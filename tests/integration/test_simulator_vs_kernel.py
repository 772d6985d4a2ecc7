"""simulate() decides every packet as the kernel does: same verdict, same rule.

Two namespaces, client and server, joined by a veth pair (see lab.py). The
client owns 32 IPv4 addresses from four /24s and 32 IPv6 addresses from four
/64s; the server runs a compiled policy with address sets and exceptions,
groups, services, port ranges, source ports, drop and reject rules,
priorities, ICMP types with codes, and interface matches that do and do not
fit its veth. Random packets go from the client to the server one at a time,
each with a 5-tuple never used before: TCP SYNs (a real connect()), UDP
datagrams, ICMP/ICMPv6 echo requests with varying codes, and hand-made ones
whose conntrack state the test knows (TCP segments with odd flags, ICMP
errors about no flow: INVALID; neighbour discovery with hop limit 255 or not:
UNTRACKED; GRE/ESP/AH/VRRP). The rule that decided a packet in the kernel is
the one whose packet counter went up in `iptables-save -c` (a terminal rule,
or the INPUT policy), with the byte count of exactly that packet; it must be
the rule simulate() names. Permanent neighbour entries keep ARP and neighbour
discovery off the link; a packet that is not alone in its counter delta
would be sent again with a new 5-tuple, and reported.

FLEETWALL_PACKETS (default 1000 per family) and FLEETWALL_PACKET_SEED set the
number of packets and the random seed.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import os
import random
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import FamilyRuleset
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, Verdict, simulate
from ansible_collections.fleetwall.iptables.tests.integration.lab import (
    SERVER_IF,
    Lab,
    Sender,
    build_lab,
    decisions,
    describe_decision,
    install,
    wait_for_decision,
    wait_until_quiet,
)
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

PACKETS = int(os.environ.get("FLEETWALL_PACKETS", "1000"))
SEED = int(os.environ.get("FLEETWALL_PACKET_SEED", "20251121"))
SERVER_V4 = ("10.200.0.1", "10.200.0.2")
SERVER_V6 = ("fd00:f00:ff::1", "fd00:f00:ff::2")
CLIENT_V4_NETS = ("10.1.1.", "10.1.2.", "10.2.0.", "10.3.7.")
CLIENT_V6_NETS = ("fd00:f00:1:1:", "fd00:f00:1:2:", "fd00:f00:2:1:", "fd00:f00:3:1:")
ADDRESSES_PER_FAMILY = 32
TCP_PORTS = (22, 80, 443, 3306, 5432, 7000, 7999, 8000, 8050, 8099, 8100, 8500, 8999, 9000, 9090)
UDP_PORTS = (53, 123, 5000, 5050, 5099, 5100, 6000, 6500, 6999)


# ---------------------------------------------------------------- the lab


def client_addresses(rng: random.Random) -> Tuple[List[str], List[str]]:
    ipv4: List[str] = []
    ipv6: List[str] = []
    per_net = ADDRESSES_PER_FAMILY // len(CLIENT_V4_NETS)
    for prefix in CLIENT_V4_NETS:
        ipv4 += [prefix + str(host) for host in rng.sample(range(1, 255), per_net)]
    for prefix in CLIENT_V6_NETS:
        identifiers: List[int] = []
        while len(identifiers) < per_net:
            identifier = rng.getrandbits(64)
            if identifier not in identifiers:
                identifiers.append(identifier)
        ipv6 += [prefix + ":".join("%x" % (iid >> shift & 0xFFFF) for shift in (48, 32, 16, 0)) for iid in identifiers]
    return ipv4, ipv6


def server_policy(ipv4: List[str], ipv6: List[str]) -> Dict[str, Any]:
    """inventory() arguments: a policy that uses every kind of match the lab can exercise."""
    blocked = [ipv4[1], ipv4[9], ipv4[30], ipv6[2], ipv6[17], ipv6[31]]
    addresses = {
        "lan": ["10.1.0.0/16", "fd00:f00:1::/48"],
        "lan_but": ["lan", "!10.1.2.0/25", "!fd00:f00:1:2::/65"],
        "partners": ["10.2.0.0/24", "!10.2.0.128/26", "fd00:f00:2::/48", "!fd00:f00:2:1:8000::/66"],
        "blocked": blocked,
    }
    inbound = [
        {"from": "blocked", "action": "drop", "priority": 10, "log": True, "comment": "blocked sources"},
        {"service": "ssh", "from": "lan_but"},
        {"proto": "tcp", "port": 22, "action": "reject", "priority": 900},
        {"service": ["http", "https"], "interface": SERVER_IF},
        {"proto": "tcp", "port": ["8000-8099", 9000, 9090], "from": "partners", "action": "reject", "reject_with": "tcp-reset"},
        {"proto": "tcp", "port": "8000-8999", "from": "group:clients"},
        {"proto": "tcp", "port": "8000-8999", "from": ["10.1.0.0/16", "!10.1.1.0/26", "fd00:f00:1::/48"], "action": "drop"},
        {"proto": "tcp", "port": "7000-7999", "interface": "!" + SERVER_IF},
        {"proto": "tcp", "port": "7000-7999", "interface": "fwsrv+", "to": [SERVER_V4[1], SERVER_V6[1]], "action": "reject"},
        {"service": "postgres", "interface": "nomatch0"},
        {"service": "mysql", "interface": "!nomatch0", "to": [SERVER_V4[0], SERVER_V6[0]]},
        {"proto": "udp", "port": [53, 123, "5000-5099"], "from": ["lan", "!10.1.1.128/25", "!fd00:f00:1:1:8000::/65"], "interface": "fwsrv+"},
        {"proto": "udp", "port": "6000-6999", "action": "reject", "reject_with": "admin-prohibited"},
        {"proto": "udp", "source_port": "1000-1999", "action": "drop", "priority": 400},
        {"proto": "udp", "to": [SERVER_V4[1], SERVER_V6[1]], "priority": 600, "from": "partners"},
        {"service": "ping", "from": "partners"},
        {"proto": "icmp", "icmp_type": "8/0", "to": SERVER_V4[1], "action": "reject", "reject_with": "host-unreachable"},
        {"proto": "icmp", "icmp_type": "echo-request", "from": "10.3.7.0/25", "action": "drop"},
        {"proto": "icmpv6", "icmp_type": "echo-request", "from": "fd00:f00:3::/48", "action": "drop"},
        {"proto": "icmpv6", "icmp_type": "128/0", "to": SERVER_V6[1], "action": "reject"},
        {"proto": "icmp", "icmp_type": "timestamp-request", "from": "lan"},
        {"proto": "icmp", "icmp_type": "3/3", "action": "reject"},
        {"service": ["gre", "vrrp"], "from": "partners"},
        {"proto": "esp", "from": "lan", "action": "drop"},
        {"proto": "ah", "from": ["lan", "!fd00:f00:1:2::/64"], "action": "reject"},
        {"from": "10.3.7.128/25", "action": "reject", "priority": 950},
        {"from": "fd00:f00:3:1:8000::/65", "action": "reject", "reject_with": "admin-prohibited", "priority": 950},
    ]
    hosts = {
        "server": {"fleetwall_host_addresses": list(SERVER_V4 + SERVER_V6),
                   "fleetwall_default_policy": {"inbound": "drop", "log": True},
                   "fleetwall_baseline": {"tcp_flag_sanity": True}},
        "client1": {"fleetwall_host_addresses": [ipv4[24], ipv6[3]]},
        "client2": {"fleetwall_host_addresses": [ipv4[11], ipv4[19], ipv6[20]]},
    }
    groups = {"all": ["server", "client1", "client2"], "ungrouped": [], "servers": ["server"], "clients": ["client1", "client2"]}
    return {"policy": {"servers": {"inbound": inbound}}, "addresses": addresses, "host_vars": hosts, "groups": groups}


def compile_server(kwargs: Dict[str, Any]) -> Dict[int, FamilyRuleset]:
    hostvars, groups = inventory(**kwargs)
    ruleset = FleetCompiler(hostvars, groups).compile_host("server")
    return {4: ruleset.ipv4, 6: ruleset.ipv6}


class PolicyLab(NamedTuple):
    lab: Lab
    ipv4: List[str]
    ipv6: List[str]
    used: set  # every 5-tuple sent so far: conntrack must see each packet as new


@pytest.fixture(scope="module")
def policy_lab(privileged: None) -> Iterator[PolicyLab]:
    ipv4, ipv6 = client_addresses(random.Random(SEED))
    namespaces: List[Namespace] = []
    try:
        for dummy in range(2):
            namespaces.append(Namespace.create())
        lab = build_lab(namespaces[0], namespaces[1], ipv4 + ipv6, SERVER_V4 + SERVER_V6)
        yield PolicyLab(lab, ipv4, ipv6, set())
    finally:
        for namespace in reversed(namespaces):
            namespace.delete()


@pytest.fixture(scope="module")
def sender(policy_lab: PolicyLab) -> Iterator[Sender]:
    process = Sender(policy_lab.lab.client)
    try:
        yield process
    finally:
        process.close()


# ---------------------------------------------------------------- packets


class Probe(NamedTuple):
    command: Dict[str, Any]
    packet: Packet
    length: int  # bytes the kernel counts: the IP packet


# What kind of packets each family sends, with weights.
KINDS = {
    4: {"tcp-syn": 34, "udp": 30, "icmp-echo": 12, "icmp-timestamp": 4, "icmp-error": 3, "tcp-flags": 9, "other": 8},
    6: {"tcp-syn": 34, "udp": 30, "icmp-echo": 12, "neighbour-discovery": 8, "icmp-error": 3, "tcp-flags": 8, "other": 5},
}
# Hand-made TCP segments, with the state conntrack gives them when they open
# no connection (nf_conntrack_tcp_loose=1: a bare ACK picks one up as NEW).
TCP_FLAG_STATES = {
    ("SYN",): "NEW",
    ("SYN", "URG"): "NEW",
    ("SYN", "PSH"): "NEW",
    ("ACK",): "NEW",
    ("PSH", "ACK"): "NEW",
    ("FIN", "PSH", "URG"): "INVALID",
    (): "INVALID",
    ("FIN", "SYN"): "INVALID",
    ("FIN",): "INVALID",
    ("RST",): "INVALID",
}
OTHER_PROTOCOLS = {"gre": 47, "esp": 50, "ah": 51, "vrrp": 112}


def _ports(rng: random.Random, kind: str) -> Tuple[int, int]:
    ports = UDP_PORTS if kind == "udp" else TCP_PORTS
    dport = rng.choice(ports) if rng.random() < 0.75 else rng.randrange(1, 65536)
    if rng.random() < 0.5 and dport in ports:
        dport = max(1, min(65535, dport + rng.choice((-1, 1)) * rng.randrange(0, 3)))
    sport = rng.randrange(1000, 2000) if rng.random() < 0.15 else rng.randrange(20000, 61000)
    return sport, dport


def random_probe(rng: random.Random, family: int, lab: PolicyLab) -> Probe:
    """A random packet from the client to the server, never the 5-tuple of an earlier one."""
    sources = lab.ipv4 if family == 4 else lab.ipv6
    destinations = SERVER_V4 if family == 4 else SERVER_V6
    ip_header = 20 if family == 4 else 40
    icmp_protocol = "icmp" if family == 4 else "ipv6-icmp"
    kinds = KINDS[family]
    while True:
        src, dst = rng.choice(sources), rng.choice(destinations)
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        base = {"src": src, "dst": dst}
        fields: Dict[str, Any] = {"chain": "INPUT", "source": src, "destination": dst, "in_interface": SERVER_IF}
        payload = rng.randrange(0, 64)
        if kind in ("tcp-syn", "udp", "tcp-flags"):
            sport, dport = _ports(rng, "udp" if kind == "udp" else "tcp")
            protocol = "udp" if kind == "udp" else "tcp"
            key: Tuple[Any, ...] = (protocol, src, sport, dst, dport)
            fields.update(protocol=protocol, source_port=sport, destination_port=dport)
            if kind == "tcp-flags":
                flags = rng.choice(sorted(TCP_FLAG_STATES))
                command = dict(base, proto="raw-tcp", sport=sport, dport=dport, flags=list(flags), payload=0)
                fields.update(tcp_flags=frozenset(flags), state=TCP_FLAG_STATES[flags])
                length = ip_header + 20
            else:
                command = dict(base, proto=protocol, sport=sport, dport=dport, payload=payload)
                # A Linux SYN carries 20 bytes of options: MSS, SACK permitted, timestamps, window scale.
                length = ip_header + (40 if kind == "tcp-syn" else 8 + payload)
        elif kind in ("icmp-echo", "icmp-timestamp"):
            icmp_type = 13 if kind == "icmp-timestamp" else 8 if family == 4 else 128
            icmp_code = 0 if rng.random() < 0.8 else rng.randrange(1, 256)
            icmp_id = rng.randrange(1, 65536)
            key = ("icmp", src, dst, icmp_type, icmp_code, icmp_id)
            if kind == "icmp-timestamp":
                payload = 12
            command = dict(base, proto="icmp", icmp_type=icmp_type, icmp_code=icmp_code, icmp_id=icmp_id, payload=payload)
            fields.update(protocol=icmp_protocol, icmp_type=icmp_type, icmp_code=icmp_code)
            length = ip_header + 8 + payload
        elif kind == "icmp-error":
            # Destination unreachable (IPv4) / packet too big (IPv6) about a flow that
            # never existed: conntrack finds nothing it relates to, so it is INVALID.
            icmp_type, icmp_code, second_word = (3, 3, 0) if family == 4 else (2, 0, 1280)
            if family == 4:
                inner = bytes.fromhex("4500001c00004000401100000000000000000000") + b"\x00\x07\x00\x07\x00\x08\x00\x00"
                inner = inner[:12] + ipaddress_packed(dst) + ipaddress_packed(src) + inner[20:]
            else:
                inner = bytes.fromhex("6000000000081140") + ipaddress_packed(dst) + ipaddress_packed(src)
                inner += b"\x00\x07\x00\x07\x00\x08\x00\x00"
            key = ("icmp-error", src, dst, rng.random())
            command = dict(base, proto="icmp", icmp_type=icmp_type, icmp_code=icmp_code, icmp_id=second_word >> 16,
                           icmp_seq=second_word & 0xFFFF, payload_hex=inner.hex())
            fields.update(protocol=icmp_protocol, icmp_type=icmp_type, icmp_code=icmp_code, state="INVALID")
            length = ip_header + 8 + len(inner)
        elif kind == "neighbour-discovery":
            # Neighbour discovery is never tracked; only hop limit 255 is real ND.
            icmp_type = rng.choice((133, 135, 136))
            hop_limit = rng.choice((255, 255, 64, 1))
            key = ("nd", src, dst, rng.random())
            body = b"" if icmp_type == 133 else ipaddress_packed(dst)
            command = dict(base, proto="icmp", icmp_type=icmp_type, icmp_code=0, icmp_id=0, icmp_seq=0,
                           hop_limit=hop_limit, payload_hex=body.hex())
            fields.update(protocol=icmp_protocol, icmp_type=icmp_type, icmp_code=0, hop_limit=hop_limit, state="UNTRACKED")
            length = ip_header + 8 + len(body)
        else:
            name = rng.choice(sorted(OTHER_PROTOCOLS))
            # No reply ever comes back, so every packet of a (source, destination) pair is NEW.
            key = (name, src, dst, rng.random())
            command = dict(base, proto="raw", protocol=OTHER_PROTOCOLS[name], payload=payload + 8)
            fields.update(protocol=name)
            length = ip_header + payload + 8
        if key not in lab.used:
            lab.used.add(key)
            return Probe(command, Packet(**fields), length)


def ipaddress_packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


class Comparison(NamedTuple):
    sent: int
    seen: Dict[Tuple[str, Optional[int]], int]  # (verdict, INPUT rule index or None) -> packets
    disagreements: List[str]
    noisy: List[str]


def compare(policy_lab: PolicyLab, sender: Sender, ruleset: FamilyRuleset, count: int, rng: random.Random) -> Comparison:
    """Install the ruleset, send `count` random packets, compare every decision."""
    lab, family = policy_lab.lab, ruleset.family
    install(lab, ruleset)
    disagreements: List[str] = []
    noisy: List[str] = []
    seen: Dict[Tuple[str, Optional[int]], int] = collections.Counter()
    before = wait_until_quiet(lab, family)
    sent = 0
    while sent < count:
        probe = random_probe(rng, family, policy_lab)
        sender.send(probe.command)
        before, found = wait_for_decision(lab, ruleset, before)
        if len(found) != 1 or found[0].bytes != probe.length:
            # Not this packet alone (or not at all): say so, and send another one instead.
            noisy.append("%s -> %s (expected %d bytes)" % (probe.command, found, probe.length))
            assert len(noisy) <= max(10, count // 50), "too many packets could not be told apart:\n" + "\n".join(noisy)
            before = wait_until_quiet(lab, family)
            continue
        sent += 1
        kernel = found[0]
        expected: Verdict = simulate(ruleset, probe.packet)
        seen[(kernel.verdict, kernel.rule_index)] += 1
        if (expected.verdict, expected.rule_index) != (kernel.verdict, kernel.rule_index):
            disagreements.append(
                "packet %s\n  as simulated: %s\n  simulator: %s\n  kernel:    %s"
                % (json.dumps(probe.command), probe.packet, describe_decision(ruleset, expected.verdict, expected.rule_index),
                   describe_decision(ruleset, kernel.verdict, kernel.rule_index))
            )
    late = decisions(ruleset, before, wait_until_quiet(lab, family))
    assert not late, "packets were counted after the last one was decided: %s" % (late,)
    if noisy:
        print("IPv%d: %d packet(s) sent again because other traffic moved the counters:\n%s" % (family, len(noisy), "\n".join(noisy)))
    return Comparison(sent, seen, disagreements, noisy)


def summary(seen: Dict[Tuple[str, Optional[int]], int]) -> str:
    return ", ".join(
        "%s %s: %d" % (verdict, "policy" if index is None else "#%d" % index, packets)
        for (verdict, index), packets in sorted(seen.items(), key=lambda item: (item[0][1] is None, item[0][1] or 0))
    )


@pytest.mark.parametrize("family", [4, 6])
def test_simulator_names_the_rule_the_kernel_used(policy_lab: PolicyLab, sender: Sender, family: int) -> None:
    ruleset = compile_server(server_policy(policy_lab.ipv4, policy_lab.ipv6))[family]
    result = compare(policy_lab, sender, ruleset, PACKETS, random.Random("%d-%d" % (SEED, family)))
    print("IPv%d: %d packets; deciding rules: %s" % (family, result.sent, summary(result.seen)))
    assert not result.disagreements, "%d of %d packets decided differently:\n%s" % (
        len(result.disagreements), result.sent, "\n".join(result.disagreements[:25]))
    # The traffic must have exercised the ruleset, not just a few rules.
    assert {verdict for verdict, index in result.seen} == {"ACCEPT", "DROP", "REJECT"}, result.seen
    assert ("DROP", None) in result.seen and len(result.seen) >= 20, result.seen


# ---------------------------------------------------------------- generated policies

GENERATED_POLICIES = int(os.environ.get("FLEETWALL_GENERATED_POLICIES", "10"))
PACKETS_PER_GENERATED_POLICY = int(os.environ.get("FLEETWALL_PACKETS_PER_GENERATED_POLICY", "60"))
INTERFACES = (None, None, None, None, SERVER_IF, "fwsrv+", "fw+", "+", "!" + SERVER_IF, "!nomatch0", "!nomatch+", "nomatch0", "!+")


def random_network(rng: random.Random, addresses: List[str]) -> ipaddress._BaseNetwork:
    address = ipaddress.ip_address(rng.choice(addresses))
    prefix = rng.randrange(8, 33) if address.version == 4 else rng.randrange(30, 129)
    return ipaddress.ip_network((address, prefix), strict=False)


def random_sources(rng: random.Random, ipv4: List[str], ipv6: List[str], set_names: List[str]) -> List[str]:
    items: List[str] = []
    for dummy in range(rng.randrange(1, 4)):
        kind = rng.choice(["network", "network", "network", "group", "host", "set"] if set_names else ["network", "group", "host"])
        if kind == "network":
            network = random_network(rng, rng.choice((ipv4, ipv6)))
            items.append(str(network))
            for dummy in range(rng.choice((0, 0, 1, 2))):
                inside = [address for address in (ipv4 + ipv6) if ipaddress.ip_address(address) in network]
                cut = random_network(rng, inside)
                if cut.prefixlen > network.prefixlen:
                    items.append("!" + str(cut))
        elif kind == "group":
            items.append(rng.choice(["group:clients", "!group:clients"]))
        elif kind == "host":
            items.append(rng.choice(["host:client1", "host:client2", "!host:client2"]))
        else:
            items.append(rng.choice(set_names))
    return items


def random_matches(rng: random.Random) -> Dict[str, Any]:
    kind = rng.choice(["none", "tcp", "tcp", "udp", "udp", "service", "icmp", "icmpv6", "other"])
    if kind == "none":
        return {}
    if kind == "service":
        return {"service": rng.sample(["ssh", "http", "https", "dns", "ntp", "postgres", "mysql", "ping", "gre", "vrrp", "ipsec"],
                                      rng.randrange(1, 4))}
    if kind in ("tcp", "udp"):
        ports = TCP_PORTS if kind == "tcp" else UDP_PORTS
        data: Dict[str, Any] = {"proto": kind}
        if rng.random() < 0.8:
            chosen = []
            for dummy in range(rng.randrange(1, 6)):
                low = rng.choice(ports)
                chosen.append(low if rng.random() < 0.5 else "%d-%d" % (low, low + rng.choice((1, 2, 50, 500))))
            data["port"] = chosen
        if rng.random() < 0.2:
            data["source_port"] = rng.choice(["1000-1999", [1000, "1500-1600", 1999], "20000-40000"])
        return data
    if kind == "icmp":
        return {"proto": "icmp", "icmp_type": rng.choice(["echo-request", "8/0", 8, "timestamp-request", "3/3", "any"])}
    if kind == "icmpv6":
        return {"proto": "icmpv6", "icmp_type": rng.choice(["echo-request", "128/0", 135, "neighbour-advertisement", 133, "2"])}
    return {"proto": rng.choice(["gre", "esp", "ah", "vrrp"])}


def random_policy(rng: random.Random, ipv4: List[str], ipv6: List[str]) -> Dict[str, Any]:
    addresses: Dict[str, Any] = {}
    for index in range(rng.randrange(0, 3)):
        addresses["s%d" % index] = random_sources(rng, ipv4, ipv6, sorted(addresses))
    inbound = []
    for dummy in range(rng.randrange(4, 13)):
        rule = random_matches(rng)
        # A rule without protocol and source would decide nearly every packet: rare, and late.
        if rng.random() < 0.6 or not rule:
            rule["from"] = random_sources(rng, ipv4, ipv6, sorted(addresses))
        if rng.random() < 0.2:
            rule["to"] = rng.sample(SERVER_V4 + SERVER_V6, rng.randrange(1, 4))
        interface = rng.choice(INTERFACES)
        if interface:
            rule["interface"] = interface
        rule["action"] = rng.choice(["accept", "accept", "drop", "reject"])
        if rule["action"] == "reject" and rng.random() < 0.5:
            tcp_only = rule.get("proto") == "tcp"
            rule["reject_with"] = rng.choice(["tcp-reset"] * 2 if tcp_only else ["admin-prohibited", "host-unreachable", "net-unreachable"])
        if rng.random() < 0.2:
            rule["log"] = True
        if rng.random() < 0.4:
            rule["priority"] = rng.randrange(0, 1001)
        inbound.append(rule)
    server = {
        "fleetwall_host_addresses": list(SERVER_V4 + SERVER_V6),
        "fleetwall_default_policy": {"inbound": rng.choice(["drop", "reject", "accept"]), "log": rng.random() < 0.5},
        "fleetwall_baseline": {key: rng.random() < 0.7 for key in ("established", "drop_invalid", "icmpv6_essentials")},
    }
    server["fleetwall_baseline"]["tcp_flag_sanity"] = rng.random() < 0.5
    hosts = {
        "server": server,
        "client1": {"fleetwall_host_addresses": rng.sample(ipv4, 2) + rng.sample(ipv6, 2)},
        "client2": {"fleetwall_host_addresses": rng.sample(ipv4, 3) + rng.sample(ipv6, 1)},
    }
    groups = {"all": ["server", "client1", "client2"], "ungrouped": [], "servers": ["server"], "clients": ["client1", "client2"]}
    return {"policy": {"servers": {"inbound": inbound}}, "addresses": addresses, "host_vars": hosts, "groups": groups}


@pytest.mark.parametrize("family", [4, 6])
def test_simulator_names_the_rule_the_kernel_used_for_generated_policies(policy_lab: PolicyLab, sender: Sender, family: int) -> None:
    rng = random.Random("%d-generated-%d" % (SEED, family))
    disagreements: List[str] = []
    for number in range(GENERATED_POLICIES):
        kwargs = random_policy(rng, policy_lab.ipv4, policy_lab.ipv6)
        ruleset = compile_server(kwargs)[family]
        result = compare(policy_lab, sender, ruleset, PACKETS_PER_GENERATED_POLICY, rng)
        print("IPv%d policy %d: %d packets; deciding rules: %s" % (family, number, result.sent, summary(result.seen)))
        if result.disagreements:
            disagreements.append("policy %d: %s\n%s" % (number, json.dumps(kwargs), "\n".join(result.disagreements[:10])))
    assert not disagreements, "\n\n".join(disagreements)

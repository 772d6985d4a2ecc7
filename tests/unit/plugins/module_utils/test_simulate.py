"""The simulator's verdicts on compiled rulesets, and the rule it names."""

from __future__ import annotations

import pytest

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Chain, FamilyRuleset, Rule, Table
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.packets import packet_from_dict
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory


def verdict(host: str, packet: dict, **kwargs):
    hostvars, groups = inventory(**kwargs)
    ruleset = FleetCompiler(hostvars, groups).compile_host(host)
    parsed = packet_from_dict(packet)
    return simulate(ruleset.family(parsed.family), parsed)


def test_web_host_may_reach_db_on_postgres_and_the_db_rule_decides():
    result = verdict("db1", {"source": "10.0.1.1", "destination": "10.0.2.1", "protocol": "tcp", "port": 5432})
    assert (result.verdict, result.comment) == ("ACCEPT", "fleetwall_policy.db.inbound[0]: app tier")


def test_bastion_may_not_reach_db_on_postgres_and_the_policy_decides():
    result = verdict("db1", {"source": "10.0.0.2", "destination": "10.0.2.1", "protocol": "tcp", "port": 5432})
    assert (result.verdict, result.rule_index) == ("DROP", None)


def test_ipv6_packet_is_judged_by_the_ipv6_ruleset():
    result = verdict("db1", {"source": "fd00::1:2", "destination": "fd00::2:1", "protocol": "tcp", "port": 5432})
    assert result.verdict == "ACCEPT"


def test_established_reply_is_accepted_by_the_baseline():
    packet = {"source": "192.0.2.9", "destination": "10.0.2.1", "protocol": "tcp", "port": 40000, "state": "established"}
    assert verdict("db1", packet).comment == "fleetwall baseline: established"


def test_neighbour_solicitation_passes_a_default_drop_ipv6_input():
    packet = {"source": "fe80::1", "destination": "ff02::1:ff00:1", "protocol": "icmpv6",
              "icmp_type": "neighbour-solicitation", "hop_limit": 255, "state": "invalid"}
    assert verdict("db1", packet).verdict == "ACCEPT"


def test_loopback_address_arriving_on_eth0_is_dropped_as_spoofed():
    packet = {"source": "127.0.0.1", "destination": "127.0.0.1", "protocol": "tcp", "port": 22, "in_interface": "eth0"}
    assert verdict("db1", packet).comment == "fleetwall baseline: loopback anti-spoofing"


def test_reject_rule_gives_reject():
    policy = {"web": {"inbound": [{"service": "http", "action": "reject"}]}}
    result = verdict("web1", {"source": "192.0.2.1", "destination": "10.0.1.1", "protocol": "tcp", "port": 80},
                     policy=policy)
    assert result.verdict == "REJECT"


def test_log_rule_is_recorded_but_does_not_decide():
    policy = {"web": {"inbound": [{"service": "http", "log": True}]}}
    result = verdict("web1", {"source": "192.0.2.1", "destination": "10.0.1.1", "protocol": "tcp", "port": 80},
                     policy=policy)
    assert result.verdict == "ACCEPT" and len(result.logged_by) == 1


@pytest.mark.parametrize("interface, matches", [("eth0", True), ("eth1", True), ("wlan0", False)])
def test_interface_with_plus_matches_by_prefix(interface, matches):
    rule = Rule(target="ACCEPT", in_interface="eth+")
    ruleset = FamilyRuleset(4, (Table("filter", (Chain("INPUT", "DROP", (rule,)),)),))
    packet = Packet(chain="INPUT", source="192.0.2.1", destination="192.0.2.2", in_interface=interface)
    assert (simulate(ruleset, packet).verdict == "ACCEPT") is matches


def test_icmp_type_with_code_matches_only_that_code():
    rule = Rule(target="ACCEPT", protocol="icmp", icmp_type="3/4")
    ruleset = FamilyRuleset(4, (Table("filter", (Chain("INPUT", "DROP", (rule,)),)),))
    fragmentation_needed = Packet("INPUT", "192.0.2.1", "192.0.2.2", protocol="icmp", icmp_type=3, icmp_code=4)
    port_unreachable = fragmentation_needed._replace(icmp_code=3)
    assert simulate(ruleset, fragmentation_needed).verdict == "ACCEPT"
    assert simulate(ruleset, port_unreachable).verdict == "DROP"


def test_packet_of_the_wrong_family_is_refused():
    hostvars, groups = inventory()
    ruleset = FleetCompiler(hostvars, groups).compile_host("db1")
    with pytest.raises(ValueError, match="IPv6 packet cannot be checked against the IPv4 ruleset"):
        simulate(ruleset.ipv4, packet_from_dict({"source": "fd00::1", "destination": "fd00::2"}))


@pytest.mark.parametrize("packet, message", [
    ({"destination": "10.0.0.1"}, "packet.source: required"),
    ({"source": "10.0.0.300", "destination": "10.0.0.1"}, "packet.source: not an IP address: '10.0.0.300'"),
    ({"source": "10.0.0.1", "destination": "fd00::1"}, "packet: source and destination are of different address families"),
    ({"source": "10.0.0.1", "destination": "10.0.0.2", "port": 70000}, "packet.port: port 70000 is out of range"),
    ({"source": "10.0.0.1", "destination": "10.0.0.2", "proto": "tcp"}, "packet: unknown field(s) proto"),
    ({"source": "10.0.0.1", "destination": "10.0.0.2", "direction": "in"}, "packet.direction: must be inbound, outbound or forward, got 'in'"),
    ({"source": "10.0.0.1", "destination": "10.0.0.2", "protocol": "tpc"}, "packet.protocol: unknown protocol 'tpc' (did you mean 'tcp'?)"),
    ({"source": "10.0.0.1", "destination": "10.0.0.2", "port": "80-90"}, "packet.port: a packet has one port, got the range '80-90'"),
    ({"source": "10.0.0.1", "destination": "10.0.0.2", "icmp_type": "echo-reqest"},
     "packet.icmp_type: unknown ICMP type 'echo-reqest' (did you mean 'echo-request'?)"),
    ({"source": "10.0.0.1", "destination": "10.0.0.2", "tcp_flags": 5}, "packet.tcp_flags: must be a list of flags or a comma-separated string, got integer"),
])
def test_malformed_packet_is_refused_with_its_field_named(packet, message):
    with pytest.raises(ValueError) as error:
        packet_from_dict(packet)
    assert str(error.value).startswith(message)


def test_a_packet_reads_protocol_port_and_icmp_type_as_the_policy_does():
    packet = packet_from_dict({"source": "fd00::1", "destination": "fd00::2", "protocol": "ICMP", "icmp_type": "port-unreachable"})
    assert (packet.protocol, packet.icmp_type, packet.icmp_code) == ("ipv6-icmp", 1, 4)
    assert packet_from_dict({"source": "10.0.0.1", "destination": "10.0.0.2", "protocol": "tcp", "port": " 443 "}).destination_port == 443

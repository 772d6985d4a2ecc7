"""Corner cases where simulate() once disagreed with the kernel, each checked against both.

Every case restores a tiny ruleset on the server, sends one packet from the
client, reads the deciding rule from the counters, and asserts that
simulate() names the same verdict and rule.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Chain, FamilyRuleset, Rule, Table
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate
from ansible_collections.fleetwall.iptables.tests.integration.lab import (
    SERVER_IF,
    Lab,
    Sender,
    build_lab,
    install,
    kernel_decision,
)
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace

CLIENT = {4: "10.9.0.2", 6: "fd00:9::2"}
SERVER = {4: "10.9.0.1", 6: "fd00:9::1"}


def ruleset(family: int, rules: List[Rule], policy: str = "DROP") -> FamilyRuleset:
    chains = (Chain("INPUT", policy, tuple(rules)), Chain("FORWARD", "DROP", ()), Chain("OUTPUT", "ACCEPT", ()))
    return FamilyRuleset(family, (Table("filter", chains),))


@pytest.fixture(scope="module")
def mini_lab(privileged: None) -> Iterator[Tuple[Lab, Sender]]:
    namespaces: List[Namespace] = []
    sender: Optional[Sender] = None
    try:
        for dummy in range(2):
            namespaces.append(Namespace.create())
        lab = build_lab(namespaces[0], namespaces[1], list(CLIENT.values()), list(SERVER.values()))
        sender = Sender(lab.client)
        yield lab, sender
    finally:
        if sender is not None:
            sender.close()
        for namespace in reversed(namespaces):
            namespace.delete()


def assert_simulator_agrees(lab: Lab, sender: Sender, family_ruleset: FamilyRuleset, command: dict, packets: List[Packet]):
    install(lab, family_ruleset)
    kernel = kernel_decision(lab, sender, family_ruleset, command)
    chain = family_ruleset.table("filter").chain("INPUT")
    for packet in packets:
        verdict = simulate(family_ruleset, packet)
        assert (verdict.verdict, verdict.rule_index) == (kernel.verdict, kernel.rule_index), (
            "simulate(%s) says %s by rule %s, the kernel %s by rule %s (rules: %s)"
            % (packet, verdict.verdict, verdict.rule_index, kernel.verdict, kernel.rule_index,
               [render_rule("INPUT", rule) for rule in chain.rules])
        )


def udp_probe(family: int, dport: int = 5000) -> Tuple[dict, Packet]:
    command = {"proto": "udp", "src": CLIENT[family], "dst": SERVER[family], "sport": 40000 + dport % 1000 + family,
               "dport": dport, "payload": 8}
    packet = Packet(chain="INPUT", source=CLIENT[family], destination=SERVER[family], protocol="udp",
                    source_port=command["sport"], destination_port=dport, in_interface=SERVER_IF)
    return command, packet


@pytest.mark.parametrize("family", [4, 6])
def test_plus_interface_matches_every_packet_and_negated_plus_none(mini_lab, family: int) -> None:
    """iptables-save drops "-i +" (it matches everything) and keeps "! -i +" (it matches nothing),
    also for a simulated packet that names no interface."""
    lab, sender = mini_lab
    rules = [Rule("DROP", in_interface="+", in_interface_negated=True), Rule("ACCEPT", in_interface="+")]
    command, packet = udp_probe(family, 5001)
    assert_simulator_agrees(lab, sender, ruleset(family, rules), command, [packet, packet._replace(in_interface=None)])


def test_ipv4_icmp_type_255_is_any_icmp_type(mini_lab) -> None:
    """ip_tables reads IPv4 ICMP type 255 as "any" (and iptables-save prints it so)."""
    lab, sender = mini_lab
    rules = [Rule("REJECT", protocol="icmp", icmp_type="255/7", reject_with="icmp-port-unreachable")]
    command = {"proto": "icmp", "src": CLIENT[4], "dst": SERVER[4], "icmp_type": 8, "icmp_code": 0, "icmp_id": 4242}
    packet = Packet(chain="INPUT", source=CLIENT[4], destination=SERVER[4], protocol="icmp", icmp_type=8,
                    in_interface=SERVER_IF)
    assert_simulator_agrees(lab, sender, ruleset(4, rules, policy="ACCEPT"), command, [packet])


@pytest.mark.parametrize("family", [4, 6])
def test_authentication_header_is_the_protocol_iptables_nft_matches(mini_lab, family: int) -> None:
    """With the nf_tables backend, "-p ah" matches AH packets in IPv6 too: the AH
    header stops the search for the upper-layer protocol (IP6_FH_F_AUTH). The
    legacy ip6tables backend skips AH and would match the UDP inside instead."""
    lab, sender = mini_lab
    rules = [Rule("DROP", protocol="udp"), Rule("REJECT", protocol="ah", reject_with="icmp-port-unreachable"
                                                if family == 4 else "icmp6-port-unreachable")]
    # AH: next header UDP, length (24 bytes / 4) - 2, SPI, sequence, 12 bytes of ICV; then a UDP header.
    ah = bytes([17, 4, 0, 0]) + (0x1000).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes(12)
    udp = (5000).to_bytes(2, "big") + (5000).to_bytes(2, "big") + (8).to_bytes(2, "big") + bytes(2)
    command = {"proto": "raw", "src": CLIENT[family], "dst": SERVER[family], "protocol": 51, "payload_hex": (ah + udp).hex()}
    packet = Packet(chain="INPUT", source=CLIENT[family], destination=SERVER[family], protocol="ah", in_interface=SERVER_IF)
    assert_simulator_agrees(lab, sender, ruleset(family, rules), command, [packet])

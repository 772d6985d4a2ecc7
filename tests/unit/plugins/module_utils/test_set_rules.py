"""Rules that match an ipset address set: rendered as iptables-save prints them, read
back, and simulated with the kernel's most-specific-entry membership."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import SetIndex, address_set
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Chain, FamilyRuleset, Rule, Table
from ansible_collections.fleetwall.iptables.plugins.module_utils.parse import RulesetTextError, parse_rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate

WEB = address_set("fw4-group:web", 4, ["10.0.1.0/24", "10.0.1.70/32"], ["10.0.1.64/26"])
POSTGRES = Rule("ACCEPT", protocol="tcp", destination_ports=("5432",), source_set=WEB.name, comment="db")
NOT_WEB = Rule("DROP", source_set=WEB.name, source_set_negated=True, destination_set="fw4-self")


def ruleset(*rules: Rule, sets=(WEB,)) -> FamilyRuleset:
    chains = (Chain("INPUT", "DROP", tuple(rules)), Chain("FORWARD", "DROP", ()), Chain("OUTPUT", "ACCEPT", ()))
    return FamilyRuleset(4, (Table("filter", chains),), tuple(sets))


def postgres_from(source: str) -> Packet:
    return Packet("INPUT", source, "10.0.2.1", "tcp", 40000, 5432)


def test_a_set_match_is_rendered_after_the_port_match_as_iptables_save_prints_it() -> None:
    assert render_rule("INPUT", POSTGRES) == (
        '-A INPUT -p tcp -m tcp --dport 5432 -m set --match-set fw4-group:web src -m comment --comment db -j ACCEPT'
    )


def test_a_negated_set_and_a_destination_set_are_two_set_matches() -> None:
    assert render_rule("INPUT", NOT_WEB) == "-A INPUT -m set ! --match-set fw4-group:web src -m set --match-set fw4-self dst -j DROP"


@pytest.mark.parametrize("rule", [POSTGRES, NOT_WEB], ids=["source set", "negated source and destination set"])
def test_a_rendered_set_rule_reads_back_as_the_same_rule(rule: Rule) -> None:
    assert parse_rule(render_rule("INPUT", rule)) == ("INPUT", rule)


def test_a_set_match_without_direction_is_refused() -> None:
    with pytest.raises(RulesetTextError, match="src or dst"):
        parse_rule("-A INPUT -m set --match-set fw4-x -j ACCEPT")


@pytest.mark.parametrize(
    "source, member",
    [("10.0.1.5", True), ("10.0.1.65", False), ("10.0.1.70", True), ("10.0.2.9", False)],
    ids=["member", "inside the nomatch exception", "more specific member inside the exception", "outsider"],
)
def test_set_membership_is_decided_by_the_most_specific_entry(source: str, member: bool) -> None:
    assert (ipaddress.ip_address(source) in SetIndex(WEB)) is member


def test_an_address_of_the_other_family_is_never_a_member() -> None:
    assert ipaddress.ip_address("fd00::1") not in SetIndex(WEB)


def test_the_simulator_accepts_a_member_by_the_set_rule() -> None:
    assert simulate(ruleset(POSTGRES), postgres_from("10.0.1.5")).rule_index == 0


def test_the_simulator_leaves_an_excepted_address_to_the_policy() -> None:
    assert simulate(ruleset(POSTGRES), postgres_from("10.0.1.65")).verdict == "DROP"


def test_a_negated_set_matches_outsiders() -> None:
    rule = Rule("REJECT", source_set=WEB.name, source_set_negated=True, reject_with="icmp-port-unreachable")
    assert simulate(ruleset(rule, POSTGRES), postgres_from("10.0.2.9")).verdict == "REJECT"


def test_a_rule_naming_a_set_the_ruleset_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not define"):
        simulate(ruleset(POSTGRES, sets=()), postgres_from("10.0.1.5"))


def test_a_hundred_thousand_member_set_holds_its_last_member_and_not_the_next_address() -> None:
    members = ["10.%d.%d.%d/32" % (index >> 16, (index >> 8) & 255, index & 255) for index in range(100_000)]
    blocklist = address_set("fw4-blocklist", 4, members)
    rules = ruleset(Rule("REJECT", source_set=blocklist.name, reject_with="icmp-port-unreachable"), sets=(blocklist,))
    # Member 99,999 is 10.1.134.159; 10.1.134.160 would be the 100,001st.
    verdicts = [simulate(rules, Packet("INPUT", source, "10.200.0.1", "udp", 1, 2)).verdict for source in ("10.1.134.159", "10.1.134.160")]
    assert verdicts == ["REJECT", "DROP"]

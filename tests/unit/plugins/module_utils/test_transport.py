"""A compiled ruleset as plain data: what comes back from ruleset_to_dict, and what ruleset_from_dict refuses."""

from __future__ import annotations

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import address_set
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Chain, FamilyRuleset, HostRuleset, Rule, Table
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict, ruleset_to_dict

WEB = address_set("fw4-group:web", 4, ["10.0.0.0/24", "10.0.1.2/32"])


def family(number: int, source_set=None, sets=()) -> FamilyRuleset:
    rule = Rule(target="ACCEPT", protocol="tcp", destination_ports=("22",), source_set=source_set)
    chains = (Chain("INPUT", "DROP", (rule,)), Chain("FORWARD", "DROP", ()), Chain("OUTPUT", "ACCEPT", ()))
    return FamilyRuleset(number, (Table("filter", chains),), sets)


WITH_SETS = HostRuleset("web1", family(4, "fw4-group:web", (WEB,)), family(6), ("a warning",))


def test_a_ruleset_with_sets_and_warnings_reads_back_equal():
    assert ruleset_from_dict(ruleset_to_dict(WITH_SETS)) == WITH_SETS


def test_a_ruleset_without_sets_travels_without_an_ipsets_key():
    assert "ipsets" not in ruleset_to_dict(HostRuleset("web1", family(4), family(6)))


def test_something_other_than_a_mapping_is_refused_naming_its_type():
    with pytest.raises(ValueError, match="must be a mapping, got str"):
        ruleset_from_dict("*filter")


def test_a_mapping_without_the_families_is_refused_naming_what_is_missing():
    with pytest.raises(ValueError, match=r"missing ipv4, ipv6\); pass the output of fleetwall.iptables.compile_ruleset"):
        ruleset_from_dict({"host": "web1"})


def test_a_family_that_is_not_text_is_refused_naming_the_family():
    data = dict(ruleset_to_dict(WITH_SETS), ipv6=["*filter"])
    with pytest.raises(ValueError, match="^ruleset.ipv6: must be iptables-restore text, got list$"):
        ruleset_from_dict(data)


def test_an_unreadable_rule_is_refused_naming_the_family_and_line():
    data = dict(ruleset_to_dict(WITH_SETS), ipv6="*filter\n-A INPUT -j\nCOMMIT\n")
    with pytest.raises(ValueError, match="^ruleset.ipv6: line 2: "):
        ruleset_from_dict(data)


def test_warnings_that_are_not_a_list_are_refused():
    data = dict(ruleset_to_dict(WITH_SETS), warnings="a warning")
    with pytest.raises(ValueError, match="^ruleset.warnings: must be a list$"):
        ruleset_from_dict(data)


def test_sets_that_are_not_text_are_refused():
    data = dict(ruleset_to_dict(WITH_SETS), ipsets={"fw4-group:web": []})
    with pytest.raises(ValueError, match="^ruleset.ipsets: must be ipset text, got dict$"):
        ruleset_from_dict(data)

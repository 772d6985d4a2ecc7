"""The IR's lookups: a chain of a table and a table of a family by name, a family of a host by number."""

from __future__ import annotations

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Chain, FamilyRuleset, HostRuleset, Rule, Table

SSH = Rule(target="ACCEPT", protocol="tcp", destination_ports=("22",))
FILTER = Table("filter", (Chain("INPUT", "DROP", (SSH,)), Chain("FORWARD", "DROP", ()), Chain("OUTPUT", "ACCEPT", ())))
IPV4 = FamilyRuleset(4, (FILTER,))
IPV6 = FamilyRuleset(6, ())


def test_a_table_finds_its_chain_by_name():
    assert FILTER.chain("INPUT").rules == (SSH,)


def test_a_chain_the_table_does_not_hold_is_a_key_error():
    with pytest.raises(KeyError, match="FWL-INPUT"):
        FILTER.chain("FWL-INPUT")


def test_a_family_finds_its_table_by_name():
    assert IPV4.table("filter") is FILTER


def test_a_table_the_family_does_not_hold_is_a_key_error():
    with pytest.raises(KeyError, match="nat"):
        IPV4.table("nat")


def test_a_host_gives_each_family_by_its_number():
    assert HostRuleset("web1", IPV4, IPV6).family(6) is IPV6


def test_a_host_refuses_a_family_that_is_neither_4_nor_6():
    with pytest.raises(ValueError, match="family must be 4 or 6"):
        HostRuleset("web1", IPV4, IPV6).family(5)

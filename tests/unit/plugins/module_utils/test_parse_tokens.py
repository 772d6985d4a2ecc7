"""The fast paths of parse.py give exactly what shlex and ipaddress give."""

from __future__ import annotations

import ipaddress
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.fleetwall.iptables.plugins.module_utils.parse import RulesetTextError, is_network, split_rule

PIECES = st.sampled_from(['-A', 'INPUT', ' ', '  ', '\t', '"', "'", '\\', 'a b', '--comment', '"x y"', '""', '\u2028',
                          '\u00a0', '\x1c', 'é', '-j', 'ACCEPT', '#'])


@settings(max_examples=2000, derandomize=True, database=None, deadline=None)
@given(st.lists(PIECES, max_size=12).map("".join))
def test_rule_lines_split_exactly_as_shlex_splits_them(line):
    try:
        expected = shlex.split(line)
    except ValueError:
        with pytest.raises(RulesetTextError):
            split_rule(line)
    else:
        assert split_rule(line) == expected


def test_a_rendered_comment_is_one_token():
    assert split_rule('-A INPUT -m comment --comment "fleetwall_policy.all.inbound[0]: app tier" -j ACCEPT')[5] == (
        "fleetwall_policy.all.inbound[0]: app tier")


def valid(text: str) -> bool:
    try:
        ipaddress.ip_network(text)
    except ValueError:
        return False
    return True


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 10, 127, 255, 256, 300]), min_size=4, max_size=4), st.integers(0, 40),
       st.booleans())
def test_ipv4_networks_are_accepted_exactly_as_ipaddress_accepts_them(octets, prefix, leading_zero):
    text = "%s%d.%d.%d.%d/%d" % ("0" if leading_zero else "", octets[0], octets[1], octets[2], octets[3], prefix)
    assert is_network(text) == valid(text)


@pytest.mark.parametrize("text", ["fd00::/64", "fd00::1/64", "::/0", "10.0.0.0/08", "x", "10.0.0.1", "10.0.0.0/ 8"])
def test_other_networks_are_judged_by_ipaddress(text):
    assert is_network(text) == valid(text)

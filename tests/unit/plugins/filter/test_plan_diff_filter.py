"""The plan_diff filter: its input checks name the bad argument, and it gives data or text."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.filter.plan_diff import plan_diff

OLD = {"web1": {"host": "web1", "ipv4": "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n", "ipv6": "", "warnings": []}}
NEW = {"web1": {"host": "web1", "ipv4": "*filter\n-A INPUT -j DROP\nCOMMIT\n", "ipv6": "", "warnings": ["w"]}}


def test_a_changed_rule_shows_as_one_line_going_and_one_coming():
    assert plan_diff(OLD, NEW) == {"web1": {"ipv4": ["- -A INPUT -j ACCEPT", "+ -A INPUT -j DROP"]}}


def test_a_warning_alone_is_no_difference():
    assert plan_diff(NEW, dict(web1=dict(NEW["web1"], warnings=[]))) == {}


def test_text_output_starts_with_how_many_hosts_differ():
    assert plan_diff(OLD, NEW, "text").splitlines()[0] == "1 host(s) differ"


def test_a_list_instead_of_rulesets_is_refused_naming_the_argument():
    with pytest.raises(AnsibleFilterError, match=r"plan_diff: the other rulesets must map host names to rulesets, got list"):
        plan_diff(OLD, [])


def test_an_unknown_output_is_refused_naming_it():
    with pytest.raises(AnsibleFilterError, match=r"plan_diff: output must be 'data' or 'text', got 'html'"):
        plan_diff(OLD, NEW, "html")

"""Rendered text read back into the IR: what a ruleset looks like between tasks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.parse import RulesetTextError, parse_family, parse_rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family, render_rule
from ansible_collections.fleetwall.iptables.tests.integration.policies import CORPUS, fleet_kwargs, fleets
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory


def compiled_hosts(kwargs):
    hostvars, groups = inventory(**kwargs)
    compiler = FleetCompiler(hostvars, groups)
    return [compiler.compile_host(host) for host in groups["all"]]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_rulesets_read_back_to_the_same_text(name):
    for ruleset in compiled_hosts(fleet_kwargs(CORPUS[name])):
        for family in (4, 6):
            text = render_family(ruleset.family(family))
            assert render_family(parse_family(text, family)) == text


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(fleets())
def test_generated_rulesets_read_back_to_the_same_text(example):
    for ruleset in compiled_hosts(fleet_kwargs(example)):
        for family in (4, 6):
            text = render_family(ruleset.family(family))
            assert render_family(parse_family(text, family)) == text


def test_a_rule_reads_back_field_for_field():
    line = ('-A INPUT -s 10.0.0.0/8 ! -i eth+ -p tcp -m tcp --sport 1024:65535 ! --tcp-flags FIN,SYN,RST,ACK SYN '
            '-m multiport --dports 80,443 -m conntrack --ctstate NEW -m comment --comment "a b" -j REJECT '
            '--reject-with tcp-reset')
    chain, rule = parse_rule(line)
    assert (chain, render_rule(chain, rule)) == ("INPUT", line)
    assert (rule.in_interface, rule.in_interface_negated, rule.destination_ports) == ("eth+", True, ("80", "443"))


@pytest.mark.parametrize("text, message", [
    ("-A INPUT -j ACCEPT\n", "line 1: '-A INPUT -j ACCEPT' outside a table"),
    ("*filter\n:INPUT MAYBE [0:0]\nCOMMIT\n", "line 2: bad chain line ':INPUT MAYBE [0:0]'"),
    ("*filter\n:INPUT DROP [0:0]\n-A OUTPUT -j ACCEPT\nCOMMIT\n", "line 3: rule for undeclared chain OUTPUT"),
    ("*filter\n:INPUT DROP [0:0]\n-A INPUT -m tcp --bogus 1 -j ACCEPT\nCOMMIT\n",
     "line 3: unexpected '--bogus' in '-A INPUT -m tcp --bogus 1 -j ACCEPT'"),
])
def test_malformed_text_is_refused_with_the_line(text, message):
    with pytest.raises(RulesetTextError) as error:
        parse_family(text, 4)
    assert str(error.value) == message

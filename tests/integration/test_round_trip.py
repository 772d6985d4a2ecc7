"""What render() writes is exactly what iptables-save / ip6tables-save print back.

Every host of every policy is compiled, restored into a real (namespaced)
netfilter with iptables-restore and ip6tables-restore, saved again, and the
saved text, without its '#' lines and counters, must equal the rendered text
byte for byte: that is what lets the apply module decide "changed" with a
string comparison.
"""

from __future__ import annotations

import difflib
from typing import Any, Dict

import pytest
from hypothesis import assume, given, note, settings

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import table_text
from ansible_collections.fleetwall.iptables.tests.integration.lab import drop_unused_sets, load_sets
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text, render_family
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace
from ansible_collections.fleetwall.iptables.tests.integration.policies import CORPUS, describe, fleet_kwargs, fleets
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

# A bigger ruleset proves nothing more and makes an example slow.
MAX_RULES_PER_FAMILY = 3000


def compile_fleet(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    hostvars, groups = inventory(**kwargs)
    compiler = FleetCompiler(hostvars, groups)
    return {host: compiler.compile_host(host) for host in sorted(groups["all"])}


def without_comments(saved: str) -> str:
    return "".join(line for line in saved.splitlines(True) if not line.startswith("#"))


def rule_count(family_ruleset) -> int:
    return sum(len(chain.rules) for table in family_ruleset.tables for chain in table.chains)


def assert_round_trip(namespace: Namespace, host: str, family: int, rendered: str) -> None:
    namespace.restore(family, rendered)
    saved = canonical_text(namespace.save(family))
    if "*nat\n" not in rendered:
        # A restore leaves the tables its text does not name: an earlier host's nat table is not this host's.
        saved = table_text(saved)
    if saved != rendered:
        diff = "".join(
            difflib.unified_diff(
                rendered.splitlines(True), saved.splitlines(True), "rendered (%s, IPv%d)" % (host, family), "saved"
            )
        )
        pytest.fail("iptables-save prints back something else than render() wrote:\n" + diff, pytrace=False)


def check_fleet(namespace: Namespace, kwargs: Dict[str, Any]) -> int:
    rulesets = compile_fleet(kwargs)
    for host, ruleset in rulesets.items():
        cleanup = load_sets(namespace, ruleset)
        for family in (4, 6):
            assert_round_trip(namespace, host, family, render_family(ruleset.family(family)))
        drop_unused_sets(namespace, cleanup)
    return len(rulesets)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_policy_round_trips_through_iptables_save(namespace: Namespace, name: str) -> None:
    assert check_fleet(namespace, CORPUS[name]) >= 1


@settings(settings.get_profile("fleetwall-integration"))
@given(example=fleets())
def test_generated_policy_round_trips_through_iptables_save(namespace: Namespace, example: Dict[str, Any]) -> None:
    # One namespace serves every example: a restore replaces the whole filter
    # table (see test_restore_over_an_old_ruleset_equals_a_fresh_restore).
    kwargs = fleet_kwargs(example)
    note(describe(kwargs))
    rulesets = compile_fleet(kwargs)
    assume(all(rule_count(ruleset.family(family)) <= MAX_RULES_PER_FAMILY for ruleset in rulesets.values() for family in (4, 6)))
    for host, ruleset in rulesets.items():
        cleanup = load_sets(namespace, ruleset)
        for family in (4, 6):
            assert_round_trip(namespace, host, family, render_family(ruleset.family(family)))
        drop_unused_sets(namespace, cleanup)


def test_restore_over_an_old_ruleset_equals_a_fresh_restore(make_namespace) -> None:
    """Reusing one namespace across examples is sound: nothing of the old ruleset survives."""
    big = compile_fleet(CORPUS["logging, with generated and given prefixes"])["web1"]
    small = compile_fleet({"host_vars": {"web1": {"fleetwall_baseline": False}}})["web1"]
    reused, fresh = make_namespace(), make_namespace()
    for family in (4, 6):
        reused.restore(family, render_family(big.family(family)))
        reused.restore(family, render_family(small.family(family)))
        fresh.restore(family, render_family(small.family(family)))
        assert without_comments(reused.save(family, counters=True)) == without_comments(fresh.save(family, counters=True))
        assert canonical_text(reused.save(family)) == render_family(small.family(family))
    # Only the filter tables exist: nothing else would show up in a save.
    assert [line for line in reused.save(4).splitlines() if line.startswith("*")] == ["*filter"]
    assert [line for line in reused.save(6).splitlines() if line.startswith("*")] == ["*filter"]


def test_restore_test_mode_accepts_every_corpus_ruleset(namespace: Namespace) -> None:
    """`iptables-restore --test`, which the apply module runs first, agrees with a real restore."""
    for kwargs in CORPUS.values():
        for ruleset in compile_fleet(kwargs).values():
            cleanup = load_sets(namespace, ruleset)  # the module, too, makes the sets before it tests the rules
            for family in (4, 6):
                namespace.restore(family, render_family(ruleset.family(family)), test=True)
            drop_unused_sets(namespace, cleanup)


def test_a_comment_longer_than_the_kernel_keeps_is_refused_or_round_trips(namespace: Namespace) -> None:
    group = "production_webservers_eu_west_1"
    kwargs = {
        "groups": {"all": ["web1"], "ungrouped": [], group: ["web1"]},
        "policy": {group: {"inbound": [{"service": "http", "comment": "c" * 200}]}},
    }
    try:
        rulesets = compile_fleet(kwargs)
    except PolicyError:
        return  # refused before touching a host: fine too
    for host, ruleset in rulesets.items():
        cleanup = load_sets(namespace, ruleset)
        for family in (4, 6):
            assert_round_trip(namespace, host, family, render_family(ruleset.family(family)))
        drop_unused_sets(namespace, cleanup)


# Text the policy refuses (quotes, backslashes, apostrophes) can still reach render() from a hand-built IR:
# its quoting must come back from iptables-save unchanged, pass after pass.
AWKWARD_COMMENTS = ["web's tier", 'say "hi"', "back\\slash", "'\"\\", "ends with space ", "a" * 255]


@pytest.mark.parametrize("comment", AWKWARD_COMMENTS)
def test_render_quotes_comments_as_iptables_save_does_on_every_pass(namespace: Namespace, comment: str) -> None:
    from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Chain, FamilyRuleset, Rule, Table

    rule = Rule(target="ACCEPT", protocol="tcp", destination_ports=("22",), comment=comment)
    ruleset = FamilyRuleset(4, (Table("filter", (Chain("INPUT", "ACCEPT", (rule,)), Chain("FORWARD", "ACCEPT", ()),
                                                 Chain("OUTPUT", "ACCEPT", ()))),))
    rendered = render_family(ruleset)
    for _pass in range(2):
        assert_round_trip(namespace, "hand-built", 4, rendered)
        rendered = canonical_text(namespace.save(4))

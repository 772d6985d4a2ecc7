"""The ipset phases of a ruleset run, decided from the desired sets and `ipset save` text."""

from __future__ import annotations

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import AddressSet, address_set
from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import canonical_text
from ansible_collections.fleetwall.iptables.plugins.module_utils.set_plan import (
    NO_SETS,
    plan_sets,
    set_changes,
    set_diff_entry,
    sets_unchanged,
)

SAVED = """\
create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600 bucketsize 12 initval 0x1
add f2b-sshd 198.51.100.7 timeout 431
create fw4-group:web hash:net family inet hashsize 64 maxelem 65536 bucketsize 12 initval 0x227cfcc0
add fw4-group:web 10.0.1.2
add fw4-group:web 10.0.0.0/24
create fw4-old hash:net family inet hashsize 64 maxelem 65536 bucketsize 12 initval 0x3
add fw4-old 10.8.0.0/16
"""


def web(*members: str) -> AddressSet:
    return address_set("fw4-group:web", 4, members or ("10.0.0.0/24", "10.0.1.2/32"))


NEW = address_set("fw4-group:db", 4, ["10.0.2.1/32"])


def test_a_host_without_sets_and_a_ruleset_without_sets_has_nothing_to_do() -> None:
    assert plan_sets([], "") is NO_SETS and not NO_SETS.needed


def test_unchanged_sets_are_not_a_change() -> None:
    assert plan_sets([web(), address_set("fw4-old", 4, ["10.8.0.0/16"])], SAVED).changed is False


def test_a_new_set_is_created_and_filled_before_the_rules() -> None:
    assert plan_sets([web(), NEW], SAVED).prepare == (
        "create fw4-group:db hash:net family inet hashsize 64 maxelem 65536\nadd fw4-group:db 10.0.2.1\n"
    )


def test_a_changed_set_is_swapped_in_through_its_twin() -> None:
    update = plan_sets([web("10.0.0.0/24")], SAVED).update.splitlines()
    assert (update[0], update[-2:]) == (
        "destroy fw4-group:web-new",
        ["swap fw4-group:web-new fw4-group:web", "destroy fw4-group:web-new"],
    )


def test_an_unchanged_set_is_not_touched() -> None:
    assert plan_sets([web()], SAVED).update == ""


def test_sets_nothing_uses_are_destroyed_after_the_rules_and_foreign_sets_never() -> None:
    assert plan_sets([web()], SAVED).cleanup == "destroy fw4-old\n"


def test_the_rollback_recreates_and_refills_every_previous_set() -> None:
    rollback = plan_sets([NEW], SAVED).rollback.splitlines()
    assert [line for line in rollback if line.startswith("swap")] == [
        "swap fw4-group:web-new fw4-group:web",
        "swap fw4-old-new fw4-old",
    ]


def test_the_rollback_cleanup_destroys_only_what_the_previous_state_lacked() -> None:
    assert plan_sets([web(), NEW], SAVED).rollback_cleanup == "destroy fw4-group:db\n"


def test_the_diff_shows_both_sides_in_canonical_text_without_foreign_sets() -> None:
    entry = set_diff_entry(plan_sets([web()], SAVED))
    assert "f2b-sshd" not in entry["before"] and entry["after"] == (
        "create fw4-group:web hash:net family inet maxelem 65536\nadd fw4-group:web 10.0.0.0/24\nadd fw4-group:web 10.0.1.2\n"
    )


def test_member_changes_are_listed_per_set() -> None:
    assert set_changes(plan_sets([web("10.0.0.0/24", "10.0.3.3/32"), NEW], SAVED)) == {
        "fw4-group:db": {"added": ["10.0.2.1"], "removed": []},
        "fw4-group:web": {"added": ["10.0.3.3"], "removed": ["10.0.1.2"]},
        "fw4-old": {"added": [], "removed": ["10.8.0.0/16"]},
    }


def test_the_fast_path_sees_live_sets_equal_to_the_received_text_as_unchanged() -> None:
    assert sets_unchanged(canonical_text([web(), address_set("fw4-old", 4, ["10.8.0.0/16"])]), SAVED) is True


def test_the_fast_path_reads_sets_whose_create_line_it_cannot_shortcut_and_still_sees_them_unchanged() -> None:
    saved = SAVED.replace("maxelem 65536 bucketsize 12 initval 0x227cfcc0", "maxelem 65536 counters bucketsize 12")
    assert sets_unchanged(canonical_text([web(), address_set("fw4-old", 4, ["10.8.0.0/16"])]), saved) is True


def test_the_fast_path_sees_a_membership_change() -> None:
    assert sets_unchanged(canonical_text([web("10.0.0.0/24"), address_set("fw4-old", 4, ["10.8.0.0/16"])]), SAVED) is False


def test_the_fast_path_sees_leftover_fleetwall_sets_when_the_ruleset_has_none() -> None:
    assert sets_unchanged(None, SAVED) is False


def test_the_fast_path_ignores_other_softwares_sets() -> None:
    assert sets_unchanged(None, "create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600\n") is True


def test_the_fast_path_on_a_host_without_ipset_and_a_ruleset_without_sets_is_unchanged() -> None:
    assert sets_unchanged(None, None) is True

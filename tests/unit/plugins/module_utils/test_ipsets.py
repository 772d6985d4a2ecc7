"""ipset address sets: names, sizes, canonical text and the restore scripts (pure logic)."""

from __future__ import annotations

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import (
    DEFAULT_MAXELEM,
    MAX_NAME_LENGTH,
    TEMPORARY_SUFFIX,
    AddressSet,
    SetTextError,
    address_set,
    canonical_member,
    canonical_text,
    member_changes,
    parse_save,
    set_name,
    sizing,
)

SAVED = """\
create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600 bucketsize 12 initval 0x1
add f2b-sshd 198.51.100.7 timeout 431
create fw4-group:web hash:net family inet hashsize 64 maxelem 65536 bucketsize 12 initval 0x227cfcc0
add fw4-group:web 10.0.1.2
add fw4-group:web 10.0.0.0/24
add fw4-group:web 10.0.0.5 nomatch
create fw6-group:web hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0xf4f7ed98
add fw6-group:web fd00::1:1
"""


def web_v4(*members: str) -> AddressSet:
    return address_set("fw4-group:web", 4, members or ("10.0.0.0/24", "10.0.1.2/32"), ["10.0.0.5/32"])


def test_a_group_reference_that_fits_is_its_name_with_group_shortened() -> None:
    assert set_name(4, ["group:web"]) == "fw4-g:web"


def test_a_host_reference_is_shortened_to_h() -> None:
    assert set_name(6, ["office", "host:db1"]) == "fw6-office+h:db1"


def test_names_of_the_two_families_differ() -> None:
    assert set_name(4, ["office"]) != set_name(6, ["office"])


def test_a_long_reference_is_shortened_with_a_hash_within_the_limit() -> None:
    name = set_name(6, ["group:" + "a" * 60])
    assert len(name) <= MAX_NAME_LENGTH and len(name + TEMPORARY_SUFFIX) <= 31


def test_two_long_references_sharing_a_head_get_different_names() -> None:
    assert set_name(4, ["group:" + "a" * 40 + "1"]) != set_name(4, ["group:" + "a" * 40 + "2"])


def test_characters_ipset_restore_cannot_read_are_replaced_and_hashed() -> None:
    assert set_name(4, ["group:we b"]) != set_name(4, ["group:we_b"])


def test_the_name_depends_on_the_references_not_the_membership() -> None:
    assert web_v4("10.0.0.0/24").name == web_v4("10.9.9.9/32").name


def test_a_host_member_is_written_without_its_prefix_length_as_ipset_save_prints_it() -> None:
    assert canonical_member("2001:db8:0:0::1/128", 6) == "2001:db8::1"


def test_a_member_of_the_other_family_is_refused() -> None:
    with pytest.raises(ValueError):
        canonical_member("10.0.0.1/32", 6)


def test_members_are_sorted_by_address_not_by_text() -> None:
    assert address_set("fw4-x", 4, ["10.0.0.10/32", "10.0.0.9/32"]).members == ("10.0.0.9", "10.0.0.10")


def test_a_small_set_keeps_ipsets_default_maxelem() -> None:
    assert sizing(10) == (64, DEFAULT_MAXELEM)


def test_a_hundred_thousand_address_blocklist_fits_its_maxelem() -> None:
    hashsize, maxelem = sizing(100_000)
    assert maxelem >= 100_000 and hashsize >= 100_000 // 4


def test_parse_save_reads_only_fleetwalls_sets() -> None:
    assert sorted(parse_save(SAVED)) == ["fw4-group:web", "fw6-group:web"]


def test_parse_save_keeps_nomatch_members_apart() -> None:
    assert parse_save(SAVED)["fw4-group:web"].exceptions == ("10.0.0.5",)


def test_saved_text_and_the_desired_set_compare_equal_despite_hash_order_and_hashsize() -> None:
    assert canonical_text(parse_save(SAVED).values()) == canonical_text([web_v4(), address_set("fw6-group:web", 6, ["fd00::1:1/128"])])


def test_parse_save_refuses_a_fleetwall_set_of_another_type() -> None:
    with pytest.raises(SetTextError, match="line 1"):
        parse_save("create fw4-x hash:ip family inet hashsize 64 maxelem 65536\n")


def test_member_changes_name_what_an_update_adds_and_removes() -> None:
    assert member_changes(web_v4(), web_v4("10.0.0.0/24", "10.0.2.1/32")) == {"added": ["10.0.2.1"], "removed": ["10.0.1.2"]}


def test_merged_members_are_taken_as_they_are_less_the_host_prefix() -> None:
    members = ["10.0.0.0/24", "10.0.1.2/32", "10.0.2.0/23"]
    assert address_set("fw4-x", 4, members, merged=True).members == address_set("fw4-x", 4, members).members

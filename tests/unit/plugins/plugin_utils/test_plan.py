"""plugins/plugin_utils/plan.py: plan bytes, the manifest, writing and reading a plan, and the plan diff.

The fleets here come from the real compiler (compile_fleet's transport form), so
a plan holds what render.yml would write for the same inventory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.plan import (
    MANIFEST,
    PlanError,
    build_plan,
    fleet_policy_sha256,
    format_plan_diff,
    plan_changes,
    plan_diff,
    read_plan,
    write_plan,
)

POLICY = {
    "all": {"inbound": [{"service": "ssh", "from": "any"}]},
    "web": {"inbound": [{"service": "http", "from": "any"}]},
    "db": {"inbound": [{"service": "postgres", "from": "group:web"}]},
}
ADDRESSES = {"web1": "10.9.0.1", "web2": "10.9.0.2", "db1": "10.9.0.3", "db2": "10.9.0.4"}


def inventory(web=("web1",), policy=None):
    groups = {"web": list(web), "db": ["db1", "db2"]}
    groups["all"] = sorted(ADDRESSES)
    hostvars = {
        host: {"fleetwall_policy": policy or POLICY, "fleetwall_host_addresses": [address]}
        for host, address in ADDRESSES.items()
    }
    return hostvars, groups


def compiled(web=("web1",), policy=None) -> Dict[str, Dict[str, Any]]:
    hostvars, groups = inventory(web, policy)
    rulesets = FleetCompiler(hostvars, groups).compile_hosts(groups["all"])
    return {host: ruleset_to_dict(ruleset) for host, ruleset in rulesets.items()}


def plan_files(web=("web1",), policy=None) -> Dict[str, str]:
    hostvars, groups = inventory(web, policy)
    return build_plan(compiled(web, policy), groups["all"], fleet_policy_sha256(hostvars, groups["all"]), "0.1.0")


def written(directory: Path, files: Dict[str, str]) -> Path:
    write_plan(str(directory), files, plan_changes(str(directory), files))
    return directory


def manifest_of(files: Dict[str, str]) -> Dict[str, Any]:
    return json.loads(files[MANIFEST])


def test_the_same_policy_and_inventory_give_the_same_plan_bytes():
    assert plan_files() == plan_files()


def test_inventory_order_does_not_change_the_plan_bytes():
    hostvars, groups = inventory()
    fleet = compiled()
    reordered = dict(reversed(list(fleet.items())))
    policy_hash = fleet_policy_sha256(hostvars, groups["all"])
    assert build_plan(reordered, list(reversed(groups["all"])), policy_hash, "0.1.0") == plan_files()


def test_the_manifest_records_each_files_sha256():
    files = plan_files()
    assert manifest_of(files)["hosts"]["db1"]["v4"] == hashlib.sha256(files["db1.v4"].encode()).hexdigest()


def test_the_manifest_holds_no_timestamp_only_the_documented_keys():
    assert sorted(manifest_of(plan_files())) == [
        "collection", "collection_version", "format", "hosts", "inventory", "policy_sha256"]


def test_the_policy_hash_ignores_key_order_and_changes_with_the_policy():
    hostvars, groups = inventory()
    reordered = inventory(policy=dict(reversed(list(POLICY.items()))))[0]
    changed = inventory(policy=dict(POLICY, web={"inbound": [{"service": "https", "from": "any"}]}))[0]
    hashes = [fleet_policy_sha256(variables, groups["all"]) for variables in (hostvars, reordered, changed)]
    assert (hashes[0] == hashes[1], hashes[0] == hashes[2]) == (True, False)


def test_a_host_name_with_a_slash_is_refused_naming_it():
    with pytest.raises(PlanError, match=r"fleet: host name '\.\./etc' cannot be a file name"):
        build_plan({"../etc": compiled()["web1"]}, ["../etc"], "0" * 64, "0.1.0")


def test_a_ruleset_without_ipv4_text_is_refused_naming_the_host_and_key():
    broken = dict(compiled()["web1"], ipv4=None)
    with pytest.raises(PlanError, match=r"fleet\['web1'\]\.ipv4: must be text, got null"):
        build_plan({"web1": broken}, ["web1"], "0" * 64, "0.1.0")


def test_a_host_with_warnings_gets_a_warnings_file_one_warning_a_line():
    fleet = compiled()
    fleet["db2"] = dict(fleet["db2"], warnings=["first", "second"])
    files = build_plan(fleet, sorted(fleet), "0" * 64, "0.1.0")
    assert files["db2.warnings"] == "first\nsecond\n"


def test_writing_the_same_plan_again_changes_no_file(tmp_path):
    written(tmp_path, plan_files())
    changes = plan_changes(str(tmp_path), plan_files())
    assert (changes.written, changes.removed) == ([], [])


def test_the_manifest_is_written_last(tmp_path):
    assert plan_changes(str(tmp_path), plan_files()).written[-1] == MANIFEST


def test_a_warnings_file_goes_when_its_host_no_longer_warns(tmp_path):
    fleet = compiled()
    warned = dict(fleet, db2=dict(fleet["db2"], warnings=["old warning"]))
    written(tmp_path, build_plan(warned, sorted(fleet), "0" * 64, "0.1.0"))
    written(tmp_path, build_plan(fleet, sorted(fleet), "0" * 64, "0.1.0"))
    assert not (tmp_path / "db2.warnings").exists()


def test_a_host_that_leaves_the_plan_leaves_no_files_behind(tmp_path):
    fleet = compiled()
    written(tmp_path, build_plan(fleet, sorted(fleet), "0" * 64, "0.1.0"))
    smaller = {host: ruleset for host, ruleset in fleet.items() if host != "db2"}
    written(tmp_path, build_plan(smaller, sorted(smaller), "0" * 64, "0.1.0"))
    assert sorted(path.name for path in tmp_path.glob("db2.*")) == []


def test_files_that_are_not_part_of_a_plan_are_left_alone(tmp_path):
    (tmp_path / "README").write_text("reviewed by ops\n")
    written(tmp_path, plan_files())
    assert (tmp_path / "README").read_text() == "reviewed by ops\n"


def test_reading_a_plan_gives_back_the_compiled_rulesets(tmp_path):
    written(tmp_path, plan_files())
    _manifest, rulesets = read_plan(str(tmp_path), ["db1", "web1"])
    assert plan_diff(rulesets, {host: compiled()[host] for host in ("db1", "web1")}) == {}


def test_a_tampered_file_is_refused_naming_it(tmp_path):
    written(tmp_path, plan_files())
    with (tmp_path / "db1.v4").open("a") as handle:
        handle.write("-A INPUT -j ACCEPT\n")
    with pytest.raises(PlanError, match=r"db1\.v4: its SHA-256 is not the one manifest\.json records"):
        read_plan(str(tmp_path), ["db1"])


def test_a_host_of_the_play_missing_from_the_plan_is_refused_naming_it(tmp_path):
    written(tmp_path, plan_files())
    with pytest.raises(PlanError, match=r"no entry for 1 host\(s\) of this play: cache1;"):
        read_plan(str(tmp_path), ["db1", "cache1"])


def test_a_directory_without_a_manifest_is_not_a_plan(tmp_path):
    with pytest.raises(PlanError, match=r"no plan here \(no manifest\.json\)"):
        read_plan(str(tmp_path), ["db1"])


def test_a_manifest_of_another_format_is_refused_naming_the_key(tmp_path):
    files = plan_files()
    files[MANIFEST] = files[MANIFEST].replace('"format": 1', '"format": 99')
    written(tmp_path, files)
    with pytest.raises(PlanError, match=r"manifest\.json: format: this collection reads plan format 1, got 99"):
        read_plan(str(tmp_path), ["db1"])


def test_a_manifest_entry_without_v6_is_refused_naming_the_host(tmp_path):
    files = plan_files()
    manifest = manifest_of(files)
    del manifest["hosts"]["web2"]["v6"]
    files[MANIFEST] = json.dumps(manifest)
    written(tmp_path, files)
    with pytest.raises(PlanError, match=r"manifest\.json: hosts\.web2: must map v4, v6"):
        read_plan(str(tmp_path), ["db1"])


def test_moving_a_host_into_a_group_changes_exactly_that_host_and_those_it_reaches():
    assert sorted(plan_diff(compiled(), compiled(web=("web1", "web2")))) == ["db1", "db2", "web2"]


def test_the_plan_diff_names_the_rules_that_changed():
    diff = plan_diff(compiled(), compiled(web=("web1", "web2")))
    added = [line for line in diff["db1"]["ipv4"] if line.startswith("+ ")]
    assert [("10.9.0.2/32" in line, "5432" in line) for line in added] == [(True, True)]


def test_the_plan_diff_of_equal_plans_is_empty_and_says_so():
    assert format_plan_diff(plan_diff(compiled(), compiled())) == "no host's rules differ\n"


def test_the_formatted_plan_diff_has_a_block_per_host_and_a_line_per_rule():
    text = format_plan_diff(plan_diff(compiled(), compiled(web=("web1", "web2"))))
    assert text.splitlines()[:3] == ["3 host(s) differ", "db1:", "  ipv4:"]


def test_an_inventory_naming_an_unknown_host_is_refused_naming_it():
    hostvars, _groups = inventory()
    with pytest.raises(PlanError, match=r"inventory: host 'aaa' is not an inventory host"):
        fleet_policy_sha256(hostvars, ["aaa", "db1"])

"""Applying a reviewed plan with site.yml and the firewall role, on namespace hosts.

The hosts and the way Ansible reaches them are test_roles.py's Fleet: two
namespace hosts, real iptables in each, the role's modules run inside each
host's namespace. A plan is written by the collection's own render.yml from
the same inventory, then applied with -e fleetwall_firewall_plan=DIR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest
import yaml

from ansible_collections.fleetwall.iptables.tests.integration.test_roles import (
    HOSTS,
    POLICY,
    Fleet,
    changed,
    failures,
)

RENDER_BY_FQCN = """\
- name: Render a plan with the collection's own render playbook
  ansible.builtin.import_playbook: fleetwall.iptables.render
"""
# The web tier also offers postgres: db1's rules stay, web1's change.
CHANGED_POLICY = {"fleetwall_policy": dict(POLICY, web={"inbound": [{"service": ["http", "https", "postgres"]}]})}


@pytest.fixture
def fleet(make_namespace, tmp_path: Path) -> Fleet:
    fleet = Fleet(make_namespace, tmp_path)
    fleet.write_play("render.yml", RENDER_BY_FQCN)
    return fleet


def render(fleet: Fleet, *extra: str) -> Path:
    plan = fleet.tmp / "plan"
    stats = fleet.run("-e", "fleetwall_render_dir=%s" % plan, *extra, playbook="render.yml")
    assert failures(stats) == [0] * len(stats), fleet.output[-4000:]
    return plan


def apply(fleet: Fleet, plan: Path, *extra: str) -> Dict[str, Dict[str, int]]:
    return fleet.run("-e", "fleetwall_firewall_plan=%s" % plan, *extra)


def live(fleet: Fleet) -> Dict[str, tuple]:
    return {host: (fleet.filter_table(host, 4), fleet.filter_table(host, 6)) for host in HOSTS}


def planned(plan: Path) -> Dict[str, tuple]:
    return {host: ((plan / (host + ".v4")).read_text(), (plan / (host + ".v6")).read_text()) for host in HOSTS}


NOTHING_APPLIED = {host: ("", "") for host in HOSTS}


def test_applying_a_plan_makes_every_host_run_exactly_the_planned_bytes(fleet):
    plan = render(fleet)
    stats = apply(fleet, plan)
    assert (failures(stats), live(fleet)) == ([0, 0], planned(plan))


def test_applying_the_same_plan_again_changes_nothing(fleet):
    plan = render(fleet)
    apply(fleet, plan)
    stats = apply(fleet, plan)
    assert (failures(stats), changed(stats)) == ([0, 0], [0, 0])


def test_check_mode_with_a_plan_shows_the_diff_and_changes_no_host(fleet):
    plan = render(fleet)
    stats = apply(fleet, plan, "--check", "--diff")
    assert (failures(stats), live(fleet), "+-A INPUT" in fleet.output) == ([0, 0], NOTHING_APPLIED, True)


def test_a_tampered_plan_file_is_refused_before_any_host_changes(fleet):
    plan = render(fleet)
    path = plan / "db1.v4"
    path.write_text(path.read_text().replace("COMMIT", "-A INPUT -j ACCEPT\nCOMMIT"))
    stats = apply(fleet, plan)
    assert (any(failures(stats)), live(fleet)) == (True, NOTHING_APPLIED)
    assert "db1.v4: its SHA-256 is not the one manifest.json records" in fleet.output


def test_a_host_of_the_play_without_a_plan_entry_is_refused_before_any_host_changes(fleet):
    plan = render(fleet, "-e", json.dumps({"fleetwall_render_hosts": ["web1"]}))
    stats = apply(fleet, plan)
    assert (any(failures(stats)), live(fleet)) == (True, NOTHING_APPLIED)
    assert "the plan has no entry for 1 host(s) of this play: db1;" in fleet.output


def test_a_stale_plan_is_refused_naming_the_hosts_whose_rules_changed(fleet):
    plan = render(fleet)
    stats = apply(fleet, plan, "-e", json.dumps(CHANGED_POLICY))
    assert (any(failures(stats)), live(fleet)) == (True, NOTHING_APPLIED)
    assert "compile to different rules for 1 host(s): web1." in " ".join(fleet.output.split())


def test_a_stale_plan_applies_as_reviewed_when_the_user_says_so(fleet):
    plan = render(fleet)
    stats = apply(fleet, plan, "-e", json.dumps(CHANGED_POLICY), "-e", "fleetwall_firewall_apply_stale_plan=true")
    assert (failures(stats), live(fleet)) == ([0, 0], planned(plan))


def run_sliced(fleet: Fleet, *extra: str) -> list:
    """site.yml once per half of the inventory (web, then db), as AWX job slices would run it."""
    full = yaml.safe_load((fleet.tmp / "inventory.yml").read_text())
    results = []
    try:
        for group in ("web", "db"):
            half = json.loads(json.dumps(full))
            half["all"]["children"] = {group: full["all"]["children"][group]}
            (fleet.tmp / "inventory.yml").write_text(yaml.safe_dump(half))
            results.append(fleet.run(*extra))
    finally:
        (fleet.tmp / "inventory.yml").write_text(yaml.safe_dump(full))
    return results


def test_two_half_inventories_applying_one_full_plan_give_the_rules_of_one_full_run(fleet):
    plan = render(fleet)
    sliced = run_sliced(fleet, "-e", "fleetwall_firewall_plan=%s" % plan)
    after_slices = live(fleet)
    apply(fleet, plan)
    assert ([failures(stats) for stats in sliced], after_slices) == ([[0], [0]], live(fleet))


def test_a_half_inventory_compiling_on_its_own_is_refused_when_the_full_inventory_is_recorded(fleet):
    plan = render(fleet)
    sliced = run_sliced(fleet, "-e", "fleetwall_firewall_full_inventory=%s" % plan)
    assert ([failures(stats) for stats in sliced], live(fleet)) == ([[1], [1]], NOTHING_APPLIED)
    assert "this run's inventory lacks 1 host(s) of the full inventory" in " ".join(fleet.output.split())

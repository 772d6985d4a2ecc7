"""The verify_reachability action as verify.yml runs it: one controller task that judges and writes the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.fleetwall.iptables.plugins.action.verify_reachability import ActionModule
from ansible_collections.fleetwall.iptables.plugins.filter.reachability import reachability_model
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory


def run_action(args: Dict[str, Any], hostvars: Any, groups: Any, check_mode: bool = False) -> Dict[str, Any]:
    task = MagicMock(args=args, async_val=0, check_mode=check_mode, diff=False)
    action = ActionModule(task, MagicMock(), MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    return action.run(task_vars={"hostvars": hostvars, "groups": groups})


def every_probe_observed(model: Dict[str, Any], state: str) -> list:
    return [{"results": [{"id": target["id"], "state": state, "detail": "x"} for target in targets]}
            for targets in model["probes"].values()]


def test_the_judgement_and_the_files_equal_what_the_filters_make(tmp_path: Path) -> None:
    hostvars, groups = inventory()
    observations = every_probe_observed(reachability_model(hostvars, groups, [], 0), "filtered")
    result = run_action({"hosts": [], "hosts_per_group": 0, "observations": observations, "generated": "2026-12-06",
                         "report": str(tmp_path / "report.html"), "json": str(tmp_path / "verification.json")},
                        hostvars, groups)
    written = json.loads((tmp_path / "verification.json").read_text())
    assert (result["summary"], result["mismatches"], result["mismatched"], result["changed"]) == (
        written["summary"], written["mismatches"], True, True)
    assert "<html" in (tmp_path / "report.html").read_text()


def test_check_mode_judges_but_writes_nothing(tmp_path: Path) -> None:
    hostvars, groups = inventory()
    result = run_action({"hosts": [], "report": str(tmp_path / "report.html")}, hostvars, groups, check_mode=True)
    assert (result["written"], list(tmp_path.iterdir()), result["summary"]["checks"] > 0) == ([], [], True)


def test_a_policy_error_fails_the_task_naming_its_path() -> None:
    hostvars, groups = inventory()
    hostvars = {host: dict(variables, fleetwall_policy={"db": {"inbound": [{"service": "postgres", "from": "group:wbe"}]}})
                for host, variables in hostvars.items()}
    with pytest.raises(AnsibleActionFail, match=r"fleetwall_policy\.db\.inbound\[0\]\.from.*wbe"):
        run_action({"hosts": []}, hostvars, groups)


def test_a_negative_sample_size_is_refused() -> None:
    hostvars, groups = inventory()
    with pytest.raises(AnsibleActionFail, match="sources_per_group must be 0 or more, got -1"):
        run_action({"hosts": [], "sources_per_group": -1}, hostvars, groups)

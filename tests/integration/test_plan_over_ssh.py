"""A rendered plan applied by the firewall role over a real SSH connection (tests/integration/sshd.py's lab).

The controller namespace runs ansible-playbook, the target namespace runs
sshd; test_ssh_end_to_end.py's Controller proves every play reaches the
target namespace first. The plan is written by the collection's render.yml
from the same inventory, then applied with fleetwall_firewall_plan: the
lockout guard sees the controller's real SSH connection, the watchdog is
confirmed over a new one, and the live rules are the planned bytes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List

from ansible_collections.fleetwall.iptables.tests.integration.sshd import CONTROLLER_ADDRESSES, TARGET_ADDRESSES
from ansible_collections.fleetwall.iptables.tests.integration.test_ssh_end_to_end import (
    ANSIBLE_PLAYBOOK,
    REPO,
    Controller,
    filter_tables,
    make_controller,
    ssh_lab,
)

# Fixtures of test_ssh_end_to_end.py, used here by name.
SSH_FIXTURES = (make_controller, ssh_lab)
APPLY_TASK = "Apply the rulesets (with a rollback watchdog until they are confirmed) and write the boot files"


def applied(run: Any) -> Dict[str, Any]:
    """The role's apply task's result (its recorded name carries the role's name in front)."""
    found = [record for record in run.records if record["task"].endswith(APPLY_TASK)]
    assert [record["status"] for record in found] == ["ok"], run.explain()
    return found[0]["result"]


def with_policy(controller: Controller) -> None:
    """The controller may ssh in, everything else inbound is dropped: the policy in the inventory, where render.yml
    and the role both read it."""
    inventory = json.loads(controller.inventory.read_text())
    target = inventory["all"]["hosts"]["target"]
    target["fleetwall_policy"] = {"all": {"inbound": [{"service": "ssh", "from": CONTROLLER_ADDRESSES[4]}]}}
    target["fleetwall_host_addresses"] = [TARGET_ADDRESSES[4]]
    controller.inventory.write_text(json.dumps(inventory, indent=2))


def render(controller: Controller) -> Path:
    plan = controller.workdir / "plan"
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), str(REPO / "playbooks" / "render.yml"), "-e", "fleetwall_render_dir=%s" % plan],
        env=controller.environment(controller.workdir / "render-records.jsonl"), capture_output=True, text=True,
        timeout=120, check=False, cwd=str(controller.workdir),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return plan


def apply_plan(plan: Path, backup_dir: Path) -> List[Dict[str, Any]]:
    return [{
        "name": "Apply the reviewed plan",
        "ansible.builtin.include_role": {"name": "fleetwall.iptables.fleetwall_firewall"},
        "vars": {
            "fleetwall_firewall_plan": str(plan),
            "fleetwall_firewall_persist": False,
            "fleetwall_firewall_rollback_timeout": 30,
            "fleetwall_firewall_backup_dir": str(backup_dir),
        },
    }]


def test_a_plan_applied_over_ssh_passes_the_lockout_guard_and_the_host_runs_the_planned_bytes(make_controller):
    controller = make_controller(4)
    with_policy(controller)
    plan = render(controller)
    run = controller.playbook("apply-plan", apply_plan(plan, controller.backup_dir))
    result = applied(run)
    planned = ((plan / "target.v4").read_text(), (plan / "target.v6").read_text())
    assert (result["changed"], result["lockout_check"]["verdict"], filter_tables(controller.lab.target)) == (
        True, "ACCEPT", planned), run.explain()


def test_the_same_plan_applied_again_over_ssh_changes_nothing(make_controller):
    controller = make_controller(4)
    with_policy(controller)
    plan = render(controller)
    controller.playbook("apply-plan", apply_plan(plan, controller.backup_dir))
    run = controller.playbook("apply-plan-again", apply_plan(plan, controller.backup_dir))
    assert applied(run)["changed"] is False, run.explain()

# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for fleetwall.iptables.render_plan: compiles a fleet and writes its plan directory in one task.

Documented in plugins/modules/render_plan.py. It never connects to a host.
It compiles here rather than taking the compiled fleet as an argument:
Ansible sends every task's arguments back with its result, from the worker
process to the main one, and at 10,000 hosts with linear rules the
compiled fleet is gigabytes.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.fleetwall.iptables.plugins.filter.compile_ruleset import compile_fleet

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.plan import (
    MANIFEST,
    PlanError,
    build_plan,
    collection_version,
    fleet_policy_sha256,
    plan_changes,
    sha256_text,
    write_plan,
)

ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hostvars, groups = task_vars["hostvars"], task_vars["groups"]
        inventory = list(groups.get("all", ()))
        directory = os.path.abspath(args["dest"])
        try:
            fleet = compile_fleet(hostvars, groups, args["hosts"] or [])
            policy_hash = fleet_policy_sha256(hostvars, inventory)
            files = build_plan(fleet, inventory, policy_hash, collection_version())
            changes = plan_changes(directory, files, keep_before=self._task.diff)
            if not self._task.check_mode:
                write_plan(directory, files, changes)
        except (PlanError, AnsibleError) as exc:
            raise AnsibleActionFail(exc.message if isinstance(exc, AnsibleError) else str(exc)) from None
        result.update(
            changed=bool(changes.written or changes.removed),
            dest=directory,
            hosts=len(fleet),
            written=changes.written,
            removed=changes.removed,
            policy_sha256=policy_hash,
            manifest_sha256=sha256_text(files[MANIFEST]),
        )
        if self._task.diff and result["changed"]:
            result["diff"] = self._diffs(directory, files, changes)
        return result

    @staticmethod
    def _diffs(directory: str, files: Dict[str, str], changes: Any) -> List[Dict[str, str]]:
        diffs = []
        for name in sorted(changes.written + changes.removed):
            path = os.path.join(directory, name)
            diffs.append({"before_header": path, "after_header": path, "before": changes.before[name],
                          "after": files.get(name, "")})
        return diffs

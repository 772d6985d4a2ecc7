# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for fleetwall.iptables.render_plan: writes a whole plan directory on the controller in one task.

Documented in plugins/modules/render_plan.py. It never connects to a host:
the fleet was compiled on the controller and the plan lives there.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

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
    "fleet": {"type": "dict", "required": True},
    "inventory": {"type": "list", "elements": "str"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        inventory = args["inventory"] if args["inventory"] is not None else list(task_vars["groups"].get("all", ()))
        directory = os.path.abspath(args["dest"])
        try:
            policy_hash = fleet_policy_sha256(task_vars["hostvars"], inventory)
            files = build_plan(args["fleet"], inventory, policy_hash, collection_version())
            changes = plan_changes(directory, files)
            if not self._task.check_mode:
                write_plan(directory, files, changes)
        except PlanError as exc:
            raise AnsibleActionFail(str(exc)) from None
        result.update(
            changed=bool(changes.written or changes.removed),
            dest=directory,
            hosts=len(args["fleet"]),
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

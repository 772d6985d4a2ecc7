# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for fleetwall.iptables.verify_reachability: judges probe results and writes the report, in one task.

Documented in plugins/modules/verify_reachability.py. It never connects to a
host. It works the model out again rather than taking it as an argument, and
returns only the summary: at a hundred hosts the model and the verification
are tens of megabytes, and passing them through Ansible (a set_fact result
sent from the worker process to the main one, templates over them, the
report and the JSON written from variables) took 90 s where this takes 9 s.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Optional

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import MissingLibraryError
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.filter_errors import check_inventory
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.reachability import build_model, compare
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.report import render_report

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "str", "required": True},
    "hosts_per_group": {"type": "int", "default": 2},
    "sources_per_group": {"type": "int", "default": 0},
    "observations": {"type": "list", "elements": "raw", "default": []},
    "report": {"type": "path"},
    "json": {"type": "path"},
    "title": {"type": "str", "default": "fleetwall reachability"},
    "generated": {"type": "str", "default": ""},
}


def write_atomically(path: str, text: str) -> None:
    """``text`` to ``path`` through a temporary file in the same directory, mode 0644."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".fleetwall-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        for name in ("hosts_per_group", "sources_per_group"):
            if args[name] < 0:
                raise AnsibleActionFail("%s must be 0 or more, got %d" % (name, args[name]))
        hostvars, groups = task_vars["hostvars"], task_vars["groups"]
        try:
            check_inventory("verify_reachability", hostvars, groups, args["hosts"])
            model = build_model(hostvars, groups, args["hosts"] or None, args["hosts_per_group"], args["sources_per_group"])
            verification = compare(model, args["observations"], args["generated"])
            report = render_report(verification, title=args["title"]) if args["report"] else None
        # A policy error is a ValueError naming its path (fleetwall_policy.db.inbound[2].from: ...).
        except (ValueError, MissingLibraryError) as exc:
            raise AnsibleActionFail("verify_reachability: %s" % exc) from None
        except AnsibleError as exc:
            raise AnsibleActionFail(exc.message) from None
        written = []
        if not self._task.check_mode:
            for path, text in ((args["report"], report), (args["json"], json.dumps(verification, indent=4, sort_keys=True) + "\n")):
                if path:
                    write_atomically(path, text)
                    written.append(path)
        result.update(
            changed=bool(written),
            written=written,
            summary=verification["summary"],
            sampling=verification["sampling"],
            mismatches=verification["mismatches"],
            mismatched=verification["failed"],
        )
        return result

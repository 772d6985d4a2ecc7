# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for fleetwall.iptables.ruleset.

Two things only the controller side can do: read SSH_CONNECTION as the login
user sees it (become resets the environment, so the module cannot), and open
a fresh connection before a confirmation, so that confirming proves a new
SSH connection still gets through.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible.plugins.action import ActionBase

SSH_TRANSPORTS = frozenset(
    ("ssh", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh", "ansible.netcommon.libssh")
)


class ActionModule(ActionBase):
    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("confirm"):
            if self._is_ssh():
                # A ControlPersist master would carry the confirmation over the old,
                # already established connection: start a new one.
                self._connection.reset()
        elif args.get("lockout_check", True) and not args.get("ssh_connection"):
            seen = self._ssh_connection_seen_by_host()
            if seen:
                args["ssh_connection"] = seen
        result.update(
            self._execute_module(module_name="fleetwall.iptables.ruleset", module_args=args, task_vars=task_vars)
        )
        return result

    def _is_ssh(self) -> bool:
        names = {getattr(self._connection, "transport", None), getattr(self._connection, "_load_name", None)}
        return bool(names & SSH_TRANSPORTS)

    def _ssh_connection_seen_by_host(self) -> Optional[str]:
        if not self._is_ssh():
            return None
        found = self._low_level_execute_command('echo "$SSH_CONNECTION"', sudoable=False)
        value = str(found.get("stdout", "")).strip()
        return value if len(value.split()) == 4 else None

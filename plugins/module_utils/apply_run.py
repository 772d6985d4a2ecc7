# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carry out the per-family plans: test, back up, guard, restore, verify.

Private to the fleetwall.iptables collection. The sequence only; every
iptables tool and the guardian come through an injected ``Tools`` object, so
unit tests drive it with recorded iptables-save texts and fake tools, and the
module hands in the host's real ones (host_tools.py).

The host ends with the previous rulesets of both families or the new ones,
never a mix: a failed restore or a re-read that differs from the plan puts
back every family already applied, and the guardian restores both if the
module dies in between.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.apply_plan import FamilyPlan
from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import (
    Guardian,
    RollbackStep,
    Watchdog,
    prune_backups,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import live_projection, unified_diff


class Tools:
    """What the apply sequence needs from the host. The module's implementation runs the real tools."""

    def save(self, command):
        # type: (str) -> str
        """COMMAND-save's output."""
        raise NotImplementedError

    def restore(self, command, text, test=False, noflush=False):
        # type: (str, str, bool, bool) -> Tuple[int, str]
        """Feed `text` to COMMAND-restore; (exit status, its message)."""
        raise NotImplementedError

    def restore_argv(self, command, noflush):
        # type: (str, bool) -> List[str]
        """The restore command line the guardian runs to roll back."""
        raise NotImplementedError

    def save_each(self, commands):
        # type: (Sequence[str]) -> List[str]
        """save() of each command; a host may run them at the same time."""
        return [self.save(command) for command in commands]

    def test_each(self, inputs):
        # type: (Sequence[Tuple[str, str, bool]]) -> List[Tuple[int, str]]
        """restore --test of each (command, text, noflush); a host may run them at the same time."""
        return [self.restore(command, text, test=True, noflush=noflush) for command, text, noflush in inputs]

    def start_guardian(self, config):
        # type: (Dict[str, Any]) -> Guardian
        raise NotImplementedError


class ApplyFailed(Exception):
    """The run stopped; the host has its previous rulesets. str() is the message for the user."""


class ApplySettings(NamedTuple):
    mode: str  # own or coexist
    backup_dir: str
    backup_keep: int
    rollback_timeout: int  # 0: no watchdog after the run


def failing_line(message, text):
    # type: (str, str) -> str
    """A restore's error message, with the input line it names appended."""
    match = re.search(r"line:? (\d+)", message)
    if not match:
        return message
    number = int(match.group(1))
    lines = text.splitlines()
    if 1 <= number <= len(lines):
        return "%s (line %d: %s)" % (message, number, lines[number - 1])
    return message


def validate(plans, tools):
    # type: (Sequence[FamilyPlan], Tools) -> None
    """restore --test every changed family; ApplyFailed naming the refused line."""
    changed = [plan for plan in plans if plan.changed]
    outcomes = tools.test_each([(plan.spec.command, plan.apply_text, plan.noflush) for plan in changed])
    for plan, (rc, message) in zip(changed, outcomes):
        if rc != 0:
            raise ApplyFailed(
                "%s-restore --test refused the new ruleset, nothing was changed: %s"
                % (plan.spec.command, failing_line(message, plan.apply_text))
            )


def apply_plans(plans, tools, settings):
    # type: (Sequence[FamilyPlan], Tools, ApplySettings) -> Dict[str, Any]
    """Validate, back up, apply and verify; the run's backup paths and watchdog. ApplyFailed on failure."""
    validate(plans, tools)
    watchdog = Watchdog.create(settings.backup_dir)
    backups = {}  # type: Dict[str, str]
    steps = []  # type: List[RollbackStep]
    for plan in plans:
        argv = tools.restore_argv(plan.spec.command, plan.noflush)
        steps.append(watchdog.backup(plan.spec.family, plan.before, plan.rollback_text, argv))
        backups[plan.spec.key] = watchdog.backup_path(plan.spec.family)
    watchdog.wait_for_confirmation(settings.rollback_timeout)
    guardian = tools.start_guardian(watchdog.guardian_config(steps, settings.rollback_timeout))
    applied = []  # type: List[FamilyPlan]
    failure = restore_changed(plans, tools, applied) or verify(plans, tools, settings.mode)
    if failure is not None:
        put_back(tools, applied)
        guardian.tell("aborted")
        watchdog.stand_down()
        raise ApplyFailed(failure)
    guardian.tell("committed")
    outcome = {"backup": backups}  # type: Dict[str, Any]
    if settings.rollback_timeout > 0:
        outcome["watchdog"] = {"token": watchdog.token, "timeout": settings.rollback_timeout, "pid": guardian.pid}
    else:
        watchdog.stand_down()
    prune_backups(settings.backup_dir, settings.backup_keep)
    return outcome


def restore_changed(plans, tools, applied):
    # type: (Sequence[FamilyPlan], Tools, List[FamilyPlan]) -> Optional[str]
    """One restore per changed family, appending each to `applied`; the failure message, if one fails."""
    for plan in plans:
        if not plan.changed:
            continue
        rc, message = tools.restore(plan.spec.command, plan.apply_text, noflush=plan.noflush)
        if rc != 0:
            return "%s-restore failed; the previous rulesets of both families are back in place: %s" % (
                plan.spec.command, failing_line(message, plan.apply_text))
        applied.append(plan)
    return None


def verify(plans, tools, mode):
    # type: (Sequence[FamilyPlan], Tools, str) -> Optional[str]
    """Re-read every family; the difference, if the kernel does not hold what the plan says."""
    saves = tools.save_each([plan.spec.command for plan in plans])
    for plan, saved in zip(plans, saves):
        now = live_projection(saved, mode)
        if now != plan.after:
            return (
                "after applying, the live %s rules differ from the policy; the previous rulesets are back. "
                "Difference:\n%s" % (plan.spec.command, unified_diff(now, plan.after, plan.spec.command))
            )
    return None


def put_back(tools, applied):
    # type: (Tools, Sequence[FamilyPlan]) -> None
    for plan in reversed(applied):
        tools.restore(plan.spec.command, plan.rollback_text, noflush=plan.noflush)

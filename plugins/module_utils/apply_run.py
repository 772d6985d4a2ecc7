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
module dies in between. fleetwall's ipset sets follow set_plan.py's order
around the rules: new sets before ``--test`` (which refuses a rule naming a
missing set), changed sets swapped in after the guardian starts, unused
sets destroyed last; a way back puts the previous sets back before the
previous rules and destroys the new sets after them, so no rule ever names a
set that is missing.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.apply_plan import FamilyPlan
from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import canonical_text, parse_save
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import live_projection, unified_diff
from ansible_collections.fleetwall.iptables.plugins.module_utils.set_plan import NO_SETS, SetPlan

if TYPE_CHECKING:  # the module imports this on every run; the guardian only when something changes
    from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import Guardian, RollbackStep, Watchdog


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

    def ipset_save(self):
        # type: () -> str
        """``ipset save``'s output."""
        raise NotImplementedError

    def ipset_restore(self, text):
        # type: (str) -> Tuple[int, str]
        """Feed `text` to ``ipset -exist restore``; (exit status, its message)."""
        raise NotImplementedError

    def ipset_restore_argv(self):
        # type: () -> List[str]
        """The ``ipset -exist restore`` command line the guardian runs to roll back."""
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


def prepare_and_validate(plans, tools, sets):
    # type: (Sequence[FamilyPlan], Tools, SetPlan) -> None
    """Create the new sets, then restore --test; on failure destroy them again and raise ApplyFailed."""
    try:
        ipset_step(tools, sets.prepare, "could not create the new ipset sets")
        validate(plans, tools)
    except ApplyFailed:
        if sets.rollback_cleanup:
            tools.ipset_restore(sets.rollback_cleanup)
        raise


def ipset_step(tools, text, what):
    # type: (Tools, str, str) -> None
    """Feed one phase to ``ipset -exist restore`` (nothing when empty); ApplyFailed saying `what` failed."""
    if not text:
        return
    rc, message = tools.ipset_restore(text)
    if rc != 0:
        raise ApplyFailed("%s: %s" % (what, failing_line(message, text)))


def guard(plans, tools, settings, sets):
    # type: (Sequence[FamilyPlan], Tools, ApplySettings, SetPlan) -> Tuple[Watchdog, Guardian, Dict[str, str]]
    """Back up the previous rules and sets and start the guardian that can put them back."""
    from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import Watchdog

    watchdog = Watchdog.create(settings.backup_dir)
    backups = {}  # type: Dict[str, str]
    steps = []  # type: List[RollbackStep]
    for plan in plans:
        argv = tools.restore_argv(plan.spec.command, plan.noflush)
        steps.append(watchdog.backup(plan.spec.family, plan.before, plan.rollback_text, argv))
        backups[plan.spec.key] = watchdog.backup_path(plan.spec.family)
    if sets.needed:
        first, last = watchdog.backup_sets(
            canonical_text(sets.before.values()), sets.rollback, sets.rollback_cleanup, tools.ipset_restore_argv())
        steps = [first] + steps + [last]
        backups["ipset"] = watchdog.backup_path("sets")
    watchdog.wait_for_confirmation(settings.rollback_timeout)
    guardian = tools.start_guardian(watchdog.guardian_config(steps, settings.rollback_timeout))
    return watchdog, guardian, backups


def apply_plans(plans, tools, settings, sets=NO_SETS):
    # type: (Sequence[FamilyPlan], Tools, ApplySettings, SetPlan) -> Dict[str, Any]
    """Validate, back up, apply and verify; the run's backup paths and watchdog. ApplyFailed on failure."""
    prepare_and_validate(plans, tools, sets)
    watchdog, guardian, backups = guard(plans, tools, settings, sets)
    applied = []  # type: List[FamilyPlan]
    failure = change_and_verify(plans, tools, settings.mode, sets, applied)
    if failure is not None:
        put_back(tools, applied, sets)
        guardian.tell("aborted")
        watchdog.stand_down()
        raise ApplyFailed(failure)
    guardian.tell("committed")
    outcome = {"backup": backups}  # type: Dict[str, Any]
    if settings.rollback_timeout > 0:
        outcome["watchdog"] = {"token": watchdog.token, "timeout": settings.rollback_timeout, "pid": guardian.pid}
    else:
        watchdog.stand_down()
    from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import prune_backups

    prune_backups(settings.backup_dir, settings.backup_keep)
    return outcome


def change_and_verify(plans, tools, mode, sets, applied):
    # type: (Sequence[FamilyPlan], Tools, str, SetPlan, List[FamilyPlan]) -> Optional[str]
    """Swap in the changed sets, restore the rules, re-read both, destroy the unused sets; the failure, if any."""
    try:
        ipset_step(tools, sets.update, "could not update the ipset sets; the previous rules and sets are back")
    except ApplyFailed as exc:
        return str(exc)
    failure = restore_changed(plans, tools, applied) or verify(plans, tools, mode) or verify_sets(tools, sets)
    if failure is not None:
        return failure
    try:
        ipset_step(tools, sets.cleanup, "could not destroy the ipset sets no rule uses any more; "
                                        "the previous rules and sets are back")
    except ApplyFailed as exc:
        return str(exc)
    return None


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


def verify_sets(tools, sets):
    # type: (Tools, SetPlan) -> Optional[str]
    """Re-read the sets the new rules use; the difference, if the kernel does not hold what the plan says."""
    if not sets.after:
        return None
    try:
        live = parse_save(tools.ipset_save())
    except (ApplyFailed, ValueError) as exc:
        return "could not re-read the ipset sets (%s); the previous rules and sets are back" % exc
    now = canonical_text(live[name] for name in sorted(sets.after) if name in live)
    wanted = canonical_text(sets.after.values())
    if now != wanted:
        return (
            "after applying, the live ipset sets differ from the policy; the previous rules and sets are back. "
            "Difference:\n%s" % unified_diff(now, wanted, "ipset")
        )
    return None


def put_back(tools, applied, sets=NO_SETS):
    # type: (Tools, Sequence[FamilyPlan], SetPlan) -> None
    """The previous sets, then the previous rules, then destroy the sets only the new rules used."""
    if sets.rollback:
        tools.ipset_restore(sets.rollback)
    for plan in reversed(applied):
        tools.restore(plan.spec.command, plan.rollback_text, noflush=plan.noflush)
    if sets.rollback_cleanup:
        tools.ipset_restore(sets.rollback_cleanup)

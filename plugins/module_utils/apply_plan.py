# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ruleset module will do to each family, decided before it does anything.

Private to the fleetwall.iptables collection. Pure logic, no I/O: from the
compiled ruleset and the live ``iptables-save`` texts it makes one typed
plan per family (what is there, what should be, the restore input that gets
there and the one that goes back) and the refusals that stop a run before
it touches the host. apply_run.py carries the plans out.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import FamilyRuleset
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import (
    coexist_projection,
    coexist_restore_script,
    describe_foreign,
    foreign_chains,
    live_projection,
    owns_nat,
    render_desired,
    rule_counts,
    table_text,
)

EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
EMPTY_NAT = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"


class FamilySpec(NamedTuple):
    family: int  # 4 or 6
    key: str  # the key of the compiled ruleset and of the results: ipv4, ipv6
    command: str  # iptables, ip6tables: the tools are COMMAND-save and COMMAND-restore


FAMILIES = (FamilySpec(4, "ipv4", "iptables"), FamilySpec(6, "ipv6", "ip6tables"))


class FamilyPlan(NamedTuple):
    spec: FamilySpec
    before: str  # the live state fleetwall owns, canonical
    after: str  # what it must become, canonical: the re-read after applying must equal it
    apply_text: str  # restore input that turns before into after
    rollback_text: str  # restore input that puts before back
    noflush: bool  # restore with --noflush (coexist mode)

    @property
    def changed(self):
        # type: () -> bool
        return self.before != self.after


class PlanRefusal(Exception):
    """The run must stop before it changes anything; str() is the message for the user."""


def plan_family(spec, family_ruleset, live_saved, mode, takeover):
    # type: (FamilySpec, FamilyRuleset, str, str, bool) -> FamilyPlan
    """The plan for one family; PlanRefusal when mode: own would remove other software's chains."""
    before = live_projection(live_saved, mode)
    after = render_desired(family_ruleset, mode)
    wants_nat = any(table.name == "nat" for table in family_ruleset.tables)
    if mode == "coexist":
        # The nat table is touched only when fleetwall's chains are to be there or still are.
        tables = ("filter", "nat") if wants_nat or coexist_projection(live_saved, "nat") else ("filter",)
        desired = dict((table, table_text(after, table)) for table in tables)
        return FamilyPlan(
            spec, before, after,
            apply_text="".join(coexist_restore_script(desired[table], live_saved, table) for table in tables),
            rollback_text="".join(
                coexist_restore_script(coexist_projection(live_saved, table), after, table) for table in tables
            ),
            noflush=True,
        )
    for table in ("filter", "nat") if wants_nat else ("filter",):
        defined = [chain.name for chain in family_ruleset.table(table).chains]
        _refuse_foreign(spec, table, foreign_chains(live_saved, defined, table), takeover)
    # In mode: own the canonical text is the restore input; the nat table is restored only when it is or was fleetwall's.
    apply_text, rollback_text = after, before or EMPTY_FILTER
    if owns_nat(live_saved) and not wants_nat:
        apply_text += EMPTY_NAT
    if wants_nat and not owns_nat(live_saved):
        rollback_text += table_text(live_saved, "nat") or EMPTY_NAT
    return FamilyPlan(spec, before, after, apply_text=apply_text, rollback_text=rollback_text, noflush=False)


def _refuse_foreign(spec, table, foreign, takeover):
    # type: (FamilySpec, str, List[str], bool) -> None
    if foreign and not takeover:
        raise PlanRefusal(
            "the %s %s table holds chains fleetwall does not manage (%s: %s); mode: own would remove them. "
            "Use mode: coexist to leave them alone, or takeover: true to replace them"
            % (spec.command, table, describe_foreign(foreign), ", ".join(foreign))
        )


def unchanged_plans(received, lives):
    # type: (Any, Mapping[str, str]) -> Optional[List[FamilyPlan]]
    """Plans that change nothing, when the live filter tables already equal the received texts; else None.

    A compiled ruleset is iptables-save's own text, so in mode: own the common
    no-op run needs no parsing (with thousands of rules, parsing is most of
    its time). A malformed ruleset never matches and is parsed, which names
    what is wrong.
    """
    if not isinstance(received, Mapping):
        return None
    plans = []  # type: List[FamilyPlan]
    for spec in FAMILIES:
        text = received.get(spec.key)
        live = live_projection(lives[spec.key], "own")
        if not isinstance(text, str) or live != text:
            return None
        plans.append(FamilyPlan(spec, live, live, apply_text=live, rollback_text=live, noflush=False))
    return plans


def rule_changes(plans):
    # type: (Sequence[FamilyPlan]) -> Dict[str, Dict[str, int]]
    """Rules added and removed, per family."""
    changes = {}  # type: Dict[str, Dict[str, int]]
    for plan in plans:
        added, removed = rule_counts(plan.before, plan.after) if plan.changed else (0, 0)
        changes[plan.spec.key] = {"added": added, "removed": removed}
    return changes


def diff_entries(plans):
    # type: (Sequence[FamilyPlan]) -> List[Dict[str, str]]
    """Ansible's diff: one entry per family, live against policy."""
    return [
        {
            "before": plan.before,
            "after": plan.after,
            "before_header": "%s (live)" % plan.spec.command,
            "after_header": "%s (policy)" % plan.spec.command,
        }
        for plan in plans
    ]


def other_backend_refusal(command, backend, other):
    # type: (str, str, str) -> str
    return (
        "%s rules are in the %s backend while %s uses %s; fleetwall would not see them. Remove them "
        "(%s-%s-save shows them) or switch the host's iptables alternative, then try again"
        % (command, other if other != "nft" else "nf_tables", command, backend, command, other)
    )

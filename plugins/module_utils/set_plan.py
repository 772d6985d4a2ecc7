# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ruleset module will do to fleetwall's ipset sets, decided before it does anything.

Private to the fleetwall.iptables collection. Pure logic, no I/O: from the
sets the compiled ruleset needs and the live ``ipset save`` text it makes
the ``ipset -exist restore`` inputs of each phase of a run. The order is what keeps
every rule's set in place:

1. ``prepare``: sets that do not exist yet are created and filled. Nothing
   refers to them, so this changes no verdict, and ``iptables-restore --test``
   (which refuses a rule naming a missing set) can validate the new rules.
2. ``update``: sets that exist with other members are rebuilt as a twin and
   swapped in atomically, after the guardian that can undo it has started.
3. the rules of both families are restored (apply_run.py).
4. ``cleanup``: fleetwall's sets that no rule uses any more are destroyed.

``rollback`` puts the previous sets back from any point of that sequence,
before the previous rules are restored; ``rollback_cleanup`` destroys, after
them, the sets the previous state did not have. Every input is meant for
``ipset -exist restore``: ``-exist`` makes creating a set that exists (with
the same type, family and maxelem) and destroying one that does not a no-op,
so the same rollback fits a run that died at any step. (A set whose size
crossed 65,536 members since the previous run has another ``maxelem``; its
rollback fails and the guardian reports it.) Other software's sets
(fail2ban's, for instance) never appear in any of them.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from typing import Dict, List, NamedTuple, Optional, Sequence

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import (
    TEMPORARY_SUFFIX,
    AddressSet,
    canonical_text,
    create_line,
    is_fleetwall_set,
    member_changes,
    member_lines,
    parse_save,
)


class SetPlan(NamedTuple):
    before: Dict[str, AddressSet]  # fleetwall's live sets, by name
    after: Dict[str, AddressSet]  # the sets the new rules use, by name
    prepare: str  # ipset restore input: create and fill the new sets
    update: str  # ipset restore input: swap in the changed sets
    cleanup: str  # ipset restore input: destroy the sets nothing uses any more
    rollback: str  # ipset -exist restore input: the previous sets, from any state of the run
    rollback_cleanup: str  # ipset -exist restore input: destroy what the previous state did not have

    @property
    def changed(self):
        # type: () -> bool
        return canonical_text(self.before.values()) != canonical_text(self.after.values())

    @property
    def needed(self):
        # type: () -> bool
        """Whether this run has anything to do with ipset at all."""
        return bool(self.before or self.after)


NO_SETS = SetPlan({}, {}, "", "", "", "", "")


def _lines_text(lines):
    # type: (Sequence[str]) -> str
    return "".join(line + "\n" for line in lines)


def _refill(address_set):
    # type: (AddressSet) -> List[str]
    """Rebuild a set as its twin and swap it in: the set's users see the old
    members or the new ones, never a mix."""
    twin = address_set.name + TEMPORARY_SUFFIX
    return (
        ["destroy %s" % twin, create_line(address_set, twin)]
        + member_lines(address_set, twin)
        + ["swap %s %s" % (twin, address_set.name), "destroy %s" % twin]
    )


def plan_sets(desired, live_saved):
    # type: (Sequence[AddressSet], str) -> SetPlan
    """The plan from the sets the ruleset needs and ``ipset save``'s output ('' without ipset)."""
    before = parse_save(live_saved)
    after = dict((item.name, item) for item in desired)
    if not before and not after:
        return NO_SETS
    new = [after[name] for name in sorted(after) if name not in before]
    changed = [
        after[name]
        for name in sorted(after)
        if name in before and canonical_text([before[name]]) != canonical_text([after[name]])
    ]
    prepare = []  # type: List[str]
    for address_set in new:
        prepare += [create_line(address_set)] + member_lines(address_set)
    update = []  # type: List[str]
    for address_set in changed:
        update += _refill(address_set)
    rollback = []  # type: List[str]
    for name in sorted(before):
        rollback += [create_line(before[name])] + _refill(before[name])
    return SetPlan(
        before,
        after,
        prepare=_lines_text(prepare),
        update=_lines_text(update),
        cleanup=_lines_text(["destroy %s" % name for name in sorted(before) if name not in after]),
        rollback=_lines_text(rollback),
        rollback_cleanup=_lines_text(["destroy %s" % name for name in sorted(after) if name not in before]),
    )


def sets_unchanged(received, live_saved):
    # type: (object, Optional[str]) -> bool
    """Whether fleetwall's live sets already are the compiled ruleset's ``ipsets``
    text (absent: no sets), without parsing the ruleset: the no-op fast path.
    Leftover fleetwall sets count as a change; other software's sets do not."""
    wanted = received if received is not None else ""
    if not isinstance(wanted, str):
        return False
    if sorted(_save_lines(live_saved or "")) == sorted(wanted.splitlines()):
        return True  # the same lines: no need to read every member as an address
    try:
        live = parse_save(live_saved or "")
    except ValueError:
        return False
    return canonical_text(live.values()) == wanted


def _save_lines(text):
    # type: (str) -> List[str]
    """fleetwall's lines of ``ipset save`` text as canonical_text writes them, in the kernel's order.

    A create line keeps only family and maxelem; a create line whose options are not all
    ``KEY VALUE`` pairs comes out different, so the caller falls back to reading the sets."""
    lines = []  # type: List[str]
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or not is_fleetwall_set(fields[1]):
            continue
        if fields[0] == "create":
            options = dict(zip(fields[3::2], fields[4::2]))
            fields = fields[:3] + ["family", options.get("family", "?"), "maxelem", options.get("maxelem", "?")]
        lines.append(" ".join(fields))
    return lines


def set_diff_entry(plan):
    # type: (SetPlan) -> Dict[str, str]
    """Ansible's diff for the sets, live against policy, in canonical text."""
    return {
        "before": canonical_text(plan.before.values()),
        "after": canonical_text(plan.after.values()),
        "before_header": "ipset (live)",
        "after_header": "ipset (policy)",
    }


def set_changes(plan):
    # type: (SetPlan) -> Dict[str, Dict[str, List[str]]]
    """Per set that changes: the members added and removed (exceptions as ``MEMBER nomatch``)."""
    changes = {}  # type: Dict[str, Dict[str, List[str]]]
    for name in sorted(set(plan.before) | set(plan.after)):
        change = member_changes(plan.before.get(name), plan.after.get(name))
        if change["added"] or change["removed"]:
            changes[name] = change
    return changes

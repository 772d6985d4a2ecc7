# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reachability report: a fleet verification as one self-contained HTML page.

Private to the fleetwall.iptables collection; playbooks use the filter
fleetwall.iptables.reachability_report. This file reads the verification
(through the verification model), lays it out (matrices, cells, counts and
their texts) and renders the Jinja2 template report.html.j2 beside it, with
autoescaping on, so every piece of input is HTML-escaped. The page needs
nothing but itself: its CSS and its one small script are inline in the
template (a Content-Security-Policy allows only those two, by hash, and no
fetch of any kind), and everything is readable without JavaScript. The same
input always gives the same bytes.

Hooks for tests and scripts: ``#summary`` (with ``#verdict``, the banner),
``#mismatches`` (only when there are mismatches), ``#service-nav``,
``section.service[data-service]``, ``table.matrix[data-service]`` whose cells
``td.cell`` carry ``data-service``, ``data-source-group``,
``data-source-kind``, ``data-destination-group``, ``data-destination-kind``
and ``data-status``, ``#legend`` and ``#checks`` (the full table).
"""

from __future__ import annotations

import base64
import hashlib
import pkgutil
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import jinja2

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import type_name
from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import (
    MISMATCH,
    NOT_PROBED,
    PASS,
    INCONCLUSIVE,
    REACHABLE,
    STATUSES,
    Row,
    mismatch_headline,
    Verification,
    VerificationError,
    state_order,
    verification_from_dict,
)

# A cell takes the colour of its worst row.
SEVERITY = (MISMATCH, INCONCLUSIVE, NOT_PROBED, PASS)
# Ansible's implicit groups: every host is in "all", hosts in no other group in "ungrouped".
IMPLICIT_GROUPS = ("all", "ungrouped")
UNGROUPED = "ungrouped"
TOOLTIP_LINES = 40

# An axis entry of a matrix: (kind, name), kind "group", "addresses" or "anywhere".
AxisKey = Tuple[str, str]


# ---------------------------------------------------------------- aggregation


class Cell(NamedTuple):
    checks: Tuple[Row, ...]

    @property
    def status(self) -> str:
        if not self.checks:
            return "empty"
        present = {check.status for check in self.checks}
        return next(status for status in SEVERITY if status in present)


class Matrix(NamedTuple):
    service: str
    sources: Tuple[AxisKey, ...]
    destinations: Tuple[AxisKey, ...]
    cells: Dict[Tuple[AxisKey, AxisKey], Cell]
    checks: Tuple[Row, ...]


def axis_groups(groups: Sequence[str]) -> List[str]:
    """The groups that make a matrix axis: without Ansible's implicit ones unless there is nothing else."""
    explicit = [group for group in groups if group not in IMPLICIT_GROUPS]
    if explicit:
        return explicit
    return ["all"] if "all" in groups else []


def _keys(kind: str, name: str, groups: Sequence[str], axis: Sequence[str]) -> List[AxisKey]:
    if kind != "host":
        return [(kind, name)]
    mine = [("group", group) for group in axis if group in groups]
    return mine or [("group", UNGROUPED)]


def _non_host_order(key: AxisKey) -> Tuple[int, str]:
    return (0 if key[0] == "addresses" else 1, key[1])


def build_matrices(verification: Verification) -> List[Matrix]:
    """One matrix per service: source groups (then other sources) by destination groups.

    A host counts in the cell of each of its groups; a host in no group but the
    implicit ones counts as "ungrouped".
    """
    axis = axis_groups(verification.groups)
    placed: List[Tuple[Row, List[AxisKey], List[AxisKey]]] = []
    for check in verification.rows:
        placed.append((
            check,
            _keys(check.source_kind, check.source, check.source_groups, axis),
            _keys(check.destination_kind, check.destination, check.destination_groups, axis),
        ))
    used = {key for entry in placed for key in entry[1] + entry[2]}
    group_axis = [("group", group) for group in axis]
    if ("group", UNGROUPED) in used and UNGROUPED not in axis:
        group_axis.append(("group", UNGROUPED))

    matrices = []
    for service in verification.services:
        mine = [entry for entry in placed if entry[0].service == service]
        cells: Dict[Tuple[AxisKey, AxisKey], List[Row]] = {}
        for check, sources, destinations in mine:
            for source in sources:
                for destination in destinations:
                    cells.setdefault((source, destination), []).append(check)
        other_sources = sorted({key for entry in mine for key in entry[1] if key[0] != "group"}, key=_non_host_order)
        other_destinations = sorted({key for entry in mine for key in entry[2] if key[0] != "group"}, key=_non_host_order)
        matrices.append(Matrix(
            service=service,
            sources=tuple(group_axis + other_sources),
            destinations=tuple(group_axis + other_destinations),
            cells={key: Cell(tuple(value)) for key, value in cells.items()},
            checks=tuple(entry[0] for entry in mine),
        ))
    return matrices


def _sort_key(services: Sequence[str]) -> Any:
    order = {service: position for position, service in enumerate(services)}

    def key(check: Row) -> Tuple[Any, ...]:
        # sorted() is stable: rows equal in all of this keep the order the verification gives them.
        return (order[check.service], check.source, check.destination, check.family, check.packet)

    return key


# ---------------------------------------------------------------- text


def _plural(count: int, one: str, many: str = "") -> str:
    return "%d %s" % (count, one if count == 1 else (many or one + "s"))


def _observed_text(observed: Optional[str]) -> str:
    return "not probed" if observed is None else observed


def _family_text(family: int) -> str:
    return "IPv%d" % family


def pair_text(check: Row) -> str:
    """'web2 → db1 (IPv4)'."""
    return "%s → %s (%s)" % (check.source, check.destination, _family_text(check.family))


def mismatch_text(check: Row) -> str:
    """'web2 → db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered — decided by …'."""
    text = mismatch_headline(check, arrow="→")
    if check.decided_by:
        text += " — decided by " + check.decided_by
    return text


def _tally(values: Iterable[Any], order: Any) -> List[Tuple[Any, int]]:
    counts: Dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return sorted(counts.items(), key=lambda item: order(item[0]))


def _status_counts_text(checks: Sequence[Row], leave_out: Sequence[str] = ()) -> str:
    words = {"pass": "pass", "mismatch": "mismatch", "inconclusive": "inconclusive", "not-probed": "not probed"}
    tally = _tally((check.status for check in checks if check.status not in leave_out), STATUSES.index)
    return " · ".join("%d %s" % (count, words[status]) for status, count in tally)


def _observed_counts_text(checks: Sequence[Row]) -> str:
    """What the probes saw, with counts; checks not probed are counted by their status."""
    tally = _tally((check.observed for check in checks if check.observed is not None), state_order)
    return " · ".join("%s %d" % (_observed_text(observed), count) for observed, count in tally)


def _cell_tooltip(cell: Cell) -> str:
    checks = sorted(cell.checks, key=lambda check: (check.source, check.destination, check.family))
    mismatches = [check for check in checks if check.status == "mismatch"]
    lines: List[str] = []
    if mismatches:
        lines.append(_plural(len(mismatches), "mismatch", "mismatches") + ":")
        lines.extend(
            "%s: expected %s, observed %s" % (pair_text(check), check.expected, _observed_text(check.observed))
            for check in mismatches[:TOOLTIP_LINES]
        )
        if len(mismatches) > TOOLTIP_LINES:
            lines.append("… and %d more (see the list of mismatches)" % (len(mismatches) - TOOLTIP_LINES))
        lines.append("")
    others = [check for check in checks if check.status != "mismatch"]
    if others:
        lines.append("%s:" % ("other checks" if mismatches else _plural(len(others), "check")))
        lines.extend(
            "%s: %s, %s" % (pair_text(check), check.status, _observed_text(check.observed))
            for check in others[:TOOLTIP_LINES]
        )
        if len(others) > TOOLTIP_LINES:
            lines.append("… and %d more (see the table of all checks)" % (len(others) - TOOLTIP_LINES))
    return "\n".join(lines).rstrip("\n")


# ---------------------------------------------------------------- page

TEMPLATE = "report.html.j2"
_TEMPLATES: Dict[str, Any] = {}


def _csp_source(text: str) -> str:
    """The Content-Security-Policy source that allows exactly this inline style or script."""
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(str(text).encode("utf-8")).digest()).decode("ascii")


def _template() -> Any:
    """The page template, read once from beside this file (through the import system, as the collection loader serves it)."""
    if TEMPLATE not in _TEMPLATES:
        source = pkgutil.get_data(__name__, TEMPLATE)
        if source is None:
            raise RuntimeError("fleetwall.iptables: %s is missing beside %s" % (TEMPLATE, __name__))
        environment = jinja2.Environment(
            autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
        )
        environment.filters["csp_source"] = _csp_source
        _TEMPLATES[TEMPLATE] = environment.from_string(source.decode("utf-8"))
    return _TEMPLATES[TEMPLATE]


def _slug(name: str, taken: Dict[str, str]) -> str:
    slug = "".join(char if char.isascii() and (char.isalnum() or char in "-_") else "-" for char in name).strip("-") or "service"
    candidate = "service-" + slug
    number = 2
    while candidate in taken.values():
        candidate = "service-%s-%d" % (slug, number)
        number += 1
    taken[name] = candidate
    return candidate


def _banner(summary: Mapping[str, int]) -> Dict[str, str]:
    if summary["mismatches"]:
        return {"css": "fail", "status": "mismatch", "word": _plural(summary["mismatches"], "mismatch", "mismatches"),
                "note": "what the probes saw differs from what the policy says; the list below says where"}
    if summary["checks"] == 0:
        return {"css": "empty", "status": "empty", "word": "No checks", "note": "the verification holds no checks at all"}
    note = "%d of %d checks confirmed" % (summary["passed"], summary["checks"])
    if summary["inconclusive"] or summary["not_probed"]:
        note += "; the rest inconclusive or not probed"
    return {"css": "pass", "status": "pass", "word": "PASS", "note": note}


# summary key, the word for one, for many
COUNT_WORDS = (
    ("checks", "check", "checks"),
    ("passed", "passed", "passed"),
    ("mismatches", "mismatch", "mismatches"),
    ("inconclusive", "inconclusive", "inconclusive"),
    ("not_probed", "not probed", "not probed"),
)


def _mismatch_item(check: Row) -> Dict[str, Any]:
    more = []
    if check.source_address or check.destination_address:
        more.append("%s → %s" % (check.source_address or "?", check.destination_address or "?"))
    if check.detail:
        more.append("probe: " + check.detail)
    return {"row": check, "text": mismatch_text(check), "more": " · ".join(more)}


def _axis(key: AxisKey) -> Dict[str, str]:
    return {"kind": key[0], "name": key[1]}


def _cell_view(matrix: Matrix, source: AxisKey, destination: AxisKey) -> Dict[str, Any]:
    cell = matrix.cells.get((source, destination), Cell(()))
    reachable = sum(1 for check in cell.checks if check.expected == REACHABLE)
    return {
        "destination": _axis(destination),
        "status": cell.status,
        "checks": len(cell.checks),
        "tooltip": _cell_tooltip(cell) if cell.checks else "no checks",
        "mismatches": sum(1 for check in cell.checks if check.status == MISMATCH),
        "reachable": reachable,
        "blocked": len(cell.checks) - reachable,
        "observed": _observed_counts_text(cell.checks),
        "statuses": _status_counts_text(cell.checks, leave_out=(PASS, MISMATCH)),
    }


def _matrix_view(matrix: Matrix) -> Dict[str, Any]:
    statuses = [check.status for check in matrix.checks]
    return {
        "service": matrix.service,
        "packets": ", ".join(sorted({check.packet for check in matrix.checks})),
        "checks": len(matrix.checks),
        "counts": _status_counts_text(matrix.checks),
        "mismatches": statuses.count(MISMATCH),
        "inconclusive": statuses.count(INCONCLUSIVE),
        "passed": statuses.count(PASS),
        "destinations": [_axis(key) for key in matrix.destinations],
        "rows": [
            {"source": _axis(source), "cells": [_cell_view(matrix, source, destination) for destination in matrix.destinations]}
            for source in matrix.sources
        ],
    }


def render_report(verification: Mapping[str, Any], title: str = "fleetwall reachability") -> str:
    """The verification as one self-contained HTML page (a VerificationError names any bad field)."""
    if not isinstance(title, str):
        raise VerificationError("title: must be a string, got %s" % type_name(title))
    parsed = verification_from_dict(verification)
    ordered = sorted(parsed.rows, key=_sort_key(parsed.services))
    ids: Dict[str, str] = {}
    for service in parsed.services:
        _slug(service, ids)
    return _template().render(
        title=title,
        generated=parsed.generated or "an unknown time",
        summary=parsed.summary,
        sampling=(parsed.sampling or {}).get("description") or "",
        banner=_banner(parsed.summary),
        counts=[{"key": key, "value": parsed.summary[key], "one": one, "many": many} for key, one, many in COUNT_WORDS],
        mismatches=[_mismatch_item(check) for check in ordered if check.status == MISMATCH],
        ids=ids,
        matrices=[_matrix_view(matrix) for matrix in build_matrices(parsed)],
        rows=ordered,
    )

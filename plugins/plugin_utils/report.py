# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reachability report: a fleet verification as one self-contained HTML page.

Private to the fleetwall.iptables collection; playbooks use the filter
fleetwall.iptables.reachability_report. The page needs nothing but itself: its
CSS and its one small script are inline (a Content-Security-Policy allows only
those two, by hash, and no fetch of any kind), every piece of input is
HTML-escaped, and everything is readable without JavaScript. The same input
always gives the same bytes.

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
import html
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import type_name
from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import (
    MISMATCH,
    NOT_PROBED,
    PASS,
    INCONCLUSIVE,
    STATUSES,
    Row,
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


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


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
    text = "%s → %s %s (%s, %s): expected %s, observed %s" % (
        check.source, check.destination, check.service, check.packet, _family_text(check.family),
        check.expected, _observed_text(check.observed),
    )
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


def _expected_html(checks: Sequence[Row]) -> str:
    reachable = sum(1 for check in checks if check.expected == "reachable")
    blocked = len(checks) - reachable
    if not blocked:
        return '<span class="expect expect-reachable">✓ reachable</span>'
    if not reachable:
        return '<span class="expect expect-blocked">✗ blocked</span>'
    return '<span class="expect expect-mixed">◐ mixed <small>(%d ✓, %d ✗)</small></span>' % (reachable, blocked)


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

STYLE = """
:root {
  --ink: #1f2933; --muted: #5f6b7a; --line: #d5dbe3; --paper: #ffffff; --wash: #f5f7fa;
  --pass: #d3f4dc; --pass-ink: #14532d; --pass-strong: #15803d;
  --bad: #c81e1e; --bad-ink: #ffffff; --bad-wash: #fdecec;
  --unsure: #fde9b3; --unsure-ink: #6b4500;
  --unprobed: #e6eaf0; --unprobed-ink: #3e4a59;
}
* { box-sizing: border-box; }
html { background: var(--wash); }
body {
  margin: 0 auto; max-width: 1240px; padding: 24px 20px 48px; color: var(--ink); background: var(--wash);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif;
}
h1 { font-size: 26px; margin: 0 0 2px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 0; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.92em; }
.generated { color: var(--muted); margin: 0 0 16px; }
.panel { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin: 0 0 18px; }
#summary { display: flex; flex-wrap: wrap; align-items: center; gap: 16px 24px; }
.verdict { border-radius: 8px; padding: 12px 22px; color: #fff; min-width: 220px; }
.verdict-word { display: block; font-size: 30px; font-weight: 800; letter-spacing: 0.02em; line-height: 1.15; }
.verdict-note { display: block; font-size: 13px; opacity: 0.95; }
.verdict-pass { background: var(--pass-strong); }
.verdict-fail { background: var(--bad); }
.verdict-empty { background: #6b7280; }
.counts { display: flex; flex-wrap: wrap; gap: 8px 10px; margin: 0; padding: 0; list-style: none; flex: 1 1 400px; min-width: 0; }
.count { border: 1px solid var(--line); border-radius: 999px; padding: 3px 12px; background: var(--wash); white-space: nowrap; }
.count b { font-size: 17px; }
.count-mismatches.nonzero { background: var(--bad); border-color: var(--bad); color: var(--bad-ink); }
.count-inconclusive.nonzero { background: var(--unsure); color: var(--unsure-ink); }
.count-passed { background: var(--pass); color: var(--pass-ink); }
#mismatches { border: 2px solid var(--bad); background: var(--bad-wash); }
#mismatches h2 { color: var(--bad); }
#mismatches ol { margin: 0; padding-left: 26px; }
#mismatches li { margin: 0 0 8px; }
#mismatches li a { color: inherit; }
.mismatch-line { font-weight: 600; overflow-wrap: anywhere; }
.mismatch-more { display: block; color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
#service-nav { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: 0 0 14px; }
#service-nav .label { color: var(--muted); margin-right: 4px; }
.service-link {
  text-decoration: none; color: var(--ink); border: 1px solid var(--line); background: var(--paper);
  border-radius: 999px; padding: 3px 12px; font-size: 14px;
}
.service-link:hover { border-color: #8a96a8; }
.service-link[aria-current="true"] { background: var(--ink); color: #fff; border-color: var(--ink); }
.badge { display: inline-block; margin-left: 6px; border-radius: 999px; padding: 0 7px; font-size: 12px; font-weight: 700; }
.badge-mismatch { background: var(--bad); color: #fff; }
.badge-ok { background: var(--pass); color: var(--pass-ink); }
.badge-inconclusive { background: var(--unsure); color: var(--unsure-ink); }
.service-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 14px; margin: 0 0 10px; }
.service-head .packets, .service-head .service-counts { color: var(--muted); font-size: 13px; }
.matrix-wrap { overflow-x: auto; }
table { border-collapse: collapse; }
.matrix { border-collapse: separate; border-spacing: 3px; }
.matrix th { font-weight: 600; font-size: 13px; padding: 4px 8px; text-align: left; white-space: nowrap; }
.matrix thead th { text-align: center; vertical-align: bottom; }
.matrix th.corner { color: var(--muted); font-weight: 400; font-size: 12px; text-align: left; }
.matrix th .kind { display: block; color: var(--muted); font-weight: 400; font-size: 11px; }
.cell { min-width: 118px; padding: 6px 8px; border-radius: 6px; font-size: 12.5px; line-height: 1.35; vertical-align: top; }
.cell span { display: block; }
.cell .expect { font-weight: 700; font-size: 13.5px; }
.cell .observed, .cell .statuses { opacity: 0.9; }
.cell-pass, .swatch-pass { background: var(--pass); color: var(--pass-ink); }
.cell-mismatch, .swatch-mismatch { background: var(--bad); color: var(--bad-ink); box-shadow: inset 0 0 0 2px #7f1010; }
.cell-mismatch .flag { font-weight: 800; text-transform: uppercase; font-size: 11.5px; letter-spacing: 0.04em; }
.cell-inconclusive, .swatch-inconclusive { background: var(--unsure); color: var(--unsure-ink); }
.cell-not-probed, .swatch-not-probed {
  background: repeating-linear-gradient(135deg, var(--unprobed), var(--unprobed) 6px, #f1f4f8 6px, #f1f4f8 12px);
  color: var(--unprobed-ink);
}
.cell-empty, .swatch-empty { background: transparent; border: 1px dashed var(--line); color: #a0aab8; text-align: center; vertical-align: middle; }
section.service { margin-bottom: 14px; }
.legend-items { display: flex; flex-wrap: wrap; gap: 8px 22px; margin: 0; padding: 0; list-style: none; font-size: 13px; }
.legend-items li { display: flex; align-items: center; gap: 8px; }
#legend .swatch { display: inline-block; min-width: 96px; text-align: center; padding: 4px 8px; border-radius: 6px; font-size: 12.5px; }
#legend p { margin: 10px 0 0; color: var(--muted); font-size: 13px; }
details > summary { cursor: pointer; font-weight: 600; font-size: 17px; }
.checks-wrap { overflow-x: auto; margin-top: 12px; }
#checks table { width: 100%; font-size: 13px; }
#checks th, #checks td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
#checks th { background: var(--wash); position: sticky; top: 0; }
#checks td.decided, #checks td.detail { overflow-wrap: anywhere; min-width: 160px; }
#checks .address { display: block; color: var(--muted); font-size: 12px; }
.status { display: inline-block; border-radius: 4px; padding: 0 6px; font-weight: 700; font-size: 12px; white-space: nowrap; }
.status-pass { background: var(--pass); color: var(--pass-ink); }
.status-mismatch { background: var(--bad); color: #fff; }
.status-inconclusive { background: var(--unsure); color: var(--unsure-ink); }
.status-not-probed { background: var(--unprobed); color: var(--unprobed-ink); }
tr.row-mismatch td { background: var(--bad-wash); }
.empty-note { color: var(--muted); margin: 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
@media print { #service-nav { display: none; } section.service[hidden] { display: block; } }
""".strip()

# Without JavaScript, the service links jump to their section and every section
# shows. With it, a link shows that service alone and "all services" shows all.
SCRIPT = """
(function () {
  var sections = document.querySelectorAll("section.service[data-service]");
  var links = document.querySelectorAll("a[data-show-service]");
  function show(name) {
    var i;
    for (i = 0; i < sections.length; i++) {
      sections[i].hidden = name !== "" && sections[i].getAttribute("data-service") !== name;
    }
    for (i = 0; i < links.length; i++) {
      if (links[i].getAttribute("data-show-service") === name) {
        links[i].setAttribute("aria-current", "true");
      } else {
        links[i].removeAttribute("aria-current");
      }
    }
  }
  function onClick() { show(this.getAttribute("data-show-service")); }
  for (var i = 0; i < links.length; i++) {
    links[i].addEventListener("click", onClick);
  }
  document.documentElement.setAttribute("data-js", "on");
})();
""".strip()


def _hash_source(text: str) -> str:
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# Nothing may be fetched: no default source, the inline style and script allowed by hash.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src %s; script-src %s; base-uri 'none'; form-action 'none'" % (
    _hash_source(STYLE),
    _hash_source(SCRIPT),
)


def _slug(name: str, taken: Dict[str, str]) -> str:
    slug = "".join(char if char.isascii() and (char.isalnum() or char in "-_") else "-" for char in name).strip("-") or "service"
    candidate = "service-" + slug
    number = 2
    while candidate in taken.values():
        candidate = "service-%s-%d" % (slug, number)
        number += 1
    taken[name] = candidate
    return candidate


def _attributes(**attributes: Any) -> str:
    return "".join(' %s="%s"' % (name.replace("_", "-"), _escape(value)) for name, value in attributes.items())


def _summary_html(verification: Verification) -> str:
    summary = verification.summary
    mismatches = summary["mismatches"]
    if mismatches:
        banner = ("verdict-fail", "mismatch", _plural(mismatches, "mismatch", "mismatches"),
                  "what the probes saw differs from what the policy says; the list below says where")
    elif summary["checks"] == 0:
        banner = ("verdict-empty", "empty", "No checks", "the verification holds no checks at all")
    else:
        probed = summary["passed"]
        note = "%d of %d checks confirmed" % (probed, summary["checks"])
        if summary["inconclusive"] or summary["not_probed"]:
            note += "; the rest inconclusive or not probed"
        banner = ("verdict-pass", "pass", "PASS", note)
    css, status, word, note = banner
    counts = [
        ("checks", summary["checks"], "check", "checks"),
        ("passed", summary["passed"], "passed", "passed"),
        ("mismatches", summary["mismatches"], "mismatch", "mismatches"),
        ("inconclusive", summary["inconclusive"], "inconclusive", "inconclusive"),
        ("not_probed", summary["not_probed"], "not probed", "not probed"),
    ]
    items = "".join(
        '<li class="count count-%s%s" data-count="%s"><b>%d</b> %s</li>' % (
            key.replace("_", "-"), " nonzero" if value else "", key, value, one if value == 1 else many)
        for key, value, one, many in counts
    )
    return (
        '<section id="summary" class="panel" aria-label="summary">\n'
        '<div id="verdict" class="verdict %s" data-status="%s" role="status">'
        '<span class="verdict-word">%s</span><span class="verdict-note">%s</span></div>\n'
        '<ul class="counts">%s</ul>\n'
        "</section>\n" % (css, status, _escape(word), _escape(note), items)
    )


def _mismatches_html(checks: Sequence[Row], ids: Mapping[str, str]) -> str:
    if not checks:
        return ""
    items = []
    for check in checks:
        more = []
        if check.source_address or check.destination_address:
            more.append("%s → %s" % (check.source_address or "?", check.destination_address or "?"))
        if check.detail:
            more.append("probe: " + check.detail)
        items.append(
            '<li class="mismatch"%s><a class="mismatch-line" href="#%s"%s>%s</a>%s</li>' % (
                _attributes(data_service=check.service, data_source=check.source, data_destination=check.destination,
                            data_family=check.family),
                _escape(ids[check.service]),
                _attributes(data_show_service=check.service),
                _escape(mismatch_text(check)),
                '<span class="mismatch-more">%s</span>' % _escape(" · ".join(more)) if more else "",
            )
        )
    return (
        '<section id="mismatches" class="panel">\n<h2>%s: expected and observed differ</h2>\n<ol>\n%s\n</ol>\n</section>\n'
        % (_escape(_plural(len(checks), "mismatch", "mismatches")), "\n".join(items))
    )


def _nav_html(matrices: Sequence[Matrix], ids: Mapping[str, str]) -> str:
    links = ['<span class="label">Services:</span>', '<a class="service-link" href="#matrices" data-show-service="">all services</a>']
    for matrix in matrices:
        mismatches = sum(1 for check in matrix.checks if check.status == "mismatch")
        inconclusive = sum(1 for check in matrix.checks if check.status == "inconclusive")
        if mismatches:
            badge = '<span class="badge badge-mismatch" title="%s">%d</span>' % (
                _escape(_plural(mismatches, "mismatch", "mismatches")), mismatches)
        elif inconclusive:
            badge = '<span class="badge badge-inconclusive" title="%s">%d</span>' % (
                _escape("no mismatches, %d inconclusive" % inconclusive), inconclusive)
        elif any(check.status == "pass" for check in matrix.checks):
            badge = '<span class="badge badge-ok" title="no mismatches">✓</span>'
        else:
            badge = ""
        links.append('<a class="service-link" href="#%s"%s>%s%s</a>' % (
            _escape(ids[matrix.service]), _attributes(data_show_service=matrix.service), _escape(matrix.service), badge))
    return '<nav id="service-nav" aria-label="services">%s</nav>\n' % "".join(links)


def _axis_header(key: AxisKey) -> str:
    kind, name = key
    if kind == "group":
        return _escape(name)
    if kind == "addresses":
        return '%s<span class="kind">address set</span>' % _escape(name)
    return _escape(name)


def _cell_html(matrix: Matrix, source: AxisKey, destination: AxisKey) -> str:
    cell = matrix.cells.get((source, destination), Cell(()))
    status = cell.status
    attributes = _attributes(
        data_service=matrix.service,
        data_source_group=source[1],
        data_source_kind=source[0],
        data_destination_group=destination[1],
        data_destination_kind=destination[0],
        data_status=status,
        data_checks=len(cell.checks),
    )
    if status == "empty":
        return '<td class="cell cell-empty"%s title="no checks">–</td>' % attributes
    parts = []
    mismatches = sum(1 for check in cell.checks if check.status == "mismatch")
    if mismatches:
        parts.append('<span class="flag">⚠ %s</span>' % _escape(_plural(mismatches, "mismatch", "mismatches")))
    parts.append(_expected_html(cell.checks))
    observed = _observed_counts_text(cell.checks)
    if observed:
        parts.append('<span class="observed">%s</span>' % _escape(observed))
    others = _status_counts_text(cell.checks, leave_out=("pass", "mismatch"))
    if others:
        parts.append('<span class="statuses">%s</span>' % _escape(others))
    return '<td class="cell cell-%s"%s title="%s">%s</td>' % (status, attributes, _escape(_cell_tooltip(cell)), "".join(parts))


def _matrix_html(matrix: Matrix, section_id: str) -> str:
    packets = sorted({check.packet for check in matrix.checks})
    head = '<div class="service-head"><h3>%s</h3>' % _escape(matrix.service)
    if packets:
        head += '<span class="packets mono">%s</span>' % _escape(", ".join(packets))
    if matrix.checks:
        head += '<span class="service-counts">%s: %s</span>' % (
            _escape(_plural(len(matrix.checks), "check")), _escape(_status_counts_text(matrix.checks)))
    head += "</div>"
    if not matrix.checks:
        body = '<p class="empty-note">No checks for this service.</p>'
    else:
        header = '<tr><th class="corner" scope="col">from ↓ &nbsp; to →</th>%s</tr>' % "".join(
            '<th scope="col"%s>%s</th>' % (_attributes(data_destination_group=key[1], data_destination_kind=key[0]), _axis_header(key))
            for key in matrix.destinations
        )
        rows = []
        for source in matrix.sources:
            rows.append('<tr><th scope="row"%s>%s</th>%s</tr>' % (
                _attributes(data_source_group=source[1], data_source_kind=source[0]),
                _axis_header(source),
                "".join(_cell_html(matrix, source, destination) for destination in matrix.destinations),
            ))
        body = '<div class="matrix-wrap"><table class="matrix"%s>\n<thead>%s</thead>\n<tbody>\n%s\n</tbody>\n</table></div>' % (
            _attributes(data_service=matrix.service), header, "\n".join(rows))
    return '<section class="service panel" id="%s"%s>\n%s\n%s\n</section>\n' % (
        _escape(section_id), _attributes(data_service=matrix.service), head, body)


LEGEND = """<section id="legend" class="panel" aria-label="legend">
<ul class="legend-items">
<li><span class="swatch swatch-pass">pass</span> <span>every check in the cell saw what the policy expects</span></li>
<li><span class="swatch swatch-mismatch">⚠ mismatch</span> <span>a probe saw something else; hover the cell for the host pairs</span></li>
<li><span class="swatch swatch-inconclusive">inconclusive</span> <span>an observation fits both outcomes (<code>open|filtered</code>)</span></li>
<li><span class="swatch swatch-not-probed">not probed</span> <span>no host sends from there, or no probe for that packet</span></li>
<li><span class="swatch swatch-empty">–</span> <span>no checks</span></li>
</ul>
<p>Rows are sources, columns destinations. In a cell, the first line is what the policy expects:
<b>✓ reachable</b>, <b>✗ blocked</b> or <b>◐ mixed</b> (both, with counts); then what the probes observed, with counts.
A cell takes the colour of its worst check. A host in several groups counts in the cells of each of its groups,
so a row or column can count a check more than once. Sources that are not inventory hosts (address sets, any address)
have rows of their own after the groups.</p>
</section>
"""


def _checks_html(checks: Sequence[Row]) -> str:
    rows = []
    for check in checks:
        rows.append(
            '<tr class="row-%s"%s><td><span class="status status-%s">%s</span></td>'
            '<td>%s<span class="address mono">%s</span></td><td>%s<span class="address mono">%s</span></td>'
            '<td>%s</td><td class="mono">%s</td><td>%s</td><td>%s</td><td>%s</td><td class="decided">%s</td><td class="detail">%s</td></tr>' % (
                check.status,
                _attributes(data_status=check.status, data_service=check.service, data_source=check.source,
                            data_destination=check.destination, data_family=check.family),
                check.status, _escape(check.status.replace("-", " ")),
                _escape(check.source), _escape(check.source_address),
                _escape(check.destination), _escape(check.destination_address),
                _escape(check.service), _escape(check.packet), _escape(_family_text(check.family)),
                _escape(check.expected), _escape(_observed_text(check.observed)),
                _escape(check.decided_by), _escape(check.detail),
            )
        )
    return (
        '<details id="checks" class="panel">\n<summary>%s</summary>\n'
        '<div class="checks-wrap"><table>\n<thead><tr><th>status</th><th>from</th><th>to</th><th>service</th><th>packet</th>'
        "<th>family</th><th>expected</th><th>observed</th><th>decided by</th><th>detail</th></tr></thead>\n"
        "<tbody>\n%s\n</tbody>\n</table></div>\n</details>\n"
        % (_escape("All %s" % _plural(len(checks), "check")), "\n".join(rows))
    )


def render_report(verification: Mapping[str, Any], title: str = "fleetwall reachability") -> str:
    """The verification as one self-contained HTML page (a VerificationError names any bad field)."""
    if not isinstance(title, str):
        raise VerificationError("title: must be a string, got %s" % type_name(title))
    parsed = verification_from_dict(verification)
    ordered = sorted(parsed.rows, key=_sort_key(parsed.services))
    matrices = build_matrices(parsed)
    ids: Dict[str, str] = {}
    for service in parsed.services:
        _slug(service, ids)
    generated = parsed.generated or "an unknown time"
    return "".join([
        "<!DOCTYPE html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta http-equiv="Content-Security-Policy" content="%s">\n' % _escape(CONTENT_SECURITY_POLICY),
        '<meta name="referrer" content="no-referrer">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        '<meta name="generator" content="fleetwall.iptables reachability_report">\n',
        "<title>%s</title>\n" % _escape("%s — %s" % (title, "PASS" if not parsed.summary["mismatches"] else _plural(
            parsed.summary["mismatches"], "mismatch", "mismatches"))),
        "<style>%s</style>\n</head>\n<body>\n" % STYLE,
        '<header><h1>%s</h1><p class="generated">generated %s</p></header>\n' % (_escape(title), _escape(generated)),
        _summary_html(parsed),
        _mismatches_html([check for check in ordered if check.status == "mismatch"], ids),
        '<main id="matrices">\n<h2>Reachability by service</h2>\n',
        _nav_html(matrices, ids),
        LEGEND,
        "".join(_matrix_html(matrix, ids[matrix.service]) for matrix in matrices),
        "</main>\n",
        _checks_html(ordered),
        '<footer>fleetwall.iptables reachability report; this page loads nothing from anywhere.</footer>\n',
        "<script>%s</script>\n</body>\n</html>\n" % SCRIPT,
    ])

"""render_report and the reachability_report filter: counts, matrix cells, escaping,
validation messages that name the bad field, and byte-for-byte deterministic output.

The page is parsed with the standard library's HTMLParser into a small tree, and
the tests look at it through the hooks the page promises (ids, classes, data-*).
What a browser shows (colours, layout, no fetches, no script run) is
tests/integration/test_report_browser.py's business.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import inspect
import random
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.filter import reachability_report as filter_plugin
from ansible_collections.fleetwall.iptables.plugins.filter.reachability_report import reachability_report
from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import (
    STATUSES,
    VerificationError,
    verification_summary,
)
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.report import render_report

HOSTILE = "<script>alert(1)</script>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

HOSTS = {
    # name: (groups, IPv4)
    "bastion1": (["all", "bastion"], "10.0.0.10"),
    "web1": (["all", "web"], "10.0.1.11"),
    "web2": (["all", "web"], "10.0.1.12"),
    "db1": (["all", "db"], "10.0.2.21"),
    "db2": (["all", "db", "cache"], "10.0.2.22"),
}


# ---------------------------------------------------------------- input


def row(source: str = "web1", destination: str = "db1", service: str = "postgres", **overrides: Any) -> Dict[str, Any]:
    """A passing row between two hosts of HOSTS; non-host sources by name ("office", "anywhere")."""
    if source in HOSTS:
        source_kind, source_groups, source_address = "host", HOSTS[source][0], HOSTS[source][1]
    else:
        source_kind = "anywhere" if source == "anywhere" else "addresses"
        source_groups, source_address = [], "192.0.2.10"
    result = {
        "source": source,
        "source_kind": source_kind,
        "source_groups": list(source_groups),
        "source_address": source_address,
        "destination": destination,
        "destination_groups": list(HOSTS[destination][0]),
        "destination_address": HOSTS[destination][1],
        "family": 4,
        "service": service,
        "protocol": "icmp" if service == "ping" else "tcp",
        "port": {"postgres": 5432, "ssh": 22, "ping": None}[service],
        "expected": "reachable",
        "observed": "open",
        "status": "pass",
        "decided_by": "%s INPUT rule 7: fleetwall_policy.db.inbound[0]: app tier" % destination,
        "detail": "handshake completed",
    }
    result.update(overrides)
    return result


def verification(*rows: Dict[str, Any], groups: Optional[List[str]] = None, services: Optional[List[str]] = None) -> Dict[str, Any]:
    return {
        "generated": "2026-11-22T03:00:00Z",
        "summary": verification_summary(row["status"] for row in rows),
        "groups": ["all", "bastion", "cache", "db", "web"] if groups is None else groups,
        "services": ["ssh", "postgres", "ping"] if services is None else services,
        "rows": list(rows),
    }


MISMATCH = row("web2", "db1", observed="filtered", status="mismatch", detail="no reply within 1.0 s")


def failing() -> Dict[str, Any]:
    return verification(
        row("web1", "db1"),
        copy.deepcopy(MISMATCH),
        row("web1", "db2"),
        row("bastion1", "db1", "ssh"),
        row("web1", "db1", "ssh", expected="blocked", observed="filtered", decided_by="db1 INPUT policy DROP"),
        row("office", "db1", "ssh", expected="blocked", observed=None, status="not-probed", detail="no host sends from office"),
    )


# ---------------------------------------------------------------- a small HTML tree


class Node:
    def __init__(self, tag: str, attrs: Dict[str, Optional[str]], parent: Optional["Node"]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: List[Any] = []  # Node or str

    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)

    def words(self) -> str:
        return " ".join(self.text().split())

    def classes(self) -> List[str]:
        return (self.attrs.get("class") or "").split()

    def walk(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def find_all(self, tag: Optional[str] = None, css_class: Optional[str] = None, **attrs: str) -> List["Node"]:
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return [
            node for node in self.walk()
            if (tag is None or node.tag == tag)
            and (css_class is None or css_class in node.classes())
            and all(node.attrs.get(name) == value for name, value in wanted.items())
        ]

    def find(self, tag: Optional[str] = None, css_class: Optional[str] = None, **attrs: str) -> "Node":
        found = self.find_all(tag, css_class, **attrs)
        assert len(found) == 1, "expected one %s.%s %r, found %d" % (tag, css_class, attrs, len(found))
        return found[0]


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None, "</%s> closes nothing" % tag
        assert node is self.current, "</%s> closes <%s> early" % (tag, self.current.tag)
        self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(page: str) -> Node:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.current is builder.root, "unclosed <%s>" % builder.current.tag
    return builder.root


def cell(page: Node, service: str, source: str, destination: str) -> Node:
    return page.find("td", "cell", data_service=service, data_source_group=source, data_destination_group=destination)


def row_headers(page: Node, service: str) -> List[str]:
    table = page.find("table", "matrix", data_service=service)
    return [th.attrs["data-source-group"] for th in table.find_all("th", scope="row")]


def column_headers(page: Node, service: str) -> List[str]:
    table = page.find("table", "matrix", data_service=service)
    return [th.attrs["data-destination-group"] for th in table.find_all("th", scope="col") if "data-destination-group" in th.attrs]


# ---------------------------------------------------------------- header, banner, mismatches


def test_a_passing_verification_says_pass_with_its_counts():
    checks = verification(
        row(), row("web2", "db1"), row("office", "db1", "ssh", observed=None, status="not-probed"),
        row("web1", "db2", observed="open|filtered", status="inconclusive"),
    )
    page = parse(render_report(checks, title="lab"))
    verdict = page.find(id="verdict")
    assert "verdict-pass" in verdict.classes() and verdict.attrs["data-status"] == "pass"
    assert verdict.find("span", "verdict-word").words() == "PASS"
    counts = {node.attrs["data-count"]: node.words() for node in page.find(id="summary").find_all("li", "count")}
    assert counts == {
        "checks": "4 checks", "passed": "2 passed", "mismatches": "0 mismatches",
        "inconclusive": "1 inconclusive", "not_probed": "1 not probed",
    }
    assert not page.find_all(id="mismatches")
    assert page.find("h1").words() == "lab"
    assert "2026-11-22T03:00:00Z" in page.find("p", "generated").words()


def test_a_failing_verification_leads_with_its_mismatches():
    text = render_report(failing())
    page = parse(text)
    verdict = page.find(id="verdict")
    assert "verdict-fail" in verdict.classes() and verdict.find("span", "verdict-word").words() == "1 mismatch"
    assert page.find("title").words() == "fleetwall reachability — 1 mismatch"
    items = page.find(id="mismatches").find_all("li", "mismatch")
    assert [item.find("a").words() for item in items] == [
        "web2 → db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered"
        " — decided by db1 INPUT rule 7: fleetwall_policy.db.inbound[0]: app tier"
    ]
    assert items[0].attrs["data-source"] == "web2" and items[0].attrs["data-destination"] == "db1"
    assert "no reply within 1.0 s" in items[0].words()
    # The operator sees the mismatches before any matrix.
    assert text.index('id="mismatches"') < text.index('class="matrix"')


def test_the_banner_counts_mismatches_in_the_plural():
    rows = [row("web1", "db1", observed="filtered", status="mismatch"), copy.deepcopy(MISMATCH)]
    page = parse(render_report(verification(*rows)))
    assert page.find(id="verdict").find("span", "verdict-word").words() == "2 mismatches"
    assert len(page.find(id="mismatches").find_all("li")) == 2


def test_no_checks_at_all_is_not_a_pass():
    page = parse(render_report(verification()))
    verdict = page.find(id="verdict")
    assert "verdict-empty" in verdict.classes() and "PASS" not in verdict.words()


def test_a_packet_label_and_an_all_protocol_row_read_well():
    rows = [
        row(service="ping", observed="filtered", status="mismatch"),
        row(service="ssh", protocol=None, port=None, packet="esp", observed=None, status="not-probed"),
        row(service="ssh", destination="db2", protocol=None, port=None, observed="filtered", status="mismatch", decided_by=""),
    ]
    lines = [item.find("a").words() for item in parse(render_report(verification(*rows))).find(id="mismatches").find_all("li")]
    assert lines == [
        "web1 → db2 ssh (all protocols, IPv4): expected reachable, observed filtered",
        "web1 → db1 ping (icmp, IPv4): expected reachable, observed filtered"
        " — decided by db1 INPUT rule 7: fleetwall_policy.db.inbound[0]: app tier",
    ]


# ---------------------------------------------------------------- matrices


def test_a_host_in_two_groups_counts_in_the_cell_of_each():
    page = parse(render_report(failing()))
    # db2 is in db and cache: web1 -> db2 counts under both columns, web1 -> db1 only under db.
    in_db = cell(page, "postgres", "web", "db")
    in_cache = cell(page, "postgres", "web", "cache")
    assert in_db.attrs["data-checks"] == "3" and in_cache.attrs["data-checks"] == "1"
    assert in_cache.attrs["data-status"] == "pass" and "cell-pass" in in_cache.classes()
    assert "web1 → db2 (IPv4)" in in_cache.attrs["title"] and "db1" not in in_cache.attrs["title"]
    assert in_db.find("span", "observed").words() == "open 2 · filtered 1"


def test_the_mismatch_cell_is_marked_and_its_tooltip_names_the_pair():
    page = parse(render_report(failing()))
    mismatch = cell(page, "postgres", "web", "db")
    assert mismatch.attrs["data-status"] == "mismatch" and "cell-mismatch" in mismatch.classes()
    title = mismatch.attrs["title"]
    assert title.startswith("1 mismatch:\nweb2 → db1 (IPv4): expected reachable, observed filtered\n"), title
    assert "web1 → db1 (IPv4): pass, open" in title
    assert mismatch.find("span", "flag").words() == "⚠ 1 mismatch"
    assert page.find_all("td", "cell-mismatch") == [mismatch]


def test_a_cell_takes_the_colour_of_its_worst_check():
    def status_of(*statuses: str) -> str:
        observed = {"pass": "open", "mismatch": "filtered", "inconclusive": "open|filtered", "not-probed": None}
        rows = [
            row(source, "db1", observed=observed[status], status=status)
            for source, status in zip(["web1", "web2"], statuses)
        ]
        return cell(parse(render_report(verification(*rows))), "postgres", "web", "db").attrs["data-status"]

    assert status_of("pass", "pass") == "pass"
    assert status_of("pass", "not-probed") == "not-probed"
    assert status_of("not-probed", "inconclusive") == "inconclusive"
    assert status_of("inconclusive", "mismatch") == "mismatch"
    assert status_of("mismatch", "pass") == "mismatch"


def test_cells_without_checks_are_empty_and_every_status_has_its_class():
    page = parse(render_report(failing()))
    for node in page.find_all("td", "cell"):
        status = node.attrs["data-status"]
        assert status in STATUSES + ("empty",)
        assert "cell-%s" % status in node.classes()
    empty = cell(page, "postgres", "db", "web")
    assert empty.attrs["data-status"] == "empty" and empty.attrs["data-checks"] == "0"
    assert cell(page, "ssh", "office", "db").attrs["data-status"] == "not-probed"


def test_expectations_read_reachable_blocked_or_mixed():
    page = parse(render_report(failing()))
    assert cell(page, "ssh", "bastion", "db").find("span", "expect").words() == "✓ reachable"
    assert cell(page, "ssh", "office", "db").find("span", "expect").words() == "✗ blocked"
    mixed = parse(render_report(verification(row(), row("web2", "db1", expected="blocked", observed="filtered"))))
    assert cell(mixed, "postgres", "web", "db").find("span", "expect").words() == "◐ mixed (1 ✓, 1 ✗)"


def test_axes_leave_out_all_and_put_other_sources_after_the_groups():
    rows = [row(), row("anywhere", "db1", "ssh"), row("office", "db1", "ssh"), row("bastion1", "db1", "ssh")]
    page = parse(render_report(verification(*rows)))
    assert row_headers(page, "ssh") == ["bastion", "cache", "db", "web", "office", "anywhere"]
    assert column_headers(page, "ssh") == ["bastion", "cache", "db", "web"]
    assert row_headers(page, "postgres") == ["bastion", "cache", "db", "web"]
    kinds = {th.attrs["data-source-group"]: th.attrs["data-source-kind"] for th in page.find("table", "matrix", data_service="ssh").find_all("th", scope="row")}
    assert kinds["office"] == "addresses" and kinds["anywhere"] == "anywhere" and kinds["web"] == "group"


def test_all_is_an_axis_when_it_is_the_only_group_and_lone_hosts_are_ungrouped():
    only_all = [row(source_groups=["all"], destination_groups=["all"])]
    page = parse(render_report(verification(*only_all, groups=["all"])))
    assert row_headers(page, "postgres") == ["all"] and column_headers(page, "postgres") == ["all"]
    assert cell(page, "postgres", "all", "all").attrs["data-checks"] == "1"

    lone = [row(source_groups=["all"]), row("web2", "db1")]
    page = parse(render_report(verification(*lone)))
    assert row_headers(page, "postgres") == ["bastion", "cache", "db", "web", "ungrouped"]
    assert cell(page, "postgres", "ungrouped", "db").attrs["data-checks"] == "1"


def test_every_service_gets_a_section_in_order_even_without_checks():
    page = parse(render_report(failing()))
    sections = page.find_all("section", "service")
    assert [section.attrs["data-service"] for section in sections] == ["ssh", "postgres", "ping"]
    assert not sections[2].find_all("table") and "No checks" in sections[2].words()
    links = [link.attrs["data-show-service"] for link in page.find(id="service-nav").find_all("a")]
    assert links == ["", "ssh", "postgres", "ping"]
    assert [section.attrs["id"] for section in sections] == ["service-ssh", "service-postgres", "service-ping"]


def test_the_full_table_lists_every_check():
    checks = failing()
    page = parse(render_report(checks))
    table = page.find("details", id="checks")
    rows = [tr for tr in table.find_all("tr") if "data-status" in tr.attrs]
    assert len(rows) == len(checks["rows"])
    assert sorted(tr.attrs["data-status"] for tr in rows) == sorted(each["status"] for each in checks["rows"])
    assert "All 6 checks" in table.find("summary").words()


# ---------------------------------------------------------------- safety and self-containment


def test_user_data_is_escaped_everywhere():
    quote = '" onmouseover="alert(2)'
    hostile = verification(
        row(
            "web1", "db1", observed="filtered", status="mismatch", decided_by=HOSTILE, detail=HOSTILE + quote,
            source_groups=["all", "w<i>eb"],
        ),
        groups=["all", "w<i>eb", "db"],
        services=["post'gres</table>"],
    )
    hostile["rows"][0]["service"] = "post'gres</table>"
    hostile["rows"][0]["source"] = "<b>web1</b>" + quote
    hostile["generated"] = HOSTILE
    text = render_report(hostile, title=HOSTILE)
    assert "<script>alert" not in text and "<b>web1" not in text and "<i>" not in text and "</table>\"" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = parse(text)
    assert len(page.find_all("script")) == 1 and not page.find("script").attrs
    assert not [node for node in page.walk() if "onmouseover" in node.attrs]
    assert page.find("h1").text() == HOSTILE
    mismatch = page.find(id="mismatches").find("a").text()
    assert mismatch.endswith("decided by " + HOSTILE) and mismatch.startswith("<b>web1</b>" + quote + " → db1")
    assert cell(page, "post'gres</table>", "w<i>eb", "db").attrs["data-status"] == "mismatch"


def test_the_page_fetches_nothing_and_allows_only_its_own_style_and_script():
    text = render_report(failing())
    page = parse(text)
    assert not page.find_all("link") and not page.find_all("img") and not page.find_all("iframe")
    assert not [node for node in page.walk() if "src" in node.attrs or "style" in node.attrs]
    assert not re.search(r"https?://|url\(|@import|//[a-z]", text, re.IGNORECASE)
    policy = page.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert policy.startswith("default-src 'none';")

    def digest(node: Node) -> str:
        return "'sha256-%s'" % base64.b64encode(hashlib.sha256(node.text().encode("utf-8")).digest()).decode("ascii")

    assert "style-src %s;" % digest(page.find("style")) in policy
    assert "script-src %s;" % digest(page.find("script")) in policy


def test_the_output_is_deterministic_whatever_the_row_order():
    checks = failing()
    first = render_report(checks)
    assert render_report(copy.deepcopy(checks)) == first
    shuffled = copy.deepcopy(checks)
    random.Random(7).shuffle(shuffled["rows"])
    assert shuffled["rows"] != checks["rows"]
    assert render_report(shuffled) == first


def test_extra_keys_are_ignored_and_optional_text_may_be_missing():
    extra = row(id="c7", consistent=["open"], probe_from="web1", egress=None)
    del extra["detail"]
    extra["decided_by"] = None
    checks = verification(extra)
    checks["mismatches"] = ["text"]
    checks["failed"] = False
    assert "PASS" in parse(render_report(checks)).find(id="verdict").words()


# ---------------------------------------------------------------- validation


def with_row_change(index: int, key: str, value: Any) -> Dict[str, Any]:
    checks = failing()
    if value is KeyError:
        del checks["rows"][index][key]
    else:
        checks["rows"][index][key] = value
    return checks


BAD_INPUT: List[Tuple[str, Any, str]] = [
    ("status", lambda: with_row_change(3, "status", "passed"),
     "verification.rows[3].status: must be one of pass, mismatch, inconclusive, not-probed, got 'passed'"),
    ("expected", lambda: with_row_change(0, "expected", "open"),
     "verification.rows[0].expected: must be one of reachable, blocked, got 'open'"),
    ("family", lambda: with_row_change(1, "family", 5), "verification.rows[1].family: must be one of 4, 6, got 5"),
    ("family bool", lambda: with_row_change(1, "family", True), "verification.rows[1].family: must be one of 4, 6, got True"),
    ("source_kind", lambda: with_row_change(2, "source_kind", "group"),
     "verification.rows[2].source_kind: must be one of host, addresses, anywhere, got 'group'"),
    ("protocol", lambda: with_row_change(2, "protocol", "sctp"),
     "verification.rows[2].protocol: must be one of tcp, udp, icmp, null, got 'sctp'"),
    ("port", lambda: with_row_change(0, "port", 70000), "verification.rows[0].port: must be a port number from 0 to 65535 or null"),
    ("port text", lambda: with_row_change(0, "port", "5432"), "verification.rows[0].port: must be a port number"),
    ("missing", lambda: with_row_change(4, "service", KeyError), "verification.rows[4].service: missing"),
    ("unknown service", lambda: with_row_change(4, "service", "pgsql"), "verification.rows[4].service: 'pgsql' is not in verification.services"),
    ("unknown group", lambda: with_row_change(0, "destination_groups", ["all", "dbs"]),
     "verification.rows[0].destination_groups[1]: 'dbs' is not in verification.groups"),
    ("source", lambda: with_row_change(5, "source", ""), "verification.rows[5].source: must not be empty"),
    ("observed", lambda: with_row_change(5, "observed", 3), "verification.rows[5].observed: must be a string, got integer 3"),
    ("row", lambda: dict(failing(), rows=[row(), "web1 -> db1"]), "verification.rows[1]: must be a mapping, got string 'web1 -> db1'"),
    ("rows", lambda: dict(failing(), rows={"a": 1}), "verification.rows: must be a list, got mapping"),
    ("groups", lambda: dict(failing(), groups=["web", "web"]), "verification.groups[1]: 'web' is listed twice"),
    ("summary", lambda: dict(failing(), summary=dict(failing()["summary"], mismatches=0)),
     "verification.summary.mismatches: says 0 but verification.rows has 1 rows with status mismatch"),
    ("summary count", lambda: dict(failing(), summary=dict(failing()["summary"], checks=-1)),
     "verification.summary.checks: must be a whole number of at least 0, got integer -1"),
    ("summary key", lambda: dict(failing(), summary={"checks": 6}), "verification.summary.passed: missing"),
    ("verification", lambda: ["rows"], "verification: must be a mapping (the output of the verification), got list"),
]


@pytest.mark.parametrize("make, message", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_names_the_field(make, message):
    with pytest.raises(VerificationError) as exc:
        render_report(make())
    assert str(exc.value).startswith(message), str(exc.value)


def test_the_filter_reports_the_field_without_a_traceback():
    with pytest.raises(AnsibleFilterError) as exc:
        reachability_report(with_row_change(3, "status", "passed"))
    assert str(exc.value).startswith(
        "reachability_report: verification.rows[3].status: must be one of pass, mismatch, inconclusive, not-probed"
    ), str(exc.value)
    assert exc.value.__cause__ is None and (exc.value.__suppress_context__ or exc.value.__context__ is None)
    with pytest.raises(AnsibleFilterError, match="reachability_report: title: must be a non-empty string"):
        reachability_report(failing(), title=["x"])


def test_the_filter_returns_the_page():
    assert filter_plugin.FilterModule().filters() == {"reachability_report": reachability_report}
    assert reachability_report(failing(), title="prod") == render_report(failing(), title="prod")
    assert reachability_report(failing()) == render_report(failing())


def test_the_filter_documentation_matches_the_signature():
    path = Path(inspect.getsourcefile(filter_plugin)).with_suffix(".yml")
    docs = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert sorted(docs) == ["DOCUMENTATION", "EXAMPLES", "RETURN"]
    documentation = docs["DOCUMENTATION"]
    assert documentation["name"] == "reachability_report"
    parameters = inspect.signature(reachability_report).parameters
    assert sorted(documentation["options"]) == sorted(["_input"] + list(parameters)[1:])
    assert documentation["options"]["title"]["default"] == parameters["title"].default
    assert "reachability_report" in docs["EXAMPLES"]

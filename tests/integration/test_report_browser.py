"""The reachability report as a person sees it: loaded from a file in real headless
Chromium (Debian's chromium and chromium-driver, driven by selenium through
/usr/bin/chromedriver, so Selenium Manager downloads nothing).

Checks what the page looks like, not how it is written: the banner's words and
computed colour for a passing and a failing verification, the mismatch list,
the colour and tooltip of the mismatch cell, that the page fetched nothing and
ran no script but its own, that a hostile string shows as text, that the
summary fits 1280 px, the service filter, and a full-page PNG screenshot
(also through scripts/report-screenshot.py --sample).

Without chromium, chromedriver or selenium the tests FAIL, saying to run
scripts/bootstrap.sh; FLEETWALL_NO_BROWSER=1 skips them instead. They need no
root and no network namespaces (as root, Chromium runs with --no-sandbox).
"""

from __future__ import annotations

import copy
import os
import re
import runpy
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import verification_summary
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.report import render_report

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH = 1280
HOSTILE = "<script>window.fleetwallPwned = 1; alert(1)</script>"
HOSTILE_HOST = '<img src="x" onerror="window.fleetwallPwned = 2">'

HOSTS = {
    "bastion1": (["all", "bastion"], "10.0.0.10"),
    "web1": (["all", "web"], "10.0.1.11"),
    "web2": (["all", "web"], "10.0.1.12"),
    "db1": (["all", "db"], "10.0.2.21"),
    "db2": (["all", "db", "cache"], "10.0.2.22"),
    "mon1": (["all", "monitoring"], "10.0.4.41"),
}
GROUPS = ["all", "bastion", "cache", "db", "monitoring", "web"]
SERVICES = {"ssh": ("tcp", 22), "postgres": ("tcp", 5432), "ping": ("icmp", None), "syslog": ("udp", 514)}


def make_row(source: str, destination: str, service: str, family: int = 4, **overrides: Any) -> Dict[str, Any]:
    protocol, port = SERVICES[service]
    host = source in HOSTS
    result = {
        "source": source,
        "source_kind": "host" if host else ("anywhere" if source == "anywhere" else "addresses"),
        "source_groups": list(HOSTS[source][0]) if host else [],
        "source_address": HOSTS[source][1] if host else "192.0.2.10",
        "destination": destination,
        "destination_groups": list(HOSTS[destination][0]),
        "destination_address": HOSTS[destination][1],
        "family": family,
        "service": service,
        "protocol": protocol,
        "port": port,
        "expected": "reachable",
        "observed": "open",
        "status": "pass",
        "decided_by": "%s INPUT rule 7: fleetwall_policy.%s" % (destination, service),
        "detail": "handshake completed",
    }
    result.update(overrides)
    return result


def make_verification(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "generated": "2026-11-22T03:00:00Z",
        "summary": verification_summary(row["status"] for row in rows),
        "groups": GROUPS,
        "services": list(SERVICES),
        "rows": rows,
    }


def passing_rows() -> List[Dict[str, Any]]:
    rows = []
    for source in HOSTS:
        for destination in HOSTS:
            if source == destination:
                continue
            for family in (4, 6):
                rows.append(make_row(source, destination, "ssh", family, **(
                    {} if source == "bastion1" else {"expected": "blocked", "observed": "filtered", "decided_by": "%s INPUT policy DROP" % destination}
                )))
                if destination in ("db1", "db2"):
                    reachable = source in ("web1", "web2")
                    rows.append(make_row(source, destination, "postgres", family, **(
                        {} if reachable else {"expected": "blocked", "observed": "filtered"}
                    )))
                rows.append(make_row(source, destination, "ping", family, detail="echo reply"))
                if destination == "mon1":
                    rows.append(make_row(source, destination, "syslog", family, observed="open|filtered", status="inconclusive"))
    rows.append(make_row("office", "bastion1", "ssh", observed=None, status="not-probed", detail="no inventory host sends from office"))
    return rows


PASSING = make_verification(passing_rows())


def failing_verification() -> Dict[str, Any]:
    failing = copy.deepcopy(PASSING)
    for row in failing["rows"]:
        if (row["source"], row["destination"], row["service"], row["family"]) == ("web2", "db1", "postgres", 4):
            row.update(observed="filtered", status="mismatch", detail="no reply within 1.0 s",
                       decided_by="db1 INPUT rule 7: fleetwall_policy.db.inbound[0]: app tier " + HOSTILE)
        if (row["source"], row["destination"], row["service"]) == ("mon1", "db2", "ping"):
            row["source"] = HOSTILE_HOST
    return make_verification(failing["rows"])


# ---------------------------------------------------------------- the browser


# The screenshot script knows how to find and drive Chromium; the test asks it the same way.
browser_problem = runpy.run_path(str(ROOT / "scripts" / "report-screenshot.py"), run_name="report_screenshot")["browser_problem"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if os.environ.get("FLEETWALL_NO_BROWSER") == "1":
        pytest.skip("FLEETWALL_NO_BROWSER=1: the report's browser tests (headless Chromium) skipped")
    problem = browser_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    # pylint: disable=import-outside-toplevel
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                     "--force-device-scale-factor=1", "--window-size=%d,900" % WIDTH):
        options.add_argument(argument)
    # Every network event Chromium sees, to prove the page fetched nothing.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    directory = tmp_path_factory.mktemp("report")
    written = {}
    for name, verification in (("passing", PASSING), ("failing", failing_verification())):
        written[name] = directory / ("%s.html" % name)
        written[name].write_text(render_report(verification, title="lab " + name), encoding="utf-8")
    return written


def set_viewport(driver: Any, width: int, height: int) -> None:
    """Size the window so that the page itself gets width x height (a headless window still has a frame)."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if (int(inner[0]), int(inner[1])) != (width, height):
        driver.set_window_size(2 * width - int(inner[0]), 2 * height - int(inner[1]))


def load(driver: Any, path: Path, width: int = WIDTH, height: int = 900) -> None:
    set_viewport(driver, width, height)
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"


def script(driver: Any, source: str, *args: Any) -> Any:
    return driver.execute_script(source, *args)


def background(driver: Any, selector: str) -> Tuple[int, int, int]:
    value = script(driver, "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", selector)
    match = re.match(r"rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)", value)
    assert match, value
    assert match.group(4) in (None, "1"), "%s is (partly) transparent: %s" % (selector, value)
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def is_red(colour: Tuple[int, int, int]) -> bool:
    red, green, blue = colour
    return red >= 150 and green <= 90 and blue <= 90


def is_green(colour: Tuple[int, int, int]) -> bool:
    red, green, blue = colour
    return green >= 100 and green > red + 20 and green > blue + 15


def no_alert(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException  # pylint: disable=import-outside-toplevel

    try:
        driver.switch_to.alert.text  # pylint: disable=expression-not-assigned
    except NoAlertPresentException:
        return True
    return False


MISMATCH_CELL = 'td.cell[data-service="postgres"][data-source-group="web"][data-destination-group="db"]'


# ---------------------------------------------------------------- what a person sees


def test_the_banner_says_pass_in_green_or_the_mismatches_in_red(browser, pages):
    load(browser, pages["passing"])
    passing_text = browser.find_element("id", "verdict").text
    passing_colour = background(browser, "#verdict")
    assert passing_text.splitlines()[0] == "PASS", passing_text
    assert is_green(passing_colour), passing_colour
    assert not browser.find_elements("id", "mismatches")

    load(browser, pages["failing"])
    failing_text = browser.find_element("id", "verdict").text
    failing_colour = background(browser, "#verdict")
    assert failing_text.splitlines()[0] == "1 mismatch", failing_text
    assert is_red(failing_colour), failing_colour
    assert passing_colour != failing_colour
    assert browser.find_element("id", "verdict").is_displayed()


def test_the_mismatch_list_names_the_pair_and_the_service_above_the_matrices(browser, pages):
    load(browser, pages["failing"])
    mismatches = browser.find_element("id", "mismatches")
    lines = [item.text for item in mismatches.find_elements("css selector", "li")]
    assert len(lines) == 1
    assert lines[0].startswith("web2 → db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered — decided by db1 INPUT"), lines
    first_matrix = browser.find_element("css selector", "table.matrix")
    assert mismatches.location["y"] + mismatches.size["height"] <= first_matrix.location["y"]
    # Above the fold at 1280 x 900: the operator sees it without scrolling.
    assert mismatches.location["y"] < 900


def test_the_mismatch_cell_is_red_and_its_tooltip_names_the_pair(browser, pages):
    load(browser, pages["failing"])
    cell = browser.find_element("css selector", MISMATCH_CELL)
    assert cell.get_attribute("data-status") == "mismatch"
    assert is_red(background(browser, MISMATCH_CELL)), background(browser, MISMATCH_CELL)
    assert "web2 → db1 (IPv4): expected reachable, observed filtered" in cell.get_attribute("title")
    assert cell.is_displayed() and "MISMATCH" in cell.text.upper()
    # Nothing else in the matrices is red.
    others = script(browser, """
        return Array.from(document.querySelectorAll('td.cell')).filter(function (cell) {
            return cell.getAttribute('data-status') !== 'mismatch';
        }).map(function (cell) { return getComputedStyle(cell).backgroundColor; });""")
    assert others and not [colour for colour in others if is_red(tuple(int(part) for part in re.findall(r"\d+", colour)[:3]))]
    passing_cell = 'td.cell[data-service="postgres"][data-source-group="web"][data-destination-group="cache"]'
    assert is_green(background(browser, passing_cell))


def test_the_page_fetches_nothing(browser, pages):
    load(browser, pages["failing"])
    assert script(browser, "return performance.getEntriesByType('resource').length") == 0
    assert not browser.find_elements("css selector", "link, script[src], img, iframe, object, embed, [style*='url(']")
    page_url = pages["failing"].resolve().as_uri()
    requested = []
    for entry in browser.get_log("performance"):
        message = entry["message"]
        if '"Network.requestWillBeSent"' in message:
            url = re.search(r'"url":"([^"]*)"', message)
            requested.append(url.group(1) if url else message)
    assert requested and all(url == page_url for url in requested), requested


def test_hostile_strings_show_as_text_and_run_nothing(browser, pages):
    load(browser, pages["failing"])
    assert no_alert(browser)
    assert script(browser, "return window.fleetwallPwned === undefined")
    assert script(browser, "return document.scripts.length") == 1
    line = browser.find_element("css selector", "#mismatches li").text
    assert HOSTILE in line, line
    table_text = script(browser, "return document.getElementById('checks').textContent")
    assert HOSTILE_HOST in table_text
    assert not browser.find_elements("css selector", "body img, [onerror]")


def test_the_summary_fits_1280_pixels(browser, pages):
    load(browser, pages["failing"], WIDTH, 900)
    fit = script(browser, """
        var summary = document.getElementById('summary');
        var box = summary.getBoundingClientRect();
        return {inner: window.innerWidth, right: box.right, scroll: summary.scrollWidth, client: summary.clientWidth,
                page: document.documentElement.scrollWidth};""")
    assert fit["inner"] == WIDTH, fit
    assert fit["right"] <= fit["inner"] and fit["scroll"] <= fit["client"], fit
    assert fit["page"] <= fit["inner"], "the page scrolls sideways at %d px: %s" % (WIDTH, fit)


def test_everything_shows_without_a_click_and_the_service_links_filter(browser, pages):
    load(browser, pages["failing"])
    sections = browser.find_elements("css selector", "section.service")
    assert [section.get_attribute("data-service") for section in sections] == list(SERVICES)
    assert all(section.is_displayed() for section in sections)
    browser.find_element("css selector", '#service-nav a[data-show-service="postgres"]').click()
    shown = [section.get_attribute("data-service") for section in sections if section.is_displayed()]
    assert shown == ["postgres"]
    browser.find_element("css selector", '#service-nav a[data-show-service=""]').click()
    assert all(section.is_displayed() for section in sections)
    assert browser.find_element("id", "checks").tag_name == "details"


def test_a_full_page_screenshot_is_a_real_png(browser, pages, tmp_path):
    load(browser, pages["failing"])
    height = script(browser, "return Math.ceil(document.documentElement.scrollHeight)")
    set_viewport(browser, WIDTH, height)
    assert script(browser, "return [window.innerWidth, window.innerHeight]") == [WIDTH, height]
    path = tmp_path / "report.png"
    assert browser.save_screenshot(str(path))
    width, png_height, rows = decode_png(path.read_bytes())
    assert (width, png_height) == (WIDTH, height)
    check_not_blank(rows)


def test_the_screenshot_script_writes_the_sample(browser, tmp_path):
    html, png = tmp_path / "sample.html", tmp_path / "sample.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "report-screenshot.py"), "--sample", "--html", str(html), "--png", str(png)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout
    load(browser, html)
    assert browser.find_element("id", "verdict").text.splitlines()[0] == "3 mismatches"
    assert len(browser.find_elements("css selector", "td.cell-mismatch")) >= 3
    width, height, rows = decode_png(png.read_bytes())
    assert width == WIDTH and height > 1000, (width, height)
    check_not_blank(rows)


# ---------------------------------------------------------------- PNG, by hand


def decode_png(data: bytes, decode_rows: int = 450) -> Tuple[int, int, List[List[Tuple[int, ...]]]]:
    """Width, height and the top pixel rows of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes).

    Every chunk's CRC and the size of the whole image data are checked; only the
    top rows are unfiltered, pure Python being slow at it.
    """
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[position + 8 + length:position + 12 + length])[0], "bad CRC"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
        if kind == b"IEND":
            break
    assert header, "no IHDR"
    width, height, depth, colour, interlace = header[0], header[1], header[2], header[3], header[6]
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    assert len(raw) == height * (stride + 1), "truncated image data"
    rows: List[List[Tuple[int, ...]]] = []
    previous = bytearray(stride)
    for number in range(min(height, decode_rows)):
        start = number * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for index in range(stride):
            left = line[index - channels] if index >= channels else 0
            up = previous[index]
            up_left = previous[index - channels] if index >= channels else 0
            if kind == 1:
                line[index] = (line[index] + left) & 0xFF
            elif kind == 2:
                line[index] = (line[index] + up) & 0xFF
            elif kind == 3:
                line[index] = (line[index] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - up_left
                distances = (abs(guess - left), abs(guess - up), abs(guess - up_left))
                line[index] = (line[index] + (left, up, up_left)[distances.index(min(distances))]) & 0xFF
        rows.append([tuple(line[index:index + 3]) for index in range(0, stride, channels)])
        previous = line
    return width, height, rows


def check_not_blank(rows: List[List[Tuple[int, ...]]]) -> None:
    """Many colours, dark text, and the red of the mismatch banner near the top."""
    colours = {pixel for row in rows[::2] for pixel in row[::2]}
    assert len(colours) > 50, "only %d colours: a blank page?" % len(colours)
    assert any(sum(pixel) < 200 for pixel in colours), "no dark pixels: no text?"
    assert any(is_red(pixel[:3]) for row in rows[:400] for pixel in row), "no red banner in the top 400 px"

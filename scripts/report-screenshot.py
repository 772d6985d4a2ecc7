"""Write a reachability report as HTML and as a PNG screenshot taken in headless Chromium.

    .venv/bin/python scripts/report-screenshot.py VERIFICATION.json --html report.html --png report.png
    .venv/bin/python scripts/report-screenshot.py --sample \\
        --html docs/images/reachability-report-sample.html --png docs/images/reachability-report.png

VERIFICATION is what the verification filter returns, as JSON (or YAML, for a
.yml/.yaml file). --sample uses a built-in, realistic verification instead: a
lab of seven hosts in the groups bastion, web, db, cache and monitoring, the
services ssh, http, https, postgres, redis, node-exporter, ping and syslog, and
three mismatches. The screenshot is the full page at the given width (default
1280 px): the window is made as tall as the page. Needs Debian's chromium and
chromium-driver (scripts/bootstrap.sh installs them) and selenium from
requirements-dev.txt; Selenium Manager is never asked to download anything.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium cannot capture a page taller than this in one screenshot.
MAX_HEIGHT = 16000

# ---------------------------------------------------------------- the sample

SAMPLE_GENERATED = "2026-11-22T03:00:00Z"
SAMPLE_GROUPS = ["all", "bastion", "cache", "db", "monitoring", "web"]
SAMPLE_SERVICES = ["ssh", "http", "https", "postgres", "redis", "node-exporter", "ping", "syslog"]
# host: (groups, IPv4, IPv6); db2 also runs a cache.
SAMPLE_HOSTS = {
    "bastion1": (["bastion"], "10.0.0.10", "fd00::10"),
    "web1": (["web"], "10.0.1.11", "fd00:0:0:1::11"),
    "web2": (["web"], "10.0.1.12", "fd00:0:0:1::12"),
    "db1": (["db"], "10.0.2.21", "fd00:0:0:2::21"),
    "db2": (["db", "cache"], "10.0.2.22", "fd00:0:0:2::22"),
    "cache1": (["cache"], "10.0.3.31", "fd00:0:0:3::31"),
    "mon1": (["monitoring"], "10.0.4.41", "fd00:0:0:4::41"),
}
# address sets and "anywhere": (kind, IPv4, IPv6)
SAMPLE_OTHER_SOURCES = {
    "office": ("addresses", "192.0.2.10", "2001:db8:10::10"),
    "anywhere": ("anywhere", "198.51.100.77", "2001:db8:ffff::77"),
}
SAMPLE_PACKETS = {
    "ssh": ("tcp", 22), "http": ("tcp", 80), "https": ("tcp", 443), "postgres": ("tcp", 5432),
    "redis": ("tcp", 6379), "node-exporter": ("tcp", 9100), "ping": ("icmp", None), "syslog": ("udp", 514),
}
# (service, destination group, allowed sources (groups, set names or "anywhere"), policy entry, INPUT rule number)
SAMPLE_POLICY = [
    ("ssh", "all", ["bastion"], "fleetwall_policy.all.inbound[0]: admin access from the bastion", 4),
    ("node-exporter", "all", ["monitoring"], "fleetwall_policy.all.inbound[1]: metrics", 5),
    ("ping", "all", ["bastion", "monitoring"], "fleetwall_policy.all.inbound[2]: reachability checks", 6),
    ("ssh", "bastion", ["office"], "fleetwall_policy.bastion.inbound[0]: staff from the office", 7),
    ("http", "web", ["anywhere"], "fleetwall_policy.web.inbound[0]: public site", 7),
    ("https", "web", ["anywhere"], "fleetwall_policy.web.inbound[1]: public site", 8),
    ("postgres", "db", ["web"], "fleetwall_policy.db.inbound[0]: app tier", 7),
    ("redis", "cache", ["web"], "fleetwall_policy.cache.inbound[0]: sessions", 7),
    ("syslog", "monitoring", ["all"], "fleetwall_policy.monitoring.inbound[0]: central logging", 7),
]
# (source, destination, service, family): (observed, detail) where the lab disagrees with the policy
SAMPLE_MISMATCHES = {
    ("web2", "db1", "postgres", 4): ("filtered", "no reply within 1.0 s"),
    ("web1", "db2", "ssh", 6): ("open", "handshake completed (SSH-2.0-OpenSSH_9.2p1)"),
    ("mon1", "cache1", "node-exporter", 6): ("filtered", "no reply within 1.0 s"),
}


def _allowed(service: str, source: str, source_groups: Sequence[str], destination_groups: Sequence[str]) -> Optional[Tuple[str, int]]:
    for rule_service, group, allowed, entry, number in SAMPLE_POLICY:
        if rule_service != service or group not in destination_groups:
            continue
        if "anywhere" in allowed or source in allowed or any(each in allowed for each in source_groups):
            return entry, number
    return None


def _observation(protocol: str, reachable: bool) -> Tuple[str, str, str]:
    """(observed, status, detail) of a probe that found what the policy expects."""
    if protocol == "udp":
        if reachable:
            return "closed", "pass", "ICMP port unreachable: the packet got in, nothing listens"
        return "open|filtered", "inconclusive", "no reply within 1.0 s: dropped, or a silent listener"
    if protocol == "icmp":
        return ("open", "pass", "echo reply") if reachable else ("filtered", "pass", "no reply within 1.0 s")
    return ("open", "pass", "handshake completed") if reachable else ("filtered", "pass", "no reply within 1.0 s")


def sample_verification() -> Dict[str, Any]:
    """A realistic verification of a small lab, with three mismatches."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import verification_summary

    sources: List[Tuple[str, str, List[str], Dict[int, str]]] = [
        (name, "host", ["all"] + groups, {4: ipv4, 6: ipv6}) for name, (groups, ipv4, ipv6) in SAMPLE_HOSTS.items()
    ]
    sources += [(name, kind, [], {4: ipv4, 6: ipv6}) for name, (kind, ipv4, ipv6) in SAMPLE_OTHER_SOURCES.items()]
    rows = []
    for service in SAMPLE_SERVICES:
        protocol, port = SAMPLE_PACKETS[service]
        for source, kind, source_groups, source_addresses in sources:
            for destination, (groups, ipv4, ipv6) in SAMPLE_HOSTS.items():
                if destination == source:
                    continue
                destination_groups = ["all"] + groups
                for family, address in ((4, ipv4), (6, ipv6)):
                    rule = _allowed(service, source, source_groups, destination_groups)
                    if rule:
                        decided_by = "%s INPUT rule %d: %s" % (destination, rule[1], rule[0])
                    else:
                        decided_by = "%s INPUT policy DROP" % destination
                    observed, status, detail = _observation(protocol, rule is not None)
                    if kind != "host":
                        observed, status, detail = None, "not-probed", "no inventory host sends from %s" % source
                    elif (source, destination, service, family) in SAMPLE_MISMATCHES:
                        observed, detail = SAMPLE_MISMATCHES[(source, destination, service, family)]
                        status = "mismatch"
                    rows.append({
                        "source": source,
                        "source_kind": kind,
                        "source_groups": source_groups,
                        "source_address": source_addresses[family],
                        "destination": destination,
                        "destination_groups": destination_groups,
                        "destination_address": address,
                        "family": family,
                        "service": service,
                        "protocol": protocol,
                        "port": port,
                        "expected": "reachable" if rule else "blocked",
                        "observed": observed,
                        "status": status,
                        "decided_by": decided_by,
                        "detail": detail,
                    })
    return {
        "generated": SAMPLE_GENERATED,
        "summary": verification_summary(row["status"] for row in rows),
        "groups": SAMPLE_GROUPS,
        "services": SAMPLE_SERVICES,
        "rows": rows,
    }


# ---------------------------------------------------------------- the browser


def browser_problem() -> Optional[str]:
    """Why headless Chromium cannot be driven here, or None."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return "%s not found: run scripts/bootstrap.sh (it installs Debian's chromium and chromium-driver)" % " and ".join(missing)
    try:
        import selenium  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        return "selenium is not installed: run scripts/bootstrap.sh (requirements-dev.txt)"
    return None


def start_browser(width: int = 1280, height: int = 900) -> Any:
    """Headless Chromium through Debian's chromedriver; root needs --no-sandbox."""
    # pylint: disable=import-outside-toplevel
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                     "--force-device-scale-factor=1", "--window-size=%d,%d" % (width, height)):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: Optional[int] = None) -> Tuple[int, int]:
    """Save the page at this width as PNG, whole or its top ``height`` pixels; returns the window size used."""
    driver = start_browser(width)
    try:
        driver.get(html_path.resolve().as_uri())
        if height is None:
            height = int(driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)"))
        height = min(max(height, 200), MAX_HEIGHT)
        driver.set_window_size(width, height)
        # The window may include a frame: grow it until the viewport has the wanted size.
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        driver.set_window_size(width + (width - int(inner[0])), height + (height - int(inner[1])))
        if not driver.save_screenshot(str(png_path)):
            raise RuntimeError("Chromium did not save the screenshot %s" % png_path)
        return width, height
    finally:
        driver.quit()


# ---------------------------------------------------------------- main


def load_verification(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yml", ".yaml"):
        import yaml  # pylint: disable=import-outside-toplevel

        return yaml.safe_load(text)
    return json.loads(text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("verification", nargs="?", type=Path, help="the verification, as JSON (or YAML)")
    what.add_argument("--sample", action="store_true", help="use the built-in sample verification")
    parser.add_argument("--html", type=Path, help="write the report here")
    parser.add_argument("--png", type=Path, help="write a full-page screenshot of the report here")
    parser.add_argument("--json", type=Path, help="also write the verification used, as JSON, here")
    parser.add_argument("--title", default="fleetwall reachability", help="the page title")
    parser.add_argument("--width", type=int, default=1280, help="screenshot width in CSS pixels (default 1280)")
    parser.add_argument("--height", type=int, help="only the top of the page, this many CSS pixels (default: the whole page)")
    args = parser.parse_args(argv)
    if not (args.html or args.png or args.json):
        parser.error("nothing to write: give --html, --png and/or --json")

    # Make ansible_collections.fleetwall.iptables importable, as the tests' conftest does.
    runpy.run_path(str(ROOT / "tests" / "conftest.py"))
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import VerificationError
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.fleetwall.iptables.plugins.plugin_utils.report import render_report

    verification = sample_verification() if args.sample else load_verification(args.verification)
    try:
        page = render_report(verification, title=args.title)
    except VerificationError as exc:
        print("report-screenshot: %s" % exc, file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(verification, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print("wrote %s" % args.json)
    if args.html:
        args.html.write_text(page, encoding="utf-8")
        print("wrote %s (%d bytes)" % (args.html, len(page.encode("utf-8"))))
    if args.png:
        problem = browser_problem()
        if problem:
            print("report-screenshot: %s" % problem, file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory(prefix="fleetwall-report-") as scratch:
            html_path = args.html or Path(scratch) / "report.html"
            if not args.html:
                html_path.write_text(page, encoding="utf-8")
            width, height = screenshot(html_path, args.png, args.width, args.height)
        print("wrote %s (%d x %d)" % (args.png, width, height))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""playbooks/verify.yml against the lab of `make demo`: six namespace hosts with sshd, IPv4 and IPv6.

The lab is rolled out with playbooks/site.yml over SSH from the bastion, with
every address list of more than one address per family as an ipset set
(`fleetwall_set_threshold=1`), then verified by a verify.yml whose model is
compiled without that setting, from plain rules: every probe must agree with
the policy, so the sets let through exactly what the rules they replace would. Then an operator changes
rules by hand on two hosts, and verify.yml must fail, naming each pair and
service that no longer does what the policy says, and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = [sys.executable, str(REPO / "scripts" / "lab.py")]
INVENTORY = "examples/lab"
COLLECTIONS_ROOT = REPO / ".build" / "pytest"  # holds ansible_collections/fleetwall/iptables -> the checkout


def lab(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT), ANSIBLE_NOCOLOR="1")
    return subprocess.run(LAB + list(arguments), cwd=REPO, capture_output=True, text=True, env=environment, timeout=timeout, check=False)


def verify(tmp_path: Path, name: str) -> tuple:
    report, data = tmp_path / ("%s.html" % name), tmp_path / ("%s.json" % name)
    completed = lab("playbook", INVENTORY, "playbooks/verify.yml",
                    "-e", "fleetwall_verify_report=%s" % report, "-e", "fleetwall_verify_json=%s" % data)
    verification = json.loads(data.read_text()) if data.exists() else None
    return completed, verification, report


def rows_of(verification: Dict[str, Any], **where: Any) -> List[Dict[str, Any]]:
    return [row for row in verification["rows"] if all(row[key] == value for key, value in where.items())]


@pytest.fixture(scope="module", name="lab_up")
def fixture_lab_up(privileged: None) -> Iterator[None]:
    up = lab("up", INVENTORY)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        rollout = lab("playbook", INVENTORY, "playbooks/site.yml", "-e", "fleetwall_batch_size=3",
                      "-e", "fleetwall_set_threshold=1")
        assert rollout.returncode == 0, rollout.stdout[-4000:] + rollout.stderr[-2000:]
        yield
    finally:
        lab("down")


def test_a_correct_rollout_verifies(lab_up: None, tmp_path: Path) -> None:
    completed, verification, report = verify(tmp_path, "correct")
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    summary = verification["summary"]
    assert summary["mismatches"] == 0 and not verification["failed"]
    assert verification["groups"] == ["all", "bastion", "cache", "db", "monitoring", "web"]
    # 6 destinations x 8 services x (5 other hosts + office + anywhere) x 2 families
    assert summary["checks"] == 6 * 8 * 7 * 2
    assert summary["not_probed"] == 6 * 8 * 2 * 2
    probed = [row for row in verification["rows"] if row["observed"] is not None]
    assert len(probed) == 6 * 8 * 5 * 2
    for row in probed:
        assert row["observed"] in row["consistent"], row
    # What a person checks first: the policy's own sentences, in real packets.
    for family in (4, 6):
        assert rows_of(verification, source="web1", destination="db1", service="postgres", family=family)[0]["observed"] == "open"
        assert rows_of(verification, source="bastion1", destination="db1", service="postgres", family=family)[0]["observed"] == "filtered"
        assert rows_of(verification, source="mon1", destination="cache1", service="ping", family=family)[0]["observed"] == "open"
        assert rows_of(verification, source="web2", destination="cache1", service="ping", family=family)[0]["observed"] == "filtered"
        assert rows_of(verification, source="db1", destination="mon1", service="syslog", family=family)[0]["observed"] == "closed"
        assert rows_of(verification, source="bastion1", destination="web2", service="ssh", family=family)[0]["observed"] == "open"
    # Only UDP silence is inconclusive here: every TCP and ICMP check is decisive.
    assert {row["protocol"] for row in verification["rows"] if row["status"] == "inconclusive"} == {"udp"}
    assert summary["passed"] >= len(probed) - 6 * 5 * 2
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and "web1" in html and "postgres" in html
    assert "Recap" not in completed.stdout or "failed=0" in completed.stdout


def test_the_rollout_matches_group_references_through_ipset_sets(lab_up: None) -> None:
    rules = lab("iptables", "db1", "-S", "INPUT")
    assert "--match-set fw4-g:web src" in rules.stdout, rules.stdout


def test_a_hand_change_fails_verification_naming_pair_and_service(lab_up: None, tmp_path: Path) -> None:
    # One host drops a flow the policy allows; another lets in one it does not.
    dropped = lab("iptables", "db1", "-I", "INPUT", "1", "-s", "10.0.1.12", "-p", "tcp", "--dport", "5432", "-j", "DROP")
    assert dropped.returncode == 0, dropped.stderr
    opened = lab("iptables", "web1", "-6", "-I", "INPUT", "1", "-p", "tcp", "--dport", "6379", "-j", "ACCEPT")
    assert opened.returncode == 0, opened.stderr
    try:
        completed, verification, report = verify(tmp_path, "tampered")
    finally:
        lab("iptables", "db1", "-D", "INPUT", "-s", "10.0.1.12", "-p", "tcp", "--dport", "5432", "-j", "DROP")
        lab("iptables", "web1", "-6", "-D", "INPUT", "-p", "tcp", "--dport", "6379", "-j", "ACCEPT")
    assert completed.returncode != 0
    output = completed.stdout + completed.stderr
    assert "web2 -> db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered" in output
    assert "bastion1 -> web1 redis (tcp/6379, IPv6): expected blocked, observed open" in output
    mismatched = sorted((row["source"], row["destination"], row["service"], row["family"]) for row in verification["rows"] if row["status"] == "mismatch")
    assert mismatched == [
        ("bastion1", "web1", "redis", 6), ("cache1", "web1", "redis", 6), ("db1", "web1", "redis", 6),
        ("mon1", "web1", "redis", 6), ("web2", "db1", "postgres", 4), ("web2", "web1", "redis", 6),
    ]
    html = report.read_text()
    assert html.count('data-status="mismatch"') >= 1


def test_after_the_hand_changes_are_undone_the_fleet_verifies_again(lab_up: None, tmp_path: Path) -> None:
    completed, verification, report = verify(tmp_path, "restored")
    assert completed.returncode == 0, completed.stdout[-4000:]
    assert verification["summary"]["mismatches"] == 0

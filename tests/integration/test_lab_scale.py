"""scripts/lab.py at a size a flat bridge could not probe correctly: 24 hosts behind the router namespace.

With no firewall at all, every host must reach every service of every other
host, over IPv4 and IPv6 (real TCP connections: from each of the 24 hosts and
the outsider to every other host, 6 services, 2 addresses each), with no "neighbor table overflow"
in the kernel log while they run, and each host must hold exactly one
neighbour entry per family (the router). Taking the lab down must leave no
lab namespace and no lab process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = [sys.executable, str(REPO / "scripts" / "lab.py")]
SIZE = 24
PORTS = 6  # ssh, http, https, postgres, redis, node-exporter


def namespace_pids(namespace: str) -> list:
    return subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False).stdout.split()


def lab(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = dict(os.environ, ANSIBLE_NOCOLOR="1")
    return subprocess.run(LAB + list(arguments), cwd=REPO, capture_output=True, text=True, env=environment, timeout=timeout, check=False)


def running(pid: str) -> bool:
    """Alive, not a zombie that its parent has yet to reap."""
    try:
        return Path("/proc", pid, "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def lab_namespaces() -> list:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
    return [name for name in listing if name.startswith("fwlab-")]


@pytest.fixture(scope="module", name="probed")
def fixture_probed(privileged: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    work = tmp_path_factory.mktemp("lab24")
    written = lab("inventory", str(SIZE), str(work / "inventory"))
    assert written.returncode == 0, written.stderr
    up = lab("up", str(work / "inventory"))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        probe = lab("probe", str(work / "inventory"), "--json", str(work / "probe.json"))
        assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr
        neighbours = {
            family: subprocess.run(["ip", "-n", "fwlab-web3", family, "neigh", "show", "dev", "eth0"],
                                   capture_output=True, text=True, check=True).stdout.splitlines()
            for family in ("-4", "-6")
        }
        yield dict(json.loads((work / "probe.json").read_text()), neighbour_lines=neighbours, output=probe.stdout)
    finally:
        lab("down")


def test_with_no_firewall_every_host_reaches_every_service_of_every_other_host_in_both_families(probed: Dict[str, Any]) -> None:
    # Each host probes the 23 others, and the outsider all 24.
    assert probed["probes"] == (SIZE * (SIZE - 1) + SIZE) * PORTS * 2 and probed["states"]["open"] == probed["probes"], probed["output"][-3000:]


def test_probing_the_whole_matrix_overflows_no_neighbour_table(probed: Dict[str, Any]) -> None:
    assert probed["neighbour_overflows"] == 0


def test_a_host_holds_one_permanent_neighbour_per_family_the_router(probed: Dict[str, Any]) -> None:
    assert [len(lines) for lines in probed["neighbour_lines"].values()] == [1, 1]
    assert all("PERMANENT" in lines[0] for lines in probed["neighbour_lines"].values())


def test_down_leaves_no_lab_namespace_and_no_lab_process(privileged: None) -> None:
    up = lab("up", "examples/lab")
    assert up.returncode == 0, up.stdout + up.stderr
    sshd_pids = [pid for namespace in lab_namespaces() for pid in namespace_pids(namespace)]
    lab("down")
    assert lab_namespaces() == [] and [pid for pid in sshd_pids if running(pid)] == []

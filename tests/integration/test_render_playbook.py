"""playbooks/render.yml run by ansible-playbook: where it writes, what it writes, and all hosts or none.

render.yml runs on the controller only (hosts: localhost, no target connection),
so these tests need no namespace; they run the real playbook from a scratch
working directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = REPO / ".build" / "pytest"
HOSTS = {"web1": ("web", "10.9.0.1"), "db1": ("db", "10.9.0.2")}
POLICY = {
    "all": {"inbound": [{"service": "ssh", "from": "any"}]},
    "web": {"inbound": [{"service": "http", "from": "any"}]},
    "db": {"inbound": [{"service": "postgres", "from": "group:web"}, {"service": "postgres", "from": "10.9.0.1"}]},
}


def render(tmp: Path, policy: Dict[str, Any], *extra: str, playbook: str = "render.yml",
           hosts: Optional[Dict[str, Any]] = None) -> subprocess.CompletedProcess:
    inventory: Dict[str, Any] = {"all": {"vars": {"fleetwall_policy": policy}, "children": {}}}
    for host, (group, address) in (hosts or HOSTS).items():
        for name in group.split(","):
            inventory["all"]["children"].setdefault(name, {"hosts": {}})["hosts"][host] = {
                "fleetwall_host_addresses": [address]}
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"), ANSIBLE_HOME=str(tmp / "ansible-home"), PWD=str(tmp))
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp / "inventory.yml"),
         str(REPO / "playbooks" / playbook), *extra],
        cwd=tmp, capture_output=True, text=True, env=environment, timeout=300, check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """One run without fleetwall_render_dir, from a scratch working directory."""
    workdir = tmp_path_factory.mktemp("render")
    completed = render(workdir, POLICY)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return workdir


def test_without_a_render_dir_it_writes_into_rendered_in_the_current_directory(rendered):
    assert sorted(path.name for path in (rendered / "rendered").iterdir()) == [
        "db1.v4", "db1.v6", "db1.warnings", "manifest.json", "web1.v4", "web1.v6"]


def test_nothing_is_written_inside_the_playbook_directory(rendered):
    assert not (REPO / "playbooks" / "rendered").exists()


def test_a_host_with_compile_warnings_gets_them_one_a_line(rendered):
    lines = (rendered / "rendered" / "db1.warnings").read_text().split("\n")
    assert [line[:62] for line in lines] == ["fleetwall_policy.db.inbound[1] is redundant: fleetwall_policy.", ""]


def test_rendering_again_without_a_change_keeps_every_byte_and_reports_no_change(workdir):
    render(workdir, POLICY)
    before = {path.name: path.read_bytes() for path in (workdir / "rendered").iterdir()}
    completed = render(workdir, POLICY)
    after = {path.name: path.read_bytes() for path in (workdir / "rendered").iterdir()}
    assert (after == before, "changed=0" in completed.stdout) == (True, True)


def test_check_mode_writes_no_file(workdir):
    completed = render(workdir, POLICY, "--check")
    assert (completed.returncode, (workdir / "rendered").exists()) == (0, False)


def test_a_stale_warnings_file_goes_once_the_host_no_longer_warns(workdir):
    render(workdir, POLICY, "-e", "fleetwall_render_dir=%s" % (workdir / "rendered"))
    render(workdir, {"all": POLICY["all"], "web": POLICY["web"], "db": {"inbound": POLICY["db"]["inbound"][:1]}})
    assert not (workdir / "rendered" / "db1.warnings").exists()


def test_a_policy_that_fails_for_one_host_writes_no_host_files(workdir):
    bad = {"all": POLICY["all"], "web": POLICY["web"], "db": {"inbound": [{"service": "postgres", "from": "group:wbe"}]}}
    completed = render(workdir, bad)
    assert (completed.returncode, (workdir / "rendered").exists()) == (2, False)


def test_the_plan_diff_of_a_membership_change_names_exactly_the_host_and_rule_that_changed(workdir):
    render(workdir, POLICY, "-e", "fleetwall_render_dir=%s" % (workdir / "before"))
    moved = dict(HOSTS, db1=("db,web", "10.9.0.2"))  # db1 joins the web group too
    render(workdir, POLICY, "-e", "fleetwall_render_dir=%s" % (workdir / "after"), hosts=moved)
    completed = render(workdir, POLICY, "-e", "fleetwall_plan_old=%s" % (workdir / "before"),
                       "-e", "fleetwall_plan_new=%s" % (workdir / "after"), playbook="plan_diff.yml", hosts=moved)
    shown = [json.loads(line.strip().rstrip(",")) for line in completed.stdout.splitlines()
             if line.strip().startswith('"') and not line.strip().startswith('"msg"')]
    http = '-A INPUT -p tcp -m tcp --dport 80 -m comment --comment "fleetwall_policy.web.inbound[0]" -j ACCEPT'
    postgres = '-A INPUT -s 10.9.0.2/32 -p tcp -m tcp --dport 5432 -m comment --comment "fleetwall_policy.db.inbound[0]" -j ACCEPT'
    assert shown == ["1 host(s) differ", "db1:", "  ipv4:", "    + " + postgres, "    + " + http, "  ipv6:", "    + " + http]

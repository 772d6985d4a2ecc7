"""The collection as a user gets it: built with ansible-galaxy, checked against an allow-list, installed into a
clean path, and run from there by FQCN: render.yml on the controller, site.yml --check on namespace hosts.

Nothing here reads the working tree's roles, playbooks or plugins: ANSIBLE_COLLECTIONS_PATH holds only the
installed copy.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import List

import pytest

from ansible_collections.fleetwall.iptables.tests.integration.test_roles import HOSTS, Fleet, changed, failures

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# What a user runs, and the tests ansible-test expects. A file outside these patterns fails the build check:
# add it here only if users need it, otherwise to build_ignore in galaxy.yml.
SHIPPED = [
    "MANIFEST.json", "FILES.json", "README.md", "LICENSE", "requirements.txt", "bindep.txt",
    "meta/runtime.yml", "meta/execution-environment.yml",
    "changelogs/changelog.yaml", "changelogs/config.yaml", "changelogs/fragments/*.yml", "CHANGELOG.rst",
    "docs/*.md", "examples/*.yml",
    "playbooks/*.yml", "roles/*/defaults/main.yml", "roles/*/meta/*.yml", "roles/*/tasks/*.yml", "roles/*/vars/main.yml",
    "plugins/action/*.py", "plugins/filter/*.py", "plugins/filter/*.yml", "plugins/lookup/*.py", "plugins/modules/*.py",
    "plugins/module_utils/*.py", "plugins/plugin_utils/*.py", "plugins/plugin_utils/*.html.j2",
    "tests/config.yml", "tests/conftest.py", "tests/unit/*.py", "tests/unit/requirements.txt",
    "tests/integration/*.py", "tests/integration/README.md",
]
REQUIRED = ["meta/runtime.yml", "playbooks/site.yml", "playbooks/render.yml", "playbooks/verify.yml",
            "roles/fleetwall_firewall/tasks/main.yml", "roles/fleetwall_persistence/tasks/main.yml",
            "plugins/modules/ruleset.py", "plugins/modules/probe.py", "plugins/plugin_utils/report.html.j2",
            "LICENSE", "README.md"]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=300)
    return next(out.glob("fleetwall-iptables-*.tar.gz"))


@pytest.fixture(scope="module")
def shipped_files(tarball: Path) -> List[str]:
    with tarfile.open(tarball) as archive:
        return sorted(member.name for member in archive.getmembers() if member.isfile())


@pytest.fixture(scope="module")
def installed(tarball: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("collections")
    environment = dict(os.environ, ANSIBLE_HOME=str(root / "ansible-home"))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(root), str(tarball)],
                   check=True, capture_output=True, text=True, env=environment, timeout=300)
    return root


def run_playbook(collections: Path, workdir: Path, *arguments: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", PWD=str(workdir),
                       ANSIBLE_HOME=str(workdir / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-local"))
    return subprocess.run([str(BIN / "ansible-playbook"), *arguments], cwd=workdir, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_tarball_holds_only_allow_listed_files(shipped_files):
    assert [name for name in shipped_files if not any(fnmatch.fnmatchcase(name, pattern) for pattern in SHIPPED)] == []


def test_the_tarball_holds_what_a_user_runs(shipped_files):
    assert [name for name in REQUIRED if name not in shipped_files] == []


def test_render_by_fqcn_from_the_installed_collection_writes_every_host(installed, tmp_path):
    completed = run_playbook(installed, tmp_path, "-i", str(installed / "ansible_collections/fleetwall/iptables/examples/lab"),
                             "fleetwall.iptables.render")
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert sorted(path.name for path in (tmp_path / "rendered").glob("*.v4")) == [
        "bastion1.v4", "cache1.v4", "db1.v4", "mon1.v4", "web1.v4", "web2.v4"]


def test_site_check_mode_by_fqcn_from_the_installed_collection_reports_changes_and_changes_nothing(
        installed, make_namespace, tmp_path):
    fleet = Fleet(make_namespace, tmp_path, collections_root=installed)
    stats = fleet.run("--check", "--diff")
    assert (failures(stats), all(changed(stats)), [fleet.filter_table(host, 4) for host in sorted(HOSTS)]) == (
        [0, 0], True, ["", ""])

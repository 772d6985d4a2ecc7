"""playbooks/site.yml and the firewall and persistence roles, on namespace hosts.

Ansible reaches each host with the local connection and a Python interpreter
that is a wrapper around `ip netns exec <namespace>`, so every module runs
inside the host's namespace. The first task of every play proves that. The
persistence role writes its files under a directory of the test (the hosts
share this machine's /etc) and does not touch services here: the
service-manager part is covered by the molecule scenario.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = REPO / ".build" / "pytest"
POLICY = {
    "all": {"inbound": [{"service": "ssh", "from": "group:web"}]},
    "web": {"inbound": [{"service": ["http", "https"]}]},
    "db": {"inbound": [{"service": "postgres", "from": "group:web"}]},
}
RECAP = re.compile(
    r"^(?P<host>\S+)\s+: ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failures>\d+)",
    re.MULTILINE,
)
HOSTS = {"web1": ("web", ["10.9.0.1", "fd09::1"]), "db1": ("db", ["10.9.0.2", "fd09::2"])}

GUARD_PLAY = """\
- name: Prove that every host runs inside its own test namespace
  hosts: all
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - name: Where am I
      ansible.builtin.command: ip netns identify
      register: where
      changed_when: false
      check_mode: false
      failed_when: where.stdout != fleetwall_test_namespace or fleetwall_test_namespace is not match('^fwit-[0-9]+-[0-9]+$')
"""


SITE_BY_FQCN = """\
- name: Roll out with the collection's own site playbook
  ansible.builtin.import_playbook: fleetwall.iptables.site
"""


class Fleet:
    """Two namespace hosts and an inventory that reaches them."""

    def __init__(self, make_namespace, tmp_path: Path, collections_root: Path = COLLECTIONS_ROOT) -> None:
        self.tmp = tmp_path
        self.collections_root = collections_root
        self.namespaces: Dict[str, Namespace] = {}
        inventory: Dict[str, Any] = {"all": {"vars": {
            "ansible_connection": "local",
            "fleetwall_become": False,
            "fleetwall_policy": POLICY,
            "fleetwall_persistence_install_packages": False,
            "fleetwall_persistence_manage_services": False,
            "fleetwall_firewall_rollback_timeout": 0,
        }, "children": {}}}
        for host, (group, addresses) in HOSTS.items():
            namespace = make_namespace()
            self.namespaces[host] = namespace
            wrapper = tmp_path / ("python-" + host)
            wrapper.write_text('#!/bin/sh\nexec ip netns exec %s %s "$@"\n' % (namespace.name, sys.executable))
            wrapper.chmod(0o755)
            inventory["all"]["children"].setdefault(group, {"hosts": {}})["hosts"][host] = {
                "ansible_python_interpreter": str(wrapper),
                "fleetwall_test_namespace": namespace.name,
                "fleetwall_host_addresses": addresses,
                "fleetwall_persistence_root": str(self.root(host)),
                "fleetwall_firewall_backup_dir": str(self.root(host) / "var/lib/fleetwall"),
            }
        (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
        self.write_play("site.yml", SITE_BY_FQCN)

    def root(self, host: str) -> Path:
        return self.tmp / "root" / host

    def write_play(self, name: str, play: str) -> None:
        """A playbook next to site.yml, behind the same namespace guard."""
        (self.tmp / name).write_text(GUARD_PLAY + "\n" + play)

    def run(self, *extra: str, playbook: str = "site.yml") -> Dict[str, Dict[str, int]]:
        """Run a guarded playbook (site.yml unless told); return the recap per host."""
        for namespace in self.namespaces.values():
            namespace.guard()
        environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(self.collections_root), ANSIBLE_NOCOLOR="1",
                           ANSIBLE_LOCAL_TEMP=str(self.tmp / "ansible-local"), ANSIBLE_HOME=str(self.tmp / "ansible-home"))
        completed = subprocess.run(
            [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(self.tmp / "inventory.yml"),
             str(self.tmp / playbook), *extra],
            capture_output=True, text=True, env=environment, timeout=300, check=False,
        )
        self.output = completed.stdout + completed.stderr
        stats = {
            match.group("host"): {key: int(match.group(key)) for key in ("changed", "unreachable", "failures")}
            for match in RECAP.finditer(completed.stdout)
        }
        if not stats:
            raise AssertionError("ansible-playbook printed no recap (exit %d):\n%s" % (completed.returncode, self.output[-6000:]))
        return stats

    def state(self) -> Dict[str, Any]:
        """Every host's live filter tables and every file the roles wrote."""
        files = {str(path.relative_to(self.tmp)): path.read_text()
                 for path in sorted((self.tmp / "root").rglob("*")) if path.is_file()}
        return {"live": {host: (self.filter_table(host, 4), self.filter_table(host, 6)) for host in HOSTS}, "files": files}

    def filter_table(self, host: str, family: int) -> str:
        text = canonical_text(self.namespaces[host].save(family))
        return text[text.index("*filter"):] if "*filter" in text else ""


def changed(stats: Dict[str, Dict[str, int]]) -> List[int]:
    return [stats[host]["changed"] for host in sorted(stats)]


def failures(stats: Dict[str, Dict[str, int]]) -> List[int]:
    return [stats[host]["failures"] + stats[host]["unreachable"] for host in sorted(stats)]


@pytest.fixture
def fleet(make_namespace, tmp_path: Path) -> Fleet:
    return Fleet(make_namespace, tmp_path)


def test_site_applies_every_host_and_a_second_run_changes_nothing(fleet):
    first = fleet.run()
    second = fleet.run()
    assert failures(first) == [0, 0] and all(changed(first))
    assert (failures(second), changed(second)) == ([0, 0], [0, 0])


def test_applied_rules_and_rules_files_match_each_other(fleet):
    fleet.run()
    for host in HOSTS:
        rules = fleet.root(host) / "etc/iptables"
        assert (rules / "rules.v4").read_text() == fleet.filter_table(host, 4)
        assert (rules / "rules.v6").read_text() == fleet.filter_table(host, 6)


def test_the_db_host_accepts_postgres_from_the_web_host_only(fleet):
    fleet.run()
    db_rules = [line for line in fleet.filter_table("db1", 4).splitlines() if "--dport 5432" in line]
    assert [line.split()[3] for line in db_rules] == ["10.9.0.1/32"]


def test_check_mode_changes_nothing_on_any_host(fleet):
    before = {host: (fleet.filter_table(host, 4), fleet.filter_table(host, 6)) for host in HOSTS}
    stats = fleet.run("--check", "--diff")
    assert failures(stats) == [0, 0] and all(changed(stats))
    assert {host: (fleet.filter_table(host, 4), fleet.filter_table(host, 6)) for host in HOSTS} == before
    assert not (fleet.root("web1") / "etc/iptables/rules.v4").exists()


def test_redhat_branch_writes_the_sysconfig_files(fleet):
    stats = fleet.run("-e", "fleetwall_persistence_os_family=RedHat")
    assert failures(stats) == [0, 0]
    sysconfig = fleet.root("db1") / "etc/sysconfig"
    assert (sysconfig / "iptables").read_text() == fleet.filter_table("db1", 4)
    assert (sysconfig / "ip6tables").read_text() == fleet.filter_table("db1", 6)
    assert oct((sysconfig / "iptables").stat().st_mode & 0o777) == "0o600"


def test_coexist_mode_persists_only_fleetwall_chains(fleet):
    stats = fleet.run("-e", "fleetwall_firewall_mode=coexist")
    assert failures(stats) == [0, 0]
    persisted = (fleet.root("web1") / "etc/iptables/rules.v4").read_text()
    assert ":INPUT ACCEPT [0:0]" in persisted and "-A INPUT -m comment --comment fleetwall -j FWL-INPUT" in persisted
    assert all(line.split()[1].startswith("FWL-") or "-j FWL-" in line
               for line in persisted.splitlines() if line.startswith("-A "))


def test_a_bad_policy_stops_the_rollout_before_any_host_changes(fleet):
    bad_policy = {"fleetwall_policy": {"db": {"inbound": [{"service": "postgres", "from": "group:wbe"}]}}}
    stats = fleet.run("-e", json.dumps(bad_policy), "-e", "fleetwall_batch_size=2")
    assert any(failures(stats)) and changed(stats) == [0, 0]
    assert "fleetwall_policy.db.inbound[0].from: unknown group 'wbe' (did you mean 'web'?)" in fleet.output
    assert (fleet.filter_table("web1", 4), fleet.filter_table("db1", 4)) == ("", "")


WITH_SETS = {"fleetwall_set_threshold": 1, "fleetwall_policy": dict(
    POLICY, db={"inbound": [{"service": "postgres", "from": ["group:web", "192.0.2.0/24"]}]})}


def test_a_ruleset_with_ipset_sets_is_applied_and_its_sets_persisted_next_to_the_rules(fleet):
    stats = fleet.run("-e", json.dumps(WITH_SETS))
    persisted = (fleet.root("db1") / "etc/iptables/ipsets").read_text()
    assert (failures(stats), persisted) == ([0, 0], "create fw4-g:web+192.0.2.0-ada3bf hash:net family inet hashsize 64 maxelem 65536\n"
                                            "add fw4-g:web+192.0.2.0-ada3bf 10.9.0.1\n"
                                            "add fw4-g:web+192.0.2.0-ada3bf 192.0.2.0/24\n"), fleet.output[-3000:]


def test_the_persisted_rules_name_only_sets_that_the_persisted_sets_file_creates(fleet):
    fleet.run("-e", json.dumps(WITH_SETS))
    rules = (fleet.root("db1") / "etc/iptables/rules.v4").read_text()
    created = [line.split()[1] for line in (fleet.root("db1") / "etc/iptables/ipsets").read_text().splitlines()
               if line.startswith("create ")]
    assert sorted(set(re.findall(r"--match-set (\S+)", rules))) == created


def test_persist_tag_alone_persists_the_sets_without_creating_them_live(fleet):
    stats = fleet.run("--tags", "fleetwall_persist", "-e", json.dumps(WITH_SETS))
    sets_file = fleet.root("db1") / "etc/iptables/ipsets"
    assert (failures(stats), sets_file.exists(), fleet.filter_table("db1", 4)) == ([0, 0], True, "")


def test_apply_tag_alone_compiles_and_applies_without_persisting(fleet):
    stats = fleet.run("--tags", "fleetwall_apply")
    assert failures(stats) == [0, 0]
    assert (fleet.filter_table("db1", 4) != "", (fleet.root("db1") / "etc/iptables/rules.v4").exists()) == (True, False)


def test_a_second_run_with_a_watchdog_changes_nothing_and_the_boot_files_equal_the_live_rules(fleet):
    fleet.run("-e", "fleetwall_firewall_rollback_timeout=60")
    stats = fleet.run("-e", "fleetwall_firewall_rollback_timeout=60")
    persisted = (fleet.root("web1") / "etc/iptables/rules.v6").read_text()
    assert (changed(stats), persisted) == ([0, 0], fleet.filter_table("web1", 6))


def test_persist_tag_alone_compiles_and_writes_the_rules_files_without_applying(fleet):
    stats = fleet.run("--tags", "fleetwall_persist")
    assert failures(stats) == [0, 0]
    persisted = (fleet.root("db1") / "etc/iptables/rules.v4").read_text()
    assert ("--dport 5432" in persisted, fleet.filter_table("db1", 4)) == (True, "")


def test_a_misspelt_role_variable_fails_naming_it_before_any_host_changes(fleet):
    stats = fleet.run("-e", "fleetwall_firewall_rollbak_timeout=0")
    assert any(failures(stats)) and changed(stats) == [0, 0]
    assert "unknown variable(s) fleetwall_firewall_rollbak_timeout" in fleet.output


def test_persistence_role_without_facts_asks_to_gather_them(fleet):
    fleet.write_play("persist-only.yml", """\
- name: Persist without gathered facts
  hosts: all
  gather_facts: false
  roles:
    - role: fleetwall.iptables.fleetwall_persistence
""")
    stats = fleet.run(playbook="persist-only.yml")
    assert any(failures(stats))
    assert "this host's os_family is 'unknown (gather facts first)'" in fleet.output


# The variables of geerlingguy.firewall and linux-system-roles.firewall, set as a play that includes those roles next
# to ours would set them, and the generic names fleetwall's own roles had before they took the fleetwall_ prefix
# (with those names, coexist mode, no persistence and the RedHat branch would change what the roles do).
NEIGHBOUR_VARIABLES = {
    "firewall_state": "started",
    "firewall_enabled_at_boot": True,
    "firewall_flush_rules_and_chains": False,
    "firewall_template": "firewall.bash.j2",
    "firewall_allowed_tcp_ports": ["22", "25", "80"],
    "firewall_allowed_udp_ports": ["53"],
    "firewall_forwarded_tcp_ports": [{"src": "22", "dest": "2222"}],
    "firewall_forwarded_udp_ports": [],
    "firewall_additional_rules": ["iptables -A INPUT -p tcp --dport 8080 -j ACCEPT"],
    "firewall_enable_ipv6": False,
    "firewall_ip6_additional_rules": [],
    "firewall_log_dropped_packets": True,
    "firewall_disable_firewalld": True,
    "firewall_disable_ufw": True,
    "firewall": [{"service": "http", "state": "enabled"}, {"port": "443/tcp", "state": "enabled"}],
    "firewall_disable_conflicting_services": True,
    "firewall_mode": "coexist",
    "firewall_persist": False,
    "firewall_rollback_timeout": 30,
    "persistence_os_family": "RedHat",
    "persistence_mode": "coexist",
}


def test_other_firewall_roles_variables_change_nothing(fleet):
    fleet.run()
    before = fleet.state()
    stats = fleet.run("-e", json.dumps(NEIGHBOUR_VARIABLES))
    assert (failures(stats), changed(stats), fleet.state()) == ([0, 0], [0, 0], before)


# ---------------------------------------------------------------- settled hosts (fleetwall_firewall_skip_settled)

CONVERGE_INCLUDE = "Install the boot services, apply, confirm and persist, unless the host is as the last run left it"


def skipped_as_settled(output: str) -> List[str]:
    """The hosts whose converge include was skipped, over every batch (site.yml gathers the settled fact
    under each host's root)."""
    blocks = [block.split("TASK [", 1)[0] for block in output.split(CONVERGE_INCLUDE)[1:]]
    assert blocks, "no converge include in the output"
    return sorted(host for block in blocks for host in re.findall(r"^skipping: \[(\S+)\]", block, re.MULTILINE))


def test_a_run_with_nothing_to_do_skips_every_host_by_its_gathered_facts(fleet):
    first = fleet.run()
    second = fleet.run()
    assert (skipped_as_settled(fleet.output), changed(second), all(changed(first))) == (["db1", "web1"], [0, 0], True)


def test_the_first_run_leaves_the_settled_fact_in_the_fact_directory_under_the_root(fleet):
    fleet.run()
    fact = fleet.root("db1") / "etc/ansible/facts.d/fleetwall.fact"
    printed = json.loads(fleet.namespaces["db1"].run(["/bin/sh", str(fact)]).stdout)
    assert printed["stamp"]["observed"] == printed["current"]


def test_a_rule_added_by_hand_to_a_settled_host_is_taken_out_by_the_next_run(fleet):
    fleet.run()
    fleet.run()
    settled = fleet.filter_table("web1", 4)
    fleet.namespaces["web1"].iptables_command(["iptables", "-I", "INPUT", "1", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT"])
    stats = fleet.run()
    assert (skipped_as_settled(fleet.output), changed(stats), fleet.filter_table("web1", 4)) == (["db1"], [0, 1], settled)


def test_a_boot_file_changed_by_hand_on_a_settled_host_is_written_again(fleet):
    fleet.run()
    rules = fleet.root("db1") / "etc/iptables/rules.v6"
    rules.write_text("*filter\nCOMMIT\n")
    stats = fleet.run()
    assert (changed(stats), rules.read_text()) == ([1, 0], fleet.filter_table("db1", 6))


def test_a_new_policy_reaches_settled_hosts(fleet):
    fleet.run()
    policy = {"fleetwall_policy": dict(POLICY, db={"inbound": [{"service": "postgres", "from": "any"}]})}
    stats = fleet.run("-e", json.dumps(policy))
    assert (changed(stats), skipped_as_settled(fleet.output)) == ([1, 0], ["web1"])


def test_check_mode_on_a_settled_host_with_a_hand_change_reports_it_and_changes_nothing(fleet):
    fleet.run()
    fleet.namespaces["db1"].iptables_command(["ip6tables", "-P", "INPUT", "ACCEPT"])
    changed_by_hand = fleet.filter_table("db1", 6)
    stats = fleet.run("--check")
    assert (changed(stats), fleet.filter_table("db1", 6)) == ([1, 0], changed_by_hand), fleet.output[-5000:]


def test_with_skip_settled_off_every_host_runs_the_module_and_a_second_run_changes_nothing(fleet):
    fleet.run("-e", "fleetwall_firewall_skip_settled=false")
    stats = fleet.run("-e", "fleetwall_firewall_skip_settled=false")
    assert (changed(stats), skipped_as_settled(fleet.output)) == ([0, 0], [])

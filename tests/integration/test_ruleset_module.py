"""The fleetwall.iptables.ruleset module against real iptables in network namespaces.

The module runs the way Ansible runs it on a target (its file executed by
Python with its arguments in a JSON file), inside a test namespace whose
identity is checked first; it calls the real iptables-save and
iptables-restore there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text, render_family
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace, wait_until
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "plugins" / "modules" / "ruleset.py"
COLLECTIONS_ROOT = REPO / ".build" / "pytest"
FAULT_MARKER = "fleetwall-fault-injection"

DOCKER_KUBERNETES_FAIL2BAN = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-USER - [0:0]
:KUBE-FIREWALL - [0:0]
:f2b-sshd - [0:0]
-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
-A INPUT -j KUBE-FIREWALL
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-USER -j RETURN
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" \
-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A f2b-sshd -s 192.0.2.66/32 -j REJECT --reject-with icmp-port-unreachable
-A f2b-sshd -j RETURN
COMMIT
"""


def compiled(host: str = "db1", **kwargs: Any) -> Dict[str, Any]:
    hostvars, groups = inventory(**kwargs)
    return ruleset_to_dict(FleetCompiler(hostvars, groups).compile_host(host))


def rendered(ruleset: Dict[str, Any], family: int) -> str:
    from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict

    return render_family(ruleset_from_dict(ruleset).family(family))


def filter_table(namespace: Namespace, family: int) -> str:
    text = canonical_text(namespace.save(family))
    return text[text.index("*filter"):] if "*filter" in text else ""


class ModuleRunner:
    """Runs the module inside one namespace, the way Ansible would on a target."""

    def __init__(self, namespace: Namespace, workdir: Path) -> None:
        self.namespace = namespace
        self.workdir = workdir
        self.backup_dir = workdir / "backups"
        self.path_prefix: Optional[str] = None

    def command(self, args: Dict[str, Any], check_mode: bool = False) -> list:
        arguments = dict(args)
        arguments.setdefault("backup_dir", str(self.backup_dir))
        arguments.update(_ansible_check_mode=check_mode, _ansible_diff=True)
        args_file = self.workdir / ("args-%d.json" % time.monotonic_ns())
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": arguments}))
        self.namespace.guard()  # the module runs iptables: prove where it will run
        environment = ["env", "PYTHONPATH=%s" % COLLECTIONS_ROOT]
        if self.path_prefix:
            environment.append("PATH=%s:%s" % (self.path_prefix, os.environ["PATH"]))
        return self.namespace.exec_argv(environment + [sys.executable, str(MODULE), str(args_file)])

    def run(self, args: Dict[str, Any], check_mode: bool = False) -> Dict[str, Any]:
        completed = subprocess.run(self.command(args, check_mode), capture_output=True, text=True, timeout=120, check=False)
        try:
            return json.loads(completed.stdout)
        except ValueError:
            raise AssertionError("module printed no JSON (exit %d):\n%s\n%s" % (completed.returncode, completed.stdout, completed.stderr))

    def inject_ip6tables_restore_fault(self, mode: str) -> None:
        """An ip6tables-restore that misbehaves on rulesets carrying FAULT_MARKER: 'fail' or 'hang'."""
        fake_dir = self.workdir / "fake-bin"
        fake_dir.mkdir(exist_ok=True)
        real = subprocess.run(["which", "ip6tables-restore"], capture_output=True, text=True, check=True).stdout.strip()
        fake = fake_dir / "ip6tables-restore"
        fake.write_text(
            "#!/bin/sh\n"
            "input=$(cat)\n"
            'case " $* " in *" --test "*) printf "%s\\n" "$input" | ' + real + ' "$@"; exit $?;; esac\n'
            'case "$input" in *' + FAULT_MARKER + "*)\n"
            + ('  echo "ip6tables-restore: line 2 failed" >&2; exit 1;;\n' if mode == "fail" else "  sleep 60; exit 1;;\n")
            + "esac\n"
            'printf "%s\\n" "$input" | ' + real + ' "$@"\n'
        )
        fake.chmod(0o755)
        self.path_prefix = str(fake_dir)


@pytest.fixture
def host(namespace: Namespace, tmp_path: Path) -> ModuleRunner:
    return ModuleRunner(namespace, tmp_path)


def test_converge_applies_both_families_exactly_as_rendered(host):
    ruleset = compiled()
    result = host.run({"ruleset": ruleset})
    assert result["changed"] is True
    assert (filter_table(host.namespace, 4), filter_table(host.namespace, 6)) == (rendered(ruleset, 4), rendered(ruleset, 6))


def test_second_converge_changes_nothing_and_leaves_the_kernel_byte_identical(host):
    ruleset = compiled()
    host.run({"ruleset": ruleset})
    before = (host.namespace.save(4), host.namespace.save(6))
    result = host.run({"ruleset": ruleset})
    after = (host.namespace.save(4), host.namespace.save(6))
    assert result["changed"] is False
    assert [canonical_text(text) for text in before] == [canonical_text(text) for text in after]


def test_rule_added_by_hand_is_reported_and_removed(host):
    ruleset = compiled()
    host.run({"ruleset": ruleset})
    host.namespace.iptables_command(["iptables", "-I", "INPUT", "1", "-s", "198.51.100.7", "-j", "ACCEPT"])
    result = host.run({"ruleset": ruleset})
    assert (result["changed"], result["rules"]["ipv4"]) == (True, {"added": 0, "removed": 1})
    assert "-A INPUT -s 198.51.100.7/32 -j ACCEPT" in result["diff"][0]["before"]
    assert filter_table(host.namespace, 4) == rendered(ruleset, 4)


def test_check_mode_reports_the_change_and_leaves_the_kernel_untouched(host):
    before = (host.namespace.save(4), host.namespace.save(6))
    result = host.run({"ruleset": compiled()}, check_mode=True)
    assert result["changed"] is True and result["diff"][0]["after"].startswith("*filter")
    assert (host.namespace.save(4), host.namespace.save(6)) == before


def test_failing_second_family_puts_the_first_back(host):
    old = compiled()
    host.run({"ruleset": old})
    new = compiled(policy={"db": {"inbound": [{"service": "mysql", "comment": FAULT_MARKER}]}})
    host.inject_ip6tables_restore_fault("fail")
    result = host.run({"ruleset": new})
    assert result.get("failed") and "the previous rulesets of both families are back in place" in result["msg"]
    assert (filter_table(host.namespace, 4), filter_table(host.namespace, 6)) == (rendered(old, 4), rendered(old, 6))


def test_module_killed_between_the_families_leaves_the_old_rulesets(host):
    old = compiled()
    host.run({"ruleset": old})
    new = compiled(policy={"db": {"inbound": [{"service": "mysql", "comment": FAULT_MARKER}]}})
    host.inject_ip6tables_restore_fault("hang")
    process = subprocess.Popen(host.command({"ruleset": new}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        # IPv4 is applied first; wait for it, then kill the module while ip6tables-restore "hangs".
        assert wait_until(lambda: "3306" in filter_table(host.namespace, 4), timeout=30)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    assert wait_until(lambda: filter_table(host.namespace, 4) == rendered(old, 4), timeout=10)
    assert filter_table(host.namespace, 6) == rendered(old, 6)


def test_whole_table_mode_refuses_a_table_with_foreign_chains(host):
    host.namespace.restore(4, DOCKER_KUBERNETES_FAIL2BAN)
    result = host.run({"ruleset": compiled()})
    assert result["msg"] == (
        "the iptables filter table holds chains fleetwall does not manage (Docker, Kubernetes, fail2ban: DOCKER, "
        "DOCKER-ISOLATION-STAGE-1, DOCKER-USER, KUBE-FIREWALL, f2b-sshd); mode: own would remove them. Use mode: "
        "coexist to leave them alone, or takeover: true to replace them"
    )
    assert filter_table(host.namespace, 4) == canonical_text(DOCKER_KUBERNETES_FAIL2BAN)


def test_takeover_replaces_foreign_chains(host):
    host.namespace.restore(4, DOCKER_KUBERNETES_FAIL2BAN)
    ruleset = compiled()
    assert host.run({"ruleset": ruleset, "takeover": True})["changed"] is True
    assert filter_table(host.namespace, 4) == rendered(ruleset, 4)


def foreign_part(text: str) -> list:
    return [line for line in text.splitlines() if "FWL-" not in line]


def test_coexist_leaves_docker_kubernetes_and_fail2ban_byte_identical_over_two_converges(host):
    host.namespace.restore(4, DOCKER_KUBERNETES_FAIL2BAN)
    first = host.run({"ruleset": compiled(), "mode": "coexist"})
    second = host.run({"ruleset": compiled(), "mode": "coexist"})
    assert (first["changed"], second["changed"]) == (True, False)
    assert foreign_part(filter_table(host.namespace, 4)) == foreign_part(canonical_text(DOCKER_KUBERNETES_FAIL2BAN))


def test_coexist_drift_inside_fleetwall_chain_is_repaired_without_touching_others(host):
    host.namespace.restore(4, DOCKER_KUBERNETES_FAIL2BAN)
    host.run({"ruleset": compiled(), "mode": "coexist"})
    host.namespace.iptables_command(["iptables", "-A", "FWL-INPUT", "-p", "tcp", "--dport", "23", "-j", "ACCEPT"])
    result = host.run({"ruleset": compiled(), "mode": "coexist"})
    assert (result["changed"], result["rules"]["ipv4"]["removed"]) == (True, 1)
    assert "--dport 23" not in filter_table(host.namespace, 4)
    assert foreign_part(filter_table(host.namespace, 4)) == foreign_part(canonical_text(DOCKER_KUBERNETES_FAIL2BAN))


def test_lockout_guard_refuses_a_ruleset_that_drops_the_controllers_ssh(host):
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}  # no ssh for anyone
    result = host.run({"ruleset": compiled(policy=policy), "ssh_connection": "10.0.0.9 50000 10.0.2.1 22"})
    assert result["msg"].startswith(
        "refusing to apply: the new IPv4 ruleset would not accept a new SSH connection from 10.0.0.9 to 10.0.2.1 "
        "port 22 (decided by: the DROP policy of INPUT)"
    )
    assert filter_table(host.namespace, 4) == ""


def test_lockout_guard_passes_when_the_policy_lets_the_controller_in(host):
    result = host.run({"ruleset": compiled(), "ssh_connection": "10.0.0.2 50000 10.0.2.1 22"})  # bastion's address
    assert (result["changed"], result["lockout_check"]["verdict"]) == (True, "ACCEPT")


def test_allow_lockout_applies_anyway(host):
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}
    result = host.run({"ruleset": compiled(policy=policy), "ssh_connection": "10.0.0.9 50000 10.0.2.1 22",
                       "allow_lockout": True})
    assert result["changed"] is True and result["lockout_check"]["verdict"] == "DROP"


def test_watchdog_restores_the_previous_rulesets_unless_confirmed(host):
    old = compiled()
    host.run({"ruleset": old})
    new = compiled(policy={"db": {"inbound": [{"service": "mysql"}]}})
    result = host.run({"ruleset": new, "rollback_timeout": 2})
    assert result["watchdog"]["timeout"] == 2
    assert filter_table(host.namespace, 4) == rendered(new, 4)
    assert wait_until(lambda: filter_table(host.namespace, 4) == rendered(old, 4), timeout=10)
    assert filter_table(host.namespace, 6) == rendered(old, 6)
    late = host.run({"confirm": True})
    assert late["msg"].startswith("the watchdog already restored the previous rulesets (not confirmed within 2 seconds)")


def test_confirmed_rulesets_stay(host):
    host.run({"ruleset": compiled()})
    new = compiled(policy={"db": {"inbound": [{"service": "mysql"}]}})
    token = host.run({"ruleset": new, "rollback_timeout": 3})["watchdog"]["token"]
    confirmation = host.run({"confirm": True})
    assert (confirmation["changed"], confirmation["confirmed"]) == (True, [token])
    time.sleep(4)
    assert filter_table(host.namespace, 4) == rendered(new, 4)


def test_ruleset_the_parser_refuses_is_reported_with_the_failing_line_and_changes_nothing(host):
    ruleset = compiled()
    ruleset["ipv6"] = ruleset["ipv6"].replace("COMMIT", "-A INPUT -p tcp -m tcp --dport 70000 -j ACCEPT\nCOMMIT")
    result = host.run({"ruleset": ruleset})
    assert result["msg"].startswith("ip6tables-restore --test refused the new ruleset, nothing was changed:")
    assert "-A INPUT -p tcp -m tcp --dport 70000 -j ACCEPT" in result["msg"]
    assert (filter_table(host.namespace, 4), filter_table(host.namespace, 6)) == ("", "")


def test_kernel_refusal_at_commit_puts_everything_back(host):
    old = compiled()
    host.run({"ruleset": old})
    broken = compiled(policy={"db": {"inbound": [{"service": "mysql"}]}})
    broken["ipv6"] = broken["ipv6"].replace("COMMIT", "-A INPUT -j NO-SUCH-CHAIN\nCOMMIT")  # passes --test
    result = host.run({"ruleset": broken})
    assert result["msg"].startswith("ip6tables-restore failed; the previous rulesets of both families are back in place")
    assert (filter_table(host.namespace, 4), filter_table(host.namespace, 6)) == (rendered(old, 4), rendered(old, 6))


def test_malformed_ruleset_is_refused_with_the_field_named(host):
    result = host.run({"ruleset": {"host": "x", "ipv4": "*filter\n-A INPUT -x\nCOMMIT\n", "ipv6": ""}})
    assert result["msg"] == "ruleset: ruleset.ipv4: line 2: '-x' lacks a value in '-A INPUT -x'"


def test_backup_of_the_previous_rulesets_is_kept(host):
    host.run({"ruleset": compiled()})
    previous = filter_table(host.namespace, 4)
    result = host.run({"ruleset": compiled(policy={"db": {"inbound": [{"service": "mysql"}]}})})
    assert Path(result["backup"]["ipv4"]).read_text() == previous


def test_rules_in_the_other_backend_are_refused(host):
    host.namespace.iptables_command(["iptables-legacy", "-A", "INPUT", "-s", "198.51.100.7", "-j", "ACCEPT"])
    result = host.run({"ruleset": compiled()})
    assert result["msg"].startswith("iptables rules are in the legacy backend while iptables uses nf_tables")
    assert filter_table(host.namespace, 4) == ""


def use_legacy_backend(host: ModuleRunner) -> None:
    """Point iptables-save/-restore at the legacy tools, as update-alternatives would."""
    legacy_dir = host.workdir / "legacy-bin"
    legacy_dir.mkdir()
    for command in ("iptables", "ip6tables"):
        for suffix in ("-save", "-restore"):
            real = subprocess.run(["which", "%s-legacy%s" % (command, suffix)], capture_output=True, text=True,
                                  check=True).stdout.strip()
            (legacy_dir / (command + suffix)).symlink_to(real)
    host.path_prefix = str(legacy_dir)


def test_legacy_backend_converges_and_reconverges_without_change(host):
    use_legacy_backend(host)
    ruleset = compiled()
    first = host.run({"ruleset": ruleset})
    second = host.run({"ruleset": ruleset})
    assert (first["backend"], first["changed"], second["changed"]) == ("legacy", True, False)
    legacy = canonical_text(host.namespace.iptables_command(["iptables-legacy-save"]).stdout)
    assert legacy == rendered(ruleset, 4)


def test_a_chain_policy_changed_by_hand_is_reported_and_put_back(host):
    ruleset = compiled()
    host.run({"ruleset": ruleset})
    host.namespace.iptables_command(["ip6tables", "-P", "INPUT", "ACCEPT"])
    result = host.run({"ruleset": ruleset})
    assert (result["changed"], filter_table(host.namespace, 6)) == (True, rendered(ruleset, 6))


def test_a_chain_policy_changed_by_hand_is_reported_changed_although_the_boot_files_are_unchanged(host, tmp_path):
    ruleset = compiled()
    args = {"ruleset": ruleset, "persist": {"os_family": "Debian", "root": str(tmp_path / "root")}}
    host.run(args)
    host.namespace.iptables_command(["ip6tables", "-P", "INPUT", "ACCEPT"])
    result = host.run(args)
    assert (result["changed"], set(result["boot_files"].values()), filter_table(host.namespace, 6)) == (
        True, {"unchanged"}, rendered(ruleset, 6))

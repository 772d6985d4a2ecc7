"""The ruleset module and its action plugin over a real SSH connection, against the real kernel.

Two test namespaces: a controller, where ansible-playbook runs, and a target,
where sshd runs (tests/integration/sshd.py). Ansible reaches the target with
its ssh connection plugin over a veth pair, so the lockout guard sees the
SSH_CONNECTION that sshd sets, the watchdog outlives the SSH session that
started it, and a confirmation really has to open a new SSH connection.

Every playbook's first task runs `ip netns identify` over the same connection
and fails the play unless it prints the target namespace's name, so no
fleetwall task can land anywhere but in the target namespace.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace, wait_until
from ansible_collections.fleetwall.iptables.tests.integration.sshd import (
    CONTROLLER_ADDRESSES,
    SSH_CLIENT_OPTIONS,
    SSH_PORT,
    TARGET_ADDRESSES,
    SshLab,
    missing_programs,
    start_ssh_lab,
)
from ansible_collections.fleetwall.iptables.tests.integration.test_ruleset_module import compiled, filter_table, rendered
from ansible_collections.fleetwall.iptables.tests.unit.fleet import POLICY

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = REPO / ".build" / "pytest"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
WATCHDOG_TIMEOUT = 8
IDENTITY_TASK_NAME = "fleetwall-test safety: the connection lands in the target namespace"
NO_SSH_POLICY = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}  # nobody may ssh in
WITH_MYSQL_POLICY = dict(POLICY, db={"inbound": [{"service": "postgres", "from": "group:web"}, {"service": "mysql"}]})
# Rulesets that accept the controller's SYN but not the SSH server's replies, and one that keeps the conversation.
DROPS_REPLIES = {
    "outbound_drop_without_baseline": {"fleetwall_baseline": False, "fleetwall_default_policy": {"outbound": "drop"}},
    "outbound_reject_of_sshd_port": {"fleetwall_host_rules": {"outbound": [{"proto": "tcp", "source_port": 22, "action": "reject"}]}},
}
KEEPS_CONVERSATION = {"fleetwall_default_policy": {"outbound": "drop"}}  # the baseline lets established replies out

# Writes one JSON line per task result, for the test to read (ansible-core has no JSON stdout callback).
RECORDER = '''
import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleetwall_record"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, status, result):
        payload = result.result if hasattr(type(result), "result") else result._result
        task = result.task if hasattr(type(result), "task") else result._task
        with open(os.environ["FLEETWALL_TEST_RECORD"], "a") as handle:
            handle.write(json.dumps({"task": task.get_name(), "status": status, "time": time.time(), "result": payload}, default=str) + "\\n")

    def v2_runner_on_ok(self, result):
        self._record("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record("failed", result)

    def v2_runner_on_unreachable(self, result):
        self._record("unreachable", result)

    def v2_runner_on_skipped(self, result):
        self._record("skipped", result)
'''


class PlaybookRun(NamedTuple):
    name: str
    returncode: int
    output: str
    records: List[Dict[str, Any]]
    seconds: float

    def explain(self) -> str:
        return "playbook %s (exit %d, %.1f s), ansible-playbook output:\n%s" % (self.name, self.returncode, self.seconds, self.output)

    def task(self, name: str) -> Dict[str, Any]:
        found = [record for record in self.records if record["task"] == name]
        assert len(found) == 1, "task %r ran %d times, expected once\n%s" % (name, len(found), self.explain())
        return found[0]

    def ok(self, name: str) -> Dict[str, Any]:
        record = self.task(name)
        assert record["status"] == "ok", "task %r: %s\n%s" % (name, record["status"], self.explain())
        return record["result"]


class Controller:
    """ansible-playbook inside the controller namespace, reaching the target over SSH."""

    def __init__(self, lab: SshLab, workdir: Path, family: int) -> None:
        self.lab = lab
        self.workdir = workdir
        self.family = family
        self.backup_dir = workdir / "backups"
        self.rulesets: Dict[str, Dict[str, Any]] = {}
        self.runs = 0
        # A short directory: a ControlPath socket name must fit in 108 bytes.
        self.control_dir = Path(tempfile.mkdtemp(prefix="fwcp-"))
        callbacks = workdir / "callbacks"
        callbacks.mkdir(parents=True)
        (callbacks / "fleetwall_record.py").write_text(RECORDER)
        for name in ("ansible-home", "ansible-local", "ansible-remote"):
            (workdir / name).mkdir()
        self.inventory = workdir / "inventory.yml"
        self.inventory.write_text(json.dumps({"all": {"hosts": {"target": {
            "ansible_connection": "ssh",
            "ansible_host": TARGET_ADDRESSES[family],
            "ansible_port": SSH_PORT,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(lab.client_key),
            "ansible_python_interpreter": sys.executable,  # the same file system: the venv's Python
            "fleetwall_test_target_namespace": lab.target.name,
            "fleetwall_test_backup_dir": str(self.backup_dir),
        }}}}, indent=2))
        ssh_args = " ".join(list(SSH_CLIENT_OPTIONS) + ["-o", "ControlMaster=auto", "-o", "ControlPersist=60s"])
        self.config = workdir / "ansible.cfg"
        self.config.write_text(
            "[defaults]\n"
            "inventory = %s\n"
            "host_key_checking = False\n"
            "retry_files_enabled = False\n"
            "gathering = explicit\n"
            "forks = 1\n"
            "timeout = 10\n"
            "nocolor = True\n"
            "callback_plugins = %s\n"
            "callbacks_enabled = fleetwall_record\n"
            "local_tmp = %s\n"
            "remote_tmp = %s\n"
            "[privilege_escalation]\n"
            "become_allow_same_user = True\n"  # root to root: really run su, do not skip become
            "[ssh_connection]\n"
            "ssh_args = %s\n"
            "control_path_dir = %s\n"
            "pipelining = True\n"
            % (self.inventory, callbacks, workdir / "ansible-local", workdir / "ansible-remote", ssh_args, self.control_dir)
        )

    def environment(self, record: Path) -> Dict[str, str]:
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("ANSIBLE_", "SSH_")) and key not in ("PYTHONPATH", "LC_ALL", "LANG")}
        environment.update(
            ANSIBLE_CONFIG=str(self.config),
            ANSIBLE_HOME=str(self.workdir / "ansible-home"),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT),
            FLEETWALL_TEST_RECORD=str(record),
            LC_ALL="C.UTF-8",
            LANG="C.UTF-8",
        )
        return environment

    def playbook(self, name: str, tasks: List[Dict[str, Any]], timeout: float = 120) -> PlaybookRun:
        """Run a one-play playbook whose first task proves it reached the target namespace."""
        self.runs += 1
        stem = "%02d-%s" % (self.runs, name)
        rulesets = self.workdir / ("%s-rulesets.json" % stem)
        rulesets.write_text(json.dumps({"rulesets": self.rulesets}))
        identity = {
            "name": IDENTITY_TASK_NAME,
            "ansible.builtin.command": "ip netns identify",
            "register": "fleetwall_test_netns",
            "changed_when": False,
            # In the machine's own namespace `ip netns identify` prints nothing: insist on a test namespace's name.
            "failed_when": "fleetwall_test_netns.rc != 0 or fleetwall_test_netns.stdout != fleetwall_test_target_namespace"
                           " or fleetwall_test_netns.stdout is not match('^fwit-[0-9]+-[0-9]+$')",
        }
        play = {
            "name": name,
            "hosts": "target",
            "gather_facts": False,
            "connection": "ssh",
            "any_errors_fatal": True,
            "vars_files": [str(rulesets)],
            "tasks": [identity] + tasks,
        }
        path = self.workdir / ("%s.yml" % stem)
        path.write_text(json.dumps([play], indent=2))
        record = self.workdir / ("%s-records.jsonl" % stem)
        argv = self.lab.controller.exec_argv([str(ANSIBLE_PLAYBOOK), *os.environ.get("FLEETWALL_ANSIBLE_VERBOSITY", "-v").split(), str(path)])
        started = time.monotonic()
        completed = subprocess.run(argv, env=self.environment(record), capture_output=True, text=True, timeout=timeout,
                                   check=False, cwd=str(self.workdir))
        (self.workdir / ("%s.log" % stem)).write_text(completed.stdout + completed.stderr)
        records = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        run = PlaybookRun(name, completed.returncode, completed.stdout + completed.stderr, records, time.monotonic() - started)
        # The safety net, checked again here: the first result is the identity check, and it passed.
        assert records, "no task ran\n%s" % run.explain()
        first = records[0]
        assert (first["task"], first["status"], first["result"].get("stdout")) == (IDENTITY_TASK_NAME, "ok", self.lab.target.name), (
            "the playbook did not prove it reached the target namespace first\n%s" % run.explain()
        )
        return run

    def close(self) -> None:
        """Kill the ssh connection masters this controller left (ControlPersist) and remove their directory."""
        listed = subprocess.run(["ip", "netns", "pids", self.lab.controller.name], capture_output=True, text=True, timeout=20, check=False)
        for pid in listed.stdout.split():
            try:
                if os.path.basename(os.readlink("/proc/%s/exe" % pid)) == "ssh":
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                continue
        shutil.rmtree(self.control_dir, ignore_errors=True)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def ssh_lab(make_namespace, tmp_path: Path) -> Iterator[SshLab]:
    missing = missing_programs()
    if missing:
        pytest.fail("the SSH end-to-end tests need %s (Debian: apt-get install openssh-server openssh-client iproute2; "
                    "scripts/bootstrap.sh installs them)" % ", ".join(missing), pytrace=False)
    lab = start_ssh_lab(make_namespace(), make_namespace(), tmp_path / "ssh")
    try:
        yield lab
    finally:
        lab.server.stop()
        leftover = lab.server.session_pids()
        assert not leftover, "sshd processes left in %s: %s" % (lab.target.name, leftover)


@pytest.fixture
def make_controller(ssh_lab: SshLab, tmp_path: Path) -> Iterator[Callable[..., Controller]]:
    made: List[Controller] = []

    def make(family: int = 4) -> Controller:
        controller = Controller(ssh_lab, tmp_path / ("ansible-ipv%d" % family), family)
        made.append(controller)
        return controller

    try:
        yield make
    finally:
        for controller in made:
            controller.close()


def apply_task(name: str, ruleset: str, **args: Any) -> Dict[str, Any]:
    module_args = {"ruleset": "{{ rulesets['%s'] }}" % ruleset, "backup_dir": "{{ fleetwall_test_backup_dir }}"}
    module_args.update(args)
    return {"name": name, "fleetwall.iptables.ruleset": module_args}


def confirm_task(name: str) -> Dict[str, Any]:
    return {"name": name, "fleetwall.iptables.ruleset": {"confirm": True, "backup_dir": "{{ fleetwall_test_backup_dir }}"}}


def install(target: Namespace, ruleset: Dict[str, Any]) -> None:
    """Put a ruleset on the target directly (guarded, inside its namespace): the state before a test's playbook."""
    for family in (4, 6):
        target.restore(family, rendered(ruleset, family))


def filter_tables(target: Namespace) -> tuple:
    return filter_table(target, 4), filter_table(target, 6)


def saved(target: Namespace) -> tuple:
    """Both families' whole iptables-save output, less the # lines and counters."""
    return canonical_text(target.save(4)), canonical_text(target.save(6))


def lockout_message(family: int) -> str:
    return "refusing to apply: the new IPv%d ruleset would not accept a new SSH connection from %s to %s port %d" % (
        family, CONTROLLER_ADDRESSES[family], TARGET_ADDRESSES[family], SSH_PORT)


def guardian_alive(pid: int, backup_dir: Path) -> bool:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return str(backup_dir).encode() in handle.read()
    except OSError:
        return False


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("family", [4, 6], ids=["over-ipv4", "over-ipv6"])
def test_converge_over_ssh_checks_the_controllers_real_address_and_is_idempotent(make_controller, family: int) -> None:
    controller = make_controller(family)
    target = controller.lab.target
    ruleset = compiled()
    controller.rulesets["fleet"] = ruleset

    first = controller.playbook("converge", [apply_task("converge", "fleet")])
    result = first.ok("converge")
    check = result["lockout_check"]
    assert result["changed"] is True, first.explain()
    assert (check["checked"], check["verdict"], check["client"], check["server"], check["port"]) == (
        True, "ACCEPT", CONTROLLER_ADDRESSES[family], TARGET_ADDRESSES[family], SSH_PORT), first.explain()
    assert "-s %s/%d -p tcp -m tcp --dport 22" % (CONTROLLER_ADDRESSES[family], 32 if family == 4 else 128) in check["rule"], first.explain()

    second = controller.playbook("converge-again", [apply_task("converge again", "fleet")])
    again = second.ok("converge again")
    assert (again["changed"], again["lockout_check"]) == (False, {"checked": False, "reason": "nothing changes"}), second.explain()
    assert filter_tables(target) == (rendered(ruleset, 4), rendered(ruleset, 6))


def test_lockout_guard_over_ssh_refuses_and_sees_the_controller_through_become(make_controller) -> None:
    controller = make_controller(4)
    target = controller.lab.target
    install(target, compiled())
    before = filter_tables(target)
    controller.rulesets.update(no_ssh=compiled(policy=NO_SSH_POLICY), with_mysql=compiled(policy=WITH_MYSQL_POLICY))
    # sudo is not part of this test machine; `su -l` resets the environment the same way sudo's env_reset does.
    become = {"become": True, "become_method": "su", "become_flags": "-l"}

    refused = controller.playbook("refused", [
        dict(apply_task("refused", "no_ssh"), ignore_errors=True),
        dict(apply_task("refused, module environment without SSH_CONNECTION", "no_ssh"), ignore_errors=True,
             environment={"SSH_CONNECTION": ""}),
        dict({"name": "SSH_CONNECTION as a become task sees it", "ansible.builtin.shell": 'echo "[${SSH_CONNECTION-unset}]"',
              "changed_when": False}, **become),
        dict(apply_task("refused with become", "no_ssh"), ignore_errors=True, **become),
    ])
    expected = lockout_message(4) + " (decided by: the DROP policy of INPUT)"
    for name in ("refused", "refused, module environment without SSH_CONNECTION", "refused with become"):
        record = refused.task(name)
        assert record["status"] == "failed" and record["result"]["msg"].startswith(expected), "%s\n%s" % (name, refused.explain())
        check = record["result"]["lockout_check"]
        assert (check["checked"], check["client"], check["server"], check["verdict"]) == (
            True, CONTROLLER_ADDRESSES[4], TARGET_ADDRESSES[4], "DROP"), "%s\n%s" % (name, refused.explain())
    # What the module would have found by itself under become: nothing. The action plugin supplied the address.
    assert refused.ok("SSH_CONNECTION as a become task sees it")["stdout"] == "[unset]", refused.explain()
    assert filter_tables(target) == before, refused.explain()

    # The same path lets a ruleset through when the controller keeps its way in.
    allowed = controller.playbook("allowed-with-become", [dict(apply_task("apply with become", "with_mysql"), **become)])
    result = allowed.ok("apply with become")
    assert (result["changed"], result["lockout_check"]["verdict"], result["lockout_check"]["client"]) == (
        True, "ACCEPT", CONTROLLER_ADDRESSES[4]), allowed.explain()
    assert filter_tables(target) == (rendered(controller.rulesets["with_mysql"], 4), rendered(controller.rulesets["with_mysql"], 6))


@pytest.mark.parametrize("family", [4, 6], ids=["over-ipv4", "over-ipv6"])
def test_lockout_guard_over_ssh_refuses_rulesets_that_drop_the_replies_and_applies_one_that_keeps_them(make_controller, family: int) -> None:
    controller = make_controller(family)
    lab = controller.lab
    install(lab.target, compiled())
    before = filter_tables(lab.target)
    for name, host_vars in dict(DROPS_REPLIES, keeps=KEEPS_CONVERSATION).items():
        controller.rulesets[name] = compiled(host_vars={"db1": host_vars})

    refused = controller.playbook("drops-replies", [
        dict(apply_task(name, name), ignore_errors=True) for name in DROPS_REPLIES
    ])
    server, client = TARGET_ADDRESSES[family], CONTROLLER_ADDRESSES[family]
    expected = ("refusing to apply: the new IPv%d ruleset would not accept the SSH server's SYN-ACK (OUTPUT, %s port %d to %s port "
                % (family, server, SSH_PORT, client))
    deciding = {"outbound_drop_without_baseline": "the DROP policy of OUTPUT",
                "outbound_reject_of_sshd_port": '-A OUTPUT -p tcp -m tcp --sport 22 -m comment --comment "fleetwall_host_rules.outbound[0]" -j REJECT'}
    for name in DROPS_REPLIES:
        record = refused.task(name)
        message = record["result"].get("msg", "")
        assert record["status"] == "failed" and message.startswith(expected), "%s\n%s" % (name, refused.explain())
        assert "(decided by: %s" % deciding[name] in message, "%s\n%s" % (name, refused.explain())
        assert record["result"]["lockout_check"]["legs"][0]["verdict"] == "ACCEPT", refused.explain()  # the SYN alone would pass
    assert filter_tables(lab.target) == before, refused.explain()

    kept = controller.playbook("keeps-conversation", [apply_task("keeps", "keeps"),
                                                      {"name": "the session still works", "ansible.builtin.command": "true"}])
    result = kept.ok("keeps")
    assert (result["changed"], [leg["verdict"] for leg in result["lockout_check"]["legs"]]) == (True, ["ACCEPT"] * 4), kept.explain()
    kept.ok("the session still works")
    assert filter_tables(lab.target) == (rendered(controller.rulesets["keeps"], 4), rendered(controller.rulesets["keeps"], 6))
    login = lab.ssh(family, ["true"])  # a new connection, not the ControlPersist master
    assert login.returncode == 0, "a new SSH connection failed (exit %d): %s%s\nsshd log:\n%s" % (
        login.returncode, login.stdout, login.stderr, lab.server.log())


def test_watchdog_restores_the_previous_rulesets_after_the_controller_is_cut_off(make_controller) -> None:
    controller = make_controller(4)
    lab = controller.lab
    install(lab.target, compiled())
    before = saved(lab.target)
    controller.rulesets["no_ssh"] = compiled(policy=NO_SSH_POLICY)

    cut = controller.playbook("cut-off", [
        apply_task("cut the controller off", "no_ssh", allow_lockout=True, rollback_timeout=WATCHDOG_TIMEOUT),
        # A new connection is dropped: ssh gives up after 3 s, well before the watchdog's deadline.
        dict(confirm_task("confirm over a new connection"), ignore_unreachable=True, vars={"ansible_ssh_timeout": 3}),
    ])
    applied = cut.ok("cut the controller off")
    assert (applied["changed"], applied["lockout_check"]["verdict"], applied["watchdog"]["timeout"]) == (
        True, "DROP", WATCHDOG_TIMEOUT), cut.explain()
    confirmation = cut.task("confirm over a new connection")
    assert confirmation["status"] == "unreachable", cut.explain()
    assert "timed out" in confirmation["result"]["msg"], cut.explain()

    # The watchdog puts the previous rulesets back by itself.
    assert wait_until(lambda: saved(lab.target) == before, timeout=WATCHDOG_TIMEOUT + 20, interval=0.2), (
        "the previous rulesets did not come back:\n%s\n%s" % (saved(lab.target), cut.explain()))
    rolled_back = controller.backup_dir / ("watchdog-%s.rolled-back" % applied["watchdog"]["token"])
    assert wait_until(rolled_back.exists, timeout=10, interval=0.1), cut.explain()
    rollback = json.loads(rolled_back.read_text())
    assert (rollback["reason"], rollback["failures"]) == ("not confirmed within %d seconds" % WATCHDOG_TIMEOUT, []), rollback
    # The confirmation gave up while the cut-off rules were still in place, not in a race with the rollback.
    assert confirmation["time"] < rollback["time"], (confirmation["time"], rollback["time"], cut.explain())

    # A new SSH connection gets in again, and the late confirmation says what happened.
    login = lab.ssh(4, ["true"])
    assert login.returncode == 0, "ssh after the rollback failed (exit %d): %s%s\nsshd log:\n%s" % (
        login.returncode, login.stdout, login.stderr, lab.server.log())
    late = controller.playbook("late-confirmation", [dict(confirm_task("confirm too late"), ignore_errors=True)])
    record = late.task("confirm too late")
    assert record["status"] == "failed" and record["result"]["msg"].startswith(
        "the watchdog already restored the previous rulesets (not confirmed within %d seconds)" % WATCHDOG_TIMEOUT), late.explain()
    assert saved(lab.target) == before


def test_confirmed_rulesets_stay_past_the_watchdog_deadline(make_controller) -> None:
    controller = make_controller(4)
    target = controller.lab.target
    install(target, compiled())
    new = compiled(policy=WITH_MYSQL_POLICY)
    controller.rulesets["with_mysql"] = new

    run = controller.playbook("apply-and-confirm", [
        apply_task("apply with a watchdog", "with_mysql", rollback_timeout=WATCHDOG_TIMEOUT),
        confirm_task("confirm over a new connection"),
    ])
    finished = time.monotonic()
    watchdog = run.ok("apply with a watchdog")["watchdog"]
    confirmation = run.ok("confirm over a new connection")
    assert (confirmation["changed"], confirmation["confirmed"]) == (True, [watchdog["token"]]), run.explain()
    # The confirmation came over a second SSH connection: the plugin stopped the ControlPersist master first.
    logins = [line for line in controller.lab.server.log().splitlines() if "Accepted publickey for root from %s " % CONTROLLER_ADDRESSES[4] in line]
    assert len(logins) == 2, "expected two SSH logins (apply, then confirm), sshd logged:\n%s\n%s" % (controller.lab.server.log(), run.explain())

    # The guardian sees the confirmation and leaves; wait past its deadline anyway.
    assert wait_until(lambda: not guardian_alive(watchdog["pid"], controller.backup_dir), timeout=10, interval=0.1), run.explain()
    time.sleep(max(0.0, finished + WATCHDOG_TIMEOUT + 1.5 - time.monotonic()))
    assert filter_tables(target) == (rendered(new, 4), rendered(new, 6))
    assert glob.glob(str(controller.backup_dir / "watchdog-*")) == []

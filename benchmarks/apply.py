# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: apply the same N INPUT rules three ways, in fresh network namespaces.

The rules: ``fleetwall_host_rules.inbound`` of one host holds N rules, each
accepting TCP from its own IPv4 /32 (10.100.0.1, 10.100.0.2, ...) to its own
port (1024 + i), each with its comment (``fleetwall_host_rules.inbound[i]``),
and ``fleetwall_baseline: false``, so that the compiled ruleset the module
receives holds exactly these N rules: IPv4 = N rules in INPUT, IPv6 = 0
rules (the sources are IPv4), both with the default chain policies (INPUT
DROP, FORWARD DROP, OUTPUT ACCEPT). Every method ends with exactly the same
kernel state in both families, and the script checks that it does.

(a) ``fleetwall.iptables.ruleset`` through ``ansible-playbook``, both
    families. Three numbers per run:

    * playbook: the whole ``ansible-playbook`` process, wall clock.
    * task: the module task inside that playbook, bracketed by
      ``ansible.builtin.command`` tasks ending in ``date +%s.%N`` (t0, t1,
      the module task, t2): (t2 - t1) - (t1 - t0), i.e. the bracket minus the
      cost of an empty bracket (one run of each, so it carries about 0.1 s
      of noise on an idle machine, more under load). It covers what the controller does for the task
      (templating the ruleset argument, building and copying the AnsiballZ
      payload) plus the module process on the target.
    * module: the module file run directly in the namespace, the way
      tests/integration/test_ruleset_module.py's ModuleRunner does it (one
      Python process, arguments in a JSON file, diff off as in a playbook);
      wall clock of that process. This is the module's own time, and the
      number the targets about "module time" use.

    The compiled ruleset ({host, ipv4: text, ipv6: text}, as the
    compile filter returns it) is a host variable of the inventory, as one
    set by set_fact would be; compiling is not timed here (see compile.py).

(b) What users do today: one ``ansible.builtin.iptables`` task with one loop
    item per rule (same rules, same order, same comments; the task names
    the parameters these rules use), then one task with one loop item per
    chain policy (3 per family, both families), through ``ansible-playbook``:
    N + 6 module runs per playbook run. Reported as playbook wall clock and
    as the two tasks bracketed like (a)'s task. Skipped at a size
    where its first run plus its no-op run are estimated (from the per-rule
    task time measured at the largest smaller size) to exceed
    ``--b-max-minutes`` (10).

(c) The floor: ``iptables-restore`` and ``ip6tables-restore`` of the
    rendered text, in one ``ip netns exec NS sh -c`` (wall clock).
(c+) The iptables tool calls the module itself makes, without Python, in one
    ``sh -c``: first run ``iptables-save --version``, both ``*-legacy-save``
    (backend check), ``iptables-save`` and ``ip6tables-save``,
    ``restore --test`` and ``restore`` of both families, and both saves
    again (the post-apply check); no-op run: the first five. This is the
    fair floor for a module that reads the state, validates with --test and
    re-reads after applying; (a)/(c+) is the module's own overhead.

Each method runs twice in its own fresh namespace: the first run (empty
namespace) and a no-op re-run (the same rules again). Ratios compare like
with like: (b)/(a) playbook against playbook and task against task;
(a)/(c) module, task or playbook against the bare restore (and against c+).

Safety: every namespace is created and guarded by tests/integration/netns.py
(named ``fwit-<pid>-<n>``, ``ip netns identify`` checked before any
iptables tool runs, deleted at exit, on errors and on Ctrl-C/SIGTERM). In the
playbooks the host is ``ansible_connection: local`` with an
``ansible_python_interpreter`` wrapper that runs Python under ``ip netns exec
NS``; the first task runs ``ip netns identify`` (and t0's ``date``) and
the second asserts that it printed the namespace name, before any iptables
task.

Reproduce (as root, from the repository root)::

    .venv/bin/python benchmarks/apply.py                 # 50, 200, 1,000 and 10,000 rules
    .venv/bin/python benchmarks/apply.py --sizes 50      # smoke run: 80-90 s on a busy 2-core machine, 85% (b)
    .venv/bin/python benchmarks/apply.py --sizes 50 --skip-b   # 10-16 s
    .venv/bin/python benchmarks/apply.py --sizes 10000 --skip-b --profile benchmarks/results
    .venv/bin/python benchmarks/apply.py --sizes 50 --skip-b --fleet-host 10000   # + the biggest fleet host, linear vs sets

The script reports and never fails on a missed target; it exits non-zero
only when something breaks (a playbook fails, or a method does not end with
the expected rules).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from collection_import import COLLECTIONS_ROOT, ROOT, import_collection
from compile import DEFAULT_SEED as FLEET_SEED

DEFAULT_SIZES = (50, 200, 1000, 10000)
HOST = "bench"

# The targets (reported only).
TARGET_B_OVER_A = 100.0  # (a) at least 100x faster than (b) ...
TARGET_B_OVER_A_SIZE = 200  # ... at 200 rules
TARGET_NOOP_SECONDS = 0.25  # (a) no-op re-run within 0.25 s of module process time ...
TARGET_NOOP_SIZE = 10000  # ... at 10,000 rules
TARGET_A_OVER_C = 1.5  # (a) module process at most 1.5x (c+), the tool calls it makes (also shown against (c))
TARGET_A_OVER_C_SIZE = 10000  # ... at 10,000 rules, first run and no-op


# ---------------------------------------------------------------- processes and clean-up

_children: Dict[int, subprocess.Popen] = {}
_namespaces: List[Any] = []


def _terminate(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run_timed(argv: Sequence[str], stdin: Optional[bytes] = None, log: Optional[Path] = None,
              env: Optional[Dict[str, str]] = None, timeout: float = 7200) -> Tuple[float, int, str]:
    """Run argv to its end; (wall seconds, exit status, output). Killed if we are interrupted."""
    out_handle = open(log, "wb") if log else subprocess.PIPE
    try:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out_handle, stderr=subprocess.STDOUT, env=env,
        )
        _children[process.pid] = process
        try:
            output = process.communicate(stdin, timeout=timeout)[0]
            elapsed = time.perf_counter() - start
        finally:
            stop(process)
            _children.pop(process.pid, None)
    finally:
        if log:
            out_handle.close()
    text = log.read_text(errors="replace") if log else output.decode(errors="replace")
    return elapsed, process.returncode, text


def stop(process: subprocess.Popen) -> None:
    """SIGTERM first (ansible-playbook then stops its own workers), SIGKILL if that is not enough."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def new_namespace():
    from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace

    namespace = Namespace.create()
    _namespaces.append(namespace)
    namespace.guard()
    return namespace


def drop_namespace(namespace) -> None:
    namespace.delete()
    if namespace in _namespaces:
        _namespaces.remove(namespace)


def cleanup() -> None:
    for process in list(_children.values()):
        stop(process)
    for namespace in reversed(_namespaces):
        namespace.delete()
    _namespaces.clear()


# ---------------------------------------------------------------- the rules


def rule_source(index: int) -> str:
    return "10.%d.%d.%d" % (100 + index // 62500, (index // 250) % 250, index % 250 + 1)


def make_inventory(size: int) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    host_rules = [
        {"from": rule_source(index), "proto": "tcp", "port": str(1024 + index % 50000)} for index in range(size)
    ]
    hostvars = {
        HOST: {
            "inventory_hostname": HOST,
            "ansible_host": "192.0.2.10",
            "ansible_connection": "local",  # driven through `ip netns exec`, never over SSH
            "ansible_default_ipv6": {"address": "2001:db8::10"},
            "fleetwall_host_rules": {"inbound": host_rules},
            "fleetwall_baseline": False,  # exactly the N rules, in both families' rulesets
        }
    }
    return hostvars, {"all": [HOST], "ungrouped": [HOST]}


class Workload:
    """One size: the compiled ruleset, its rendered text and (b)'s items."""

    def __init__(self, size: int) -> None:
        from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
        from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict
        from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family

        self.size = size
        hostvars, groups = make_inventory(size)
        start = time.perf_counter()
        compiled = FleetCompiler(hostvars, groups).compile_host(HOST)
        self.compile_seconds = time.perf_counter() - start
        if compiled.warnings:
            raise RuntimeError("the compiler warned: %s" % "; ".join(compiled.warnings))
        self.ruleset = ruleset_to_dict(compiled)
        self.text = {4: render_family(compiled.ipv4), 6: render_family(compiled.ipv6)}
        self.sets_text = ""  # the N host rules make no ipset set
        self.rules = {}
        for family in (4, 6):
            tables = compiled.family(family).tables
            self.rules[family] = sum(len(chain.rules) for table in tables for chain in table.chains)
        host_rule_lines = sum(1 for line in self.text[4].splitlines() if "fleetwall_host_rules.inbound[" in line)
        if (host_rule_lines, self.rules[4], self.rules[6]) != (size, size, 0):
            raise RuntimeError("expected exactly %d IPv4 rules and no IPv6 rule, found %d (%d host rules) and %d"
                               % (size, self.rules[4], host_rule_lines, self.rules[6]))
        self.b_rules, self.b_policies = [], []
        for family in (4, 6):
            rules, policies = builtin_iptables_items(compiled.family(family))
            self.b_rules += rules
            self.b_policies += policies


def builtin_iptables_items(family_ruleset) -> Tuple[List[Dict[str, Any]], List[Dict[str, str]]]:
    """Every rule of a family's ruleset as ansible.builtin.iptables parameters, in order; and its policies."""
    items: List[Dict[str, Any]] = []
    policies: List[Dict[str, str]] = []
    ip_version = "ipv%d" % family_ruleset.family
    for table in family_ruleset.tables:
        for chain in table.chains:
            if chain.policy:
                policies.append({"ip_version": ip_version, "chain": chain.name, "policy": chain.policy})
            for rule in chain.rules:
                unsupported = [name for name in ("tcp_flags", "hop_limit", "out_interface") if getattr(rule, name)]
                if unsupported or len(rule.source_ports) > 0:
                    raise RuntimeError("no ansible.builtin.iptables equivalent for %s" % (rule,))
                item: Dict[str, Any] = {"ip_version": ip_version, "chain": chain.name, "jump": rule.target}
                for name in ("source", "destination", "protocol", "limit", "comment", "reject_with", "log_prefix",
                             "icmp_type"):
                    if getattr(rule, name) is not None:
                        item[name] = getattr(rule, name)
                if rule.in_interface:
                    item["in_interface"] = ("!" if rule.in_interface_negated else "") + rule.in_interface
                if len(rule.destination_ports) == 1 and "," not in rule.destination_ports[0]:
                    item["destination_port"] = rule.destination_ports[0]
                elif rule.destination_ports:
                    item["destination_ports"] = list(rule.destination_ports)
                if rule.ctstate:
                    item["ctstate"] = list(rule.ctstate)
                if rule.log_level is not None:
                    item["log_level"] = str(rule.log_level)
                items.append(item)
    return items, policies


class FleetHostWorkload:
    """One host of compile.py's synthetic fleet, compiled with linear rules (threshold 0) or with ipset sets."""

    def __init__(self, hostvars: Dict[str, Dict[str, Any]], groups: Dict[str, List[str]], host: str,
                 threshold: int) -> None:
        from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
        from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict

        self.host, self.threshold = host, threshold
        start = time.perf_counter()
        compiled = FleetCompiler(hostvars, groups).compile_host(host)
        self.compile_seconds = time.perf_counter() - start
        self.ruleset = ruleset_to_dict(compiled)
        self.text = {4: self.ruleset["ipv4"], 6: self.ruleset["ipv6"]}
        self.sets_text = self.ruleset.get("ipsets", "")
        self.rules = {family: sum(len(chain.rules) for table in compiled.family(family).tables for chain in table.chains)
                      for family in (4, 6)}
        sets = compiled.ipv4.sets + compiled.ipv6.sets
        self.sets, self.members = len(sets), sum(len(item.members) for item in sets)


def biggest_fleet_host(fleet_size: int, seed: int) -> Tuple[str, float]:
    """The host with the most rules (linear) in compile.py's synthetic fleet of `fleet_size` hosts; seconds taken."""
    from compile import compile_fleet, make_inventory, rule_count

    start = time.perf_counter()
    hostvars, groups = make_inventory(fleet_size, seed)
    rulesets = compile_fleet(hostvars, groups)[1]
    host = max(sorted(rulesets), key=lambda name: rule_count(rulesets[name]))
    return host, time.perf_counter() - start


def fleet_host_workloads(fleet_size: int, seed: int, threshold: int) -> List[FleetHostWorkload]:
    """The biggest host of the fleet, linear and with sets (compiled from the same inventory, one threshold apart)."""
    from compile import make_inventory

    host = biggest_fleet_host(fleet_size, seed)[0]
    return [FleetHostWorkload(*make_inventory(fleet_size, seed, value), host, value) for value in (0, threshold)]


# ---------------------------------------------------------------- live state


def filter_table(namespace, family: int) -> str:
    from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text

    text = canonical_text(namespace.save(family))
    return text[text.index("*filter"):] if "*filter" in text else ""


def live_sets(namespace) -> str:
    """fleetwall's ipset sets in the namespace, in the canonical text a compiled ruleset carries."""
    from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import canonical_text, parse_save

    saved = namespace.iptables_command(["ipset", "save"]).stdout
    return canonical_text(parse_save(saved).values())


def state_matches(namespace, workload: Workload, families: Sequence[int] = (4, 6)) -> bool:
    rules = all(filter_table(namespace, family) == workload.text[family] for family in families)
    return rules and (not workload.sets_text or live_sets(namespace) == workload.sets_text)


# ---------------------------------------------------------------- (c) and (c+): shell


def restore_script(workdir: Path, sets: bool = False) -> str:
    """Both restores; with sets, an ``ipset -exist restore`` of the sets first."""
    restores = "iptables-restore < %s/rules.v4 && ip6tables-restore < %s/rules.v6" % (workdir, workdir)
    return ("ipset -exist restore < %s/sets && " % workdir if sets else "") + restores


def module_tool_calls_script(workdir: Path, apply: bool, sets: bool = False) -> str:
    """The iptables tools fleetwall.iptables.ruleset runs, in its order, output discarded.

    With sets: ``ipset save`` with the saves, the new sets created before
    ``restore --test``, and ``ipset save`` again after applying."""
    calls = [
        "iptables-save --version",
        "iptables-legacy-save",
        "ip6tables-legacy-save",
        "iptables-save",
        "ip6tables-save",
    ] + (["ipset save"] if sets else [])
    if apply:
        calls += ["ipset -exist restore < %s/sets" % workdir] if sets else []
        calls += [
            "iptables-restore --test < %s/rules.v4" % workdir,
            "ip6tables-restore --test < %s/rules.v6" % workdir,
            "iptables-restore < %s/rules.v4" % workdir,
            "ip6tables-restore < %s/rules.v6" % workdir,
            "iptables-save",
            "ip6tables-save",
        ] + (["ipset save"] if sets else [])
    return " && ".join("%s > /dev/null" % call for call in calls)


def shell_in_namespace(namespace, script: str) -> float:
    namespace.guard()  # the script runs iptables: prove where
    elapsed, status, output = run_timed(namespace.exec_argv(["sh", "-c", script]))
    if status != 0:
        raise RuntimeError("shell in %s failed (%d): %s\n%s" % (namespace.name, status, script, output))
    return elapsed


def measure_shell(workload: Workload, workdir: Path, repeat: int) -> Dict[str, Any]:
    """(c) and (c+): median over `repeat` fresh namespaces of the first run and the no-op run."""
    results: Dict[str, Any] = {}
    sets = bool(workload.sets_text)
    for key, first_script, noop_script in (
        ("c", restore_script(workdir, sets), restore_script(workdir, sets)),
        ("c+", module_tool_calls_script(workdir, True, sets), module_tool_calls_script(workdir, False, sets)),
    ):
        firsts, noops, ok = [], [], True
        for _attempt in range(repeat):
            namespace = new_namespace()
            try:
                firsts.append(shell_in_namespace(namespace, first_script))
                noops.append(shell_in_namespace(namespace, noop_script))
                ok = ok and state_matches(namespace, workload)
            finally:
                drop_namespace(namespace)
        results[key] = {"first": statistics.median(firsts), "noop": statistics.median(noops), "state_ok": ok}
    return results


# ---------------------------------------------------------------- (a): the module file, directly


def module_runner(namespace, workdir: Path):
    from ansible_collections.fleetwall.iptables.tests.integration.test_ruleset_module import ModuleRunner

    class DiffOffRunner(ModuleRunner):
        """ModuleRunner, but with diff off, as in a playbook run without --diff."""

        def command(self, args, check_mode=False):
            argv = super().command(args, check_mode)  # guards the namespace, writes the args file
            args_file = Path(argv[-1])
            data = json.loads(args_file.read_text())
            data["ANSIBLE_MODULE_ARGS"]["_ansible_diff"] = False
            args_file.write_text(json.dumps(data))
            return argv

    return DiffOffRunner(namespace, workdir)


def run_module_once(runner, workload: Workload, profile: Optional[Path] = None) -> Tuple[float, Dict[str, Any]]:
    argv = runner.command({"ruleset": workload.ruleset})
    if profile is not None:
        at = argv.index(sys.executable) + 1
        argv = argv[:at] + ["-m", "cProfile", "-o", str(profile)] + argv[at:]
    elapsed, status, output = run_timed(argv)
    try:
        result = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("the module printed no JSON (exit %d):\n%s" % (status, output[-3000:]))
    if result.get("failed"):
        raise RuntimeError("the module failed: %s" % result.get("msg"))
    return elapsed, result


def measure_module(workload: Workload, workdir: Path, repeat: int) -> Dict[str, Any]:
    firsts, noops, ok = [], [], True
    for number in range(repeat):
        namespace = new_namespace()
        try:
            runner = module_runner(namespace, workdir / ("module-%d" % number))
            runner.workdir.mkdir(parents=True, exist_ok=True)
            first, result = run_module_once(runner, workload)
            noop, again = run_module_once(runner, workload)
            ok = ok and result["changed"] is True and again["changed"] is False and state_matches(namespace, workload)
            firsts.append(first)
            noops.append(noop)
        finally:
            drop_namespace(namespace)
    return {"first": statistics.median(firsts), "noop": statistics.median(noops), "state_ok": ok}


def profile_module(workload: Workload, workdir: Path, directory: Path) -> List[Path]:
    """cProfile of the module process, first run and no-op run, in a fresh namespace."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    namespace = new_namespace()
    try:
        runner = module_runner(namespace, workdir / "profile")
        runner.workdir.mkdir(parents=True, exist_ok=True)
        for run in ("first", "noop"):
            path = directory / ("apply-module-%d-%s.prof" % (workload.size, run))
            run_module_once(runner, workload, profile=path)
            paths.append(path)
    finally:
        drop_namespace(namespace)
    return paths


def print_profile(path: Path, limit: int) -> None:
    import pstats

    print("\n--- cProfile of the module process: %s (cumulative, top %d)" % (path, limit))
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(limit)


# ---------------------------------------------------------------- (a) and (b): ansible-playbook

PLAYBOOK_HEAD = """\
- name: fleetwall apply benchmark
  hosts: {host}
  gather_facts: false
  tasks:
    - name: Where do the tasks run? (and t0, the start of the empty bracket)
      ansible.builtin.command:
        argv: [sh, -c, "ip netns identify && date +%s.%N"]
      register: fwbench_netns
      changed_when: false

    - name: Refuse to go on unless that is the benchmark namespace (never this machine's own firewall)
      ansible.builtin.assert:
        that: fwbench_netns.stdout_lines[0] == {namespace_json}
        fail_msg: "tasks run in network namespace {{{{ fwbench_netns.stdout_lines[0] | to_json }}}}, not {namespace}"

    - name: t1
      ansible.builtin.command: date +%s.%N
      register: fwbench_t1
      changed_when: false
"""

PLAYBOOK_A = """\
    - name: (a) fleetwall.iptables.ruleset
      fleetwall.iptables.ruleset:
        ruleset: "{{ fwbench_ruleset }}"
        backup_dir: {backup_dir}
      register: fwbench_result
"""

B_PARAMETERS = ("source", "destination", "in_interface", "protocol", "destination_port", "destination_ports", "ctstate",
                "icmp_type", "limit", "log_prefix", "log_level", "reject_with", "comment")

PLAYBOOK_B = """\
    - name: (b) one ansible.builtin.iptables item per rule
      ansible.builtin.iptables:
        ip_version: "{{ item.ip_version }}"
        chain: "{{ item.chain }}"
        jump: "{{ item.jump }}"
{parameters}
      loop: "{{ fwbench_rules }}"
      register: fwbench_result

    - name: (b) chain policies
      ansible.builtin.iptables:
        ip_version: "{{ item.ip_version }}"
        chain: "{{ item.chain }}"
        policy: "{{ item.policy }}"
      loop: "{{ fwbench_policies }}"
      register: fwbench_policy_result
"""


def playbook_b(items: Sequence[Dict[str, Any]]) -> str:
    """(b)'s tasks; the loop task names the parameters the rules use, as a hand-written one would."""
    used = [name for name in B_PARAMETERS if any(name in item for item in items)]
    lines = ['        %s: "{{ item.%s | default(omit) }}"' % (name, name) for name in used]
    return PLAYBOOK_B.replace("{parameters}", "\n".join(lines))


PLAYBOOK_TAIL = """\
    - name: t2
      ansible.builtin.command: date +%s.%N
      register: fwbench_t2
      changed_when: false

    - name: Report
      ansible.builtin.debug:
        msg: "FWBENCH {{ {'t0': fwbench_netns.stdout_lines[1], 't1': fwbench_t1.stdout, 't2': fwbench_t2.stdout,
          'changed': fwbench_result.changed or (fwbench_policy_result.changed | default(false))} | to_json }}"
"""

REPORT_LINE = re.compile(r'"msg": ("FWBENCH .*")\s*$', re.MULTILINE)


class AnsibleHost:
    """An inventory host that is a network namespace: local connection, Python under `ip netns exec`."""

    def __init__(self, namespace, workdir: Path, variables: Dict[str, Any]) -> None:
        self.namespace = namespace
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        wrapper = workdir / "python-in-namespace"
        wrapper.write_text("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n" % (namespace.name, sys.executable))
        wrapper.chmod(0o755)
        # The rules are host variables of the inventory, read once per run, as a compiled ruleset set_fact'd
        # from the compile filter, or a rule list in host_vars, would be (ansible-core 2.21 reads a
        # vars_files file again for every task).
        host_vars = {"ansible_connection": "local", "ansible_python_interpreter": str(wrapper)}
        host_vars.update(variables)
        inventory = {"all": {"hosts": {HOST: host_vars}}}
        (workdir / "inventory.json").write_text(json.dumps(inventory))
        (workdir / "ansible.cfg").write_text("[defaults]\n")  # ansible-core's defaults, no user configuration
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        self.env.update(
            ANSIBLE_CONFIG=str(workdir / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT),
            ANSIBLE_HOME=str(workdir / "ansible-home"),
            ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-local-tmp"),
            ANSIBLE_REMOTE_TEMP=str(workdir / "ansible-remote-tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
        )

    def write_playbook(self, body: str) -> Path:
        head = PLAYBOOK_HEAD.format(host=HOST, namespace=self.namespace.name,
                                    namespace_json=json.dumps(self.namespace.name))
        path = self.workdir / "playbook.yml"
        path.write_text(head + body + PLAYBOOK_TAIL)
        return path

    def run(self, playbook: Path, label: str) -> Dict[str, Any]:
        self.namespace.guard()
        log = self.workdir / ("%s.log" % label)
        argv = [ansible_playbook(), "-i", str(self.workdir / "inventory.json"), str(playbook)]
        elapsed, status, output = run_timed(argv, log=log, env=self.env)
        if status != 0:
            raise RuntimeError("ansible-playbook failed (exit %d), log %s:\n%s" % (status, log, output[-4000:]))
        match = REPORT_LINE.search(output)
        if not match:
            raise RuntimeError("no FWBENCH line in %s" % log)
        report = json.loads(json.loads(match.group(1))[len("FWBENCH "):])
        t0, t1, t2 = (float(report[key]) for key in ("t0", "t1", "t2"))
        return {"playbook": elapsed, "task": (t2 - t1) - (t1 - t0), "bracket_overhead": t1 - t0,
                "changed": report["changed"]}


def ansible_playbook() -> str:
    for candidate in (Path(sys.executable).parent / "ansible-playbook", ROOT / ".venv" / "bin" / "ansible-playbook"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("ansible-playbook")
    if not found:
        raise RuntimeError("ansible-playbook not found; run this with .venv/bin/python")
    return found


def measure_playbook(method: str, workload: Workload, workdir: Path) -> Dict[str, Any]:
    namespace = new_namespace()
    try:
        if method == "a":
            host = AnsibleHost(namespace, workdir / "playbook-a", {"fwbench_ruleset": workload.ruleset})
            playbook = host.write_playbook(PLAYBOOK_A.replace("{backup_dir}", json.dumps(str(host.workdir / "backups"))))
        else:
            host = AnsibleHost(namespace, workdir / "playbook-b",
                               {"fwbench_rules": workload.b_rules, "fwbench_policies": workload.b_policies})
            playbook = host.write_playbook(playbook_b(workload.b_rules))
        first = host.run(playbook, "first")
        noop = host.run(playbook, "noop")
        ok = first["changed"] is True and noop["changed"] is False and state_matches(namespace, workload)
        return {"first": first, "noop": noop, "state_ok": ok}
    finally:
        drop_namespace(namespace)


# ---------------------------------------------------------------- the run


def estimate_b_seconds(size: int, measured: Dict[int, Dict[str, Any]]) -> Optional[float]:
    """(b)'s first + no-op run at `size`, from the per-rule task time of the largest measured size."""
    if not measured:
        return None
    base = max(measured)
    total = 0.0
    for run in ("first", "noop"):
        values = measured[base][run]
        fixed = values["playbook"] - values["task"]
        total += fixed + values["task"] / measured[base]["items"] * (size + 6)
    return total


def measure_size(size: int, args: argparse.Namespace, workdir: Path, b_measured: Dict[int, Dict[str, Any]]) -> Dict[str, Any]:
    began = time.perf_counter()

    def say(text: str) -> None:
        print("  [%d rules, %5.1f s] %s" % (size, time.perf_counter() - began, text), file=sys.stderr, flush=True)

    workload = Workload(size)
    sizedir = workdir / ("size-%d" % size)
    sizedir.mkdir()
    (sizedir / "rules.v4").write_text(workload.text[4])
    (sizedir / "rules.v6").write_text(workload.text[6])
    row: Dict[str, Any] = {"size": size, "rules_v4": workload.rules[4], "rules_v6": workload.rules[6],
                           "compile_s": workload.compile_seconds,
                           "b_items": len(workload.b_rules) + len(workload.b_policies)}
    say("(c) iptables-restore and (c+) the module's tool calls ...")
    row.update(measure_shell(workload, sizedir, args.repeat))
    say("(a) the module process, directly ...")
    row["a_module"] = measure_module(workload, sizedir, args.repeat)
    say("(a) ansible-playbook with fleetwall.iptables.ruleset ...")
    row["a_playbook"] = measure_playbook("a", workload, sizedir)
    if args.skip_b:
        row["b"] = {"skipped": "skipped: --skip-b"}
    else:
        estimate = estimate_b_seconds(size, b_measured)
        if estimate is None and size > 200:
            say("(b) calibrating the per-rule cost of ansible.builtin.iptables at 50 rules ...")
            calibration = Workload(50)
            caldir = workdir / "calibration-50"
            caldir.mkdir(exist_ok=True)
            measured = measure_playbook("b", calibration, caldir)
            b_measured[50] = {"first": measured["first"], "noop": measured["noop"],
                              "items": len(calibration.b_rules) + len(calibration.b_policies)}
            estimate = estimate_b_seconds(size, b_measured)
        if estimate is not None and estimate > args.b_max_minutes * 60:
            row["b"] = {"skipped": "skipped: estimated %d min (first + no-op run, from the per-item time at %d rules)"
                        % (math.ceil(estimate / 60.0), max(b_measured)), "estimate_s": estimate}
        else:
            say("(b) ansible-playbook with ansible.builtin.iptables loops (%d items) ..." % row["b_items"])
            row["b"] = measure_playbook("b", workload, sizedir)
            b_measured[size] = {"first": row["b"]["first"], "noop": row["b"]["noop"],
                                "items": len(workload.b_rules) + len(workload.b_policies)}
    if args.profile:
        say("cProfile of the module process ...")
        row["profiles"] = [str(path) for path in profile_module(workload, sizedir, Path(args.profile))]
    say("done")
    return row


def measure_fleet_host(args: argparse.Namespace, workdir: Path) -> List[Dict[str, Any]]:
    """The biggest host of the --fleet-host fleet, linear and with sets: the module process, (c) and (c+)."""
    print("  [fleet host] compiling the %d-host fleet to find its biggest host ..." % args.fleet_host,
          file=sys.stderr, flush=True)
    rows = []
    for workload in fleet_host_workloads(args.fleet_host, args.seed, args.set_threshold):
        print("  [fleet host] %s, set threshold %d: (c), (c+) and the module process ..."
              % (workload.host, workload.threshold), file=sys.stderr, flush=True)
        hostdir = workdir / ("fleet-host-threshold-%d" % workload.threshold)
        hostdir.mkdir()
        (hostdir / "rules.v4").write_text(workload.text[4])
        (hostdir / "rules.v6").write_text(workload.text[6])
        (hostdir / "sets").write_text(workload.sets_text)
        row: Dict[str, Any] = {"host": workload.host, "threshold": workload.threshold, "rules_v4": workload.rules[4],
                               "rules_v6": workload.rules[6], "sets": workload.sets, "members": workload.members,
                               "compile_s": workload.compile_seconds}
        row.update(measure_shell(workload, hostdir, args.repeat))
        row["a_module"] = measure_module(workload, hostdir, args.repeat)
        rows.append(row)
    return rows


def print_fleet_host_table(rows: List[Dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print("The biggest host of compile.py's %d-host fleet (seed %d), %s: linear rules against ipset sets"
          % (args.fleet_host, args.seed, rows[0]["host"]))
    header = ["rules as", "v4 / v6", "sets (members)", "module first s", "no-op s", "(c) first s", "no-op s",
              "(c+) first s", "no-op s", "(a)/(c+) first", "(a)/(c+) no-op", "state"]
    cells = [header]
    for row in rows:
        module, c, cplus = row["a_module"], row["c"], row["c+"]
        ok = module["state_ok"] and c["state_ok"] and cplus["state_ok"]
        cells.append(["sets (threshold %d)" % row["threshold"] if row["threshold"] else "linear",
                      "%d / %d" % (row["rules_v4"], row["rules_v6"]), "%d (%d)" % (row["sets"], row["members"]),
                      "%.3f" % module["first"], "%.3f" % module["noop"], "%.3f" % c["first"], "%.3f" % c["noop"],
                      "%.3f" % cplus["first"], "%.3f" % cplus["noop"], ratio(module["first"], cplus["first"]),
                      ratio(module["noop"], cplus["noop"]), "ok" if ok else "WRONG"])
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    for number, line in enumerate(cells):
        print("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                        for column, (cell, width) in enumerate(zip(line, widths))))
        if number == 0:
            print("  ".join("-" * width for width in widths))
    print("(c) with sets: ipset -exist restore of the sets, then both restores; (c+) with sets adds ipset save to the")
    print("reads, the new sets' ipset restore before restore --test, and ipset save after applying. Compile not timed: %s."
          % ", ".join("%.1f s" % row["compile_s"] for row in rows))


# ---------------------------------------------------------------- report


def ratio(numerator: Optional[float], denominator: Optional[float]) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return ""
    return "%.1fx" % (numerator / denominator) if numerator / denominator < 100 else "%.0fx" % (numerator / denominator)


def table_rows(row: Dict[str, Any]) -> List[List[str]]:
    size = "%d" % row["size"]
    rules = "%d / %d" % (row["rules_v4"], row["rules_v6"])
    c, cplus, module, play = row["c"], row["c+"], row["a_module"], row["a_playbook"]
    lines = []

    def add(method, first, noop, b_over_a=("", ""), a_over_c=("", ""), a_over_cplus=("", ""), ok=None):
        lines.append([size, rules, method, "%.3f" % first, "%.3f" % noop, b_over_a[0], b_over_a[1],
                      a_over_c[0], a_over_c[1], a_over_cplus[0], a_over_cplus[1],
                      "" if ok is None else ("ok" if ok else "WRONG")])

    def over_c(first, noop):
        return (ratio(first, c["first"]), ratio(noop, c["noop"])), (ratio(first, cplus["first"]), ratio(noop, cplus["noop"]))

    add("(a) ruleset: ansible-playbook", play["first"]["playbook"], play["noop"]["playbook"],
        a_over_c=over_c(play["first"]["playbook"], play["noop"]["playbook"])[0], ok=play["state_ok"])
    add("(a) ruleset: module task", play["first"]["task"], play["noop"]["task"],
        *((("", ""),) + over_c(play["first"]["task"], play["noop"]["task"])))
    add("(a) ruleset: module process", module["first"], module["noop"],
        *((("", ""),) + over_c(module["first"], module["noop"])), ok=module["state_ok"])
    b = row["b"]
    if "skipped" in b:
        lines.append([size, rules, "(b) builtin.iptables loop", b["skipped"]] + [""] * 8)
    else:
        add("(b) builtin.iptables loop: playbook", b["first"]["playbook"], b["noop"]["playbook"],
            b_over_a=(ratio(b["first"]["playbook"], play["first"]["playbook"]),
                      ratio(b["noop"]["playbook"], play["noop"]["playbook"])), ok=b["state_ok"])
        add("(b) builtin.iptables loop: tasks", b["first"]["task"], b["noop"]["task"],
            b_over_a=(ratio(b["first"]["task"], play["first"]["task"]), ratio(b["noop"]["task"], play["noop"]["task"])))
    add("(c) iptables-restore x2", c["first"], c["noop"], ok=c["state_ok"])
    add("(c+) the module's tool calls, sh", cplus["first"], cplus["noop"], ok=cplus["state_ok"])
    return lines


HEADER = ["rules", "v4 / v6", "method", "first s", "no-op s", "(b)/(a) first", "(b)/(a) no-op",
          "(a)/(c) first", "(a)/(c) no-op", "(a)/(c+) first", "(a)/(c+) no-op", "state"]


def print_table(rows: List[Dict[str, Any]]) -> None:
    cells = [HEADER]
    for row in rows:
        cells.extend(table_rows(row))
    widths = [0] * len(HEADER)
    for line in cells:
        if len(line) > 4 and line[3].startswith("skipped"):
            continue  # a skipped row's note spills over the empty columns
        for column, cell in enumerate(line):
            widths[column] = max(widths[column], len(cell))
    for number, line in enumerate(cells):
        if line[3].startswith("skipped"):
            print("  ".join(cell.rjust(width) if column < 2 else cell.ljust(width)
                            for column, (cell, width) in enumerate(zip(line[:3], widths))) + "  " + line[3])
        else:
            print("  ".join(cell.ljust(width) if column == 2 else cell.rjust(width)
                            for column, (cell, width) in enumerate(zip(line, widths))).rstrip())
        if number == 0:
            print("  ".join("-" * width for width in widths))


def load() -> str:
    return " ".join("%.2f" % value for value in os.getloadavg())


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def print_targets(rows: List[Dict[str, Any]]) -> None:
    by_size = {row["size"]: row for row in rows}
    print()
    print("Targets (reported only: a MISS does not fail the run):")
    row = by_size.get(TARGET_B_OVER_A_SIZE)
    label = "(a) >= %.0fx faster than (b) at %d rules" % (TARGET_B_OVER_A, TARGET_B_OVER_A_SIZE)
    if not row:
        print("  %s: not measured (add %d to --sizes)" % (label, TARGET_B_OVER_A_SIZE))
    elif "skipped" in row["b"]:
        print("  %s: (b) %s" % (label, row["b"]["skipped"]))
    else:
        b, a = row["b"], row["a_playbook"]
        for what, key in (("module task vs (b)'s tasks", "task"), ("whole ansible-playbook", "playbook")):
            first = b["first"][key] / a["first"][key]
            noop = b["noop"][key] / a["noop"][key]
            print("  %s, %s: first run %.0fx %s, no-op %.0fx %s" % (
                label, what, first, verdict(first >= TARGET_B_OVER_A), noop, verdict(noop >= TARGET_B_OVER_A)))
    row = by_size.get(TARGET_NOOP_SIZE)
    label = "(a) no-op re-run at %d rules within %.2f s" % (TARGET_NOOP_SIZE, TARGET_NOOP_SECONDS)
    if not row:
        print("  %s: not measured (add %d to --sizes)" % (label, TARGET_NOOP_SIZE))
    else:
        module = row["a_module"]["noop"]
        task = row["a_playbook"]["noop"]["task"]
        play = row["a_playbook"]["noop"]["playbook"]
        print("  %s: module process %.2f s %s (module task in the playbook %.2f s %s; whole ansible-playbook %.2f s)"
              % (label, module, verdict(module <= TARGET_NOOP_SECONDS), task, verdict(task <= TARGET_NOOP_SECONDS), play))
    row = by_size.get(TARGET_A_OVER_C_SIZE)
    label = "(a) module process at most %.1fx its own tool calls (c+) at %d rules" % (TARGET_A_OVER_C, TARGET_A_OVER_C_SIZE)
    if not row:
        print("  %s: not measured (add %d to --sizes)" % (label, TARGET_A_OVER_C_SIZE))
    else:
        first = row["a_module"]["first"] / row["c+"]["first"]
        noop = row["a_module"]["noop"] / row["c+"]["noop"]
        print("  %s: first run %.2fx %s, no-op %.2fx %s" % (
            label, first, verdict(first <= TARGET_A_OVER_C), noop, verdict(noop <= TARGET_A_OVER_C)))
    print("  (a) at most %.1fx (c), module process against a bare restore of both families:" % TARGET_A_OVER_C)
    for row in rows:
        parts = []
        for run, name in (("first", "first run"), ("noop", "no-op")):
            value = row["a_module"][run] / row["c"][run]
            fair = row["a_module"][run] / row["c+"][run]
            parts.append("%s %.2fx %s (vs c+: %.2fx %s)"
                         % (name, value, verdict(value <= TARGET_A_OVER_C), fair, verdict(fair <= TARGET_A_OVER_C)))
        print("    %6d rules: %s" % (row["size"], "; ".join(parts)))


def print_notes(rows: List[Dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print("Rules: IPv4 = the N host rules (INPUT), IPv6 = none (the sources are IPv4 /32s); baseline off; both families'")
    print("chain policies INPUT DROP, FORWARD DROP, OUTPUT ACCEPT. (b): N + 6 loop items (rules, then the 6 policies).")
    print("(c)/(c+) and the module process: median of %d fresh namespace(s); playbooks: one run each." % args.repeat)
    for row in rows:
        play = row["a_playbook"]
        extra = ["compile %.2f s (not in any number above)" % row["compile_s"],
                 "empty date bracket %.3f s" % play["first"]["bracket_overhead"]]
        b = row["b"]
        if "skipped" not in b:
            extra.append("(b) %.1f ms per loop item (first run task time / items)"
                         % (1000.0 * b["first"]["task"] / row["b_items"]))
        print("  %6d rules: %s" % (row["size"], "; ".join(extra)))


def parse_sizes(text: str) -> List[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("sizes must be a comma-separated list of rule counts, e.g. 50,200")
    if not sizes or any(size < 1 or size > 250000 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be rule counts from 1 to 250,000")
    return sorted(set(sizes))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
                        help="comma-separated rule counts (default: %s)" % ",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh namespaces for (c), (c+) and the module process; the median is shown (default 3)")
    parser.add_argument("--b-max-minutes", type=float, default=10.0,
                        help="skip (b) where its first + no-op run would take longer (default 10)")
    parser.add_argument("--skip-b", action="store_true", help="do not run (b) at all")
    parser.add_argument("--profile", metavar="DIR",
                        help="also write a cProfile of the module process (first and no-op run) per size to DIR")
    parser.add_argument("--profile-lines", type=int, default=25, help="functions shown per profile (default 25)")
    parser.add_argument("--fleet-host", type=int, default=0, metavar="HOSTS",
                        help="also apply the biggest host of compile.py's fleet of HOSTS hosts, linear and with sets "
                             "(10000: issue 10's case, about 1 minute more; default 0: off)")
    parser.add_argument("--set-threshold", type=int, default=16,
                        help="fleetwall_set_threshold of --fleet-host's sets row (default 16)")
    parser.add_argument("--seed", type=int, default=FLEET_SEED,
                        help="seed of compile.py's fleet for --fleet-host (default %d, compile.py's)" % FLEET_SEED)
    parser.add_argument("--json", metavar="PATH", help="also write the measurements to PATH as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (playbooks, logs)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    import_collection()
    from ansible_collections.fleetwall.iptables.tests.integration.netns import environment_problem

    problem = environment_problem()
    if problem:
        print("cannot run: %s" % problem, file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="fleetwall-apply-bench-"))
    rows: List[Dict[str, Any]] = []
    started = time.perf_counter()
    try:
        version = subprocess.run(["iptables", "--version"], capture_output=True, text=True, check=False).stdout.strip()
        print("fleetwall apply benchmark: Python %s, %d CPU(s), %s, sizes %s, load average %s"
              % (sys.version.split()[0], os.cpu_count() or 0, version, ", ".join(map(str, args.sizes)), load()),
              flush=True)
        b_measured: Dict[int, Dict[str, Any]] = {}
        for size in args.sizes:
            rows.append(measure_size(size, args, workdir, b_measured))
        fleet_rows = measure_fleet_host(args, workdir) if args.fleet_host else []
    except KeyboardInterrupt:
        print("\ninterrupted; namespaces deleted", file=sys.stderr)
        return 130
    finally:
        cleanup()
        if args.keep:
            print("work directory kept: %s" % workdir, file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(rows)
    print_targets(rows)
    print_notes(rows, args)
    if fleet_rows:
        print_fleet_host_table(fleet_rows, args)
    print("\nwhole benchmark: %.0f s; load average at the end %s (other work on the machine skews every number)"
          % (time.perf_counter() - started, load()))
    for row in rows:
        for path in row.get("profiles", ()):
            print_profile(Path(path), args.profile_lines)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"python": sys.version.split()[0], "cpus": os.cpu_count(), "rows": rows,
                       "fleet_host": fleet_rows}, handle, indent=2)
    wrong = [row["size"] for row in rows for key in ("c", "c+", "a_module", "a_playbook", "b")
             if not row.get(key, {}).get("state_ok", True)]
    wrong += ["the fleet host (threshold %d)" % row["threshold"] for row in fleet_rows
              if not all(row[key]["state_ok"] for key in ("c", "c+", "a_module"))]
    if wrong:
        print("\nERROR: a method did not end with the expected rules or changed status at %s rules (state column)"
              % ", ".join(sorted(set(map(str, wrong)))), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: a fleet converge and a no-op run, as a user feels them, on N booted containers.

Four plays over the same N fresh containers of the molecule image
(localhost/fleetwall-debian12: Debian 12, systemd as PID 1, the
iptables-persistent and ipset-persistent packages in its apt cache), forks
N, pipelining on, the containers.podman connection:

(a) ``persist``: gather_facts + the fleetwall_firewall role (apply, confirm,
    persistence: package, service, boot files).
(b) ``no-persist``: the same with ``fleetwall_firewall_persist: false``.
(c) ``facts``: gather_facts + one debug task (the floor of any play).
(d) ``hand-written``: what users template today: debconf preseed and
    install iptables-persistent, a Jinja2 rules.v4 and rules.v6 (the same
    policy by hand), a handler running iptables-restore and
    ip6tables-restore, netfilter-persistent enabled.

Each play runs twice on fresh containers (first converge, then the no-op run
on the same containers); the containers are destroyed after each pair. The
plays are interleaved (a, b, c, d, then the next repetition rotated by one),
and the table shows medians and ratios to (c). Wall clock of the whole
``ansible-playbook`` process. No timing asserts: it prints the table.

Run it as root, after ``scripts/molecule.sh`` has set up podman, the image
and the collections (this script asks it for its environment with
``--env``), and hold the shared lock:

    flock /tmp/fleetwall-heavy.lock .venv/bin/python benchmarks/converge.py --hosts 6 --repetitions 3

Containers are named ``fwpersist-bench-*`` and run with ``--network none``
(their own network namespace, loopback only: nothing on this machine's
network or firewall changes); their addresses come from the inventory.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
IMAGE = "localhost/fleetwall-debian12:latest"
PREFIX = "fwpersist-bench-"
PLAYS = ("persist", "no-persist", "facts", "hand-written")

POLICY = {
    "all": {"inbound": [{"service": "ping"}, {"service": "ssh", "from": "10.0.0.0/8"}]},
    "web": {"inbound": [{"service": "http", "from": "any"}]},
    "db": {"inbound": [{"service": "postgres", "from": "group:web"}]},
}

FIREWALL_PLAY = """\
- name: Firewall the fleet
  hosts: all
  gather_facts: true
  roles:
    - role: fleetwall.iptables.fleetwall_firewall
"""

FACTS_PLAY = """\
- name: Facts only
  hosts: all
  gather_facts: true
  tasks:
    - name: Say something
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }}"
"""

HAND_WRITTEN_PLAY = """\
- name: Firewall the fleet, by hand
  hosts: all
  gather_facts: true
  tasks:
    - name: Preseed iptables-persistent (IPv4)
      ansible.builtin.debconf: {name: iptables-persistent, question: iptables-persistent/autosave_v4, vtype: boolean, value: "false"}
    - name: Preseed iptables-persistent (IPv6)
      ansible.builtin.debconf: {name: iptables-persistent, question: iptables-persistent/autosave_v6, vtype: boolean, value: "false"}
    - name: Install iptables-persistent
      ansible.builtin.apt: {name: iptables-persistent, state: present}
      environment: {DEBIAN_FRONTEND: noninteractive}
    - name: Write the rules files
      ansible.builtin.template: {src: "{{ item }}.j2", dest: "/etc/iptables/{{ item }}", mode: "0640"}
      loop: [rules.v4, rules.v6]
      notify: Load the rules
    - name: Enable netfilter-persistent
      ansible.builtin.service: {name: netfilter-persistent, enabled: true}
  handlers:
    - name: Load the rules
      ansible.builtin.shell: iptables-restore /etc/iptables/rules.v4 && ip6tables-restore /etc/iptables/rules.v6
"""

TEMPLATE = """\
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
{% if family == 4 %}
-A INPUT -p icmp -j ACCEPT
-A INPUT -s 10.0.0.0/8 -p tcp --dport 22 -j ACCEPT
{% else %}
-A INPUT -p ipv6-icmp -j ACCEPT
{% endif %}
{% if 'web' in group_names %}
-A INPUT -p tcp --dport 80 -j ACCEPT
{% endif %}
{% if 'db' in group_names %}
{% for host in groups['web'] %}
-A INPUT -s {{ hostvars[host].fleetwall_host_addresses[1 if family == 6 else 0] }} -p tcp --dport 5432 -j ACCEPT
{% endfor %}
{% endif %}
COMMIT
"""


def molecule_environment() -> Dict[str, str]:
    """scripts/molecule.sh --env: podman's configuration and the collections, set up if needed."""
    exports = subprocess.run([str(REPO / "scripts/molecule.sh"), "--env"], capture_output=True, text=True, check=True)
    environment = dict(os.environ)
    for line in exports.stdout.splitlines():
        if line.startswith("export "):
            name, value = (line[len("export "):].split("=", 1) + [""])[:2]
            environment[name] = shlex.split(value)[0] if value else ""
    return environment


def write_work(work: Path, hosts: int) -> None:
    inventory: Dict[str, Dict] = {"all": {"vars": {
        "ansible_connection": "containers.podman.podman", "ansible_python_interpreter": "/usr/bin/python3",
        "fleetwall_policy": POLICY, "fleetwall_firewall_rollback_timeout": 60}, "children": {}}}
    for index in range(hosts):
        group = ("web", "db", "other")[index % 3]
        inventory["all"]["children"].setdefault(group, {"hosts": {}})["hosts"][PREFIX + "h%d" % index] = {
            "fleetwall_host_addresses": ["10.77.0.%d" % (index + 10), "fd77::%d" % (index + 10)]}
    (work / "inventory.json").write_text(json.dumps(inventory))
    (work / "persist.yml").write_text(FIREWALL_PLAY)
    (work / "no-persist.yml").write_text(FIREWALL_PLAY)
    (work / "facts.yml").write_text(FACTS_PLAY)
    (work / "hand-written.yml").write_text(HAND_WRITTEN_PLAY)
    for family, name in ((4, "rules.v4"), (6, "rules.v6")):
        (work / (name + ".j2")).write_text("{% set family = " + str(family) + " %}\n" + TEMPLATE)


def podman(environment: Dict[str, str], *argv: str) -> str:
    return subprocess.run(["podman", *argv], capture_output=True, text=True, check=True, env=environment).stdout


def start_containers(environment: Dict[str, str], hosts: int) -> None:
    for index in range(hosts):
        podman(environment, "run", "-d", "--name", PREFIX + "h%d" % index, "--hostname", "h%d" % index,
               "--network", "none", "--cap-add", "NET_ADMIN,NET_RAW", "--systemd", "always", IMAGE, "/sbin/init")
    for index in range(hosts):
        podman(environment, "exec", PREFIX + "h%d" % index, "timeout", "120", "systemctl", "is-system-running", "--wait")


def remove_containers(environment: Dict[str, str]) -> None:
    names = podman(environment, "ps", "-a", "--filter", "name=^" + PREFIX, "--format", "{{.Names}}").split()
    if names:
        podman(environment, "rm", "-f", "-t", "5", *names)


def play(environment: Dict[str, str], work: Path, name: str, hosts: int) -> float:
    argv = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(work / "inventory.json"), "-f", str(hosts),
            str(work / (name + ".yml"))]
    if name == "no-persist":
        argv += ["-e", "fleetwall_firewall_persist=false"]
    started = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True, env=dict(environment, ANSIBLE_PIPELINING="true"),
                               cwd=work, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (name, completed.stdout[-4000:] + completed.stderr[-2000:]))
    return elapsed


def measure(environment: Dict[str, str], work: Path, hosts: int, repetitions: int) -> Dict[str, Dict[str, List[float]]]:
    times: Dict[str, Dict[str, List[float]]] = {name: {"first": [], "noop": []} for name in PLAYS}
    for repetition in range(repetitions):
        order = PLAYS[repetition % len(PLAYS):] + PLAYS[:repetition % len(PLAYS)]
        for name in order:
            remove_containers(environment)
            start_containers(environment, hosts)
            try:
                times[name]["first"].append(play(environment, work, name, hosts))
                times[name]["noop"].append(play(environment, work, name, hosts))
            finally:
                remove_containers(environment)
            print("  repetition %d %-12s first %6.1f s  no-op %6.1f s" % (
                repetition + 1, name, times[name]["first"][-1], times[name]["noop"][-1]), file=sys.stderr)
    return times


def table(times: Dict[str, Dict[str, List[float]]], hosts: int, repetitions: int) -> str:
    facts = {run: statistics.median(times["facts"][run]) for run in ("first", "noop")}
    lines = ["%d containers, forks %d, pipelining on, %d repetitions, medians (ratio to facts-only)" % (
        hosts, hosts, repetitions), "", "| play | first converge | no-op run |", "|---|---|---|"]
    labels = {"persist": "(a) fleetwall_firewall + persistence", "no-persist": "(b) fleetwall_firewall, persist: false",
              "facts": "(c) facts-only (gather_facts + debug)",
              "hand-written": "(d) hand-written (template + handler + iptables-persistent)"}
    for name in PLAYS:
        cells = ["%.1f s (%.1fx)" % (statistics.median(times[name][run]), statistics.median(times[name][run]) / facts[run])
                 for run in ("first", "noop")]
        lines.append("| %s | %s | %s |" % (labels[name], cells[0], cells[1]))
    persist_first = statistics.median(times["persist"]["first"])
    hand_first = statistics.median(times["hand-written"]["first"])
    lines += ["", "targets: no-op (a) <= 1.5x (c): %.2fx; first converge (a) < (d): %.1f s vs %.1f s" % (
        statistics.median(times["persist"]["noop"]) / facts["noop"], persist_first, hand_first)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write every time as JSON")
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("must run as root (rootful podman)")
    environment = molecule_environment()
    with tempfile.TemporaryDirectory(prefix="fwpersist-bench.") as directory:
        work = Path(directory)
        write_work(work, arguments.hosts)
        try:
            times = measure(environment, work, arguments.hosts, arguments.repetitions)
        finally:
            remove_containers(environment)
    print(table(times, arguments.hosts, arguments.repetitions))
    if arguments.json:
        arguments.json.write_text(json.dumps(times, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

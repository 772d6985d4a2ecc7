# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: compile and render a whole fleet's rulesets.

What is measured, per inventory size (100, 1,000 and 10,000 hosts by default):

* compile: one ``FleetCompiler(hostvars, groups)`` built, then
  ``compile_host()`` for every host, as a ``run_once`` fleet compile (the
  ``compile_fleet`` filter) does. Includes parsing the fleet policy, looking up
  every host's addresses and expanding each group rule once.
* render: ``render_family()`` of both families of every compiled host.
* rules per host: the rules in a host's IPv4 plus IPv6 ruleset, baseline
  rules included (mean and max over the fleet).
* memory: the tracemalloc peak of a second, traced compile+render pass (the
  timed pass runs untraced: tracemalloc slows Python down several times), and
  ru_maxrss of the process. Each size runs in a fresh child process, so
  ru_maxrss belongs to that size alone; it is read after the timed pass and
  before the traced one.
* Jinja2, for context: what a user would otherwise write, an iptables.j2
  template looping over a precomputed per-host list of (address, proto, port)
  rules. Only ``Template.render()`` is timed, with the list and the compiled
  template made beforehand, so this is a lower bound for the template route
  (Ansible's own templating and the template task add to it).

The synthetic inventory is seeded (``--seed``), so every run builds the same
fleet: 20 groups with their own IPv4 /16 and IPv6 /48, hosts numbered into
their primary group's subnets with random gaps and placed in 1-3 groups (the
extra groups go rack by rack, not host by host), 50 custom services, nested
address sets with exceptions in both families, and 3-6 inbound plus 1-2
outbound rules per group, a third of them from or to ``group:OTHER``.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/compile.py                 # 100, 1,000 and 10,000 hosts
    .venv/bin/python benchmarks/compile.py --sizes 100     # smoke run, a few seconds

The script reports and never fails on a missed target: it exits 0 unless
the compiler raises.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SIZES = (100, 1000, 10000)
DEFAULT_SEED = 20240611

# The targets.
TARGET_MS_PER_HOST = 2.0  # at 1,000 hosts; shown for compile and for compile+render
TARGET_MS_PER_HOST_SIZE = 1000
TARGET_TOTAL_SECONDS = 30.0  # compile + render, at 10,000 hosts
TARGET_TOTAL_SIZE = 10000
TARGET_SET_RULES = 300  # rules on the largest host at 10,000 hosts, with sets (issue 10)
TARGET_SET_SECONDS = 10.0  # compile + render at 10,000 hosts, with sets

GROUP_NAMES = (
    "web", "api", "worker", "db", "cache", "queue", "search", "storage", "backup", "monitoring",
    "logging", "bastion", "lb", "mail", "dns", "ldap", "vpn", "ci", "k8s_master", "k8s_node",
)
# Relative share of hosts whose primary group this is: a few large tiers, many small ones.
GROUP_WEIGHTS = {
    "web": 12, "api": 10, "worker": 12, "db": 5, "cache": 4, "queue": 3, "search": 4, "storage": 5,
    "backup": 2, "monitoring": 2, "logging": 3, "bastion": 0.4, "lb": 2, "mail": 1, "dns": 0.6,
    "ldap": 0.6, "vpn": 0.5, "ci": 4, "k8s_master": 0.8, "k8s_node": 14,
}
BUILTIN_SERVICE_NAMES = ("ssh", "http", "https", "postgres", "redis", "node-exporter", "syslog", "dns", "ntp", "ping")


def import_collection():
    """Make ansible_collections.fleetwall.iptables importable, as tests/conftest.py does."""
    shim = os.path.join(ROOT, ".build", "pytest", "ansible_collections", "fleetwall")
    link = os.path.join(shim, "iptables")
    if not os.path.islink(link):
        os.makedirs(shim, exist_ok=True)
        os.symlink(ROOT, link)
    sys.path.insert(0, os.path.join(ROOT, ".build", "pytest"))


# ---------------------------------------------------------------- the synthetic fleet


def make_services(rng: random.Random) -> Dict[str, Any]:
    """50 custom services in every syntax policy.py accepts: shorthand, ranges, lists, mappings."""
    services: Dict[str, Any] = {}
    used: Set[int] = set()

    def free_port(low: int = 2000, high: int = 60000) -> int:
        while True:
            port = rng.randrange(low, high)
            if port not in used:
                used.add(port)
                return port

    for index in range(50):
        name = "app-%02d" % index
        kind = index % 10
        port = free_port()
        if kind in (0, 1, 2):
            services[name] = "tcp/%d" % port  # single TCP port
        elif kind == 3:
            services[name] = "udp/%d" % port  # single UDP port
        elif kind == 4:
            services[name] = "tcp/%d-%d" % (port, port + rng.randrange(2, 50))  # range
        elif kind == 5:
            services[name] = [{"proto": "udp", "port": "%d:%d" % (port, port + rng.randrange(5, 200))}]
        elif kind == 6:
            # A list of ports, some adjacent (they merge into a range).
            services[name] = [{"proto": "tcp", "port": [port, port + 1, free_port(), free_port()]}]
        elif kind == 7:
            services[name] = ["tcp/%d" % port, "udp/%d" % port]  # both protocols
        elif kind == 8:
            # Shorthand with a port list, plus a mapping with a list mixing a port and a range.
            services[name] = [
                "tcp/%d,%d" % (port, free_port()),
                {"proto": "udp", "port": [free_port(), "%d-%d" % (port, port + 3)]},
            ]
        else:
            # Many ports: more than multiport's 15 slots, so it splits.
            services[name] = [{"proto": "tcp", "port": sorted({free_port(30000, 31000) for _port in range(rng.randrange(10, 20))})}]
    return services


def make_addresses() -> Dict[str, Any]:
    """Fleet-wide address sets: nested sets, exceptions, both families, a group reference."""
    partners_v4 = ["198.18.%d.0/24" % third for third in range(0, 64, 3)]
    partners_v6 = ["2001:db8:%x::/48" % block for block in range(0x200, 0x220, 2)]
    return {
        "office_hq": ["203.0.113.0/25", "2001:db8:100::/48"],
        "office_branch": ["203.0.113.128/26", "192.0.2.0/24", "2001:db8:101::/48"],
        "offices": ["office_hq", "office_branch"],
        "vpn_clients": ["10.200.0.0/16", "!10.200.13.0/24", "fd00:200::/48", "!fd00:200:0:13::/64"],
        "admins": ["offices", "vpn_clients", "!192.0.2.128/25", "!2001:db8:101:ff::/64"],
        "partners": partners_v4 + partners_v6 + ["!198.18.9.0/25"],
        "internal": ["10.0.0.0/8", "fd00::/8", "!vpn_clients"],
        "monitoring_sources": ["group:monitoring", "198.51.100.0/28", "2001:db8:300::/64"],
        "backup_targets": ["group:backup", "group:storage"],
        "blocklist": ["100.64.0.0/10", "!100.64.1.0/24", "2001:db8:dead::/48"],
        "public_dns": ["9.9.9.9", "149.112.112.112", "2620:fe::fe", "2620:fe::9"],
        "ntp_servers": ["192.0.2.123", "2001:db8:123::1"],
    }


def make_rule(rng: random.Random, direction: str, group: str, counter: int, services: Sequence[str]) -> Dict[str, Any]:
    """One group rule; every third (by counter) names another group as its peer."""
    peer_key = "from" if direction == "inbound" else "to"
    rule: Dict[str, Any] = {}
    if rng.random() < 0.15:
        # An inline protocol and port(s) instead of a service.
        rule["proto"] = rng.choice(("tcp", "udp"))
        port = rng.randrange(1024, 65000)
        rule["port"] = rng.choice((port, [port, port + 7, port + 8], "%d-%d" % (port, port + 10)))
    else:
        picked = rng.sample(services, rng.choice((1, 1, 1, 2, 3)))
        rule["service"] = picked[0] if len(picked) == 1 else picked
    if counter % 3 == 0:
        others = [name for name in GROUP_NAMES if name != group]
        peers = ["group:" + name for name in rng.sample(others, rng.choice((1, 1, 2)))]
        rule[peer_key] = peers[0] if len(peers) == 1 else peers
    else:
        choice = rng.random()
        if choice < 0.45:
            rule[peer_key] = rng.choice(("internal", "admins", "offices", "partners", "monitoring_sources", "vpn_clients"))
        elif choice < 0.55:
            second = rng.randrange(10, 30)  # one group's /16 but its upper half
            rule[peer_key] = ["10.%d.0.0/16" % second, "!10.%d.128.0/17" % second]
        elif choice < 0.65:
            rule[peer_key] = rng.choice(("172.16.0.0/12", "fd00:%x::/32" % rng.randrange(1, 200)))
        # else: any address
    if rng.random() < 0.25:
        rule["comment"] = "%s %s %d" % (group, direction, counter)
    if rng.random() < 0.05:
        rule["log"] = True
    return rule


def make_policy(rng: random.Random, services: Dict[str, Any]) -> Dict[str, Any]:
    """fleetwall_policy: 3-6 inbound and 1-2 outbound rules per group, plus a few for 'all'."""
    names = sorted(services) + list(BUILTIN_SERVICE_NAMES)
    policy: Dict[str, Any] = {
        "all": {
            "inbound": [
                {"from": "blocklist", "action": "drop", "priority": 100, "log": "fw blocklist "},
                {"service": "ssh", "from": ["admins", "group:bastion"], "comment": "admin access"},
                {"service": "node-exporter", "from": "monitoring_sources"},
                {"service": "ping"},
            ],
            "outbound": [
                {"service": "dns", "to": "public_dns"},
                {"service": "ntp", "to": "ntp_servers"},
            ],
        }
    }
    counter = 0
    for group in GROUP_NAMES:
        rules: Dict[str, List[Dict[str, Any]]] = {"inbound": [], "outbound": []}
        for direction, count in (("inbound", rng.randint(3, 6)), ("outbound", rng.randint(1, 2))):
            for _rule in range(count):
                rules[direction].append(make_rule(rng, direction, group, counter, names))
                counter += 1
        policy[group] = rules
    return policy


def pick_extra_groups(rng: random.Random, primary: str, count: int) -> List[str]:
    """Extra groups for a rack, weighted like primary groups: large tiers are joined more often."""
    extras: List[str] = []
    while len(extras) < count:
        name = rng.choices(GROUP_NAMES, weights=[GROUP_WEIGHTS[name] for name in GROUP_NAMES])[0]
        if name != primary and name not in extras:
            extras.append(name)
    return extras


def make_hosts(rng: random.Random, size: int) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    """Hosts with addresses from their primary group's subnets (random gaps) and 1-3 groups.

    A host's extra groups are picked per rack of 8-48 consecutive hosts (as
    "the web servers in rack 3 also run the cache") and taken by each host
    of the rack with probability 0.95, so extra memberships neither scatter
    fully nor merge into one neat CIDR.
    """
    weights = [GROUP_WEIGHTS[name] for name in GROUP_NAMES]
    primaries = rng.choices(GROUP_NAMES, weights=weights, k=size)
    primaries.sort(key=GROUP_NAMES.index)
    host_vars: Dict[str, Dict[str, Any]] = {}
    groups: Dict[str, List[str]] = {name: [] for name in GROUP_NAMES}
    offset: Dict[str, int] = {}
    rack_left = 0
    rack_extras: List[str] = []
    previous_primary = None
    for index, primary in enumerate(primaries):
        group_index = GROUP_NAMES.index(primary)
        if primary != previous_primary or rack_left == 0:
            previous_primary = primary
            rack_left = rng.randint(8, 48)
            rack_extras = pick_extra_groups(rng, primary, rng.choice((0, 0, 1, 2)))
        rack_left -= 1
        # Mostly consecutive addresses, with a gap now and then (decommissioned hosts, reservations).
        step = 1 if rng.random() < 0.9 else rng.randint(2, 8)
        position = offset.get(primary, 9) + step
        offset[primary] = position
        ipv4 = ipaddress.IPv4Address("10.%d.0.0" % (10 + group_index)) + position
        ipv6 = ipaddress.IPv6Address("fd00:0:%x::" % (0x100 + group_index)) + position
        name = "%s-%05d" % (primary.replace("_", "-"), index)
        host_vars[name] = {
            "inventory_hostname": name,
            "ansible_host": str(ipv4),
            "ansible_default_ipv6": {"address": str(ipv6)},
            "ansible_user": "deploy",
        }
        groups[primary].append(name)
        for extra in rack_extras:
            if rng.random() < 0.95:
                groups[extra].append(name)
    groups["all"] = sorted(host_vars)
    groups["ungrouped"] = []
    return host_vars, groups


def make_inventory(size: int, seed: int, set_threshold: int = 0) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    """(hostvars, groups) as Ansible passes them: the fleet variables (group_vars/all) on every host,
    and fleetwall_set_threshold when sets are measured."""
    rng = random.Random(seed)
    services = make_services(rng)
    fleet_vars = {
        "fleetwall_services": services,
        "fleetwall_addresses": make_addresses(),
        "fleetwall_policy": make_policy(rng, services),
    }
    host_vars, groups = make_hosts(random.Random(seed + size), size)
    for variables in host_vars.values():
        variables.update(fleet_vars)
        if set_threshold:
            variables["fleetwall_set_threshold"] = set_threshold
    return host_vars, groups


# ---------------------------------------------------------------- measurements


def compile_fleet(hostvars, groups) -> Tuple[Any, Dict[str, Any]]:
    """One FleetCompiler for the whole inventory, every host compiled: (compiler, rulesets)."""
    from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler

    compiler = FleetCompiler(hostvars, groups)
    return compiler, compiler.compile_hosts(groups["all"])


def render_fleet(rulesets: Dict[str, Any]) -> int:
    """Render both families of every host; returns the bytes of text made.

    As the compile_fleet filter does: one RenderCache for the fleet, so a
    group rule shared by many hosts is rendered once. Each host's text is
    dropped once it is measured; keeping 10,000 hosts' texts would mostly
    measure the size of the text.
    """
    from ansible_collections.fleetwall.iptables.plugins.module_utils.render import RenderCache
    from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict

    cache = RenderCache()
    total = 0
    for ruleset in rulesets.values():
        data = ruleset_to_dict(ruleset, cache)
        total += len(data["ipv4"]) + len(data["ipv6"]) + len(data.get("ipsets", ""))
    return total


def rule_count(ruleset) -> int:
    return sum(len(chain.rules) for family in (ruleset.ipv4, ruleset.ipv6) for table in family.tables for chain in table.chains)


IPTABLES_J2 = """\
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -m conntrack --ctstate INVALID -j DROP
{% for source, proto, port in inbound %}
-A INPUT{% if source %} -s {{ source }}{% endif %}{% if proto %} -p {{ proto }}{% endif %}\
{% if port %} -m multiport --dports {{ port }}{% endif %} -j ACCEPT
{% endfor %}
{% for destination, proto, port in outbound %}
-A OUTPUT{% if destination %} -d {{ destination }}{% endif %}{% if proto %} -p {{ proto }}{% endif %}\
{% if port %} -m multiport --dports {{ port }}{% endif %} -j ACCEPT
{% endfor %}
COMMIT
"""


def jinja_rule_lists(ruleset) -> List[Dict[str, List[Tuple[str, str, str]]]]:
    """Per family, the (address, proto, port) lists a user would feed an iptables.j2."""
    families = []
    for family in (ruleset.ipv4, ruleset.ipv6):
        lists: Dict[str, List[Tuple[str, str, str]]] = {"inbound": [], "outbound": []}
        for table in family.tables:
            for chain in table.chains:
                key = {"INPUT": "inbound", "OUTPUT": "outbound"}.get(chain.name)
                for rule in chain.rules:
                    if key is None or (rule.comment or "").startswith("fleetwall baseline"):
                        continue
                    address = rule.source if key == "inbound" else rule.destination
                    lists[key].append((address or "", rule.protocol or "", ",".join(rule.destination_ports)))
        families.append(lists)
    return families


def compare_with_jinja(compiler: Any, rulesets: Dict[str, Any], sample: int) -> Dict[str, float]:
    """Jinja2 and fleetwall side by side on the same evenly spread sample of hosts.

    Jinja2: ``Template.render()`` of both families of each host, from the
    lists made beforehand (untimed). fleetwall: ``compile_host()`` with the
    warm compiler (policy parsed and group rules expanded already, as for
    every host but the first of a fleet run) and ``render_family()`` twice.
    """
    import jinja2

    from ansible_collections.fleetwall.iptables.plugins.module_utils.render import RenderCache, render_family

    cache = RenderCache()
    hosts = list(rulesets)
    hosts = hosts[:: max(1, len(hosts) // sample)][:sample]
    template = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, autoescape=False).from_string(IPTABLES_J2)
    inputs = [jinja_rule_lists(rulesets[host]) for host in hosts]
    start = time.perf_counter()
    for families in inputs:
        for lists in families:
            template.render(**lists)
    jinja_seconds = time.perf_counter() - start

    compile_seconds = render_seconds = 0.0
    for host in hosts:
        start = time.perf_counter()
        ruleset = compiler.compile_host(host)
        compiled = time.perf_counter()
        render_family(ruleset.ipv4, cache)
        render_family(ruleset.ipv6, cache)
        compile_seconds += compiled - start
        render_seconds += time.perf_counter() - compiled
    return {
        "jinja_sample_hosts": len(hosts),
        "jinja_sample_rules_mean": statistics.mean(rule_count(rulesets[host]) for host in hosts),
        "jinja_ms_per_host": 1000.0 * jinja_seconds / len(hosts),
        "sample_compile_ms_per_host": 1000.0 * compile_seconds / len(hosts),
        "sample_render_ms_per_host": 1000.0 * render_seconds / len(hosts),
    }


def measure(size: int, seed: int, jinja_sample: int, trace_memory: bool, set_threshold: int = 0) -> Dict[str, Any]:
    """Every number of one size's table row (run in a child process)."""
    hostvars, groups = make_inventory(size, seed, set_threshold)
    # Import outside the timed sections: a play has loaded the plugins already.
    import ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler  # noqa: F401
    import ansible_collections.fleetwall.iptables.plugins.module_utils.render  # noqa: F401
    gc.collect()

    start = time.perf_counter()
    compiler, rulesets = compile_fleet(hostvars, groups)
    compiled = time.perf_counter()
    text_bytes = render_fleet(rulesets)
    done = time.perf_counter()
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    counts = [rule_count(ruleset) for ruleset in rulesets.values()]
    row = {
        "hosts": size,
        "set_threshold": set_threshold,
        "sets_max": max(len(ruleset.ipv4.sets) + len(ruleset.ipv6.sets) for ruleset in rulesets.values()),
        "compile_s": compiled - start,
        "render_s": done - compiled,
        "total_s": done - start,
        "rules_mean": statistics.mean(counts),
        "rules_max": max(counts),
        "text_kib_per_host": text_bytes / 1024.0 / size,
        "maxrss_mib": maxrss_kib / 1024.0,
    }
    if not set_threshold:
        row.update(compare_with_jinja(compiler, rulesets, jinja_sample))
    del compiler, rulesets
    gc.collect()

    row["tracemalloc_peak_mib"] = None
    if trace_memory:
        tracemalloc.start()
        render_fleet(compile_fleet(hostvars, groups)[1])
        row["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2.0 ** 20
        tracemalloc.stop()
    return row


# ---------------------------------------------------------------- adversarial cases (issue 10)


def adversarial_inventory(policy: Dict[str, Any], host_rules: Any = None) -> Tuple[Dict[str, Any], Dict[str, List[str]]]:
    """Two hosts: 'target', in group 'target' with these rules, and 'admin', from which SSH is allowed."""
    fleet_vars = {"fleetwall_policy": policy, "fleetwall_addresses": {}}
    hostvars = {
        "target": dict(fleet_vars, ansible_host="10.0.0.1", ansible_default_ipv6={"address": "fd00::1"}),
        "admin": dict(fleet_vars, ansible_host="10.0.0.2", ansible_default_ipv6={"address": "fd00::2"}),
    }
    if host_rules is not None:
        hostvars["target"]["fleetwall_host_rules"] = host_rules
    return hostvars, {"all": ["admin", "target"], "ungrouped": ["admin"], "target": ["target"]}


def adversarial_cases(blocklist: int, host_rules: int, set_threshold: int = 0) -> List[Tuple[str, Tuple[Dict[str, Any], Dict[str, List[str]]]]]:
    ssh = {"service": "ssh", "from": "host:admin"}
    cases = []
    if blocklist:
        addresses = ["%d.%d.%d.1" % (11 + index // 65536, index // 256 % 256, index % 256) for index in range(blocklist)]
        policy = {"target": {"inbound": [ssh, {"from": addresses, "action": "drop", "priority": 100}]}}
        cases.append(("from: of %s addresses (a blocklist)" % "{:,}".format(blocklist), adversarial_inventory(policy)))
        if set_threshold:
            hostvars, groups = adversarial_inventory(policy)
            hostvars["target"]["fleetwall_set_threshold"] = set_threshold
            cases.append(("the same blocklist as one ipset set", (hostvars, groups)))
    if host_rules:
        rules = [{"proto": "tcp", "port": str(1 + index % 65535), "from": "10.%d.%d.0/24" % (index // 256 % 256, index % 256)}
                 for index in range(host_rules)]
        policy = {"target": {"inbound": [ssh]}}
        cases.append(("%s rules of one host" % "{:,}".format(host_rules), adversarial_inventory(policy, {"inbound": rules})))
    return cases


def measure_adversarial(blocklist: int, host_rules: int, set_threshold: int = 0) -> None:
    """Compile and render one host with a very large rule or very many rules; print one line each."""
    from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
    from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict

    cases = adversarial_cases(blocklist, host_rules, set_threshold)
    if not cases:
        return
    print()
    print("Adversarial single hosts (issue 10: about linear time; printed only):")
    for label, (hostvars, groups) in cases:
        gc.collect()
        start = time.perf_counter()
        ruleset = FleetCompiler(hostvars, groups).compile_host("target")
        compiled = time.perf_counter()
        text = "".join(ruleset_to_dict(ruleset).get(key, "") for key in ("ipv4", "ipv6", "ipsets"))
        done = time.perf_counter()
        print("  %-40s compile %6.2f s  render %5.2f s  %7d rules  %6.1f MiB of text  %d warning(s)"
              % (label, compiled - start, done - compiled, rule_count(ruleset), len(text) / 2.0 ** 20, len(ruleset.warnings)))


def measure_in_child(size: int, args: argparse.Namespace) -> Dict[str, Any]:
    """One size in a fresh interpreter, so that ru_maxrss and caches belong to this size alone."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", str(size), "--seed", str(args.seed), "--jinja-sample", str(args.jinja_sample),
               "--set-threshold", str(args.set_threshold)]
    if args.no_tracemalloc:
        command.append("--no-tracemalloc")
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


COLUMNS = (
    ("hosts", "hosts", "%d"),
    ("set threshold", "set_threshold", "%d"),
    ("compile s", "compile_s", "%.2f"),
    ("render s", "render_s", "%.2f"),
    ("total s", "total_s", "%.2f"),
    ("compile ms/host", "compile_ms_per_host", "%.3f"),
    ("total ms/host", "total_ms_per_host", "%.3f"),
    ("rules/host mean", "rules_mean", "%.0f"),
    ("rules/host max", "rules_max", "%d"),
    ("sets/host max", "sets_max", "%d"),
    ("tracemalloc peak MiB", "tracemalloc_peak_mib", "%.1f"),
    ("maxrss MiB", "maxrss_mib", "%.1f"),
)


def print_table(rows: List[Dict[str, Any]]) -> None:
    cells = [[label for label, _key, _fmt in COLUMNS]]
    for row in rows:
        row["compile_ms_per_host"] = 1000.0 * row["compile_s"] / row["hosts"]
        row["total_ms_per_host"] = 1000.0 * row["total_s"] / row["hosts"]
        cells.append(["-" if row[key] is None else fmt % row[key] for _label, key, fmt in COLUMNS])
    widths = [max(len(line[column]) for line in cells) for column in range(len(COLUMNS))]
    for number, line in enumerate(cells):
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def print_targets(rows: List[Dict[str, Any]]) -> None:
    by_size = {row["hosts"]: row for row in rows}
    print()
    print("Targets (reported only: a MISS does not fail the run):")
    row = by_size.get(TARGET_MS_PER_HOST_SIZE)
    for label, key in (("compile", "compile_ms_per_host"), ("compile+render", "total_ms_per_host")):
        if row:
            measured = "%.3f ms/host  %s" % (row[key], verdict(row[key] <= TARGET_MS_PER_HOST))
        else:
            measured = "not measured (add %d to --sizes)" % TARGET_MS_PER_HOST_SIZE
        print("  %-15s <= %.1f ms/host at %d hosts: %s" % (label, TARGET_MS_PER_HOST, TARGET_MS_PER_HOST_SIZE, measured))
    row = by_size.get(TARGET_TOTAL_SIZE)
    if row:
        measured = "%.2f s  %s" % (row["total_s"], verdict(row["total_s"] < TARGET_TOTAL_SECONDS))
    else:
        measured = "not measured (add %d to --sizes)" % TARGET_TOTAL_SIZE
    print("  %-15s < %.0f s for %d hosts: %s" % ("compile+render", TARGET_TOTAL_SECONDS, TARGET_TOTAL_SIZE, measured))


def print_set_targets(rows: List[Dict[str, Any]]) -> None:
    """Issue 10's targets with sets: at 10,000 hosts, at most 300 rules on the largest host, under 10 s in all."""
    row = {row["hosts"]: row for row in rows}.get(TARGET_TOTAL_SIZE)
    if not rows:
        return
    if row is None:
        print("  with sets: not measured at %d hosts (add it to --sizes)" % TARGET_TOTAL_SIZE)
        return
    print("  with sets (threshold %d): largest host <= %d rules: %d  %s" % (
        row["set_threshold"], TARGET_SET_RULES, row["rules_max"], verdict(row["rules_max"] <= TARGET_SET_RULES)))
    print("  with sets: compile+render < %.0f s for %d hosts: %.2f s  %s" % (
        TARGET_SET_SECONDS, TARGET_TOTAL_SIZE, row["total_s"], verdict(row["total_s"] < TARGET_SET_SECONDS)))


def print_jinja(rows: List[Dict[str, Any]]) -> None:
    print()
    print("For context, a user's iptables.j2 instead: Jinja2 render() over precomputed per-host (address, proto, port) lists,")
    print("against fleetwall on the same hosts (warm compiler: compile_host + render_family x2):")
    for row in rows:
        jinja = row["jinja_ms_per_host"]
        render = row["sample_render_ms_per_host"]
        both = row["sample_compile_ms_per_host"] + render
        print("  %6d hosts (%d sampled, %.0f rules/host): jinja2 %.3f ms/host; fleetwall render %.3f ms/host (%.1fx), "
              "compile+render %.3f ms/host (%.1fx)"
              % (row["hosts"], row["jinja_sample_hosts"], row["jinja_sample_rules_mean"], jinja, render, render / jinja, both, both / jinja))


def parse_sizes(text: str) -> List[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("sizes must be a comma-separated list of host counts, e.g. 100,1000")
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive host counts")
    return sizes


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("expected a positive whole number, got %r" % text)
    return int(text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
                        help="comma-separated inventory sizes (default: %s)" % ",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed of the synthetic inventory")
    parser.add_argument("--jinja-sample", type=positive_int, default=500, metavar="N",
                        help="hosts (evenly spread) in the Jinja2 comparison (default: 500)")
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="skip the traced pass (the tracemalloc column shows '-'); it takes about 3x the timed pass")
    parser.add_argument("--json", metavar="PATH", help="also write the measurements to PATH as JSON")
    parser.add_argument("--blocklist", type=int, default=100000, metavar="N",
                        help="addresses in the adversarial blocklist case (default: 100000; 0 skips it)")
    parser.add_argument("--host-rules", type=int, default=10000, metavar="N",
                        help="rules in the adversarial one-host case (default: 10000; 0 skips it)")
    parser.add_argument("--set-threshold", type=int, default=16, metavar="N",
                        help="also measure every size with fleetwall_set_threshold N (ipset sets; default: 16; 0: linear rules only)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # one size, in a child process
    args = parser.parse_args(argv)

    import_collection()
    if args.worker:
        print(json.dumps(measure(args.worker, args.seed, args.jinja_sample, not args.no_tracemalloc, args.set_threshold)))
        return 0

    print("fleetwall compile benchmark: Python %s, %d CPU(s), seed %d" % (sys.version.split()[0], os.cpu_count() or 0, args.seed), flush=True)
    rows = []
    thresholds = [0] + ([args.set_threshold] if args.set_threshold else [])
    for size in args.sizes:
        for threshold in thresholds:
            print("  measuring %d hosts, set threshold %d ..." % (size, threshold), file=sys.stderr, flush=True)
            rows.append(measure_in_child(size, argparse.Namespace(**dict(vars(args), set_threshold=threshold))))
    print()
    print_table(rows)
    linear = [row for row in rows if not row["set_threshold"]]
    print_targets(linear)
    print_set_targets([row for row in rows if row["set_threshold"]])
    print_jinja(linear)
    measure_adversarial(args.blocklist, args.host_rules, args.set_threshold)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"seed": args.seed, "python": sys.version.split()[0], "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

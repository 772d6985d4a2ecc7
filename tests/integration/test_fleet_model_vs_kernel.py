"""The reachability model against real kernels: what the policy says a fleet lets through is what gets through.

Three hosts, each a network namespace on one bridge, get the rulesets compiled
from a fleet policy (hand-written ones, then Hypothesis-generated ones);
every host probes every other with the probe module, over IPv4 and IPv6, and
each observation must be one the model predicts (compare_reachability finds
no mismatch). Inconclusive checks are allowed (a UDP probe nobody answers
fits both outcomes) but must stay a minority, so the test cannot pass by
predicting "anything goes".

Rules that name an interface are left out of the generated policies: the
model judges traffic on no particular interface (see reachability_model's
documentation).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import HostRuleset
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.reachability import build_model, compare
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family
from ansible_collections.fleetwall.iptables.tests.integration.lab import drop_unused_sets, load_sets
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace, add_addresses, veth_pair
from ansible_collections.fleetwall.iptables.tests.integration.policies import (
    BUILTIN_SERVICE_NAMES,
    GROUPS,
    host_settings,
    rule_lists,
)
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

REPO = Path(__file__).resolve().parents[2]
PROBE_MODULE = REPO / "plugins" / "modules" / "probe.py"
COLLECTIONS_ROOT = REPO / ".build" / "pytest"
HOSTS = ("h0", "h1", "h2")
ADDRESSES = {host: ["10.77.0.%d" % (10 + index), "fd77::%d" % (10 + index)] for index, host in enumerate(HOSTS)}
PROBE_TIMEOUT = 0.4

HAND_WRITTEN: List[Dict[str, Any]] = [
    {  # the guide's fleet in miniature, with syslog over UDP and ping
        "groups": {"all": list(HOSTS), "ungrouped": [], "web": ["h0", "h1"], "db": ["h2"]},
        "policy": {
            "all": {"inbound": [{"service": "ssh", "from": "host:h0"}, {"service": "ping", "from": "group:db"}]},
            "web": {"inbound": [{"service": ["http", "https"]}]},
            "db": {"inbound": [{"service": "postgres", "from": "group:web"}, {"service": "syslog", "from": "group:all"}]},
        },
    },
    {  # rejects of every kind, and an outbound default drop on one host
        "groups": {"all": list(HOSTS), "ungrouped": [], "web": ["h0"], "db": ["h1", "h2"]},
        "policy": {
            "db": {
                "inbound": [
                    {"service": "postgres", "from": "group:web"},
                    {"proto": "tcp", "port": 5432, "action": "reject", "reject_with": "tcp-reset"},
                    {"service": "ssh", "action": "reject", "reject_with": "admin-prohibited"},
                    {"service": "dns", "action": "reject"},
                ]
            },
            "web": {"outbound": [{"service": "http", "to": "group:db"}]},
        },
        "host_vars": {
            "h0": {"fleetwall_default_policy": {"outbound": "drop"}},
            "h2": {"fleetwall_default_policy": {"inbound": "reject"}},
        },
    },
    {  # a host that forgot to accept replies: nothing it starts can succeed
        "groups": {"all": list(HOSTS), "ungrouped": [], "web": ["h0", "h1", "h2"]},
        "policy": {"web": {"inbound": [{"service": ["http", "ping", "syslog"]}]}},
        "host_vars": {"h1": {"fleetwall_baseline": {"established": False}}},
    },
]


def fleet_inventory(example: Dict[str, Any]):
    host_vars = {host: {"fleetwall_host_addresses": list(ADDRESSES[host])} for host in HOSTS}
    for host, extra in example.get("host_vars", {}).items():
        host_vars[host].update(copy.deepcopy(extra))
    return inventory(
        policy=example["policy"], addresses=example.get("addresses", {}), services=example.get("services"),
        host_vars=host_vars, groups=example["groups"],
    )


def without_interfaces(rule_lists_value: Dict[str, Any]) -> Dict[str, Any]:
    return {
        direction: [{key: value for key, value in rule.items() if not key.endswith("interface")} for rule in rules]
        for direction, rules in rule_lists_value.items()
    }


@st.composite
def probed_fleets(draw) -> Dict[str, Any]:
    """A random policy over three hosts with fixed, routable addresses."""
    groups: Dict[str, List[str]] = {"all": list(HOSTS), "ungrouped": []}
    for group in draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3, unique=True)):
        groups[group] = draw(st.lists(st.sampled_from(HOSTS), min_size=1, max_size=3, unique=True))
    group_names = sorted(groups)
    service_names = set(BUILTIN_SERVICE_NAMES)
    policy = {
        group: without_interfaces(draw(rule_lists(service_names, set(), group_names, HOSTS)))
        for group in draw(st.lists(st.sampled_from(group_names), min_size=1, max_size=3, unique=True))
    }
    host_vars: Dict[str, Any] = {}
    for host in HOSTS:
        settings_value = draw(host_settings(service_names, set(), group_names, HOSTS))
        if "fleetwall_host_rules" in settings_value:
            settings_value["fleetwall_host_rules"] = without_interfaces(settings_value["fleetwall_host_rules"])
        host_vars[host] = settings_value
    return {"groups": groups, "policy": policy, "host_vars": host_vars}


@pytest.fixture(scope="module", name="fleet")
def fixture_fleet(privileged: None) -> Iterator[Dict[str, Namespace]]:
    switch = Namespace.create()
    hosts = {host: Namespace.create() for host in HOSTS}
    try:
        switch.run(["ip", "link", "add", "br0", "type", "bridge"])
        switch.run(["ip", "link", "set", "br0", "up"])
        for index, (host, namespace) in enumerate(hosts.items()):
            leg, eth = veth_pair(switch, "p%d" % index, namespace, "eth0")
            switch.run(["ip", "link", "set", leg.name, "master", "br0"])
            add_addresses(eth, ["%s/24" % ADDRESSES[host][0], "%s/64" % ADDRESSES[host][1]])
            namespace.guard()
        yield hosts
    finally:
        for namespace in list(hosts.values()) + [switch]:
            namespace.delete()


def probe_from(namespace: Namespace, targets: List[Dict[str, Any]], workdir: Path) -> Dict[str, Any]:
    args = workdir / ("probe-%s.json" % namespace.name)
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"targets": targets, "timeout": PROBE_TIMEOUT, "parallel": 128}}))
    command = namespace.exec_argv(["env", "PYTHONPATH=%s" % COLLECTIONS_ROOT, sys.executable, str(PROBE_MODULE), str(args)])
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise AssertionError("probe printed no JSON (exit %d):\n%s\n%s" % (completed.returncode, completed.stdout, completed.stderr))
    assert not result.get("failed"), result
    return result


def install(namespace: Namespace, ruleset: HostRuleset) -> None:
    """The ruleset module's order: new and changed sets, the rules of both families, then the sets no rule uses."""
    cleanup = load_sets(namespace, ruleset)
    namespace.restore(4, render_family(ruleset.ipv4))
    namespace.restore(6, render_family(ruleset.ipv6))
    drop_unused_sets(namespace, cleanup)


def verify(fleet: Dict[str, Namespace], example: Dict[str, Any], workdir: Path) -> Dict[str, Any]:
    hostvars, groups = fleet_inventory(example)
    compiler = FleetCompiler(hostvars, groups)
    for host, namespace in fleet.items():
        install(namespace, compiler.compile_host(host))
    model = build_model(hostvars, groups, hosts_per_group=0)
    with ThreadPoolExecutor(len(fleet)) as pool:
        registered = list(pool.map(lambda host: probe_from(fleet[host], model["probes"].get(host, []), workdir), sorted(fleet)))
    return compare(model, registered)


def assert_matches(verification: Dict[str, Any]) -> None:
    summary = verification["summary"]
    assert verification["mismatches"] == [], "\n".join(verification["mismatches"])
    probed = summary["checks"] - summary["not_probed"]
    assert summary["passed"] + summary["inconclusive"] == probed, summary


@pytest.mark.parametrize("index", range(len(HAND_WRITTEN)))
def test_hand_written_fleets(fleet: Dict[str, Namespace], tmp_path: Path, index: int) -> None:
    verification = verify(fleet, HAND_WRITTEN[index], tmp_path)
    assert_matches(verification)
    summary = verification["summary"]
    assert summary["passed"] >= summary["inconclusive"], summary
    statuses = {(row["source"], row["destination"], row["service"], row["family"]): row for row in verification["rows"]}
    if index == 0:
        assert statuses[("h0", "h2", "postgres", 4)]["observed"] == "closed"  # let in; nothing listens
        assert statuses[("h2", "h0", "ping", 6)]["observed"] == "open"
        assert statuses[("h0", "h1", "ping", 6)]["observed"] == "filtered"
    if index == 1:
        assert statuses[("h2", "h1", "postgres", 4)]["observed"] == "closed"  # reject-with tcp-reset
        assert statuses[("h1", "h2", "ssh", 6)]["observed"] == "rejected"  # admin-prohibited
        assert statuses[("h0", "h1", "postgres", 4)]["observed"] == "filtered"  # h0's own output policy
        assert "output" in statuses[("h0", "h1", "postgres", 4)]["detail"].lower()
    if index == 2:
        assert statuses[("h1", "h0", "http", 4)]["expected"] == "blocked"
        assert statuses[("h0", "h1", "http", 4)]["observed"] == "closed"


# No shrinking: each example costs a second of real probes, and the failing one is printed whole.
@settings(
    settings.get_profile("fleetwall-integration"),
    max_examples=int(os.environ.get("FLEETWALL_FLEET_EXAMPLES", "20")),
    phases=(Phase.explicit, Phase.generate),
)
@given(example=probed_fleets())
def test_generated_fleets(fleet: Dict[str, Namespace], tmp_path_factory: pytest.TempPathFactory, example: Dict[str, Any]) -> None:
    note(json.dumps(example, indent=1, sort_keys=True, default=str))
    try:
        verification = verify(fleet, example, tmp_path_factory.mktemp("fleet"))
    except PolicyError:
        return  # a generated policy the compiler refuses has nothing to verify
    assert_matches(verification)

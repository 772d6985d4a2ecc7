"""Which host pairs the reachability model checks in a large fleet (sources_per_group), and what it says it did."""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Tuple

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.reachability import build_model, compare
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.report import render_report
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.sampling import natural_key, sample_sources
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

GROUPS = {
    "all": ["bastion"] + ["web%d" % n for n in range(1, 11)] + ["db%d" % n for n in range(1, 4)] + ["node1", "node2"],
    "ungrouped": ["node1", "node2"],
    "bastion": ["bastion"],
    "web": ["web%d" % n for n in range(1, 11)],
    "db": ["db%d" % n for n in range(1, 4)],
}


def larger_fleet() -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    """The shared test policy on 16 hosts: web 10, db 3, two in no group, the bastion."""
    host_vars = {}
    for index, host in enumerate(GROUPS["all"]):
        host_vars[host] = {"ansible_host": "10.0.9.%d" % (index + 1), "ansible_default_ipv6": {"address": "fd00::9:%d" % (index + 1)}}
    return inventory(host_vars=host_vars, groups=GROUPS)


def host_pairs(model: Dict[str, Any]) -> set:
    return {(check["source"], check["destination"]) for check in model["checks"] if check["source_kind"] == "host"}


def test_natural_order_puts_web2_before_web10() -> None:
    assert sorted(["web10", "web2", "web1"], key=natural_key) == ["web1", "web2", "web10"]


def test_each_destination_is_probed_from_that_many_hosts_of_each_group() -> None:
    senders = sample_sources(GROUPS, sorted(GROUPS["all"]), 2)
    assert senders is not None
    web_senders = sorted(host for host in senders["db2"] if host.startswith("web"))
    # One bastion, two of web, the two other dbs, both hosts in no group.
    assert len(senders["db2"]) == 1 + 2 + 2 + 2 and len(web_senders) == 2


def test_every_host_probes_about_as_many_destinations_as_its_group_mates() -> None:
    senders = sample_sources(GROUPS, sorted(GROUPS["all"]), 2)
    assert senders is not None
    probes = Counter(source for sources in senders.values() for source in sources if source.startswith("web"))
    assert set(probes) == set(GROUPS["web"]) and max(probes.values()) - min(probes.values()) <= 2


def test_no_sampling_of_sources_checks_every_pair() -> None:
    hostvars, groups = larger_fleet()
    model = build_model(hostvars, groups, hosts_per_group=0)
    assert len(host_pairs(model)) == 16 * 15 and model["sampling"]["description"].endswith("every host pair is checked (240)")


def test_sampled_sources_keep_every_host_as_a_destination_and_say_so() -> None:
    hostvars, groups = larger_fleet()
    model = build_model(hostvars, groups, hosts_per_group=0, sources_per_group=1)
    pairs = host_pairs(model)
    assert {pair[1] for pair in pairs} == set(GROUPS["all"]) and len(pairs) < 16 * 15
    assert model["sampling"]["host_pairs"] == len(pairs) and "%d of 240 host pairs" % len(pairs) in model["sampling"]["description"]


def test_the_same_inventory_samples_the_same_pairs() -> None:
    hostvars, groups = larger_fleet()
    first = build_model(hostvars, groups, hosts_per_group=0, sources_per_group=1)
    again = build_model(dict(reversed(list(hostvars.items()))), groups, hosts_per_group=0, sources_per_group=1)
    assert first["checks"] == again["checks"]


def test_the_report_says_what_was_sampled() -> None:
    hostvars, groups = larger_fleet()
    model = build_model(hostvars, groups, hosts_per_group=0, sources_per_group=1)
    html = render_report(compare(model, []))
    assert 'id="sampling"' in html and model["sampling"]["description"] in html

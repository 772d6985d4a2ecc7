"""The firewall role's fleetwall_firewall_forwarding, on namespace hosts: routing switched on and persisted.

net.ipv4.ip_forward and net.ipv6.conf.all.forwarding are per network
namespace, so the role's sysctl commands (run inside each host's namespace by
the interpreter wrapper of test_roles.Fleet) change only the test hosts; the
sysctl.d file goes under each host's test root, never this machine's /etc.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

import pytest

from ansible_collections.fleetwall.iptables.tests.integration.test_roles import HOSTS, Fleet, changed, failures

FILE = "etc/sysctl.d/90-fleetwall-forwarding.conf"
TEST_ROOT_FILE = {"fleetwall_firewall_forwarding_file": "{{ fleetwall_persistence_root }}/" + FILE}
MASQUERADE = {"fleetwall_host_rules": {"nat": [{"masquerade": {"out_interface": "fwx0", "from": ["10.9.0.0/24", "fd09::/64"]}}]}}
BOTH_ON = "# Written by fleetwall.iptables (fleetwall_firewall_forwarding); changes here are overwritten.\n" \
          "net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n"


@pytest.fixture(name="fleet")
def fixture_fleet(make_namespace, tmp_path: Path) -> Fleet:
    fleet = Fleet(make_namespace, tmp_path)
    for host in HOSTS:
        (fleet.root(host) / "etc/sysctl.d").mkdir(parents=True)
    return fleet


def forwarding(fleet: Fleet, host: str) -> Tuple[str, str]:
    namespace = fleet.namespaces[host]
    return tuple(namespace.run(["sysctl", "-n", key]).stdout.strip()
                 for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"))  # type: ignore[return-value]


def run(fleet: Fleet, *extra: str, **variables) -> Dict[str, Dict[str, int]]:
    return fleet.run("-e", json.dumps(dict(TEST_ROOT_FILE, **variables)), *extra)


def test_forwarding_true_switches_both_families_on_in_every_host(fleet):
    stats = run(fleet, fleetwall_firewall_forwarding=True)
    assert (failures(stats), [forwarding(fleet, host) for host in sorted(HOSTS)]) == ([0, 0], [("1", "1"), ("1", "1")])


def test_forwarding_true_is_persisted_in_the_roles_sysctl_file(fleet):
    run(fleet, fleetwall_firewall_forwarding=True)
    assert (fleet.root("web1") / FILE).read_text() == BOTH_ON


def test_a_second_run_with_forwarding_changes_nothing(fleet):
    run(fleet, fleetwall_firewall_forwarding=True)
    stats = run(fleet, fleetwall_firewall_forwarding=True)
    assert (failures(stats), changed(stats)) == ([0, 0], [0, 0])


def test_check_mode_reports_forwarding_and_changes_nothing(fleet):
    stats = run(fleet, "--check", "--diff", fleetwall_firewall_forwarding=True)
    untouched = (forwarding(fleet, "db1"), (fleet.root("db1") / FILE).exists())
    assert (failures(stats), all(changed(stats)), untouched) == ([0, 0], True, (("0", "0"), False))


def test_forwarding_per_family_sets_only_the_family_it_names(fleet):
    run(fleet, fleetwall_firewall_forwarding={"ipv4": True})
    assert forwarding(fleet, "web1") == ("1", "0")


def test_forwarding_false_leaves_the_hosts_own_setting_alone(fleet):
    fleet.namespaces["web1"].sysctl("net.ipv4.ip_forward", "1")
    stats = run(fleet)
    assert (failures(stats), forwarding(fleet, "web1"), (fleet.root("web1") / FILE).exists()) == ([0, 0], ("1", "0"), False)


def test_a_ruleset_that_routes_on_a_host_that_does_not_fails_before_it_is_applied(fleet):
    stats = run(fleet, **MASQUERADE)
    live = [fleet.filter_table(host, 4) for host in sorted(HOSTS)]
    assert (any(failures(stats)), changed(stats), live) == (True, [0, 0], ["", ""])
    assert "the ipv4 and ipv6 ruleset of db1 forwards or translates" in fleet.output


def test_a_ruleset_that_routes_is_applied_once_forwarding_is_on(fleet):
    stats = run(fleet, fleetwall_firewall_forwarding=True, **MASQUERADE)
    assert (failures(stats), "-j MASQUERADE" in fleet.namespaces["web1"].save(4)) == ([0, 0], True)


def test_a_bad_forwarding_value_is_refused_naming_it(fleet):
    stats = run(fleet, fleetwall_firewall_forwarding={"ipv4": "yes"})
    assert any(failures(stats)) and "fleetwall_firewall_forwarding must be true, false or a mapping" in fleet.output


def test_forwarding_given_as_a_string_on_the_command_line_is_read_as_a_boolean(fleet):
    stats = fleet.run("-e", json.dumps(TEST_ROOT_FILE), "-e", "fleetwall_firewall_forwarding=yes")
    assert (failures(stats), forwarding(fleet, "db1")) == ([0, 0], ("1", "1"))

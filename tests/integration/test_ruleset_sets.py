"""The ruleset module applying ipset sets, against real iptables, ipset and packets in network namespaces.

A policy whose ``group:web`` reference becomes a set (``fleetwall_set_threshold: 1``) is
compiled for the host ``srv`` and applied by the module, run the way Ansible runs it,
inside the server namespace of a two-namespace lab; connections come from the client
namespace's addresses, which are the web hosts' addresses.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import canonical_text, parse_save
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.tests.integration.lab import Lab
from ansible_collections.fleetwall.iptables.tests.integration.netns import wait_until
from ansible_collections.fleetwall.iptables.tests.integration.test_ipsets_kernel import (
    CLIENTS,
    SERVERS,
    HeldConnection,
    connects,
    ipset,
    serve_echo_lab,
)
from ansible_collections.fleetwall.iptables.tests.integration.test_ruleset_module import (
    FAULT_MARKER,
    ModuleRunner,
    filter_table,
    rendered,
)

# web1..web3 and the outsider are CLIENTS' four addresses per family; web2 is the exception.
WEB_HOSTS = {"web1": 0, "web2": 1, "web3": 2}
OUTSIDER = 3
POLICY = {"srv": {"inbound": [
    {"service": "http-alt", "from": ["group:web", "!host:web2"]},
    {"service": "ssh", "from": "group:web"},
]}}
FAIL2BAN_SET = "create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536\nadd f2b-sshd 198.51.100.7\n"


def compiled(web: List[str] = ("web1", "web2", "web3"), policy: Dict[str, Any] = None) -> Dict[str, Any]:
    """srv's compiled ruleset, with every group reference past one address as a set."""
    hosts = {name: {"ansible_host": CLIENTS[4][index], "ansible_default_ipv6": {"address": CLIENTS[6][index]}}
             for name, index in dict(WEB_HOSTS, outsider=OUTSIDER).items()}
    hosts["srv"] = {"ansible_host": SERVERS[4], "ansible_default_ipv6": {"address": SERVERS[6]}}
    groups = {"all": sorted(hosts), "ungrouped": [], "web": list(web), "srv": ["srv"],
              "other": [name for name in ("outsider", "web1", "web2", "web3") if name not in web]}
    hostvars = {}
    for name, variables in hosts.items():
        hostvars[name] = dict(variables, inventory_hostname=name, fleetwall_set_threshold=1,
                              fleetwall_policy=copy.deepcopy(policy or POLICY), fleetwall_addresses={})
    return ruleset_to_dict(FleetCompiler(hostvars, groups).compile_host("srv"))


def live_sets(host: ModuleRunner) -> str:
    return canonical_text(parse_save(ipset(host.namespace, ["save"])).values())


@pytest.fixture
def lab(make_namespace) -> Iterator[Lab]:
    yield from serve_echo_lab(make_namespace)


@pytest.fixture
def host(lab: Lab, tmp_path: Path) -> ModuleRunner:
    return ModuleRunner(lab.server, tmp_path)


def http_alt_set(family: int) -> str:
    """The name of the set behind the http-alt rule (group:web without host:web2)."""
    return next(name for name in parse_save(compiled()["ipsets"]) if name.startswith("fw%d-g:web+" % family))


def test_the_compiled_policy_matches_the_web_group_through_sets_in_both_families():
    ruleset = compiled()
    assert ["--match-set %s src" % http_alt_set(family) in ruleset["ipv%d" % family] for family in (4, 6)] == [True, True]


def test_the_module_applies_the_sets_and_the_rules_that_use_them(host):
    ruleset = compiled()
    result = host.run({"ruleset": ruleset})
    assert (result["changed"], live_sets(host), filter_table(host.namespace, 4), filter_table(host.namespace, 6)) == (
        True, ruleset["ipsets"], rendered(ruleset, 4), rendered(ruleset, 6))


@pytest.mark.parametrize("family", [4, 6])
def test_a_set_backed_policy_admits_exactly_the_groups_hosts_but_not_the_exception(host, lab, family):
    host.run({"ruleset": compiled()})
    admitted = [connects(lab, family, source) for source in CLIENTS[family]]
    assert admitted == [True, False, True, False]  # web1, web2 (the exception), web3, the outsider


def test_a_second_run_changes_nothing(host):
    ruleset = compiled()
    host.run({"ruleset": ruleset})
    before = (ipset(host.namespace, ["save"]), host.namespace.save(4), host.namespace.save(6))
    result = host.run({"ruleset": ruleset})
    after = (ipset(host.namespace, ["save"]), host.namespace.save(4), host.namespace.save(6))
    assert (result["changed"], result["sets"], after[0]) == (False, {}, before[0])


@pytest.mark.parametrize("family", [4, 6])
def test_a_membership_change_is_applied_keeps_an_open_connection_and_then_changes_nothing(host, lab, family):
    host.run({"ruleset": compiled()})
    held = HeldConnection(lab, family, CLIENTS[family][0])
    try:
        grown = compiled(web=["web1", "web2", "web3", "outsider"])
        changed = host.run({"ruleset": grown})
        observed = {
            "changed": changed["changed"],
            "rules changed": changed["rules"],
            "open connection": held.echo(),
            "new member gets in": connects(lab, family, CLIENTS[family][OUTSIDER]),
            "re-run changed": host.run({"ruleset": grown})["changed"],
        }
    finally:
        held.close()
    assert observed == {"changed": True, "rules changed": {"ipv4": {"added": 0, "removed": 0}, "ipv6": {"added": 0, "removed": 0}},
                        "open connection": "echo ok", "new member gets in": True, "re-run changed": False}


def test_check_mode_and_diff_show_members_added_and_removed_and_change_nothing(host):
    host.run({"ruleset": compiled()})
    before = ipset(host.namespace, ["save"])
    result = host.run({"ruleset": compiled(web=["web2", "web3", "outsider"])}, check_mode=True)
    added_line = "add %s %s\n" % (http_alt_set(4), CLIENTS[4][OUTSIDER])
    shown = (added_line in result["diff"][-1]["before"], added_line in result["diff"][-1]["after"])
    assert (result["changed"], result["sets"][http_alt_set(4)], shown, ipset(host.namespace, ["save"])) == (
        True, {"added": [CLIENTS[4][OUTSIDER]], "removed": [CLIENTS[4][0]]}, (False, True), before)


def test_a_set_no_rule_uses_any_more_is_destroyed(host):
    host.run({"ruleset": compiled()})
    without_sets = compiled(policy={"srv": {"inbound": [{"service": "ssh", "from": "host:web1"}]}})
    result = host.run({"ruleset": without_sets})
    assert (result["changed"], "ipsets" in without_sets, live_sets(host)) == (True, False, "")


def test_fail2bans_sets_survive_byte_identical_in_coexist_mode(host):
    ipset(host.namespace, ["restore"], FAIL2BAN_SET)
    before = ipset(host.namespace, ["save", "f2b-sshd"])
    host.run({"ruleset": compiled(), "mode": "coexist"})
    host.run({"ruleset": compiled(web=["web3"]), "mode": "coexist"})
    host.run({"ruleset": compiled(policy={"srv": {"inbound": [{"service": "ssh"}]}}), "mode": "coexist"})
    assert ipset(host.namespace, ["save", "f2b-sshd"]) == before


def test_the_lockout_guard_admits_ssh_from_a_set_member(host):
    result = host.run({"ruleset": compiled(), "ssh_connection": "%s 50000 %s 22" % (CLIENTS[4][0], SERVERS[4])})
    assert (result["changed"], result["lockout_check"]["verdict"]) == (True, "ACCEPT")


def test_the_lockout_guard_refuses_a_set_that_leaves_the_controller_out(host):
    result = host.run({"ruleset": compiled(), "ssh_connection": "%s 50000 %s 22" % (CLIENTS[4][OUTSIDER], SERVERS[4])})
    assert (result["msg"].startswith("refusing to apply"), live_sets(host), filter_table(host.namespace, 4)) == (True, "", "")


def test_module_killed_between_the_set_update_and_the_rules_leaves_the_old_rules_and_sets(host):
    old = compiled()
    host.run({"ruleset": old})
    policy = copy.deepcopy(POLICY)
    policy["srv"]["inbound"].append({"service": "mysql", "comment": FAULT_MARKER})
    new = compiled(web=["web1", "web2", "web3", "outsider"], policy=policy)
    host.inject_ip6tables_restore_fault("hang")
    process = subprocess.Popen(host.command({"ruleset": new}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        # Sets are updated, then IPv4 is restored; kill the module while ip6tables-restore "hangs".
        assert wait_until(lambda: "3306" in filter_table(host.namespace, 4), timeout=30)
        assert live_sets(host) == new["ipsets"]
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    assert wait_until(lambda: filter_table(host.namespace, 4) == rendered(old, 4), timeout=10)
    assert (live_sets(host), filter_table(host.namespace, 6)) == (old["ipsets"], rendered(old, 6))

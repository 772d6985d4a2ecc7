"""The filter plugins as playbooks call them: results on good input, and on bad
input an AnsibleFilterError that carries a clear message and no traceback."""

from __future__ import annotations

import copy
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.filter.compile_ruleset import compile_fleet, compile_ruleset
from ansible_collections.fleetwall.iptables.plugins.filter.render_ruleset import render_ruleset
from ansible_collections.fleetwall.iptables.plugins.filter.simulate_packet import simulate_packet

from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

POSTGRES_FROM_WEB1 = (
    '-A INPUT -s 10.0.1.1/32 -p tcp -m tcp --dport 5432 -m comment --comment "fleetwall_policy.db.inbound[0]: app tier" '
    "-j ACCEPT"
)
BAD_GROUP_PROBLEM = "fleetwall_policy.db.inbound[0].from[0]: unknown group 'wbe' (did you mean 'web'?)"
WEB1_TO_DB1_POSTGRES = {"source": "10.0.1.1", "destination": "10.0.2.1", "protocol": "tcp", "port": 5432}


def db1_ruleset() -> Dict[str, Any]:
    hostvars, groups = inventory()
    return compile_ruleset(hostvars, groups, "db1")


def bad_policy_inventory():
    return inventory(policy={"db": {"inbound": [{"service": "postgres", "from": ["group:wbe"]}]}})


def filter_error(function, *args) -> AnsibleFilterError:
    with pytest.raises(AnsibleFilterError) as exc:
        function(*args)
    return exc.value


def shows_no_chained_traceback(error: BaseException) -> bool:
    """What Python would print under the message: nothing, if there is no cause or context to show."""
    return error.__cause__ is None and (error.__suppress_context__ or error.__context__ is None)


# ---------------------------------------------------------------- good input


def test_compile_ruleset_returns_plain_data_for_both_families():
    assert sorted(db1_ruleset()) == ["host", "ipv4", "ipv6", "warnings"]


def test_compile_fleet_returns_one_ruleset_per_inventory_host():
    hostvars, groups = inventory()
    assert sorted(compile_fleet(hostvars, groups)) == ["bastion", "db1", "web1", "web2"]


def test_compile_fleet_and_compile_ruleset_agree():
    hostvars, groups = inventory()
    assert compile_fleet(hostvars, groups, ["db1"])["db1"] == compile_ruleset(hostvars, groups, "db1")


def test_render_ruleset_gives_iptables_restore_text_per_family():
    rendered = render_ruleset(db1_ruleset())
    assert POSTGRES_FROM_WEB1 in rendered["ipv4"].splitlines() and sorted(rendered) == ["ipv4", "ipv6"]


def test_rendered_ipv6_text_holds_the_ipv6_addresses_of_the_group():
    ipv6 = render_ruleset(db1_ruleset())["ipv6"]
    assert "-A INPUT -s fd00::1:1/128 -p tcp -m tcp --dport 5432" in ipv6


def test_simulate_packet_names_the_rule_that_accepts():
    verdict = simulate_packet(db1_ruleset(), WEB1_TO_DB1_POSTGRES)
    assert verdict == {
        "verdict": "ACCEPT",
        "chain": "INPUT",
        "rule_index": 7,
        "rule": POSTGRES_FROM_WEB1,
        "comment": "fleetwall_policy.db.inbound[0]: app tier",
        "logged_by": [],
        "rate_dependent": [],
        "translated_by": None,
    }


def test_simulate_packet_falls_to_the_chain_policy_when_no_rule_matches():
    verdict = simulate_packet(db1_ruleset(), dict(WEB1_TO_DB1_POSTGRES, source="192.0.2.9"))
    assert (verdict["verdict"], verdict["rule_index"], verdict["rule"]) == ("DROP", None, None)


# ---------------------------------------------------------------- bad policy


def test_bad_policy_fails_compile_ruleset_with_the_path_message():
    hostvars, groups = bad_policy_inventory()
    assert filter_error(compile_ruleset, hostvars, groups, "db1").message == BAD_GROUP_PROBLEM


def test_bad_policy_fails_compile_fleet_with_the_path_message():
    hostvars, groups = bad_policy_inventory()
    assert filter_error(compile_fleet, hostvars, groups).message == BAD_GROUP_PROBLEM


def test_bad_policy_error_chains_no_traceback():
    hostvars, groups = bad_policy_inventory()
    assert shows_no_chained_traceback(filter_error(compile_ruleset, hostvars, groups, "db1"))


def test_several_problems_reach_the_playbook_as_one_message():
    hostvars, groups = inventory(
        policy={"db": {"inbound": [{"service": "postgress"}, {"proto": "tcp", "port": 0}]}},
    )
    assert filter_error(compile_ruleset, hostvars, groups, "db1").message == (
        "2 problems in the fleetwall policy:\n"
        "- fleetwall_policy.db.inbound[0].service: unknown service 'postgress' (did you mean 'postgres'?)\n"
        "- fleetwall_policy.db.inbound[1].port: port 0 is out of range (1-65535)"
    )


def test_unknown_host_fails_compile_ruleset():
    hostvars, groups = inventory()
    assert filter_error(compile_ruleset, hostvars, groups, "db9").message == "inventory_hostname: unknown host 'db9'"


@pytest.mark.parametrize(
    "hostvars, groups, message",
    [
        pytest.param(
            ["db1"], {"all": ["db1"]}, "compile_ruleset: the input must be hostvars (a mapping of host to variables), got list",
            id="hostvars-not-a-mapping",
        ),
        pytest.param(
            {"db1": {}}, ["db1"], "compile_ruleset: the groups argument must be the 'groups' mapping, got list",
            id="groups-not-a-mapping",
        ),
    ],
)
def test_compile_ruleset_refuses_what_is_not_an_inventory(hostvars, groups, message):
    assert filter_error(compile_ruleset, hostvars, groups, "db1").message == message


def test_compile_fleet_refuses_a_single_host_name_as_the_host_list():
    hostvars, groups = inventory()
    assert filter_error(compile_fleet, hostvars, groups, "db1").message == (
        "compile_fleet: hosts must be a list of inventory host names, got string"
    )


@pytest.mark.parametrize(
    "call, message",
    [
        pytest.param(lambda hv, g: compile_fleet(hv, g, 5), "compile_fleet: hosts must be a list of inventory host names, got integer",
                     id="compile_fleet-hosts-a-number"),
        pytest.param(lambda hv, g: compile_fleet(hv, g, None), "compile_fleet: hosts must be a list of inventory host names, got null",
                     id="compile_fleet-hosts-null"),
        pytest.param(lambda hv, g: compile_fleet(hv, g, ["db1", 7]),
                     "compile_fleet: hosts must be a list of inventory host names, got a list holding integer", id="compile_fleet-hosts-item"),
        pytest.param(lambda hv, g: compile_fleet(hv, dict(g, web=None)), "compile_fleet: groups['web'] must be a list of host names, got null",
                     id="compile_fleet-null-group"),
        pytest.param(lambda hv, g: compile_ruleset(hv, g, 5), "compile_ruleset: host must be an inventory host name, got integer",
                     id="compile_ruleset-host-a-number"),
        pytest.param(lambda hv, g: compile_ruleset(hv, dict(g, all="db1"), "db1"),
                     "compile_ruleset: groups['all'] must be a list of host names, got string", id="compile_ruleset-group-a-string"),
    ],
)
def test_filter_arguments_of_the_wrong_type_are_named_without_a_type_error(call, message):
    hostvars, groups = inventory()
    assert filter_error(call, hostvars, groups).message == message


# ---------------------------------------------------------------- malformed rulesets


def with_ipv4_text(text: str) -> Dict[str, Any]:
    """db1's ruleset with its IPv4 text replaced."""
    ruleset = copy.deepcopy(db1_ruleset())
    ruleset["ipv4"] = text
    return ruleset


MALFORMED_RULESETS = [
    pytest.param("*filter", "a compiled ruleset must be a mapping, got str", id="text-not-a-mapping"),
    pytest.param(
        {"ipv4": {}},
        "not a compiled fleetwall ruleset (missing host, ipv6); pass the output of fleetwall.iptables.compile_ruleset",
        id="missing-keys",
    ),
    pytest.param(dict(db1_ruleset(), ipv4={"tables": []}), "ruleset.ipv4: must be iptables-restore text, got dict",
                 id="structure-instead-of-text"),
    pytest.param(with_ipv4_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -j ACCEPT --jump-far\nCOMMIT\n"),
                 "ruleset.ipv4: line 3: '--jump-far' lacks a value in '-A INPUT -j ACCEPT --jump-far'", id="unknown-option"),
    pytest.param(with_ipv4_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.300 -j ACCEPT\nCOMMIT\n"),
                 "ruleset.ipv4: line 3: not a CIDR: '10.0.0.300' in '-A INPUT -s 10.0.0.300 -j ACCEPT'", id="bad-address"),
    pytest.param(with_ipv4_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp\nCOMMIT\n"),
                 "ruleset.ipv4: line 3: no target (-j) in '-A INPUT -p tcp'", id="no-target"),
    pytest.param(with_ipv4_text("*filter\n:INPUT DROP [0:0]\n"), "ruleset.ipv4: table filter lacks COMMIT", id="no-commit"),
]


@pytest.mark.parametrize("ruleset, message", MALFORMED_RULESETS)
def test_render_ruleset_refuses_a_malformed_ruleset(ruleset, message):
    assert filter_error(render_ruleset, ruleset).message == "render_ruleset: " + message


@pytest.mark.parametrize("ruleset, message", MALFORMED_RULESETS)
def test_simulate_packet_refuses_a_malformed_ruleset(ruleset, message):
    assert filter_error(simulate_packet, ruleset, WEB1_TO_DB1_POSTGRES).message == "simulate_packet: " + message


def test_malformed_ruleset_error_chains_no_traceback():
    assert shows_no_chained_traceback(filter_error(render_ruleset, "*filter"))


def test_simulate_packet_refuses_a_ruleset_without_filter_table():
    message = filter_error(simulate_packet, with_ipv4_text(""), WEB1_TO_DB1_POSTGRES).message
    assert message == "simulate_packet: the IPv4 ruleset has no filter table"


# ---------------------------------------------------------------- malformed packets


@pytest.mark.parametrize(
    "packet, message",
    [
        pytest.param(
            dict(WEB1_TO_DB1_POSTGRES, dport=5432),
            "packet: unknown field(s) dport; allowed: direction, chain, source, destination, protocol, source_port, "
            "port, destination_port, icmp_type, icmp_code, in_interface, out_interface, state, tcp_flags, hop_limit, over_limits",
            id="unknown-field",
        ),
        pytest.param(
            dict(WEB1_TO_DB1_POSTGRES, source="10.0.1.300"),
            "packet.source: not an IP address: '10.0.1.300'",
            id="bad-address",
        ),
        pytest.param(
            {"destination": "10.0.2.1"}, "packet.source: required", id="missing-source",
        ),
        pytest.param(
            dict(WEB1_TO_DB1_POSTGRES, destination="fd00::2:1"),
            "packet: source and destination are of different address families",
            id="mixed-families",
        ),
        pytest.param(
            dict(WEB1_TO_DB1_POSTGRES, port="postgres"),
            "packet.port: port must be a number or a range like '8000-8100', got 'postgres'",
            id="non-numeric-port",
        ),
        pytest.param(
            dict(WEB1_TO_DB1_POSTGRES, port=70000), "packet.port: port 70000 is out of range (1-65535)", id="port-out-of-range",
        ),
        pytest.param(
            dict(WEB1_TO_DB1_POSTGRES, protocol="tpc"),
            "packet.protocol: unknown protocol 'tpc' (did you mean 'tcp'?); known: ah, esp, gre, icmp, icmpv6, ipv6-icmp, sctp, tcp, "
            "udp, udplite, vrrp",
            id="unknown-protocol",
        ),
        pytest.param(
            dict(WEB1_TO_DB1_POSTGRES, direction="in"),
            "packet.direction: must be inbound, outbound or forward, got 'in'",
            id="unknown-direction",
        ),
        pytest.param(
            dict(WEB1_TO_DB1_POSTGRES, state="open"),
            "packet.state: must be one of NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED, got 'open'",
            id="unknown-state",
        ),
    ],
)
def test_simulate_packet_refuses_a_malformed_packet(packet, message):
    assert filter_error(simulate_packet, db1_ruleset(), packet).message == "simulate_packet: " + message


def test_simulate_packet_refuses_a_packet_that_is_not_a_mapping():
    assert filter_error(simulate_packet, db1_ruleset(), "10.0.1.1 -> 10.0.2.1").message == (
        "simulate_packet: the packet must be a mapping, e.g. {source: ..., destination: ...}"
    )


def test_malformed_packet_error_chains_no_traceback():
    error = filter_error(simulate_packet, db1_ruleset(), dict(WEB1_TO_DB1_POSTGRES, source="10.0.1.300"))
    assert shows_no_chained_traceback(error)


def test_simulate_packet_refuses_tcp_flags_that_are_not_a_list():
    filter_error(simulate_packet, db1_ruleset(), dict(WEB1_TO_DB1_POSTGRES, tcp_flags=2))


# ---------------------------------------------------------------- a real playbook

# Only set_fact, debug and assert: action plugins that run in the controller,
# so nothing connects anywhere and nothing on this machine changes.
PLAYBOOK = [
    {
        "name": "Compile, render and simulate the fleet policy on the controller",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Compile db1",
                "ansible.builtin.set_fact": {
                    "db1_ruleset": "{{ hostvars | fleetwall.iptables.compile_ruleset(groups, 'db1') }}",
                },
            },
            {
                "name": "Show db1's IPv4 ruleset",
                "ansible.builtin.debug": {"msg": "{{ (db1_ruleset | fleetwall.iptables.render_ruleset).ipv4 }}"},
            },
            {
                "name": "web1 reaches postgres on db1",
                "ansible.builtin.assert": {
                    "that": ["(db1_ruleset | fleetwall.iptables.simulate_packet(packet)).verdict == 'ACCEPT'"],
                },
                "vars": {"packet": WEB1_TO_DB1_POSTGRES},
            },
        ],
    }
]


def inventory_file(policy: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "all": {
            "vars": {"fleetwall_policy": policy},
            "children": {
                "web": {"hosts": {"web1": {"ansible_host": "10.0.1.1"}, "web2": {"ansible_host": "10.0.1.2"}}},
                "db": {"hosts": {"db1": {"ansible_host": "10.0.2.1"}}},
            },
        }
    }


def collections_path() -> Path:
    """The directory that holds ansible_collections/fleetwall/iptables for this test run."""
    collection = importlib.import_module("ansible_collections.fleetwall.iptables")
    return Path(list(collection.__path__)[0]).parents[2]


def run_playbook(tmp_path: Path, policy: Dict[str, Any], *options: str) -> subprocess.CompletedProcess:
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory_file(policy)))
    (tmp_path / "playbook.yml").write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
    environment = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(collections_path()),
        ANSIBLE_CALLBACK_RESULT_FORMAT="yaml",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventory.yml", "playbook.yml", *options],
        cwd=str(tmp_path),
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        timeout=300,
        check=False,
    )


GOOD_POLICY = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}
BAD_POLICY = {"db": {"inbound": [{"service": "postgres", "from": ["group:wbe"]}]}}
GOOD_POLICY_RULE = (
    '-A INPUT -s 10.0.1.1/32 -p tcp -m tcp --dport 5432 -m comment --comment "fleetwall_policy.db.inbound[0]" -j ACCEPT'
)


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "ansible-playbook").exists(), reason="ansible-playbook is not beside this Python"
)
class TestPlaybook:
    def test_playbook_shows_the_rendered_ruleset(self, tmp_path):
        result = run_playbook(tmp_path, GOOD_POLICY)
        assert result.returncode == 0, result.stdout
        assert GOOD_POLICY_RULE in [line.strip() for line in result.stdout.splitlines()], result.stdout

    def test_bad_policy_fails_the_task_with_the_path_message_and_no_traceback(self, tmp_path):
        result = run_playbook(tmp_path, BAD_POLICY, "-vvv")
        assert result.returncode == 2, result.stdout
        assert BAD_GROUP_PROBLEM in result.stdout and "Traceback" not in result.stdout, result.stdout

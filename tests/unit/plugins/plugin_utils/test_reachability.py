"""The reachability model, explain and the judgement of observations, on the shared test inventory."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.explain import explain
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.reachability import build_model, compare
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory


def checks(model: Dict[str, Any], **where: Any) -> List[Dict[str, Any]]:
    return [check for check in model["checks"] if all(check[key] == value for key, value in where.items())]


def one(model: Dict[str, Any], **where: Any) -> Dict[str, Any]:
    found = checks(model, **where)
    assert len(found) == 1, (where, found)
    return found[0]


@pytest.fixture(name="model")
def fixture_model() -> Dict[str, Any]:
    hostvars, groups = inventory()
    return build_model(hostvars, groups)


def test_every_host_pair_service_and_family_is_judged(model: Dict[str, Any]) -> None:
    assert model["hosts"] == ["bastion", "db1", "web1", "web2"]
    assert model["services"] == ["ssh", "ping", "postgres", "http", "https"]
    assert model["sources"] == ["bastion", "db1", "web1", "web2", "office", "anywhere"]
    # 4 destinations x 5 services x 5 other sources x 2 families
    assert len(model["checks"]) == 4 * 5 * 5 * 2
    assert len({check["id"] for check in model["checks"]}) == len(model["checks"])


def test_what_the_policy_allows_is_reachable_and_names_the_deciding_entry(model: Dict[str, Any]) -> None:
    check = one(model, source="web1", destination="db1", service="postgres", family=4)
    assert check["expected"] == "reachable"
    assert check["protocol"] == "tcp" and check["port"] == 5432
    assert check["consistent"] == ["open", "closed"] and check["ambiguous"] == []
    assert check["ingress"]["policy_entry"] == "fleetwall_policy.db.inbound[0]"
    assert check["ingress"]["comment"] == "fleetwall_policy.db.inbound[0]: app tier"
    assert check["decided_by"].startswith("db1 INPUT rule ")
    assert check["decided_by"].endswith(": fleetwall_policy.db.inbound[0]: app tier")
    assert check["egress"]["verdict"] == "ACCEPT" and check["probe_from"] == "web1"


def test_what_the_policy_does_not_mention_is_expected_blocked(model: Dict[str, Any]) -> None:
    check = one(model, source="bastion", destination="db1", service="postgres", family=6)
    assert check["expected"] == "blocked"
    assert check["consistent"] == ["filtered"]
    assert check["decided_by"] == "db1 INPUT: chain policy DROP"
    assert one(model, source="web1", destination="web2", service="ssh", family=4)["expected"] == "blocked"
    assert one(model, source="bastion", destination="web2", service="ssh", family=4)["expected"] == "reachable"


def test_external_sources_are_modelled_but_not_probed(model: Dict[str, Any]) -> None:
    office = one(model, source="office", destination="db1", service="ssh", family=4)
    assert office["source_kind"] == "addresses" and office["source_address"] == "203.0.113.1"
    assert office["expected"] == "reachable" and office["probe_from"] is None
    assert office["egress"] is None
    assert "no inventory host sends from office" in office["not_probed_reason"]
    anywhere = one(model, source="anywhere", destination="web1", service="http", family=6)
    assert anywhere["expected"] == "reachable" and anywhere["source_kind"] == "anywhere"
    assert one(model, source="anywhere", destination="db1", service="ssh", family=4)["expected"] == "blocked"


def test_icmp_services_are_probed_with_an_echo_request(model: Dict[str, Any]) -> None:
    check = one(model, source="db1", destination="web1", service="ping", family=6)
    assert check["protocol"] == "icmp" and check["port"] is None and check["packet"] == "icmpv6 echo-request"
    assert check["expected"] == "reachable" and check["consistent"] == ["open"]
    target = [t for t in model["probes"]["db1"] if t["id"] == check["id"]]
    assert target == [{"id": check["id"], "address": "fd00::1:1", "protocol": "icmp"}]


def test_probe_lists_hold_exactly_the_probed_checks(model: Dict[str, Any]) -> None:
    probed = [check for check in model["checks"] if check["probe_from"]]
    assert sum(len(targets) for targets in model["probes"].values()) == len(probed)
    for check in probed:
        assert check["source_kind"] == "host"
        target = next(t for t in model["probes"][check["source"]] if t["id"] == check["id"])
        assert target["address"] == check["destination_address"]


def test_udp_silence_fits_both_outcomes_and_is_ambiguous() -> None:
    hostvars, groups = inventory(policy={"db": {"inbound": [{"service": "syslog", "from": "group:web"}]}})
    model = build_model(hostvars, groups)
    allowed = one(model, source="web1", destination="db1", service="syslog", family=4)
    assert allowed["expected"] == "reachable"
    assert allowed["consistent"] == ["open", "closed", "open|filtered"] and allowed["ambiguous"] == ["open|filtered"]
    blocked = one(model, source="bastion", destination="db1", service="syslog", family=4)
    assert blocked["consistent"] == ["open|filtered"] and blocked["ambiguous"] == ["open|filtered"]


def test_a_reject_with_tcp_reset_looks_like_a_closed_port() -> None:
    hostvars, groups = inventory(
        policy={"db": {"inbound": [{"service": "postgres", "from": "group:web"}, {"service": "postgres", "action": "reject", "reject_with": "tcp-reset"}]}}
    )
    model = build_model(hostvars, groups)
    check = one(model, source="bastion", destination="db1", service="postgres", family=4)
    assert check["expected"] == "blocked" and check["consistent"] == ["closed"]
    assert check["ambiguous"] == ["closed"]


def test_a_default_reject_makes_closed_ambiguous_for_allowed_tcp() -> None:
    hostvars, groups = inventory(host_vars={"db1": {"fleetwall_default_policy": {"inbound": "reject"}}})
    model = build_model(hostvars, groups)
    allowed = one(model, source="web1", destination="db1", service="postgres", family=4)
    assert allowed["expected"] == "reachable" and allowed["ambiguous"] == ["closed"]
    refused = one(model, source="bastion", destination="db1", service="postgres", family=4)
    assert refused["consistent"] == ["closed"]
    pinged = one(model, source="web1", destination="db1", service="http", family=4)
    assert pinged["consistent"] == ["closed"]


def test_the_sources_own_output_rules_count() -> None:
    hostvars, groups = inventory(host_vars={"web1": {"fleetwall_default_policy": {"outbound": "drop"}}})
    model = build_model(hostvars, groups)
    check = one(model, source="web1", destination="db1", service="postgres", family=4)
    assert check["expected"] == "blocked" and check["decided_by"] == "web1 OUTPUT: chain policy DROP"
    assert "filtered" in check["consistent"]


def test_a_reply_the_source_drops_blocks_the_flow() -> None:
    hostvars, groups = inventory(host_vars={"web1": {"fleetwall_baseline": {"established": False}}})
    model = build_model(hostvars, groups)
    check = one(model, source="web1", destination="db1", service="postgres", family=4)
    assert check["expected"] == "blocked"
    assert check["decided_by"] == "web1 INPUT: chain policy DROP (the reply)"
    assert check["consistent"] == ["filtered"]
    # Both outcomes look the same from web1, so a probe proves nothing here.
    assert check["ambiguous"] == ["filtered"]


def test_hosts_per_group_samples_the_first_hosts_of_each_group() -> None:
    hostvars, groups = inventory()
    model = build_model(hostvars, groups, hosts_per_group=1)
    assert model["hosts"] == ["bastion", "db1", "web1"]
    assert build_model(hostvars, groups, hosts=["web2", "db1"], hosts_per_group=0)["hosts"] == ["db1", "web2"]


def test_unknown_hosts_are_refused_with_a_suggestion() -> None:
    hostvars, groups = inventory()
    with pytest.raises(PolicyError, match=r"hosts: unknown host 'web3' \(did you mean 'web2'\?\)"):
        build_model(hostvars, groups, hosts=["web3"])


def verification(model: Dict[str, Any], states: Dict[str, str], skip: Optional[str] = None) -> Dict[str, Any]:
    """What the probes would report if the kernel gave ``states`` (check id -> state), one result list per host."""
    registered = []
    for host, targets in sorted(model["probes"].items()):
        if host == skip:
            registered.append({"skipped": True, "changed": False})
            continue
        results = []
        for target in targets:
            check = next(c for c in model["checks"] if c["id"] == target["id"])
            state = states.get(target["id"], check["consistent"][0])
            results.append({"id": target["id"], "state": state, "detail": "test"})
        registered.append({"results": results, "changed": False})
    return compare(model, registered, generated="now")


def test_observations_matching_the_policy_pass(model: Dict[str, Any]) -> None:
    result = verification(model, {})
    summary = result["summary"]
    assert not result["failed"] and result["mismatches"] == []
    assert summary["mismatches"] == 0 and summary["inconclusive"] == 0
    assert summary["passed"] == sum(1 for check in model["checks"] if check["probe_from"])
    assert summary["not_probed"] == sum(1 for check in model["checks"] if not check["probe_from"])
    assert summary["checks"] == len(model["checks"]) == len(result["rows"])
    assert result["generated"] == "now" and result["services"] == model["services"]


def test_a_dropped_flow_that_should_pass_is_a_mismatch_naming_pair_and_service(model: Dict[str, Any]) -> None:
    check = one(model, source="web2", destination="db1", service="postgres", family=4)
    result = verification(model, {check["id"]: "filtered"})
    assert result["failed"] and result["summary"]["mismatches"] == 1
    assert result["mismatches"] == [
        "web2 -> db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered (test); "
        "the policy decides at " + check["decided_by"]
    ]
    row = next(r for r in result["rows"] if r["id"] == check["id"])
    assert row["status"] == "mismatch" and row["observed"] == "filtered"


def test_an_open_port_that_should_be_closed_is_a_mismatch(model: Dict[str, Any]) -> None:
    check = one(model, source="web1", destination="db1", service="ssh", family=6)
    result = verification(model, {check["id"]: "open"})
    assert result["mismatches"][0].startswith("web1 -> db1 ssh (tcp/22, IPv6): expected blocked, observed open")


def test_a_host_that_sent_no_results_fails_the_verification(model: Dict[str, Any]) -> None:
    result = verification(model, {}, skip="web1")
    assert result["failed"]
    rows = [row for row in result["rows"] if row["probe_from"] == "web1"]
    assert rows and all(row["observed"] == "error" and row["status"] == "mismatch" for row in rows)
    assert "no probe result from web1" in rows[0]["detail"]


@pytest.mark.parametrize(
    "observations, message",
    [
        ([42], r"observations\[0\]: must be a registered probe result"),
        ([{"results": [{"state": "open"}]}], r"observations\[0\]: a probe result needs 'id' and 'state'"),
    ],
)
def test_malformed_observations_are_refused(model: Dict[str, Any], observations: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare(model, observations)


def test_compare_needs_a_model() -> None:
    with pytest.raises(ValueError, match="output of fleetwall.iptables.reachability_model"):
        compare({"rows": []}, [])


def test_a_malformed_model_check_is_refused_naming_its_field(model: Dict[str, Any]) -> None:
    model["checks"][3]["expected"] = "maybe"
    with pytest.raises(ValueError, match=r"^model.checks\[3\].expected: must be one of reachable, blocked, got 'maybe'$"):
        compare(model, [])


def test_explain_names_the_rule_on_each_end() -> None:
    hostvars, groups = inventory()
    answer = explain(hostvars, groups, "web1 -> db1 postgres")
    assert answer["query"] == "web1 -> db1 postgres" and answer["reachable"] is True
    assert [result["family"] for result in answer["results"]] == [4, 6]
    ipv4 = answer["results"][0]
    assert ipv4["source_address"] == "10.0.1.1" and ipv4["destination_address"] == "10.0.2.1"
    assert ipv4["egress"]["chain"] == "OUTPUT" and ipv4["egress"]["rule_number"] is None
    assert ipv4["ingress"]["policy_entry"] == "fleetwall_policy.db.inbound[0]"
    assert "-s 10.0.1.1/32 -p tcp -m tcp --dport 5432" in ipv4["ingress"]["rule"]
    assert ipv4["explanation"].startswith("web1 -> db1 postgres (tcp/5432, IPv4): reachable; db1 INPUT rule ")


def test_explain_a_blocked_flow_with_a_port_an_address_and_one_family() -> None:
    hostvars, groups = inventory()
    answer = explain(hostvars, groups, {"from": "198.51.100.9", "to": "db1", "service": "tcp/22"}, 4)
    assert answer["reachable"] is False
    (result,) = answer["results"]
    assert result["verdict"] == "DROP" and result["egress"] is None
    assert result["explanation"] == "198.51.100.9 -> db1 tcp/22 (tcp/22, IPv4): blocked (DROP); db1 INPUT: chain policy DROP"
    office = explain(hostvars, groups, "office -> db1 ssh")
    assert office["reachable"] is True and office["results"][0]["source_address"] == "203.0.113.1"


def test_explain_an_address_of_an_inventory_host_stands_for_the_host() -> None:
    hostvars, groups = inventory()
    answer = explain(hostvars, groups, "10.0.1.2 -> db1 postgres")
    (result,) = answer["results"]
    assert result["egress"]["host"] == "web2" and result["reachable"]


def test_explain_host_rules_name_their_host() -> None:
    hostvars, groups = inventory(host_vars={"db1": {"fleetwall_host_rules": {"inbound": [{"service": "redis", "from": "host:web2"}]}}})
    result = explain(hostvars, groups, "web2 -> db1 redis")["results"][0]
    assert result["ingress"]["policy_entry"] == "hostvars['db1'].fleetwall_host_rules.inbound[0]"
    assert "hostvars['db1'].fleetwall_host_rules.inbound[0]" in result["decided_by"]


@pytest.mark.parametrize(
    "query, message",
    [
        ("web1 db1 postgres", r"query: write 'SOURCE -> DESTINATION SERVICE'"),
        ("wbe1 -> db1 postgres", r"query.from: 'wbe1' is neither an inventory host, an address set nor an IP address \(did you mean 'web1'\?\)"),
        ("web1 -> db1 postgress", r"query.service: 'postgress' is neither a service of the policy nor PROTOCOL\[/PORT\].*did you mean 'postgres'"),
        ("office -> 198.51.100.1 ssh", r"query: neither office nor 198.51.100.1 is an inventory host"),
        ({"from": "web1", "to": "db1"}, r"query: a mapping needs exactly from, to and service"),
    ],
)
def test_explain_refuses_bad_queries_naming_the_part(query: Any, message: str) -> None:
    hostvars, groups = inventory()
    with pytest.raises(PolicyError, match=message):
        explain(hostvars, groups, query)


def test_the_model_reports_definitions_no_rule_of_the_inventory_uses() -> None:
    hostvars, groups = inventory(services={"memcache": "tcp/11211"})
    model = build_model(hostvars, groups, hosts_per_group=1)
    assert model["warnings"] == ["fleetwall_services.memcache is defined but no rule uses it"]
    assert build_model(*inventory())["warnings"] == []


def test_the_model_reads_the_policy_the_compiler_parsed_and_never_parses_it_again(monkeypatch) -> None:
    from ansible_collections.fleetwall.iptables.plugins.plugin_utils import policy

    calls: List[str] = []
    parse = policy.parse_services

    def counted(*args: Any) -> Any:
        calls.append("fleetwall_services")
        return parse(*args)

    monkeypatch.setattr(policy, "parse_services", counted)  # every parse of the fleet policy reads its services
    build_model(*inventory(), hosts_per_group=0)
    assert calls == ["fleetwall_services"]

"""The verification filters as playbooks call them: reachability_model, compare_reachability and explain."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.filter.reachability import (
    FilterModule,
    compare_reachability,
    explain,
    reachability_model,
)
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory


def test_the_filters_are_registered_under_their_documented_names() -> None:
    assert sorted(FilterModule().filters()) == ["compare_reachability", "explain", "reachability_model"]


def test_model_compare_and_explain_work_together() -> None:
    hostvars, groups = inventory()
    model = reachability_model(hostvars, groups, [], 1)
    assert model["hosts"] == ["bastion", "db1", "web1"]
    observations = [
        {"results": [{"id": target["id"], "state": "filtered", "detail": "x"} for target in targets]}
        for targets in model["probes"].values()
    ]
    verification = compare_reachability(model, observations, "2026-11-22")
    assert verification["failed"]  # everything filtered: the allowed flows are mismatches
    reachable = [row for row in verification["rows"] if row["expected"] == "reachable" and row["observed"]]
    assert verification["summary"]["mismatches"] == len(reachable) > 0
    assert explain(hostvars, groups, "web1 -> db1 postgres")["reachable"] is True


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda hv, g: reachability_model([], g), "reachability_model: the input must be hostvars"),
        (lambda hv, g: reachability_model(hv, ["all"]), "reachability_model: the groups argument must be the 'groups' mapping"),
        (lambda hv, g: reachability_model(hv, g, "web1"), "reachability_model: hosts must be a list of inventory host names"),
        (lambda hv, g: reachability_model(hv, g, [], -1), "reachability_model: hosts_per_group must be a whole number"),
        (lambda hv, g: reachability_model(hv, g, 5), "^reachability_model: hosts must be a list of inventory host names, got integer$"),
        (lambda hv, g: reachability_model(hv, dict(g, web=None)), r"^reachability_model: groups\['web'\] must be a list of host names, got null$"),
        (lambda hv, g: explain(hv, dict(g, db=[None]), "web1 -> db1 ssh"),
         r"^explain: groups\['db'\] must be a list of host names, got a list holding null$"),
        (lambda hv, g: reachability_model(hv, g, ["db2"]), "hosts: unknown host 'db2'"),
        (lambda hv, g: compare_reachability({}, []), "compare_reachability: the first argument must be the output of"),
        (lambda hv, g: compare_reachability({"checks": []}, [7]), r"compare_reachability: observations\[0\]: must be"),
        (lambda hv, g: explain(hv, g, "web1 -> db9 ssh"), "query.to: 'db9' is neither an inventory host"),
        (lambda hv, g: explain(hv, g, "web1 -> db1 ssh", 5), "family: must be 4 or 6"),
    ],
)
def test_bad_input_is_an_ansible_filter_error_with_no_traceback(call, message: str) -> None:
    hostvars, groups = inventory()
    with pytest.raises(AnsibleFilterError, match=message) as raised:
        call(hostvars, groups)
    # No chained exception, so Ansible shows the message and no traceback of ours.
    assert raised.value.__cause__ is None and (raised.value.__context__ is None or raised.value.__suppress_context__)

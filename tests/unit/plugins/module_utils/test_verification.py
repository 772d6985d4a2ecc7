"""The verification model: judging an observation, the counts, and rows to and from dicts."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import (
    STATES,
    Row,
    VerificationError,
    describe_mismatch,
    mismatch_headline,
    judge,
    row_from_dict,
    row_to_dict,
    state_counts,
    state_order,
    verification_from_dict,
    verification_summary,
)


def row(**overrides: Any) -> Row:
    fields = dict(
        id="c1", source="web1", source_kind="host", source_groups=("all", "web"), source_address="10.0.1.1",
        destination="db1", destination_kind="host", destination_groups=("all", "db"), destination_address="10.0.2.1", family=4,
        service="postgres", protocol="tcp", port=5432, packet="tcp/5432", expected="reachable",
        consistent=("open", "closed", "open|filtered"), ambiguous=("open|filtered",),
        decided_by="db1 INPUT rule 9: fleetwall_policy.db.inbound[0]: app tier", egress=None, ingress=None,
        probe_from="web1", not_probed_reason=None,
    )
    fields.update(overrides)
    return Row(**fields)


@pytest.mark.parametrize("observed, status", [
    ("open", "pass"), ("open|filtered", "inconclusive"), ("filtered", "mismatch"), ("error", "mismatch"), (None, "not-probed"),
])
def test_an_observation_is_judged_by_the_outcomes_it_fits(observed, status):
    assert judge(row(), observed) == status


def test_a_mismatch_reads_as_pair_service_expectation_observation_and_deciding_rule():
    mismatch = row(observed="filtered", detail="", status="mismatch")
    assert describe_mismatch(mismatch) == (
        "web1 -> db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered (no detail); "
        "the policy decides at db1 INPUT rule 9: fleetwall_policy.db.inbound[0]: app tier"
    )


def test_the_report_and_the_play_share_one_mismatch_headline_that_differs_only_in_its_arrow():
    mismatch = row(observed="filtered", detail="", status="mismatch")
    assert mismatch_headline(mismatch, arrow="→") == (
        "web1 → db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered")


def test_the_probe_summary_counts_every_state_even_when_none_is_seen():
    counts = state_counts([{"state": "open"}, {"state": "open"}, {"state": "open|filtered"}])
    assert counts == {"open": 2, "closed": 0, "rejected": 0, "filtered": 0, "open|filtered": 1, "error": 0}


def test_the_verification_summary_counts_rows_by_status():
    statuses = ["pass", "pass", "mismatch", "inconclusive", "not-probed"]
    assert verification_summary(statuses) == {"checks": 5, "passed": 2, "mismatches": 1, "inconclusive": 1, "not_probed": 1}


def test_observations_sort_as_the_states_list_them_then_unknown_then_none():
    assert sorted([None, "weird", "filtered", "open"], key=state_order) == ["open", "filtered", "weird", None]
    assert STATES.index("closed") < STATES.index("rejected") < STATES.index("filtered")


def test_a_model_check_survives_the_round_trip_through_a_dict():
    check = row()
    assert row_from_dict(row_to_dict(check), "model.checks[0]", ("all", "web", "db"), ("postgres",)) == check


def test_a_judged_row_carries_its_observation_in_its_dict():
    judged = row(observed="open", detail="connected", status="pass")
    data = row_to_dict(judged)
    assert (data["observed"], data["detail"], data["status"]) == ("open", "connected", "pass")
    assert "status" not in row_to_dict(row())


def test_a_verification_row_without_a_status_is_refused():
    data = row_to_dict(row())
    verification = {"groups": ["all", "web", "db"], "services": ["postgres"], "rows": [data], "summary": {}}
    with pytest.raises(VerificationError, match=r"^verification.rows\[0\].status: missing$"):
        verification_from_dict(verification)


def test_a_check_with_a_list_where_observations_belong_is_refused_naming_it():
    data = dict(row_to_dict(row()), consistent="open")
    with pytest.raises(VerificationError, match=r"^model.checks\[2\].consistent: must be a list of observations, got string 'open'$"):
        row_from_dict(data, "model.checks[2]", ("all", "web", "db"), ("postgres",))

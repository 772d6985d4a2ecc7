# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification model: what a probe observes, how it is judged, and the rows a verification holds.

Private to the fleetwall.iptables collection. One definition for everything
that verifying a fleet passes around: the probe module (on the target hosts)
reports the observation states and their counts defined here; the
reachability model, its comparison with the probes, and the HTML report (on
the controller) share the expectations, statuses, the row type, the summary
and the dict form of a verification. Standard library only. Module code: keep
it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import type_name

# What a probe observes, from the most to the least said by the far end.
OPEN = "open"  # the service answered
CLOSED = "closed"  # a TCP reset or an ICMP port unreachable: the packet got in, nothing listens
REJECTED = "rejected"  # another ICMP error
FILTERED = "filtered"  # silence, or this host's own output rules refused the probe
OPEN_FILTERED = "open|filtered"  # UDP silence: a silent listener and a DROP look alike
ERROR = "error"  # the probe could not be made, or no result came back
STATES = (OPEN, CLOSED, REJECTED, FILTERED, OPEN_FILTERED, ERROR)

REACHABLE = "reachable"
BLOCKED = "blocked"
EXPECTATIONS = (REACHABLE, BLOCKED)

# How an observation compares with the expectation.
PASS = "pass"  # predicted by the policy, and by no other outcome
MISMATCH = "mismatch"  # contradicts the policy
INCONCLUSIVE = "inconclusive"  # fits both outcomes
NOT_PROBED = "not-probed"  # no inventory host can send this check
STATUSES = (PASS, MISMATCH, INCONCLUSIVE, NOT_PROBED)

# Where a check starts (or ends): an inventory host, addresses outside the inventory, or any address.
HOST = "host"
ADDRESSES = "addresses"
ANYWHERE = "anywhere"
ENDPOINT_KINDS = (HOST, ADDRESSES, ANYWHERE)

PROBE_PROTOCOLS = ("tcp", "udp", "icmp")
FAMILIES = (4, 6)

# A verification's summary: key -> the row status it counts (None: every row).
SUMMARY_COUNTS = (
    ("checks", None),
    ("passed", PASS),
    ("mismatches", MISMATCH),
    ("inconclusive", INCONCLUSIVE),
    ("not_probed", NOT_PROBED),
)


class VerificationError(ValueError):
    """A verification (or a model) that does not follow the schema; the message starts with the bad field's path."""


class Row(NamedTuple):
    """One check of a verification: a source, a destination, a service and a family.

    The reachability model fills in everything up to ``not_probed_reason``;
    comparing it with the probes adds ``observed``, ``detail`` and ``status``.
    The fields are in the order of the dict form.
    """

    id: Optional[str]
    source: str
    source_kind: str
    source_groups: Tuple[str, ...]
    source_address: str
    destination: str
    destination_kind: str
    destination_groups: Tuple[str, ...]
    destination_address: str
    family: int
    service: str
    protocol: Optional[str]  # what the probe sends; None when it cannot send the packet
    port: Optional[int]
    packet: str  # "tcp/5432", "icmp echo-request"
    expected: str
    consistent: Tuple[str, ...]  # the observations that agree with the expectation
    ambiguous: Tuple[str, ...]  # ... of which these would also fit the opposite
    decided_by: str
    egress: Optional[Mapping[str, Any]]  # the verdict of the source's OUTPUT chain
    ingress: Optional[Mapping[str, Any]]  # the verdict of the destination's INPUT chain
    probe_from: Optional[str]
    not_probed_reason: Optional[str]
    observed: Optional[str] = None
    detail: str = ""
    status: Optional[str] = None  # None until compared with the probes


class Verification(NamedTuple):
    generated: str
    summary: Dict[str, int]
    groups: Tuple[str, ...]
    services: Tuple[str, ...]
    rows: Tuple[Row, ...]
    sampling: Optional[Mapping[str, Any]] = None  # what of the fleet was checked (the model's sampling note)


# ---------------------------------------------------------------- judging and counting


def judge(row, observed):
    # type: (Row, Optional[str]) -> str
    """pass, mismatch, inconclusive (the observation fits both outcomes) or not-probed."""
    if observed is None:
        return NOT_PROBED
    if observed not in row.consistent:
        return MISMATCH
    if observed in row.ambiguous:
        return INCONCLUSIVE
    return PASS


def state_order(state):
    # type: (Optional[str]) -> Tuple[int, str]
    """Sorts observations as STATES lists them, then unknown ones by name, then no observation."""
    if state is None:
        return (len(STATES) + 1, "")
    if state in STATES:
        return (STATES.index(state), "")
    return (len(STATES), state)


def state_counts(results):
    # type: (Iterable[Mapping[str, Any]]) -> Dict[str, int]
    """How many probe results are in each state; every state present, 0 when none is (the probe's summary)."""
    counts = dict((state, 0) for state in STATES)
    for result in results:
        counts[result["state"]] = counts.get(result["state"], 0) + 1
    return counts


def verification_summary(statuses):
    # type: (Iterable[str]) -> Dict[str, int]
    """The counts of a verification's summary, from its rows' statuses."""
    statuses = list(statuses)
    return dict((key, len(statuses) if status is None else statuses.count(status)) for key, status in SUMMARY_COUNTS)


def describe_mismatch(row):
    # type: (Row) -> str
    """'web2 -> db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered (...); the policy decides at ...'."""
    return "%s (%s); the policy decides at %s" % (mismatch_headline(row), row.detail or "no detail", row.decided_by)


def mismatch_headline(row, arrow="->"):
    # type: (Row, str) -> str
    """'web2 -> db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered': who, what, expected, seen."""
    return "%s %s %s %s (%s, IPv%d): expected %s, observed %s" % (
        row.source, arrow, row.destination, row.service, row.packet, row.family, row.expected,
        "not probed" if row.observed is None else row.observed,
    )


# ---------------------------------------------------------------- to and from dicts

_OBSERVATION_KEYS = ("observed", "detail", "status")
_MODEL_KEYS = Row._fields[:-len(_OBSERVATION_KEYS)]
_LISTS = ("source_groups", "destination_groups", "consistent", "ambiguous")


def row_to_dict(row):
    # type: (Row) -> Dict[str, Any]
    """A check of the model, or once judged (status set) a row of the verification."""
    data = dict(zip(Row._fields if row.status is not None else _MODEL_KEYS, row))
    for key in _LISTS:
        data[key] = list(data[key])
    return data


def verification_to_dict(verification):
    # type: (Verification) -> Dict[str, Any]
    mismatches = [row for row in verification.rows if row.status == MISMATCH]
    return {
        "generated": verification.generated,
        "summary": dict(verification.summary),
        "groups": list(verification.groups),
        "services": list(verification.services),
        "rows": [row_to_dict(row) for row in verification.rows],
        "mismatches": [describe_mismatch(row) for row in mismatches],
        "failed": bool(mismatches),
        "sampling": None if verification.sampling is None else dict(verification.sampling),
    }


def _fail(path, message):
    # type: (str, str) -> None
    raise VerificationError("%s: %s" % (path, message))


def _got(value):
    # type: (Any) -> str
    """'integer 3', 'string 'x'', 'list': what was given, with its value when that is short to say."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return "%s %r" % (type_name(value), value)
    return type_name(value)


def _field(data, key, path):
    # type: (Mapping[str, Any], str, str) -> Any
    if key not in data:
        _fail(path, "missing")
    return data[key]


def _one_of(value, choices, path):
    # type: (Any, Sequence[Any], str) -> Any
    if isinstance(value, bool) or value not in choices:
        _fail(path, "must be one of %s, got %r" % (", ".join("null" if choice is None else str(choice) for choice in choices), value))
    return value


def _text(value, path, required=True):
    # type: (Any, str, bool) -> str
    """A non-empty string; when not required, any string, and a missing or null value is the empty string."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        _fail(path, "must be a string, got %s" % _got(value))
    if not value and required:
        _fail(path, "must not be empty")
    return value


def _optional_text(value, path):
    # type: (Any, str) -> Optional[str]
    return None if value is None else _text(value, path)


def _names(value, path, known=None, known_path=""):
    # type: (Any, str, Optional[Sequence[str]], str) -> Tuple[str, ...]
    """A list of distinct names (of `known`, when given)."""
    if not isinstance(value, (list, tuple)):
        _fail(path, "must be a list of names, got %s" % _got(value))
    names = []  # type: List[str]
    for position, item in enumerate(value):
        item_path = "%s[%d]" % (path, position)
        name = _text(item, item_path)
        if name in names:
            _fail(item_path, "%r is listed twice" % name)
        if known is not None and name not in known:
            _fail(item_path, "%r is not in %s" % (name, known_path))
        names.append(name)
    return tuple(names)


def _port(value, path):
    # type: (Any, str) -> Optional[int]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535):
        _fail(path, "must be a port number from 0 to 65535 or null, got %s" % _got(value))
    return value


def _verdict(value, path):
    # type: (Any, str) -> Optional[Mapping[str, Any]]
    if value is not None and not isinstance(value, Mapping):
        _fail(path, "must be a mapping or null, got %s" % _got(value))
    return value


def packet_label(protocol, port):
    # type: (Optional[str], Optional[int]) -> str
    """What a row without a packet label is called: 'tcp/5432', 'icmp', 'all protocols'."""
    if protocol is None:
        return "all protocols"
    if port is None:
        return protocol
    return "%s/%d" % (protocol, port)


def row_from_dict(data, path, groups, services):
    # type: (Any, str, Sequence[str], Sequence[str]) -> Row
    """A check of the model or a row of a verification, validated; a VerificationError names the bad field.

    Text that only explains (addresses, packet, decided_by, detail) may be
    missing; keys the schema does not know are ignored.
    """
    if not isinstance(data, Mapping):
        _fail(path, "must be a mapping, got %s" % _got(data))

    def at(key):
        # type: (str) -> str
        return "%s.%s" % (path, key)

    def required(key):
        # type: (str) -> Any
        return _field(data, key, at(key))

    def groups_of(key):
        # type: (str) -> Tuple[str, ...]
        return _names(data.get(key) or (), at(key), groups, "verification.groups")

    service = _text(required("service"), at("service"))
    if service not in services:
        _fail(at("service"), "%r is not in verification.services" % service)
    protocol = _one_of(required("protocol"), PROBE_PROTOCOLS + (None,), at("protocol"))
    port = _port(required("port"), at("port"))
    identifier = data.get("id")
    status = data.get("status")
    return Row(
        id=None if identifier is None else str(identifier),
        source=_text(required("source"), at("source")),
        source_kind=_one_of(required("source_kind"), ENDPOINT_KINDS, at("source_kind")),
        source_groups=groups_of("source_groups"),
        source_address=_text(data.get("source_address"), at("source_address"), required=False),
        destination=_text(required("destination"), at("destination")),
        destination_kind=_one_of(data.get("destination_kind", HOST), ENDPOINT_KINDS, at("destination_kind")),
        destination_groups=groups_of("destination_groups"),
        destination_address=_text(data.get("destination_address"), at("destination_address"), required=False),
        family=int(_one_of(required("family"), FAMILIES, at("family"))),
        service=service,
        protocol=protocol,
        port=port,
        packet=_text(data.get("packet"), at("packet"), required=False) or packet_label(protocol, port),
        expected=_one_of(required("expected"), EXPECTATIONS, at("expected")),
        decided_by=_text(data.get("decided_by"), at("decided_by"), required=False),
        consistent=_observations(data.get("consistent"), at("consistent")),
        ambiguous=_observations(data.get("ambiguous"), at("ambiguous")),
        egress=_verdict(data.get("egress"), at("egress")),
        ingress=_verdict(data.get("ingress"), at("ingress")),
        probe_from=_optional_text(data.get("probe_from"), at("probe_from")),
        not_probed_reason=_optional_text(data.get("not_probed_reason"), at("not_probed_reason")),
        observed=_optional_text(data.get("observed"), at("observed")),
        detail=_text(data.get("detail"), at("detail"), required=False),
        status=None if status is None else _one_of(status, STATUSES, at("status")),
    )


def _observations(value, path):
    # type: (Any, str) -> Tuple[str, ...]
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        _fail(path, "must be a list of observations, got %s" % _got(value))
    return tuple(_text(item, "%s[%d]" % (path, position)) for position, item in enumerate(value))


def _count(value, path):
    # type: (Any, str) -> int
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(path, "must be a whole number of at least 0, got %s" % _got(value))
    return int(value)


def _summary(value, rows):
    # type: (Any, Sequence[Row]) -> Dict[str, int]
    """The summary as given, each count checked against the rows."""
    if not isinstance(value, Mapping):
        _fail("verification.summary", "must be a mapping, got %s" % _got(value))
    actual = verification_summary(row.status for row in rows)
    counts = {}  # type: Dict[str, int]
    for key, status in SUMMARY_COUNTS:
        path = "verification.summary.%s" % key
        counts[key] = _count(_field(value, key, path), path)
        if counts[key] != actual[key]:
            what = "rows" if status is None else "rows with status %s" % status
            _fail(path, "says %d but verification.rows has %d %s" % (counts[key], actual[key], what))
    return counts


def verification_from_dict(data):
    # type: (Any) -> Verification
    """A verification (compare_reachability's output), validated; a VerificationError names the first bad field."""
    if not isinstance(data, Mapping):
        _fail("verification", "must be a mapping (the output of the verification), got %s" % _got(data))
    generated = _text(data.get("generated"), "verification.generated", required=False)
    groups = _names(_field(data, "groups", "verification.groups"), "verification.groups")
    services = _names(_field(data, "services", "verification.services"), "verification.services")
    raw_rows = _field(data, "rows", "verification.rows")
    if not isinstance(raw_rows, (list, tuple)):
        _fail("verification.rows", "must be a list, got %s" % _got(raw_rows))
    rows = []  # type: List[Row]
    for index, raw in enumerate(raw_rows):
        row = row_from_dict(raw, "verification.rows[%d]" % index, groups, services)
        if row.status is None:
            _fail("verification.rows[%d].status" % index, "missing")
        rows.append(row)
    summary = _summary(_field(data, "summary", "verification.summary"), rows)
    return Verification(generated, summary, groups, services, tuple(rows), _sampling(data.get("sampling")))


def _sampling(value):
    # type: (Any) -> Optional[Mapping[str, Any]]
    """The sampling note, if any: a mapping whose description, when present, is text."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        _fail("verification.sampling", "must be a mapping or null, got %s" % _got(value))
    _text(value.get("description"), "verification.sampling.description", required=False)
    return value

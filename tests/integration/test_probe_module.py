"""The fleetwall.iptables.probe module against real kernels, real packets and real iptables.

A client namespace runs the module (its file executed by Python with its
arguments in a JSON file, as Ansible runs it on a target, after the
namespace's identity was checked); a server namespace on the other end of a
veth pair holds IPv4 and IPv6 addresses, a TCP listener and a UDP echo
service, and the iptables rules each test puts in place. Both sides have
permanent neighbour entries, so dropping ICMPv6 never breaks neighbour
discovery, and the server sends its ICMP errors without rate limiting, so
which error comes back never depends on how fast the tests run. Except in the
tests at the end, which put the kernel's default ICMP rate limits back (the
module's retry_silent has to give the right answer despite them), one of them
with a router in between that rejects for two servers.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pytest

from ansible_collections.fleetwall.iptables.tests.integration.netns import (
    Namespace,
    add_addresses,
    add_permanent_neighbours,
    veth_pair,
)

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "plugins" / "modules" / "probe.py"
COLLECTIONS_ROOT = REPO / ".build" / "pytest"

CLIENT = {4: "10.77.0.1", 6: "fd77::1"}
SERVER = {4: "10.77.0.2", 6: "fd77::2"}
QUIET = {4: "10.77.0.3", 6: "fd77::3"}  # a second server address, for probes that get no answer
FAMILIES = (4, 6)
TCP_LISTENING = 8080
TCP_NOTHING = 8081
UDP_ECHO = 5353
UDP_NOTHING = 5354
IPTABLES = {4: "iptables", 6: "ip6tables"}
ICMP = {4: ["-p", "icmp", "--icmp-type", "echo-request"], 6: ["-p", "ipv6-icmp", "--icmpv6-type", "echo-request"]}
ADMIN_PROHIBITED = {4: "icmp-admin-prohibited", 6: "icmp6-adm-prohibited"}

# TCP listener (accepts and closes) and UDP echo on the server's addresses; prints "ready" once bound.
SERVER_SCRIPT = textwrap.dedent(
    """
    import selectors, socket, sys
    selector = selectors.DefaultSelector()
    for address in sys.argv[1:3]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((address, int(sys.argv[3])))
        tcp.listen(256)
        selector.register(tcp, selectors.EVENT_READ, "tcp")
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((address, int(sys.argv[4])))
        selector.register(udp, selectors.EVENT_READ, "udp")
    print("ready", flush=True)
    while True:
        for key, _events in selector.select():
            if key.data == "tcp":
                key.fileobj.accept()[0].close()
            else:
                data, peer = key.fileobj.recvfrom(65535)
                key.fileobj.sendto(b"echo:" + data, peer)
    """
)


class Lab(NamedTuple):
    client: Namespace
    server: Namespace
    workdir: Path


class Run(NamedTuple):
    result: Dict[str, Any]
    seconds: float
    stdout: str
    stderr: str


def run_module(client: Namespace, workdir: Path, args: Dict[str, Any], check_mode: bool = False,
               prefix: Sequence[str] = ()) -> Run:
    """Run probe.py inside the client namespace the way Ansible runs a module on a target."""
    arguments = dict(args, _ansible_check_mode=check_mode)
    args_file = workdir / ("args-%d.json" % time.monotonic_ns())
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": arguments}))
    client.guard()  # the module sends packets: prove where it will run
    argv = client.exec_argv(list(prefix) + ["env", "PYTHONPATH=%s" % COLLECTIONS_ROOT, sys.executable, str(MODULE), str(args_file)])
    started = time.monotonic()
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    seconds = time.monotonic() - started
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise AssertionError(
            "module printed no JSON (exit %d):\n%s\n%s" % (completed.returncode, completed.stdout, completed.stderr)
        )
    return Run(result, seconds, completed.stdout, completed.stderr)


@pytest.fixture
def lab(make_namespace, tmp_path: Path) -> Iterator[Lab]:
    client, server = make_namespace(), make_namespace()
    client_link, server_link = veth_pair(client, "prb-c0", server, "prb-s0")
    add_addresses(client_link, [CLIENT[4] + "/24", CLIENT[6] + "/64"])
    add_addresses(server_link, [SERVER[4] + "/24", SERVER[6] + "/64", QUIET[4] + "/24", QUIET[6] + "/64"])
    add_permanent_neighbours(client_link, list(SERVER.values()) + list(QUIET.values()), server_link.mac)
    add_permanent_neighbours(server_link, CLIENT.values(), client_link.mac)
    server.sysctl("net.ipv4.icmp_ratelimit", "0")
    server.sysctl("net.ipv6.icmp.ratelimit", "0")
    process = subprocess.Popen(
        server.exec_argv([sys.executable, "-c", SERVER_SCRIPT, SERVER[4], SERVER[6], str(TCP_LISTENING), str(UDP_ECHO)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = select.select([process.stdout], [], [], 10)[0]
        line = process.stdout.readline() if ready else ""
        assert line.strip() == "ready", "the server's listeners did not start: %r %s" % (
            line,
            process.stderr.read() if process.poll() is not None and process.stderr else "",
        )
        yield Lab(client, server, tmp_path)
    finally:
        process.kill()
        process.wait(timeout=10)


def rules(namespace: Namespace, family: int, *rule_args: Sequence[str]) -> None:
    """Append rules with the guarded harness helper (it proves the namespace before each command)."""
    namespace.guard()
    for rule in rule_args:
        namespace.iptables_command([IPTABLES[family]] + list(rule))


def both(namespace: Namespace, chain: str, protocol_args: Dict[int, List[str]], *target: str) -> None:
    for family in FAMILIES:
        rules(namespace, family, ["-A", chain] + protocol_args[family] + ["-j"] + list(target))


def tcp_to(port: int) -> Dict[int, List[str]]:
    return {family: ["-p", "tcp", "--dport", str(port)] for family in FAMILIES}


def udp_to(port: int) -> Dict[int, List[str]]:
    return {family: ["-p", "udp", "--dport", str(port)] for family in FAMILIES}


def target(family: int, protocol: str, port: Optional[int] = None, label: Optional[str] = None) -> Dict[str, Any]:
    item: Dict[str, Any] = {"address": SERVER[family], "protocol": protocol}
    if port is not None:
        item["port"] = port
    if label is not None:
        item["id"] = label
    return item


def probe(lab: Lab, targets: List[Dict[str, Any]], timeout: float = 2.0, **extra: Any) -> List[Dict[str, Any]]:
    run = run_module(lab.client, lab.workdir, dict(targets=targets, timeout=timeout, **extra))
    assert not run.result.get("failed"), run.result
    assert run.result["changed"] is False
    assert len(run.result["results"]) == len(targets)
    return run.result["results"]


def states(results: List[Dict[str, Any]]) -> List[Tuple[int, str]]:
    return [(result["family"], result["state"]) for result in results]


def details(results: List[Dict[str, Any]]) -> str:
    return "\n".join("%s %s/%s %s: %s" % (r["address"], r["protocol"], r["port"], r["state"], r["detail"]) for r in results)


# ---------------------------------------------------------------- TCP


def test_tcp_open_with_a_listener_and_closed_without(lab):
    results = probe(lab, [target(family, "tcp", port) for family in FAMILIES for port in (TCP_LISTENING, TCP_NOTHING)])
    assert states(results) == [(4, "open"), (4, "closed"), (6, "open"), (6, "closed")], details(results)
    assert results[1]["detail"].startswith("connection refused"), details(results)


def test_tcp_filtered_when_the_server_drops(lab):
    both(lab.server, "INPUT", tcp_to(TCP_LISTENING), "DROP")
    results = probe(lab, [target(family, "tcp", TCP_LISTENING) for family in FAMILIES], timeout=0.5)
    assert states(results) == [(4, "filtered"), (6, "filtered")], details(results)
    assert all(result["detail"] == "no answer within 0.5 s" for result in results), details(results)
    assert all(result["elapsed_ms"] >= 490 for result in results), details(results)
    assert [result["attempts"] for result in results] == [2, 2]  # silence is probed once more (retry_silent)


def test_tcp_rejected_with_admin_prohibited(lab):
    for family in FAMILIES:
        rules(lab.server, family, ["-A", "INPUT"] + tcp_to(TCP_LISTENING)[family] + ["-j", "REJECT", "--reject-with", ADMIN_PROHIBITED[family]])
    results = probe(lab, [target(family, "tcp", TCP_LISTENING) for family in FAMILIES])
    assert states(results) == [(4, "rejected"), (6, "rejected")], details(results)
    assert results[0]["detail"] == "ICMP destination unreachable code 13 (administratively prohibited) from 10.77.0.2"
    assert results[1]["detail"] == "ICMPv6 destination unreachable code 1 (administratively prohibited) from fd77::2"


def test_tcp_reset_by_the_firewall_looks_closed(lab):
    both(lab.server, "INPUT", tcp_to(TCP_LISTENING), "REJECT", "--reject-with", "tcp-reset")
    results = probe(lab, [target(family, "tcp", TCP_LISTENING) for family in FAMILIES])
    assert states(results) == [(4, "closed"), (6, "closed")], details(results)


def test_tcp_dropped_by_the_clients_own_output_rules(lab):
    both(lab.client, "OUTPUT", tcp_to(TCP_LISTENING), "DROP")
    results = probe(lab, [target(family, "tcp", TCP_LISTENING) for family in FAMILIES], timeout=0.5)
    assert states(results) == [(4, "filtered"), (6, "filtered")], details(results)
    assert all("own output rules" in result["detail"] for result in results), details(results)


# ---------------------------------------------------------------- UDP


def test_udp_open_with_an_echo_service_and_closed_without(lab):
    results = probe(lab, [target(family, "udp", port) for family in FAMILIES for port in (UDP_ECHO, UDP_NOTHING)])
    assert states(results) == [(4, "open"), (4, "closed"), (6, "open"), (6, "closed")], details(results)
    assert results[0]["detail"] == "reply of 21 bytes", details(results)  # "echo:" + the 16-byte probe
    assert results[1]["detail"] == "ICMP destination unreachable code 3 (port unreachable) from 10.77.0.2"
    assert results[3]["detail"] == "ICMPv6 destination unreachable code 4 (port unreachable) from fd77::2"


def test_udp_open_or_filtered_when_the_server_drops(lab):
    both(lab.server, "INPUT", udp_to(UDP_ECHO), "DROP")
    results = probe(lab, [target(family, "udp", UDP_ECHO) for family in FAMILIES], timeout=0.5)
    assert states(results) == [(4, "open|filtered"), (6, "open|filtered")], details(results)
    assert all(result["detail"].startswith("no answer within 0.5 s") for result in results), details(results)


def test_udp_rejected_with_admin_prohibited(lab):
    for family in FAMILIES:
        rules(lab.server, family, ["-A", "INPUT"] + udp_to(UDP_ECHO)[family] + ["-j", "REJECT", "--reject-with", ADMIN_PROHIBITED[family]])
    results = probe(lab, [target(family, "udp", UDP_ECHO) for family in FAMILIES])
    assert states(results) == [(4, "rejected"), (6, "rejected")], details(results)
    assert all("administratively prohibited" in result["detail"] for result in results), details(results)


# ---------------------------------------------------------------- ICMP


def test_icmp_echo_answered(lab):
    results = probe(lab, [target(family, "icmp") for family in FAMILIES])
    assert states(results) == [(4, "open"), (6, "open")], details(results)
    assert [result["detail"] for result in results] == ["echo reply from 10.77.0.2", "echo reply from fd77::2"]
    assert [result["port"] for result in results] == [None, None]


def test_icmp_echo_dropped_is_filtered(lab):
    both(lab.server, "INPUT", ICMP, "DROP")
    results = probe(lab, [target(family, "icmp") for family in FAMILIES], timeout=0.5)
    assert states(results) == [(4, "filtered"), (6, "filtered")], details(results)


def test_icmp_echo_rejected(lab):
    both(lab.server, "INPUT", ICMP, "REJECT")
    results = probe(lab, [target(family, "icmp") for family in FAMILIES])
    assert states(results) == [(4, "rejected"), (6, "rejected")], details(results)
    assert results[0]["detail"] == "ICMP destination unreachable code 3 (port unreachable) from 10.77.0.2"
    assert results[1]["detail"] == "ICMPv6 destination unreachable code 4 (port unreachable) from fd77::2"


# ---------------------------------------------------------------- this host's own output rules


def test_udp_and_icmp_dropped_by_the_clients_own_output_rules(lab):
    both(lab.client, "OUTPUT", udp_to(UDP_ECHO), "DROP")
    both(lab.client, "OUTPUT", ICMP, "DROP")
    results = probe(lab, [target(family, protocol, port) for family in FAMILIES for protocol, port in (("udp", UDP_ECHO), ("icmp", None))])
    assert states(results) == [(4, "filtered")] * 2 + [(6, "filtered")] * 2, details(results)
    assert all("own output rules" in result["detail"] for result in results), details(results)
    assert all(result["elapsed_ms"] < 1000 for result in results), details(results)  # known at once, no waiting


def test_reject_in_the_clients_own_output_rules_is_rejected_by_this_host(lab):
    both(lab.client, "OUTPUT", udp_to(UDP_ECHO), "REJECT")
    both(lab.client, "OUTPUT", tcp_to(TCP_LISTENING), "REJECT")
    results = probe(lab, [target(family, protocol, port) for family in FAMILIES for protocol, port in (("udp", UDP_ECHO), ("tcp", TCP_LISTENING))])
    assert states(results) == [(4, "rejected")] * 2 + [(6, "rejected")] * 2, details(results)
    assert all("sent by this host itself" in result["detail"] for result in results), details(results)


# ---------------------------------------------------------------- the module's contract


def test_ids_come_back_unchanged_in_the_targets_order_and_check_mode_probes_too(lab):
    targets = [
        target(6, "udp", UDP_NOTHING, "six-udp"),
        target(4, "icmp", None, "four ping"),
        target(4, "tcp", TCP_LISTENING, "web: 10.77.0.2/8080"),
        target(6, "tcp", TCP_NOTHING),
        target(4, "udp", UDP_ECHO, "échos"),
        target(6, "icmp", None, ""),
    ]
    run = run_module(lab.client, lab.workdir, {"targets": targets, "timeout": 2.0}, check_mode=True)
    assert run.result["changed"] is False and not run.result.get("failed"), run.result
    results = run.result["results"]
    assert [(r["id"], r["address"], r["protocol"], r["port"]) for r in results] == [
        (t.get("id"), t["address"], t["protocol"], t.get("port")) for t in targets
    ]
    assert [r["state"] for r in results] == ["closed", "open", "open", "closed", "open", "open"], details(results)
    assert [r["attempts"] for r in results] == [1] * 6  # everything answered at once
    assert run.result["summary"] == {"open": 4, "closed": 2, "rejected": 0, "filtered": 0, "open|filtered": 0, "error": 0}


@pytest.mark.parametrize(
    "item, message",
    [
        ({"address": "10.77.0.300", "protocol": "tcp", "port": 80}, "targets[1].address: '10.77.0.300' is not an IPv4 or IPv6 address"),
        ({"address": "server.example", "protocol": "icmp"}, "targets[1].address: 'server.example' is not an IPv4 or IPv6 address"),
        ({"address": "10.77.0.2", "protocol": "tcp"}, "targets[1].port: is required for tcp"),
        ({"address": "10.77.0.2", "protocol": "udp", "port": 0}, "targets[1].port: must be 1-65535 for udp, got 0"),
        ({"address": "fd77::2", "protocol": "icmp", "port": 7}, "targets[1].port: must not be set for icmp (got 7)"),
        # The argument spec's own checks of the targets' suboptions.
        ({"address": "fd77::2", "protocol": "sctp", "port": 7}, "value of protocol must be one of: tcp, udp, icmp, got: sctp found in targets"),
        ({"address": "fd77::2", "protocol": "tcp", "port": 22, "prot": 7},
         "module: targets.prot. Supported parameters include: address, id, port, protocol."),
        ({"protocol": "tcp", "port": 22}, "missing required arguments: address found in targets"),
    ],
)
def test_invalid_targets_fail_naming_the_item_and_probe_nothing(lab, item, message):
    targets = [target(4, "tcp", TCP_LISTENING), item]
    run = run_module(lab.client, lab.workdir, {"targets": targets})
    assert run.result.get("failed") is True, run.result
    assert message in run.result["msg"], run.result["msg"]
    assert "results" not in run.result
    assert "Traceback" not in run.stdout + run.stderr


def test_every_problem_is_listed(lab):
    targets = [{"address": "nope", "protocol": "tcp", "port": 80}, {"address": "10.77.0.2", "protocol": "icmp", "port": 1}]
    run = run_module(lab.client, lab.workdir, {"targets": targets, "parallel": 0, "timeout": 0, "retry_interval": 61})
    assert run.result["failed"] is True
    assert run.result["problems"] == [
        "timeout: must be more than 0 and at most 3600 seconds, got 0.0",
        "parallel: must be 1-1024, got 0",
        "retry_interval: must be more than 0 and at most 60 seconds, got 61.0",
        "targets[0].address: 'nope' is not an IPv4 or IPv6 address",
        "targets[1].port: must not be set for icmp (got 1)",
    ]


def test_concurrent_icmp_probes_each_get_their_own_answer(lab):
    # Echo requests to QUIET are dropped: a probe that took another probe's reply for its own would say open.
    for family in FAMILIES:
        rules(lab.server, family, ["-A", "INPUT", "-d", QUIET[family]] + ICMP[family] + ["-j", "DROP"])
    addresses = [address[family] for family in FAMILIES for address in (SERVER, QUIET)] * 10
    run = run_module(lab.client, lab.workdir, {"targets": [{"address": a, "protocol": "icmp"} for a in addresses], "timeout": 1.0})
    results = run.result["results"]
    assert [result["state"] for result in results] == ["open", "filtered"] * 20, details(results)
    assert all(result["detail"] == "echo reply from " + result["address"] for result in results[::2]), details(results)


def test_without_raw_sockets_icmp_is_an_error_and_tcp_still_works(lab):
    both(lab.server, "INPUT", tcp_to(TCP_NOTHING), "DROP")
    targets = [target(4, "icmp"), target(6, "icmp"), target(4, "tcp", TCP_LISTENING), target(6, "tcp", TCP_NOTHING)]
    run = run_module(lab.client, lab.workdir, {"targets": targets, "timeout": 0.5}, prefix=["setpriv", "--bounding-set", "-net_raw"])
    results = run.result["results"]
    assert [result["state"] for result in results] == ["error", "error", "open", "filtered"], details(results)
    assert all("needs root" in result["detail"] for result in results[:2]), details(results)
    assert results[3]["detail"] == "no answer within 0.5 s"


def test_probes_run_concurrently(lab):
    both(lab.server, "INPUT", tcp_to(TCP_LISTENING), "DROP")
    both(lab.server, "INPUT", udp_to(UDP_ECHO), "DROP")
    both(lab.server, "INPUT", ICMP, "DROP")
    kinds = [("tcp", TCP_LISTENING), ("udp", UDP_ECHO), ("icmp", None)]
    targets = [target(FAMILIES[index % 2], *kinds[index % 3], label=str(index)) for index in range(100)]
    # The parallel pass alone: the re-probes of silence are paced on purpose (see the tests at the end).
    run = run_module(lab.client, lab.workdir, {"targets": targets, "timeout": 0.5, "retry_silent": False})
    results = run.result["results"]
    assert [result["id"] for result in results] == [str(index) for index in range(100)]
    assert {result["state"] for result in results} == {"filtered", "open|filtered"}, details(results)
    assert all(result["elapsed_ms"] >= 490 for result in results), details(results)
    assert {result["attempts"] for result in results} == {1}
    # One after the other, 100 probes would take at least 50 s; 64 at a time take about 1 s.
    assert run.seconds < 15, "100 probes with timeout 0.5 s took %.1f s: they did not run concurrently" % run.seconds


# ---------------------------------------------------------------- the server's ICMP rate limits at the kernel defaults

# The kernel defaults, set explicitly: one ICMP error per second per peer after a burst of six (per-peer
# token bucket), at most 1000 a second in all. IPv6's default used to be 1000 ms too (newer kernels: 100 ms).
DEFAULT_RATE_LIMITS = (
    ("net.ipv4.icmp_ratelimit", "1000"),
    ("net.ipv4.icmp_msgs_per_sec", "1000"),
    ("net.ipv4.icmp_msgs_burst", "50"),
    ("net.ipv6.icmp.ratelimit", "1000"),
)
MANY_PORTS = list(range(9000, 9024))  # 24 ports; nothing listens on them
PORT_RANGE = "%d:%d" % (MANY_PORTS[0], MANY_PORTS[-1])
PORT_UNREACHABLE_REJECT = {4: "icmp-port-unreachable", 6: "icmp6-port-unreachable"}


@pytest.fixture
def rate_limited_lab(lab: Lab) -> Lab:
    """The lab with the server's ICMP error rate limits back at the kernel defaults."""
    for key, value in DEFAULT_RATE_LIMITS:
        lab.server.sysctl(key, value)
    return lab


def many_ports(protocol: str) -> List[Dict[str, Any]]:
    return [target(family, protocol, port) for family in FAMILIES for port in MANY_PORTS]


def reject_many_ports(lab: Lab, protocol: str, reject_with: Dict[int, str]) -> None:
    for family in FAMILIES:
        rules(lab.server, family, ["-A", "INPUT", "-p", protocol, "--dport", PORT_RANGE, "-j", "REJECT", "--reject-with", reject_with[family]])


def probe_timed(lab: Lab, targets: List[Dict[str, Any]], **args: Any) -> Tuple[List[Dict[str, Any]], float]:
    run = run_module(lab.client, lab.workdir, dict(targets=targets, **args))
    assert not run.result.get("failed"), run.result
    assert len(run.result["results"]) == len(targets)
    return run.result["results"], run.seconds


def attempts_text(results: List[Dict[str, Any]]) -> str:
    counts: Dict[Any, int] = {}
    for result in results:
        key = (result["family"], result.get("attempts"))
        counts[key] = counts.get(key, 0) + 1
    return ", ".join("IPv%d: %d after %s attempt(s)" % (family, count, attempts) for (family, attempts), count in sorted(counts.items()))


def test_tcp_ports_rejected_with_port_unreachable_are_all_closed_at_the_default_rate_limit(rate_limited_lab):
    reject_many_ports(rate_limited_lab, "tcp", PORT_UNREACHABLE_REJECT)
    results, seconds = probe_timed(rate_limited_lab, many_ports("tcp"), timeout=1.0)
    assert {result["state"] for result in results} == {"closed"}, details(results)
    assert all("port unreachable" in result["detail"] for result in results), details(results)
    # Only the kernel's burst came back at once; everything else needed a second, paced attempt.
    assert any(result["attempts"] > 1 for result in results), attempts_text(results)
    print("24 TCP ports x 2 families, REJECT icmp-port-unreachable: %.1f s (%s)" % (seconds, attempts_text(results)))


def test_tcp_ports_rejected_with_admin_prohibited_are_all_rejected_at_the_default_rate_limit(rate_limited_lab):
    reject_many_ports(rate_limited_lab, "tcp", ADMIN_PROHIBITED)
    results, seconds = probe_timed(rate_limited_lab, many_ports("tcp"), timeout=1.0)
    assert {result["state"] for result in results} == {"rejected"}, details(results)
    assert all("administratively prohibited" in result["detail"] for result in results), details(results)
    print("24 TCP ports x 2 families, REJECT admin-prohibited: %.1f s (%s)" % (seconds, attempts_text(results)))


def test_closed_udp_ports_are_all_closed_at_the_default_rate_limit(rate_limited_lab):
    results, seconds = probe_timed(rate_limited_lab, many_ports("udp"), timeout=1.0)
    assert {result["state"] for result in results} == {"closed"}, details(results)
    assert all("port unreachable" in result["detail"] for result in results), details(results)
    print("24 closed UDP ports x 2 families: %.1f s (%s)" % (seconds, attempts_text(results)))


def test_a_dropping_host_is_still_filtered_and_costs_little_more(rate_limited_lab):
    both(rate_limited_lab.server, "INPUT", {family: ["-p", "tcp", "--dport", PORT_RANGE] for family in FAMILIES}, "DROP")
    results, seconds = probe_timed(rate_limited_lab, many_ports("tcp"), timeout=1.0)
    assert {result["state"] for result in results} == {"filtered"}, details(results)
    assert all(result["detail"] == "no answer within 1.0 s" for result in results), details(results)
    assert {result["attempts"] for result in results} == {2}, attempts_text(results)
    print("24 TCP ports x 2 families, DROP: %.1f s (%s)" % (seconds, attempts_text(results)))
    # The parallel pass (1 s); 1 s more, in case the kernel's second SYN of a probe was answered unseen; then each
    # family's 24 silent ports once more, 0.1 s apart (silence uses up none of the destination's ICMP budget),
    # the last one waiting 1 s: about 5.5 s. Re-probed one a second, like the rejected ports, they would take 25 s.
    assert seconds < 12, "24 dropped ports per family took %.1f s" % seconds


def test_without_retries_the_default_rate_limit_turns_answers_into_silence(rate_limited_lab):
    # What the tests above guard against, shown on this kernel: the server answers its burst and no more.
    # (Should a kernel ever stop rate-limiting, this fails, and the tests above no longer prove anything.)
    reject_many_ports(rate_limited_lab, "tcp", PORT_UNREACHABLE_REJECT)
    results, seconds = probe_timed(rate_limited_lab, many_ports("tcp"), timeout=1.0, retry_silent=False)
    for family in FAMILIES:
        mine = [result["state"] for result in results if result["family"] == family]
        assert 0 < mine.count("closed") < len(MANY_PORTS) and set(mine) == {"closed", "filtered"}, details(results)
    assert {result["attempts"] for result in results} == {1}


# A router between the client and two servers, rejecting in its FORWARD chain for both: every ICMP error comes
# from the router, out of the one rate limit it keeps for the client.
ROUTED = {"client": {4: "10.78.0.1", 6: "fd78::1"}, "router_in": {4: "10.78.0.254", 6: "fd78::fe"},
          "router_out": {4: "10.79.0.254", 6: "fd79::fe"}, "servers": {4: ["10.79.0.2", "10.79.0.3"], 6: ["fd79::2", "fd79::3"]}}
PREFIX_LENGTH = {4: 24, 6: 64}


def test_a_router_rejecting_for_two_servers_gets_all_its_answers_counted(make_namespace, tmp_path):
    client, router, server = make_namespace(), make_namespace(), make_namespace()
    client_link, router_in = veth_pair(client, "rtr-c0", router, "rtr-r0")
    router_out, server_link = veth_pair(router, "rtr-r1", server, "rtr-s0")
    for link, key in ((client_link, "client"), (router_in, "router_in"), (router_out, "router_out")):
        add_addresses(link, ["%s/%d" % (ROUTED[key][family], PREFIX_LENGTH[family]) for family in FAMILIES])
    add_addresses(server_link, ["%s/%d" % (address, PREFIX_LENGTH[family]) for family in FAMILIES for address in ROUTED["servers"][family]])
    add_permanent_neighbours(client_link, ROUTED["router_in"].values(), router_in.mac)
    add_permanent_neighbours(router_in, ROUTED["client"].values(), client_link.mac)
    add_permanent_neighbours(router_out, [address for family in FAMILIES for address in ROUTED["servers"][family]], server_link.mac)
    add_permanent_neighbours(server_link, ROUTED["router_out"].values(), router_out.mac)
    for namespace, key in ((client, "router_in"), (server, "router_out")):
        namespace.run(["ip", "-4", "route", "add", "default", "via", ROUTED[key][4]])
        namespace.run(["ip", "-6", "route", "add", "default", "via", ROUTED[key][6]])
    router.sysctl("net.ipv4.ip_forward", "1")
    router.sysctl("net.ipv6.conf.all.forwarding", "1")
    for key, value in DEFAULT_RATE_LIMITS:
        router.sysctl(key, value)
    for family in FAMILIES:
        rules(router, family, ["-A", "FORWARD", "-p", "tcp", "--dport", PORT_RANGE, "-j", "REJECT", "--reject-with", ADMIN_PROHIBITED[family]])
    ports = MANY_PORTS[:8]
    targets = [{"address": address, "protocol": "tcp", "port": port} for family in FAMILIES for address in ROUTED["servers"][family] for port in ports]
    run = run_module(client, tmp_path, {"targets": targets, "timeout": 1.0})
    results = run.result["results"]
    assert {result["state"] for result in results} == {"rejected"}, details(results)
    assert all(result["detail"].endswith(" from " + ROUTED["router_in"][result["family"]]) for result in results), details(results)
    print("2 servers x 8 TCP ports x 2 families, REJECT admin-prohibited by a router: %.1f s (%s)" % (run.seconds, attempts_text(results)))

# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a long source list costs every new connection: linear rules against one ipset set.

In two network namespaces joined by a veth pair (a client and a server), the
server allows TCP to one port from exactly one source, the client's address,
and that source is checked last, behind N other sources. For each N, the
client opens as many new TCP connections as it can for a fixed time (connect,
then an RST close so no TIME_WAIT piles up) and the benchmark reports
connections per second and connect latency (p50, p99) for:

  none          no firewall at all (the ceiling)
  minimal       policy DROP, an ESTABLISHED/RELATED accept, one rule for the client
                (the stateful firewall a user would write by hand for one source)
  linear        policy DROP, established, then N+1 `-s ADDRESS/32` rules, the client's last:
                what fleetwall compiled until now for a group or address list of N+1 entries
  hand set      the same N+1 addresses in one `ipset create ... hash:net` made with
                plain `ipset add` commands, and one `-m set --match-set` rule (the floor for sets)
  fleetwall set the server's ruleset and set as FleetCompiler compiles them (a host rule `from:`
                the N+1 addresses, fleetwall_set_threshold 16, the default baseline rules in
                front), loaded with `ipset -exist restore` of its `ipsets` text and
                `iptables-restore` of its IPv4 text, as the ruleset module would apply them

Rounds are interleaved (every variant once per round, in turn) and each cell is
the median over rounds, so slow drifts in machine load hit every variant alike.
Ratios are against `minimal`. Nothing here asserts a time: it prints a table.

    .venv/bin/python benchmarks/dataplane.py                      # N = 1,000, 5,000 and 15,000 (about 2 minutes)
    .venv/bin/python benchmarks/dataplane.py --sizes 100 --seconds 0.3 --rounds 2   # smoke size (CI)

Safety: both namespaces come from tests/integration/netns.py (named
fwit-<pid>-<n>, `ip netns identify` checked before every iptables and ipset
call); nothing touches this machine's own firewall.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import textwrap
from typing import Any, Dict, List, Optional, Sequence

from collection_import import import_collection

CLIENT = "10.50.0.1"
SERVER = "10.50.0.2"
PORT = 7000
VARIANTS = ("none", "minimal", "linear", "hand set", "fleetwall set")
HAND_SET = "handset"
TARGET_SHARE = 0.9  # the compiled set's rate against the minimal firewall's, at every N
SET_THRESHOLD = 16  # fleetwall_set_threshold of the compiled server (compile.py's default)

ACCEPTOR = textwrap.dedent(
    """
    import socket, sys
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((sys.argv[1], int(sys.argv[2])))
    server.listen(4096)
    print("listening", flush=True)
    while True:
        server.accept()[0].close()
    """
)
# Opens new connections for a fixed time; prints the count and every connect latency (microseconds).
CONNECTOR = textwrap.dedent(
    """
    import socket, struct, sys, time
    source, target, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    linger = struct.pack("ii", 1, 0)
    latencies, failures = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        sock.settimeout(1.0)
        sock.bind((source, 0))
        started = time.perf_counter()
        try:
            sock.connect((target, port))
            latencies.append(int((time.perf_counter() - started) * 1e6))
        except OSError:
            failures += 1
        sock.close()
    print(failures, seconds, " ".join(map(str, latencies)))
    """
)


def other_sources(count: int) -> List[str]:
    """N addresses that are not the client, none adjacent, so nothing merges into a wider CIDR."""
    return ["10.%d.%d.%d/32" % (60 + (index >> 14), (index >> 6) & 255, (index & 63) * 4 + 1) for index in range(count)]


class Bench:
    """The two namespaces, the server's listener, and one ruleset per variant."""

    def __init__(self, sources: List[str]) -> None:
        from ansible_collections.fleetwall.iptables.tests.integration.lab import build_lab
        from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace

        self.namespaces = [Namespace.create(), Namespace.create()]
        self.lab = build_lab(self.namespaces[0], self.namespaces[1], [CLIENT], [SERVER])
        self.sources = sources
        self.listener: Optional[subprocess.Popen] = None

    def start(self) -> None:
        argv = self.lab.server.exec_argv([sys.executable, "-u", "-c", ACCEPTOR, SERVER, str(PORT)])
        self.listener = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # pylint: disable=consider-using-with
        assert self.listener.stdout is not None and self.listener.stdout.readline().strip() == "listening"
        self.rulesets = {variant: self.ruleset_text(variant) for variant in VARIANTS}

    def ipset(self, argv: Sequence[str], stdin: Optional[str] = None) -> None:
        self.lab.server.iptables_command(["ipset"] + list(argv), stdin=stdin)

    def ruleset_text(self, variant: str) -> str:
        from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Rule
        from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_rule

        head = "*filter\n:INPUT %s [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n" % ("ACCEPT" if variant == "none" else "DROP")
        if variant == "none":
            return head + "COMMIT\n"
        lines = [render_rule("INPUT", Rule("ACCEPT", ctstate=("RELATED", "ESTABLISHED")))]
        port = dict(protocol="tcp", destination_ports=(str(PORT),))
        if variant == "minimal":
            lines.append(render_rule("INPUT", Rule("ACCEPT", source=CLIENT + "/32", **port)))
        elif variant == "linear":
            lines += [render_rule("INPUT", Rule("ACCEPT", source=source, **port)) for source in self.sources + [CLIENT + "/32"]]
        elif variant == "hand set":
            self.ipset(["create", HAND_SET, "hash:net", "maxelem", str(max(65536, 2 * len(self.sources)))])
            self.ipset(["restore"], "".join("add %s %s\n" % (HAND_SET, source) for source in self.sources + [CLIENT]))
            lines.append("-A INPUT -p tcp -m set --match-set %s src -m tcp --dport %d -j ACCEPT" % (HAND_SET, PORT))
        else:
            compiled = compiled_server_ruleset(self.sources + [CLIENT + "/32"])
            self.ipset(["-exist", "restore"], compiled["ipsets"])
            return compiled["ipv4"]
        return head + "\n".join(lines) + "\nCOMMIT\n"

    def measure(self, variant: str, seconds: float) -> Dict[str, Any]:
        self.lab.server.restore(4, self.rulesets[variant])
        argv = [sys.executable, "-c", CONNECTOR, CLIENT, SERVER, str(PORT), str(seconds)]
        output = self.lab.client.run(argv, timeout=seconds + 60).stdout.split(" ", 2)
        latencies = sorted(int(value) for value in output[2].split()) if len(output) > 2 else []
        return {"failures": int(output[0]), "rate": len(latencies) / seconds, "latencies": latencies}

    def close(self) -> None:
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait()
        for namespace in reversed(self.namespaces):
            namespace.delete()


def compiled_server_ruleset(sources: List[str]) -> Dict[str, str]:
    """The server's ruleset as fleetwall compiles it: one host rule accepting tcp/PORT `from:` the sources,
    with fleetwall_set_threshold 16 (the sources become one set) and the default baseline rules."""
    from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
    from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict

    hostvars = {"server": {
        "inventory_hostname": "server", "ansible_host": SERVER, "fleetwall_set_threshold": SET_THRESHOLD,
        "fleetwall_host_rules": {"inbound": [{"from": sources, "proto": "tcp", "port": str(PORT)}]},
    }}
    compiled = ruleset_to_dict(FleetCompiler(hostvars, {"all": ["server"], "ungrouped": ["server"]}).compile_host("server"))
    if "ipsets" not in compiled:
        raise RuntimeError("the compiler made no ipset set of %d sources" % len(sources))
    return compiled


def percentile(values: List[int], fraction: float) -> float:
    if not values:
        return float("nan")
    return float(values[min(len(values) - 1, int(fraction * len(values)))])


def measure_size(size: int, args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    bench = Bench(other_sources(size))
    runs: Dict[str, List[Dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    try:
        bench.start()
        for round_number in range(args.rounds):
            order = VARIANTS if round_number % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                runs[variant].append(bench.measure(variant, args.seconds))
    finally:
        bench.close()
    summary: Dict[str, Dict[str, float]] = {}
    for variant, results in runs.items():
        summary[variant] = {
            "rate": statistics.median(result["rate"] for result in results),
            "p50": statistics.median(percentile(result["latencies"], 0.5) for result in results),
            "p99": statistics.median(percentile(result["latencies"], 0.99) for result in results),
            "failures": sum(result["failures"] for result in results),
        }
    return summary


def print_table(rows: Dict[int, Dict[str, Dict[str, float]]]) -> None:
    print("\nnew TCP connections per second (median of rounds), connect latency p50/p99 in microseconds,")
    print("and the rate as a share of the minimal stateful firewall's:\n")
    header = "| N other sources | " + " | ".join(VARIANTS) + " | linear / minimal | hand set / minimal | fleetwall set / minimal |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for size, summary in rows.items():
        cells = ["%.0f/s (%.0f/%.0f us)" % (summary[v]["rate"], summary[v]["p50"], summary[v]["p99"]) for v in VARIANTS]
        minimal = summary["minimal"]["rate"] or float("nan")
        ratios = ["%.2fx" % (summary[v]["rate"] / minimal) for v in ("linear", "hand set", "fleetwall set")]
        print("| %s | %s | %s |" % ("{:,}".format(size), " | ".join(cells), " | ".join(ratios)))
    shares = ["%s: %.2fx" % ("{:,}".format(size), summary["fleetwall set"]["rate"] / (summary["minimal"]["rate"] or float("nan")))
              for size, summary in rows.items()]
    passed = all(summary["fleetwall set"]["rate"] >= TARGET_SHARE * summary["minimal"]["rate"] for summary in rows.values())
    print("\nTarget (issue 10, reported only): the compiled fleetwall set at least %.1fx of minimal at every N: %s  %s"
          % (TARGET_SHARE, ", ".join(shares), "PASS" if passed else "MISS"))
    failed = {size: {v: s["failures"] for v, s in summary.items() if s["failures"]} for size, summary in rows.items()}
    failed = {size: value for size, value in failed.items() if value}
    if failed:
        print("\nconnections that failed (the client's one allowed source was refused or timed out): %s" % failed)


def parse_sizes(text: str) -> List[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or any(size < 1 or size > 200_000 for size in sizes):
        raise argparse.ArgumentTypeError("sizes are counts of other sources from 1 to 200,000, e.g. 1000,5000")
    return sizes


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[1000, 5000, 15000], help="N, the other sources (default 1000,5000,15000)")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one measurement (default 1.0)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per size (default 5)")
    args = parser.parse_args(argv)
    import_collection()
    from ansible_collections.fleetwall.iptables.tests.integration.netns import environment_problem

    problem = environment_problem()
    if problem:
        print("cannot run: %s" % problem, file=sys.stderr)
        return 2
    print("fleetwall dataplane benchmark: %d CPU(s), load average %s, sizes %s, %d rounds of %.1f s"
          % (os.cpu_count() or 0, " ".join("%.2f" % value for value in os.getloadavg()),
             ", ".join(map(str, args.sizes)), args.rounds, args.seconds), flush=True)
    rows = {}
    for size in args.sizes:
        rows[size] = measure_size(size, args)
        print("N = %d done" % size, flush=True)
    print_table(rows)
    print("\nload average at the end: %s (other work on the machine moves every number)"
          % " ".join("%.2f" % value for value in os.getloadavg()))
    return 1 if any(summary[v]["rate"] == 0 for summary in rows.values() for v in VARIANTS) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Network namespaces for the integration tests, and iptables inside them only.

Every namespace this module creates is named ``fwit-<pid>-<n>`` and is deleted
by whoever created it (the fixtures in conftest.py, in ``finally``), and at
interpreter exit as a last resort. iptables, ip6tables and their restore and
save tools run only through ``Namespace.iptables_command``, which first proves
with ``ip netns exec NAME ip netns identify`` that the command will run inside
that test namespace and not in the machine's own network namespace.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import subprocess
import time
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

PREFIX = "fwit-%d-" % os.getpid()
NAME_PATTERN = re.compile(r"^fwit-\d+-\d+$")
IPTABLES_TOOLS = {
    4: {"restore": "iptables-restore", "save": "iptables-save", "cli": "iptables"},
    6: {"restore": "ip6tables-restore", "save": "ip6tables-save", "cli": "ip6tables"},
}
REQUIRED_TOOLS = ("ip", "iptables", "iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save")

_numbers = itertools.count()
_alive: Dict[str, "Namespace"] = {}


class UnsafeNamespaceError(RuntimeError):
    """Refusing to run iptables: no proof that it would run in a test namespace."""


class CommandError(RuntimeError):
    pass


def environment_problem() -> Optional[str]:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return (
            "the integration tests create network namespaces and need root (run them as root, "
            "or set FLEETWALL_SKIP_INTEGRATION=1 to skip them)"
        )
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return "the integration tests need %s on PATH (Debian: apt-get install iproute2 iptables)" % ", ".join(missing)
    return None


def _run(argv: Sequence[str], stdin: Optional[str] = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    result = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise CommandError(
            "command failed (exit %d): %s\n--- stderr:\n%s--- stdout:\n%s"
            % (result.returncode, " ".join(argv), result.stderr, result.stdout)
        )
    return result


def own_netns_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


class Namespace:
    """One network namespace created by this process."""

    def __init__(self, name: str) -> None:
        if not NAME_PATTERN.match(name) or not name.startswith(PREFIX):
            raise UnsafeNamespaceError("%r is not a namespace name this test process owns" % name)
        self.name = name
        self.deleted = False

    @classmethod
    def create(cls) -> "Namespace":
        namespace = cls(PREFIX + str(next(_numbers)))
        _run(["ip", "netns", "add", namespace.name])
        _alive[namespace.name] = namespace
        try:
            namespace.run(["ip", "link", "set", "lo", "up"])
            for key, value in (
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.default.rp_filter", "0"),
                ("net.ipv6.conf.all.accept_ra", "0"),
                ("net.ipv6.conf.default.accept_ra", "0"),
                ("net.ipv6.conf.all.accept_dad", "0"),
                ("net.ipv6.conf.default.accept_dad", "0"),
                ("net.ipv6.conf.default.router_solicitations", "0"),
            ):
                namespace.sysctl(key, value)
        except BaseException:
            namespace.delete()
            raise
        return namespace

    def __repr__(self) -> str:
        return "Namespace(%r)" % self.name

    # ------------------------------------------------------------ commands

    def exec_argv(self, argv: Sequence[str]) -> List[str]:
        if self.deleted:
            raise UnsafeNamespaceError("namespace %s is already deleted" % self.name)
        return ["ip", "netns", "exec", self.name] + list(argv)

    def run(self, argv: Sequence[str], stdin: Optional[str] = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command inside the namespace (never iptables or ipset: see iptables_command)."""
        if os.path.basename(argv[0]).startswith(("iptables", "ip6tables", "nft", "xtables", "ipset")):
            raise UnsafeNamespaceError("run iptables through Namespace.iptables_command, which checks the namespace first")
        return _run(self.exec_argv(argv), stdin=stdin, check=check, timeout=timeout)

    def sysctl(self, key: str, value: str) -> None:
        self.run(["sysctl", "-q", "-w", "%s=%s" % (key, value)])

    def guard(self) -> None:
        """Prove that `ip netns exec NAME` lands in this test namespace; raise otherwise."""
        if self.deleted or not NAME_PATTERN.match(self.name) or not self.name.startswith(PREFIX):
            raise UnsafeNamespaceError("refusing to run iptables: %r is not a live test namespace" % self.name)
        result = _run(self.exec_argv(["ip", "netns", "identify"]), check=False, timeout=20)
        identified = result.stdout.strip()
        if result.returncode != 0 or identified != self.name:
            raise UnsafeNamespaceError(
                "refusing to run iptables: `ip netns exec %s ip netns identify` printed %r (exit %d, stderr %r), "
                "not the test namespace name" % (self.name, identified, result.returncode, result.stderr.strip())
            )
        # Belt and braces: the namespace file must not be the namespace this process runs in.
        if os.stat("/run/netns/" + self.name).st_ino == own_netns_inode():
            raise UnsafeNamespaceError("refusing to run iptables: %s is this machine's own network namespace" % self.name)

    def iptables_command(self, argv: Sequence[str], stdin: Optional[str] = None, check: bool = True) -> subprocess.CompletedProcess:
        """The only way these tests run iptables and ipset tools: guarded, inside the namespace."""
        if not os.path.basename(argv[0]).startswith(("iptables", "ip6tables", "ipset")):
            raise ValueError("not an iptables or ipset tool: %r" % argv[0])
        self.guard()
        return _run(self.exec_argv(argv), stdin=stdin, check=check)

    def restore(self, family: int, text: str, test: bool = False) -> None:
        argv = [IPTABLES_TOOLS[family]["restore"]] + (["--test"] if test else [])
        self.iptables_command(argv, stdin=text)

    def save(self, family: int, counters: bool = False) -> str:
        argv = [IPTABLES_TOOLS[family]["save"]] + (["-c"] if counters else [])
        return self.iptables_command(argv).stdout

    # ------------------------------------------------------------ lifetime

    def delete(self) -> None:
        if self.deleted:
            return
        self.deleted = True
        _alive.pop(self.name, None)
        # Processes left inside would keep the namespace alive; kill only those in this namespace.
        pids = _run(["ip", "netns", "pids", self.name], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        _run(["ip", "netns", "del", self.name], check=False)


@atexit.register
def _delete_leftovers() -> None:
    for namespace in list(_alive.values()):
        namespace.delete()


# ---------------------------------------------------------------- links


class Link(NamedTuple):
    namespace: Namespace
    name: str
    mac: str


def veth_pair(left: Namespace, left_name: str, right: Namespace, right_name: str) -> Tuple[Link, Link]:
    """A veth pair made inside `left`, with its peer moved straight into `right`.

    The pair is created from inside the left namespace, so no interface ever
    appears in the machine's own namespace.
    """
    left.run(["ip", "link", "add", left_name, "type", "veth", "peer", "name", right_name, "netns", right.name])
    links = []
    for namespace, name in ((left, left_name), (right, right_name)):
        namespace.sysctl("net.ipv4.conf.%s.rp_filter" % name, "0")
        namespace.sysctl("net.ipv6.conf.%s.accept_dad" % name, "0")
        namespace.run(["ip", "link", "set", name, "up"])
        mac = namespace.run(["cat", "/sys/class/net/%s/address" % name]).stdout.strip()
        links.append(Link(namespace, name, mac))
    return links[0], links[1]


def add_addresses(link: Link, addresses: Iterable[str]) -> None:
    """Addresses as ADDRESS/PREFIX; IPv6 ones with nodad, so they are usable at once."""
    commands = []
    for address in addresses:
        extra = " nodad" if ":" in address else ""
        commands.append("address add %s dev %s%s" % (address, link.name, extra))
    if commands:
        link.namespace.run(["ip", "-batch", "-"], stdin="\n".join(commands) + "\n")


def add_permanent_neighbours(link: Link, addresses: Iterable[str], mac: str) -> None:
    """Static ARP / NDP entries: no neighbour discovery traffic while the tests count packets."""
    commands = ["neighbour replace %s lladdr %s dev %s nud permanent" % (address, mac, link.name) for address in addresses]
    if commands:
        link.namespace.run(["ip", "-batch", "-"], stdin="\n".join(commands) + "\n")


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)

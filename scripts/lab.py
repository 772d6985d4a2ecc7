"""A lab of network-namespace hosts for the fleetwall demo.

Every inventory host becomes a network namespace ``fwlab-<host>`` with one
veth leg on a bridge that lives in its own namespace ``fwlab-switch``, using
the IPv4 and IPv6 addresses from its ``fleetwall_host_addresses``. An extra
namespace ``fwlab-outside`` stands for a machine that is in no group. Nothing
is created in, or changed on, this machine's own network namespace, and every
iptables call checks first that it runs inside the intended namespace.

Each host runs a real sshd (its configuration, keys and pid file live in
.build/demo/lab, never in /etc), so Ansible reaches the hosts over SSH from
inside the bastion's namespace, the way an operator's jump host would.

    lab.py up INVENTORY             create the namespaces, start sshd and listeners
    lab.py playbook INVENTORY PLAY  run ansible-playbook from the bastion against the lab
    lab.py apply RENDERED_DIR       iptables-restore HOST.v4 / HOST.v6 into each host
    lab.py probe INVENTORY          connect from every host to every host and print who reaches what
    lab.py iptables HOST ARGS...    run iptables (or ip6tables: -6) by hand in one host, as an operator would
    lab.py down                     remove everything the lab created
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PREFIX = "fwlab-"
SWITCH = PREFIX + "switch"
OUTSIDE = "outside"
OUTSIDE_ADDRESSES = ("10.200.0.250", "fd00:200::250")
PORTS = {"ssh": 22, "http": 80, "https": 443, "postgres": 5432, "redis": 6379, "node-exporter": 9100}
LISTENER_PORTS = [port for port in PORTS.values() if port != 22]  # sshd answers on 22
LAB_DIR = Path(__file__).resolve().parent.parent / ".build" / "demo" / "lab"
CONTROLLER = "bastion1"
SSHD_CONFIG = """\
Port 22
{listen}
HostKey {lab}/ssh/host_key
AuthorizedKeysFile {lab}/ssh/authorized_keys
PidFile {lab}/ssh/sshd-{host}.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
"""
PROBE_TIMEOUT = 0.6

LISTENER = textwrap.dedent(
    """
    import selectors, socket, sys
    sel = selectors.DefaultSelector()
    for port in map(int, sys.argv[1:]):
        for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            server = socket.socket(family, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            server.bind((address, port))
            server.listen(64)
            sel.register(server, selectors.EVENT_READ)
    while True:
        for key, events in sel.select():
            connection, peer = key.fileobj.accept()
            connection.close()
    """
)

PROBER = textwrap.dedent(
    """
    import json, socket, sys
    from concurrent.futures import ThreadPoolExecutor
    targets = json.loads(sys.stdin.read())
    def probe(target):
        address, port = target
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(%r)
            try:
                sock.connect((address, port))
                return "open"
            except ConnectionRefusedError:
                return "closed"
            except OSError:
                return "filtered"
    with ThreadPoolExecutor(32) as pool:
        print(json.dumps(list(pool.map(probe, targets))))
    """
    % PROBE_TIMEOUT
)


def run(*command: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=input_text, text=True, capture_output=True, check=check)


def in_namespace(namespace: str, *command: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return run("ip", "netns", "exec", namespace, *command, input_text=input_text)


def assert_inside(namespace: str) -> None:
    """Refuse to touch a firewall unless the command really runs in `namespace`."""
    where = run("ip", "netns", "exec", namespace, "ip", "netns", "identify", check=False).stdout.strip()
    if where != namespace:
        sys.exit(f"lab: refusing to run iptables: expected namespace {namespace!r}, got {where!r}")


def lab_hosts(inventory: str) -> dict[str, list[str]]:
    """host -> its addresses, read by ansible-inventory from the inventory itself."""
    ansible_inventory = Path(sys.executable).with_name("ansible-inventory")
    listing = json.loads(run(str(ansible_inventory), "-i", inventory, "--list").stdout)
    hostvars = listing["_meta"]["hostvars"]
    hosts = {}
    for host in sorted(hostvars):
        addresses = hostvars[host].get("fleetwall_host_addresses")
        if not addresses:
            sys.exit(f"lab: host {host} has no fleetwall_host_addresses in {inventory}")
        hosts[host] = [str(address) for address in addresses]
    hosts[OUTSIDE] = list(OUTSIDE_ADDRESSES)
    return hosts


def namespaces() -> list[str]:
    listing = run("ip", "netns", "list").stdout.split()
    return [name for name in listing if name.startswith(PREFIX)]


def on_link_prefix(hosts: dict[str, list[str]], version: int) -> int:
    """The longest prefix that puts every lab address of a family on one link."""
    addresses = [ipaddress.ip_address(a) for addresses in hosts.values() for a in addresses]
    addresses = [address for address in addresses if address.version == version]
    bits = 32 if version == 4 else 128
    for length in range(bits, -1, -1):
        networks = {ipaddress.ip_network(f"{address}/{length}", strict=False) for address in addresses}
        if len(networks) <= 1:
            return min(length, 24 if version == 4 else 64)
    return 0


def up(inventory: str) -> None:
    down()
    shutil.rmtree(LAB_DIR / "root", ignore_errors=True)  # each lab starts with no rules files or backups
    hosts = lab_hosts(inventory)
    prefix = {4: on_link_prefix(hosts, 4), 6: on_link_prefix(hosts, 6)}
    run("ip", "netns", "add", SWITCH)
    in_namespace(SWITCH, "ip", "link", "add", "br0", "type", "bridge")
    in_namespace(SWITCH, "ip", "link", "set", "br0", "up")
    for index, (host, addresses) in enumerate(hosts.items()):
        namespace = PREFIX + host
        run("ip", "netns", "add", namespace)
        leg = f"p{index}"
        # Created inside the switch namespace, so no interface ever appears in ours.
        in_namespace(SWITCH, "ip", "link", "add", leg, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        in_namespace(SWITCH, "ip", "link", "set", leg, "master", "br0", "up")
        in_namespace(namespace, "ip", "link", "set", "lo", "up")
        for address in addresses:
            ip = ipaddress.ip_address(address)
            extra = ["nodad"] if ip.version == 6 else []
            in_namespace(namespace, "ip", "addr", "add", f"{ip}/{prefix[ip.version]}", "dev", "eth0", *extra)
        in_namespace(namespace, "ip", "link", "set", "eth0", "up")
        # Connection tracking active from the start, as on a server that has had a
        # stateful firewall before: otherwise the first ruleset would see the
        # controller's open SSH connections mid-stream, as NEW (docs/apply.md).
        assert_inside(namespace)
        in_namespace(namespace, "iptables", "-t", "mangle", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "INVALID",
                     "-m", "comment", "--comment", "fleetwall lab: conntrack on", "-j", "RETURN")
        in_namespace(namespace, "ip6tables", "-t", "mangle", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "INVALID",
                     "-m", "comment", "--comment", "fleetwall lab: conntrack on", "-j", "RETURN")
        if host != OUTSIDE:
            start_sshd(host, addresses)
            subprocess.Popen(
                ["ip", "netns", "exec", namespace, sys.executable, "-c", LISTENER, *map(str, LISTENER_PORTS)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
    time.sleep(0.5)
    write_connection_inventory(hosts)
    print(f"lab: {len(hosts)} hosts up: {', '.join(hosts)}; sshd on every host but {OUTSIDE}")


def start_sshd(host: str, addresses: list[str]) -> None:
    ssh_dir = LAB_DIR / "ssh"
    if not (ssh_dir / "host_key").exists():
        ssh_dir.mkdir(parents=True, exist_ok=True)
        for name in ("host_key", "client_key"):
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"fleetwall-lab-{name}", "-f", str(ssh_dir / name))
        (ssh_dir / "authorized_keys").write_text((ssh_dir / "client_key.pub").read_text())
    listen = "\n".join(f"ListenAddress {address}" for address in addresses)
    config = ssh_dir / f"sshd-{host}.conf"
    config.write_text(SSHD_CONFIG.format(listen=listen, lab=LAB_DIR, host=host))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    in_namespace(PREFIX + host, "/usr/sbin/sshd", "-f", str(config), "-E", str(ssh_dir / f"sshd-{host}.log"))


def write_connection_inventory(hosts: dict[str, list[str]]) -> None:
    """How Ansible reaches each lab host, and where its 'persistent' files go."""
    lines = ["all:", "  hosts:"]
    for host, addresses in hosts.items():
        if host == OUTSIDE:
            continue
        root = LAB_DIR / "root" / host
        ipv4 = next(address for address in addresses if ":" not in address)
        lines += [
            f"    {host}:",
            f"      ansible_host: {ipv4}",
            "      ansible_user: root",
            f"      ansible_ssh_private_key_file: {LAB_DIR / 'ssh' / 'client_key'}",
            "      ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes",
            f"      ansible_python_interpreter: {sys.executable}",
            "      fleetwall_become: false",
            f"      fleetwall_firewall_backup_dir: {root}/var/lib/fleetwall",
            f"      fleetwall_persistence_root: {root}",
            "      fleetwall_persistence_install_packages: false",
            "      fleetwall_persistence_manage_services: false",
        ]
    (LAB_DIR / "connection.yml").write_text("\n".join(lines) + "\n")


def check_ssh_lands_in_the_lab(hosts: dict[str, list[str]]) -> None:
    """Before Ansible touches a firewall: every SSH target must be the lab namespace it is meant to be."""
    for host, addresses in hosts.items():
        if host == OUTSIDE:
            continue
        ipv4 = next(address for address in addresses if ":" not in address)
        where = in_namespace(
            PREFIX + CONTROLLER, "ssh", "-i", str(LAB_DIR / "ssh" / "client_key"), "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR",
            f"root@{ipv4}", "ip netns identify",
        ).stdout.strip()
        if where != PREFIX + host:
            sys.exit(f"lab: refusing to run Ansible: ssh to {host} ({ipv4}) lands in {where!r}, not {PREFIX + host!r}")


def playbook(inventory: str, play: str, extra: list[str]) -> int:
    hosts = lab_hosts(inventory)
    check_ssh_lands_in_the_lab(hosts)
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    command = [
        "ip", "netns", "exec", PREFIX + CONTROLLER, str(ansible_playbook),
        "-i", inventory, "-i", str(LAB_DIR / "connection.yml"), play, *extra,
    ]
    environment = dict(os.environ, ANSIBLE_PIPELINING="1", ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(command, env=environment, check=False).returncode


def apply(rendered: str) -> None:
    for path in sorted(Path(rendered).glob("*.v4")):
        host = path.stem
        namespace = PREFIX + host
        assert_inside(namespace)
        in_namespace(namespace, "iptables-restore", input_text=path.read_text())
        in_namespace(namespace, "ip6tables-restore", input_text=path.with_suffix(".v6").read_text())
        print(f"lab: applied {path.name} and {path.with_suffix('.v6').name} in {namespace}")


def probe(inventory: str) -> int:
    hosts = lab_hosts(inventory)
    targets = [host for host in hosts if host != OUTSIDE]
    cases = [
        (source, target, service, address)
        for source in hosts
        for target in targets
        if target != source
        for service in PORTS
        for address in hosts[target]
    ]

    def probe_from(source: str) -> list[str]:
        mine = [[address, PORTS[service]] for src, target, service, address in cases if src == source]
        result = in_namespace(PREFIX + source, sys.executable, "-c", PROBER, input_text=json.dumps(mine))
        return json.loads(result.stdout)

    with ThreadPoolExecutor(len(hosts)) as pool:
        outcomes = dict(zip(hosts, pool.map(probe_from, hosts)))
    position = {source: 0 for source in hosts}
    reached: dict[tuple[str, str], list[str]] = {}
    for source, target, service, address in cases:
        outcome = outcomes[source][position[source]]
        position[source] += 1
        family = "v6" if ":" in address else "v4"
        if outcome == "open":
            reached.setdefault((target, service), []).append(f"{source}/{family}")
    width = max(len(host) for host in targets) + 2
    print("\nWho reaches what (real TCP connections; open = handshake completed):\n")
    for target in targets:
        for service in PORTS:
            sources = reached.get((target, service), [])
            print(f"  {target:<{width}} {service:<9} <- {', '.join(sources) if sources else '(nobody)'}")
    return 0


def hand_change(host: str, arguments: list[str]) -> int:
    """An operator's manual change on one lab host: what verify.yml must notice."""
    namespace = PREFIX + host
    if namespace not in namespaces():
        sys.exit(f"lab: no lab host {host!r}; is the lab up?")
    assert_inside(namespace)
    tool = "iptables"
    if arguments[:1] == ["-6"]:
        tool, arguments = "ip6tables", arguments[1:]
    return subprocess.run(["ip", "netns", "exec", namespace, tool, *arguments], check=False).returncode


def down() -> None:
    for pid_file in (LAB_DIR / "ssh").glob("sshd-*.pid") if (LAB_DIR / "ssh").exists() else ():
        try:
            os.kill(int(pid_file.read_text().split()[0]), 9)
        except (ProcessLookupError, ValueError):
            pass
        pid_file.unlink()
    for namespace in namespaces():
        pids = run("ip", "netns", "pids", namespace, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        run("ip", "netns", "del", namespace, check=False)


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("lab: network namespaces need root")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up").add_argument("inventory")
    playbook_parser = commands.add_parser("playbook")
    playbook_parser.add_argument("inventory")
    playbook_parser.add_argument("play")
    playbook_parser.add_argument("extra", nargs=argparse.REMAINDER)
    commands.add_parser("apply").add_argument("rendered")
    commands.add_parser("probe").add_argument("inventory")
    hand_parser = commands.add_parser("iptables")
    hand_parser.add_argument("host")
    hand_parser.add_argument("arguments", nargs=argparse.REMAINDER)
    commands.add_parser("down")
    arguments = parser.parse_args()
    if arguments.command == "up":
        up(arguments.inventory)
    elif arguments.command == "playbook":
        return playbook(arguments.inventory, arguments.play, arguments.extra)
    elif arguments.command == "apply":
        apply(arguments.rendered)
    elif arguments.command == "probe":
        return probe(arguments.inventory)
    elif arguments.command == "iptables":
        return hand_change(arguments.host, arguments.arguments)
    else:
        down()
    return 0


if __name__ == "__main__":
    sys.exit(main())

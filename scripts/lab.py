"""A lab of network-namespace hosts for the fleetwall demo, from six hosts to a few hundred.

Every inventory host becomes a network namespace ``fwlab-<host>``, joined by
its own veth pair to one router namespace ``fwlab-router``. A host holds its
addresses from ``fleetwall_host_addresses`` as /32 and /128 and routes
everything through the router, which has a /32 and a /128 route per host. So
a host needs one neighbour entry per family (the router) and the router one
per host, and the lab writes them all as permanent entries (it chooses every
MAC address itself): no ARP or neighbour discovery ever crosses a link. A
flat bridge would need about N x N entries per family, and the kernel's
neighbour table, shared by every namespace, holds 1,024 before it reports
"neighbor table overflow" and drops packets: no good beyond a few dozen hosts.
An extra namespace ``fwlab-outside`` stands for a machine that is in no group.

A lab may have gateways (examples/lab-gateway): a host with
``fleetwall_lab_inside`` (its addresses on a private network, with their
prefix) gets a second interface, eth1, and a host with ``fleetwall_lab_behind:
GATEWAY`` is joined to that interface instead of the router, with its default
route through the gateway. The router knows nothing of the private network:
only the gateway reaches such a host, and Ansible does too, through an SSH
ProxyCommand to the gateway. ``fleetwall_lab_listen`` adds TCP ports the
listener answers on in one host (a backend's forwarded port).

Nothing is created in, or changed on, this machine's own network namespace:
veth pairs are made inside the router namespace, the only sysctls set are the
router's forwarding switches inside its namespace, and every iptables call
and sysctl first checks (``ip netns identify``) that it runs in the intended
namespace.

Each host runs a real sshd with its own host key (configuration, keys and pid
file in .build/demo/lab, never in /etc). Ansible reaches the hosts over SSH
from inside the bastion's namespace, the way an operator's jump host would,
and checks every host key against a known_hosts file that ``up`` writes from
the keys it made: a connection that does not land on that host's own sshd, in
that host's namespace, fails before Ansible runs anything there. So
``playbook`` needs no per-host step before Ansible starts.

    lab.py inventory SIZE DIR       write DIR/inventory.yml and DIR/group_vars: examples/lab's groups scaled to SIZE hosts
    lab.py up INVENTORY             create the namespaces, start sshd and the listeners
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
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

PREFIX = "fwlab-"
ROUTER = PREFIX + "router"
OUTSIDE = "outside"
OUTSIDE_ADDRESSES = ("10.200.0.250", "fd00:200::250")
# The router's end of every host link: one gateway address per family, the same on each link.
GATEWAY = {4: "169.254.0.1", 6: "fe80::1"}
PORTS = {"ssh": 22, "http": 80, "https": 443, "postgres": 5432, "redis": 6379, "node-exporter": 9100}
LISTENER_PORTS = [port for port in PORTS.values() if port != 22]  # sshd answers on 22
REPO = Path(__file__).resolve().parent.parent
LAB_DIR = REPO / ".build" / "demo" / "lab"
SSH_DIR = LAB_DIR / "ssh"
EXAMPLE = REPO / "examples" / "lab"
CONTROLLER = "bastion1"
SETUP_WORKERS = 4  # namespaces set up at once: most of the time is spent waiting for short-lived tools
SSHD_CONFIG = """\
Port 22
{listen}
HostKey {ssh}/host_key-{host}
AuthorizedKeysFile {ssh}/authorized_keys
PidFile {ssh}/sshd-{host}.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
Subsystem sftp internal-sftp
"""


# The groups of examples/lab scaled up: at 100 hosts, web 40, cache 20, db 10,
# monitoring 4 and 25 hosts in no group, plus bastion1. A group's hosts are
# numbered from 1 and get HOST_BASE + n as the last number of both addresses,
# so the first hosts of each group have the addresses they have in examples/lab.
class ScaledGroup(NamedTuple):
    group: str | None  # None: hosts in no group
    name: str  # host name stem
    share: int  # of the hosts after the bastion
    octet: int  # third octet of the addresses
    first: int  # number of the first host


SCALED_GROUPS = (
    ScaledGroup("web", "web", 40, 1, 11),
    ScaledGroup("cache", "cache", 20, 3, 31),
    ScaledGroup("db", "db", 10, 2, 21),
    ScaledGroup("monitoring", "mon", 4, 4, 41),
    ScaledGroup(None, "node", 25, 5, 101),
)
OVERFLOW = "neighbor table overflow"

LISTENER = textwrap.dedent(
    """
    # One process listens for every host: it enters each host's network
    # namespace just long enough to open its sockets there.
    import json, os, selectors, socket, sys
    plan = json.loads(sys.argv[1])  # namespace -> ports
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    sel = selectors.DefaultSelector()
    for namespace, ports in plan.items():
        handle = os.open("/run/netns/" + namespace, os.O_RDONLY)
        os.setns(handle, os.CLONE_NEWNET)
        os.close(handle)
        for port in ports:
            for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                server = socket.socket(family, socket.SOCK_STREAM)
                server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                server.bind((address, port))
                server.listen(4096)
                server.setblocking(False)
                sel.register(server, selectors.EVENT_READ)
        os.setns(home, os.CLONE_NEWNET)
    print("listening", flush=True)
    while True:
        for key, events in sel.select():
            try:
                connection, peer = key.fileobj.accept()
            except BlockingIOError:
                continue
            connection.close()
    """
)

PROBER = textwrap.dedent(
    """
    import json, socket, sys
    from concurrent.futures import ThreadPoolExecutor
    targets = json.loads(sys.stdin.read())
    def probe(target, timeout):
        address, port = target
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect((address, port))
                return "open"
            except ConnectionRefusedError:
                return "closed"
            except OSError:
                return "filtered"
    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(lambda target: probe(target, 0.6), targets))
        # Silence once more, with more patience, so a busy machine cannot pass for a firewall.
        silent = [index for index, outcome in enumerate(outcomes) if outcome == "filtered"]
        for index, outcome in zip(silent, pool.map(lambda index: probe(targets[index], 2.0), silent)):
            outcomes[index] = outcome
    print(json.dumps(outcomes))
    """
)


class Fleet(NamedTuple):
    addresses: dict[str, list[str]]  # host -> its addresses, OUTSIDE last
    groups: dict[str, list[str]]  # named group -> its hosts
    inside: dict[str, list[str]]  # gateway -> its addresses on its private network, with prefix (fleetwall_lab_inside)
    behind: dict[str, str]  # host on a private network -> its gateway (fleetwall_lab_behind)
    listen: dict[str, list[int]]  # host -> TCP ports the listener also answers on (fleetwall_lab_listen)


def run(*command: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, input=input_text, text=True, capture_output=True, check=False)
    if check and completed.returncode != 0:
        sys.exit(f"lab: {' '.join(command)} failed (exit {completed.returncode}): {completed.stderr.strip()}")
    return completed


def in_namespace(namespace: str, *command: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return run("ip", "netns", "exec", namespace, *command, input_text=input_text)


def assert_inside(namespace: str) -> None:
    """Refuse to touch a firewall or a sysctl unless the command really runs in `namespace`."""
    where = run("ip", "netns", "exec", namespace, "ip", "netns", "identify", check=False).stdout.strip()
    if where != namespace:
        sys.exit(f"lab: refusing to run iptables or sysctl: expected namespace {namespace!r}, got {where!r}")


def ip_batch(namespace: str | None, lines: list[str]) -> None:
    """Many `ip` commands in one process (in `namespace`, or for `ip netns` itself in none)."""
    where = ["-n", namespace] if namespace else []
    run("ip", *where, "-batch", "-", input_text="\n".join(lines) + "\n")


def lab_fleet(inventory: str) -> Fleet:
    """The hosts' addresses and the named groups, read by ansible-inventory from the inventory itself."""
    ansible_inventory = Path(sys.executable).with_name("ansible-inventory")
    listing = json.loads(run(str(ansible_inventory), "-i", inventory, "--list").stdout)
    hostvars = listing["_meta"]["hostvars"]
    addresses = {}
    for host in sorted(hostvars, key=natural_key):
        found = hostvars[host].get("fleetwall_host_addresses")
        if not found:
            sys.exit(f"lab: host {host} has no fleetwall_host_addresses in {inventory}")
        addresses[host] = [str(address) for address in found]
    addresses[OUTSIDE] = list(OUTSIDE_ADDRESSES)
    groups = {
        name: sorted(group.get("hosts", []), key=natural_key)
        for name, group in listing.items()
        if name not in ("_meta", "all", "ungrouped") and group.get("hosts")
    }
    inside = {host: [str(item) for item in hostvars[host]["fleetwall_lab_inside"]]
              for host in addresses if hostvars.get(host, {}).get("fleetwall_lab_inside")}
    behind = {host: str(hostvars[host]["fleetwall_lab_behind"])
              for host in addresses if hostvars.get(host, {}).get("fleetwall_lab_behind")}
    for host, gateway in behind.items():
        if gateway not in inside:
            sys.exit(f"lab: {host}'s fleetwall_lab_behind names {gateway!r}, which has no fleetwall_lab_inside")
    listen = {host: [int(port) for port in hostvars[host]["fleetwall_lab_listen"]]
              for host in addresses if hostvars.get(host, {}).get("fleetwall_lab_listen")}
    return Fleet(addresses, groups, inside, behind, listen)


def natural_key(name: str) -> tuple:
    """web2 before web10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def namespaces() -> list[str]:
    listing = run("ip", "netns", "list").stdout.split()
    return [name for name in listing if name.startswith(PREFIX)]


# ---------------------------------------------------------------- a scaled-up inventory


def scaled_counts(size: int) -> list[int]:
    """How many hosts each of SCALED_GROUPS gets in a lab of `size` hosts (one is the bastion), at least one each."""
    others = size - 1
    if others < len(SCALED_GROUPS):
        sys.exit(f"lab: a scaled lab needs at least {len(SCALED_GROUPS) + 1} hosts, got {size}")
    total = sum(scaled.share for scaled in SCALED_GROUPS)
    counts = [max(1, others * scaled.share // total) for scaled in SCALED_GROUPS]
    by_remainder = sorted(range(len(counts)), key=lambda i: -(others * SCALED_GROUPS[i].share % total))
    for index in (by_remainder * others)[: others - sum(counts)]:
        counts[index] += 1
    while sum(counts) > others:  # the one-host minimum took more than the shares left
        counts[counts.index(max(counts))] -= 1
    return counts


def write_inventory(size: int, directory: Path) -> None:
    """examples/lab scaled to `size` hosts, with its policy (group_vars) copied beside it."""
    counts = scaled_counts(size)
    if max(counts) > 150:
        sys.exit(f"lab: at most 150 hosts per group fit the address plan, {size} hosts need {max(counts)}")
    lines = [
        f"# examples/lab scaled to {size} hosts by scripts/lab.py inventory {size}; the policy is examples/lab's.",
        "all:",
        "  hosts:",
    ]
    ungrouped, children = [], []
    for scaled, count in zip(SCALED_GROUPS, counts):
        group, name, octet, first = scaled.group, scaled.name, scaled.octet, scaled.first
        hosts = [
            f"{'    ' if group is None else '        '}{name}{n}: "
            f"{{fleetwall_host_addresses: [10.0.{octet}.{first - 1 + n}, \"fd00::{octet}:{first - 1 + n}\"]}}"
            for n in range(1, count + 1)
        ]
        if group is None:
            ungrouped += hosts
        else:
            children += [f"    {group}:", "      hosts:", *hosts]
    lines += ungrouped + ["  children:", "    bastion:", "      hosts:",
                          '        bastion1: {fleetwall_host_addresses: [10.0.0.2, "fd00::2"]}', *children]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "inventory.yml").write_text("\n".join(lines) + "\n")
    shutil.rmtree(directory / "group_vars", ignore_errors=True)
    shutil.copytree(EXAMPLE / "group_vars", directory / "group_vars")
    print(f"lab: wrote {directory / 'inventory.yml'}: {size} hosts, "
          + ", ".join(f"{scaled.group or 'no group'} {count}" for scaled, count in zip(SCALED_GROUPS, counts)) + ", bastion 1")


# ---------------------------------------------------------------- up


def mac(index: int, end: int) -> str:
    """A locally administered address: host `index`, end 1 the host's side, 2 the router's."""
    return f"02:66:77:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}:{end:02x}"


def router_lines(index: int, host: str, addresses: list[str]) -> list[str]:
    leg = f"h{index}"
    lines = [
        f"link add {leg} address {mac(index, 2)} type veth peer name eth0 address {mac(index, 1)} netns {PREFIX + host}",
        f"link set {leg} addrgenmode none",
        f"addr add {GATEWAY[4]}/32 dev {leg}",
        f"addr add {GATEWAY[6]}/64 dev {leg} nodad",
        f"link set {leg} up",
    ]
    for address in addresses:
        bits = 32 if ipaddress.ip_address(address).version == 4 else 128
        lines += [f"route add {address}/{bits} dev {leg}", f"neigh add {address} lladdr {mac(index, 1)} dev {leg} nud permanent"]
    return lines


def host_lines(index: int, addresses: list[str], gateway: dict[int, str]) -> list[str]:
    """eth0 with the host's addresses, and its default routes through `gateway` (the router, or the host's gateway)."""
    onlink6 = "" if ipaddress.ip_address(gateway[6]).is_link_local else " onlink"
    lines = ["link set lo up", "link set eth0 addrgenmode none"]
    for address in addresses:
        if ipaddress.ip_address(address).version == 4:
            lines.append(f"addr add {address}/32 dev eth0")
        else:
            lines.append(f"addr add {address}/128 dev eth0 nodad")
    lines += [
        "link set eth0 up",
        f"neigh add {gateway[4]} lladdr {mac(index, 2)} dev eth0 nud permanent",
        f"neigh add {gateway[6]} lladdr {mac(index, 2)} dev eth0 nud permanent",
        f"route add 0.0.0.0/0 via {gateway[4]} dev eth0 onlink",
        f"route add ::/0 via {gateway[6]} dev eth0{onlink6}",
    ]
    return lines


def inside_lines(index: int, backend: str, inside: list[str], backend_addresses: list[str]) -> list[str]:
    """The gateway's eth1: a veth pair to the backend (host `index`), whose end is the backend's eth0."""
    lines = [
        f"link add eth1 address {mac(index, 2)} type veth peer name eth0 address {mac(index, 1)} netns {PREFIX + backend}",
        "link set eth1 addrgenmode none",
    ]
    lines += [f"addr add {item} dev eth1" + (" nodad" if ":" in item else "") for item in inside]
    lines.append("link set eth1 up")
    lines += [f"neigh add {address} lladdr {mac(index, 1)} dev eth1 nud permanent" for address in backend_addresses]
    return lines


def router_addresses(fleet: Fleet, host: str) -> list[str]:
    """The addresses a host holds on its link to the router: none behind a gateway, a gateway's all but its inside ones."""
    if host in fleet.behind:
        return []
    inside = {ipaddress.ip_interface(item).ip for item in fleet.inside.get(host, ())}
    return [address for address in fleet.addresses[host] if ipaddress.ip_address(address) not in inside]


def gateway_of(fleet: Fleet, host: str) -> dict[int, str]:
    """Where a host's default routes lead: the router, or its gateway's inside address of each family."""
    if host not in fleet.behind:
        return GATEWAY
    inside = [ipaddress.ip_interface(item).ip for item in fleet.inside[fleet.behind[host]]]
    return {version: str(next(address for address in inside if address.version == version)) for version in (4, 6)}


def connect_backends(fleet: Fleet, index: dict[str, int]) -> None:
    """Each gateway's private network: its eth1, joined to the one host behind it."""
    for gateway in fleet.inside:
        backends = [host for host, behind in fleet.behind.items() if behind == gateway]
        if len(backends) != 1:
            sys.exit(f"lab: gateway {gateway} needs exactly one host behind it (fleetwall_lab_behind), has {len(backends)}")
        backend = backends[0]
        ip_batch(PREFIX + gateway, inside_lines(index[backend], backend, fleet.inside[gateway], fleet.addresses[backend]))


def start_router() -> None:
    run("ip", "netns", "add", ROUTER)
    ip_batch(ROUTER, ["link set lo up"])
    assert_inside(ROUTER)
    in_namespace(ROUTER, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")


def set_up_host(fleet: Fleet, index: int, host: str) -> None:
    namespace = PREFIX + host
    ip_batch(namespace, host_lines(index, router_addresses(fleet, host) or fleet.addresses[host], gateway_of(fleet, host)))
    # Connection tracking active from the start, as on a server that has had a
    # stateful firewall before: otherwise the first ruleset would see the
    # controller's open SSH connections mid-stream, as NEW (docs/apply.md).
    assert_inside(namespace)
    for tool in ("iptables", "ip6tables"):
        in_namespace(namespace, tool, "-t", "mangle", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "INVALID",
                     "-m", "comment", "--comment", "fleetwall lab: conntrack on", "-j", "RETURN")
    if host != OUTSIDE:
        start_sshd(host, fleet.addresses[host])


def up(inventory: str) -> None:
    down()
    shutil.rmtree(LAB_DIR / "root", ignore_errors=True)  # each lab starts with no rules files or backups
    fleet = lab_fleet(inventory)
    hosts = fleet.addresses
    index = {host: number for number, host in enumerate(hosts)}
    make_ssh_keys(hosts)
    start_router()
    ip_batch(None, [f"netns add {PREFIX + host}" for host in hosts])
    ip_batch(ROUTER, [line for host in hosts if host not in fleet.behind
                      for line in router_lines(index[host], host, router_addresses(fleet, host))])
    connect_backends(fleet, index)  # before sshd starts: a gateway's sshd listens on its inside addresses too
    with ThreadPoolExecutor(SETUP_WORKERS) as pool:
        list(pool.map(lambda host: set_up_host(fleet, index[host], host), hosts))
    start_listener({PREFIX + host: LISTENER_PORTS + fleet.listen.get(host, []) for host in hosts if host != OUTSIDE})
    write_connection_inventory(fleet)
    shown = ", ".join(hosts) if len(hosts) <= 12 else f"{', '.join(list(hosts)[:6])}, ... {list(hosts)[-2]}"
    behind = "".join(f"; {host} behind {gateway}" for host, gateway in fleet.behind.items())
    print(f"lab: {len(hosts)} hosts up behind {ROUTER}: {shown}; sshd on every host but {OUTSIDE}{behind}")


def start_listener(ports: dict[str, list[int]]) -> None:
    """One listener process for every namespace in `ports`, answering on those TCP ports."""
    listener = subprocess.Popen(
        ["ip", "netns", "exec", ROUTER, sys.executable, "-c", LISTENER, json.dumps(ports)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    if listener.stdout is None or listener.stdout.readline().strip() != "listening":
        sys.exit("lab: the listeners did not start")
    listener.stdout.close()


def make_ssh_keys(hosts: dict[str, list[str]]) -> None:
    """The controller's key, a host key per host, and the known_hosts file that pins each host's key to its addresses."""
    SSH_DIR.mkdir(parents=True, exist_ok=True)
    names = ["client_key"] + [f"host_key-{host}" for host in hosts if host != OUTSIDE]
    missing = [name for name in names if not (SSH_DIR / name).exists()]
    with ThreadPoolExecutor(SETUP_WORKERS) as pool:
        list(pool.map(lambda name: run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"fleetwall-lab-{name}",
                                       "-f", str(SSH_DIR / name)), missing))
    (SSH_DIR / "authorized_keys").write_text((SSH_DIR / "client_key.pub").read_text())
    known = [
        f"{','.join(addresses)} {' '.join((SSH_DIR / f'host_key-{host}.pub').read_text().split()[:2])}"
        for host, addresses in hosts.items()
        if host != OUTSIDE
    ]
    (SSH_DIR / "known_hosts").write_text("\n".join(known) + "\n")


def start_sshd(host: str, addresses: list[str]) -> None:
    listen = "\n".join(f"ListenAddress {address}" for address in addresses)
    config = SSH_DIR / f"sshd-{host}.conf"
    config.write_text(SSHD_CONFIG.format(listen=listen, ssh=SSH_DIR, host=host))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    in_namespace(PREFIX + host, "/usr/sbin/sshd", "-f", str(config), "-E", str(SSH_DIR / f"sshd-{host}.log"))


def write_connection_inventory(fleet: Fleet) -> None:
    """How Ansible reaches each lab host (checking its host key), and where its 'persistent' files go.

    A host behind a gateway is reached through the gateway's sshd (ProxyCommand with ssh -W), which checks
    the gateway's key as well; nothing else can reach it."""
    root = LAB_DIR / "root"
    ssh_options = f"-o UserKnownHostsFile={SSH_DIR / 'known_hosts'} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    lines = [
        "all:",
        "  vars:",
        "    ansible_user: root",
        f"    ansible_ssh_private_key_file: {SSH_DIR / 'client_key'}",
        f"    ansible_ssh_common_args: {ssh_options}",
        f"    ansible_python_interpreter: {sys.executable}",
        "    fleetwall_become: false",
        f"    fleetwall_firewall_backup_dir: {root}/{{{{ inventory_hostname }}}}/var/lib/fleetwall",
        # A routing host's sysctl file (fleetwall_firewall_forwarding) goes there too, never into this machine's /etc.
        f"    fleetwall_firewall_forwarding_file: {root}/{{{{ inventory_hostname }}}}/etc/sysctl.d/90-fleetwall-forwarding.conf",
        f"    fleetwall_persistence_root: {root}/{{{{ inventory_hostname }}}}",
        "    fleetwall_persistence_install_packages: false",
        "    fleetwall_persistence_manage_services: false",
        "  hosts:",
    ]
    for host, addresses in fleet.addresses.items():
        if host == OUTSIDE:
            continue
        (root / host / "etc" / "sysctl.d").mkdir(parents=True, exist_ok=True)
        entry = f"ansible_host: {first_ipv4(addresses)}"
        if host in fleet.behind:
            jump = first_ipv4(router_addresses(fleet, fleet.behind[host]))
            proxy = f"ssh -i {SSH_DIR / 'client_key'} {ssh_options} -o BatchMode=yes -W %h:%p root@{jump}"
            entry += f", ansible_ssh_common_args: {json.dumps(ssh_options + ' -o ' + shlex.quote(f'ProxyCommand={proxy}'))}"
        lines.append(f"    {host}: {{{entry}}}")
    (LAB_DIR / "connection.yml").write_text("\n".join(lines) + "\n")


def first_ipv4(addresses: list[str]) -> str:
    return next(address for address in addresses if ":" not in address)


# ---------------------------------------------------------------- using the lab


def playbook(inventory: str, play: str, extra: list[str]) -> int:
    if PREFIX + CONTROLLER not in namespaces() or not (SSH_DIR / "known_hosts").exists():
        sys.exit("lab: the lab is not up; run lab.py up INVENTORY first")
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    command = [
        "ip", "netns", "exec", PREFIX + CONTROLLER, str(ansible_playbook),
        "-i", inventory, "-i", str(LAB_DIR / "connection.yml"), play, *extra,
    ]
    # Host keys are checked (known_hosts from `up`): that is what keeps Ansible inside the lab. Its SSH
    # connection masters live in the lab's own directory, so no master of another lab (same addresses,
    # another namespace) can ever be reused.
    environment = dict(os.environ, ANSIBLE_PIPELINING="1", ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_FORCE_COLOR="0",
                       ANSIBLE_SSH_CONTROL_PATH_DIR=str(LAB_DIR / "cp"))
    return subprocess.run(command, env=environment, check=False).returncode


def apply(rendered: str) -> None:
    for path in sorted(Path(rendered).glob("*.v4")):
        host = path.stem
        namespace = PREFIX + host
        assert_inside(namespace)
        in_namespace(namespace, "iptables-restore", input_text=path.read_text())
        in_namespace(namespace, "ip6tables-restore", input_text=path.with_suffix(".v6").read_text())
        print(f"lab: applied {path.name} and {path.with_suffix('.v6').name} in {namespace}")


def neighbour_overflows() -> int:
    """How many 'neighbor table overflow' lines the kernel log holds (-1: the log cannot be read)."""
    completed = run("dmesg", check=False)
    return completed.stdout.count(OVERFLOW) if completed.returncode == 0 else -1


def probe_matrix(hosts: dict[str, list[str]]) -> list[tuple[str, str, str, str, str]]:
    """(source, target, service, address, outcome) for every host, service and address of every other host."""
    targets = [host for host in hosts if host != OUTSIDE]

    def probe_from(source: str) -> list[tuple[str, str, str, str, str]]:
        cases = [(source, target, service, address) for target in targets if target != source
                 for service in PORTS for address in hosts[target]]
        probes = [[case[3], PORTS[case[2]]] for case in cases]
        outcomes = json.loads(in_namespace(PREFIX + source, sys.executable, "-c", PROBER, input_text=json.dumps(probes)).stdout)
        return [case + (outcome,) for case, outcome in zip(cases, outcomes)]

    # A few sources at a time: each probes with 32 threads, which is plenty for two cores.
    with ThreadPoolExecutor(min(len(hosts), 8)) as pool:
        return [row for rows in pool.map(probe_from, hosts) for row in rows]


def group_of(fleet: Fleet, host: str) -> str:
    return next((group for group, members in sorted(fleet.groups.items()) if host in members), "no group")


def print_reached(fleet: Fleet, rows: list[tuple[str, str, str, str, str]]) -> None:
    """Per host and service who reaches it; in a large lab per group, counting the hosts."""
    small = len(fleet.addresses) <= 12
    name = (lambda host: host) if small else (lambda host: group_of(fleet, host) if host != OUTSIDE else OUTSIDE)
    reached: dict[tuple[str, str], dict[str, set[str]]] = {}
    for source, target, service, address, outcome in rows:
        if outcome == "open":
            family = "v6" if ":" in address else "v4"
            reached.setdefault((name(target), service), {}).setdefault(f"{name(source)}/{family}", set()).add(source)
    members: dict[str, int] = {}
    for host in fleet.addresses:
        members[name(host)] = members.get(name(host), 0) + 1
    print("\nWho reaches what (real TCP connections; open = handshake completed):\n")
    width = max(len(label) for label in members) + 2
    for target in dict.fromkeys(name(host) for host in fleet.addresses if host != OUTSIDE):
        for service in PORTS:
            sources = reached.get((target, service), {})
            shown = [label if small else f"{label} ({len(hosts)}/{members[label.split('/')[0]]})" for label, hosts in sources.items()]
            print(f"  {target:<{width}} {service:<13} <- {', '.join(shown) if shown else '(nobody)'}")


def probe(inventory: str, summary_path: str | None) -> int:
    fleet = lab_fleet(inventory)
    overflows_before = neighbour_overflows()
    started = time.monotonic()
    rows = probe_matrix(fleet.addresses)
    seconds = time.monotonic() - started
    overflows = neighbour_overflows() - overflows_before if overflows_before >= 0 else -1
    print_reached(fleet, rows)
    counts = {state: sum(1 for row in rows if row[4] == state) for state in ("open", "closed", "filtered")}
    print(f"\nlab: {len(rows)} connections in {seconds:.0f} s: {counts['open']} open, {counts['closed']} refused, "
          f"{counts['filtered']} unanswered; kernel log: "
          + ("not readable" if overflows < 0 else f"{overflows} new '{OVERFLOW}' lines"))
    if summary_path:
        Path(summary_path).write_text(json.dumps({"probes": len(rows), "seconds": round(seconds, 1), "states": counts,
                                                  "neighbour_overflows": overflows, "hosts": len(fleet.addresses)}) + "\n")
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


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def down() -> None:
    """Every process in a lab namespace (sshd and the sessions it forked, the listener) and every lab namespace go."""
    killed = []
    for namespace in namespaces():
        for pid in run("ip", "netns", "pids", namespace, check=False).stdout.split():
            try:
                os.kill(int(pid), 9)
                killed.append(int(pid))
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL takes effect asynchronously
    for namespace in namespaces():
        run("ip", "netns", "del", namespace, check=False)
    for pid_file in SSH_DIR.glob("sshd-*.pid") if SSH_DIR.exists() else ():
        pid_file.unlink()


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("lab: network namespaces need root")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    inventory_parser = commands.add_parser("inventory")
    inventory_parser.add_argument("size", type=int)
    inventory_parser.add_argument("directory", type=Path)
    commands.add_parser("up").add_argument("inventory")
    playbook_parser = commands.add_parser("playbook")
    playbook_parser.add_argument("inventory")
    playbook_parser.add_argument("play")
    playbook_parser.add_argument("extra", nargs=argparse.REMAINDER)
    commands.add_parser("apply").add_argument("rendered")
    probe_parser = commands.add_parser("probe")
    probe_parser.add_argument("inventory")
    probe_parser.add_argument("--json", help="also write the counts (and neighbour table overflows) there")
    hand_parser = commands.add_parser("iptables")
    hand_parser.add_argument("host")
    hand_parser.add_argument("arguments", nargs=argparse.REMAINDER)
    commands.add_parser("down")
    arguments = parser.parse_args()
    if arguments.command == "inventory":
        write_inventory(arguments.size, arguments.directory)
    elif arguments.command == "up":
        up(arguments.inventory)
    elif arguments.command == "playbook":
        return playbook(arguments.inventory, arguments.play, arguments.extra)
    elif arguments.command == "apply":
        apply(arguments.rendered)
    elif arguments.command == "probe":
        return probe(arguments.inventory, arguments.json)
    elif arguments.command == "iptables":
        return hand_change(arguments.host, arguments.arguments)
    else:
        down()
    return 0


if __name__ == "__main__":
    sys.exit(main())

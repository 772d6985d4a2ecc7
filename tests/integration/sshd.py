"""A real SSH path between two test namespaces: a controller and a target running sshd.

The controller and the target are joined by a veth pair (made from inside the
controller namespace, so no interface ever appears in the machine's own
namespace) with one IPv4 and one IPv6 address each. sshd runs only inside the
target namespace, with every file it uses in a temporary directory: its own
sshd_config, a host key made here with ssh-keygen, an authorized_keys file, a
pid file, no PAM, listening on the target's two addresses only. The only file
outside the temporary directory it needs is its privilege-separation directory
/run/sshd, created if missing.

The addresses are those of the shared test fleet (tests/unit/plugins/module_utils/fleet.py):
the controller has the bastion's addresses, which the fleet's policy lets in on
ssh, and the target has db1's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

from ansible_collections.fleetwall.iptables.tests.integration.netns import Link, Namespace, add_addresses, veth_pair, wait_until
from ansible_collections.fleetwall.iptables.tests.unit.fleet import HOSTS

CONTROLLER_HOST = "bastion"
TARGET_HOST = "db1"
CONTROLLER_ADDRESSES: Dict[int, str] = {4: HOSTS[CONTROLLER_HOST]["ansible_host"], 6: HOSTS[CONTROLLER_HOST]["ansible_default_ipv6"]["address"]}
TARGET_ADDRESSES: Dict[int, str] = {4: HOSTS[TARGET_HOST]["ansible_host"], 6: HOSTS[TARGET_HOST]["ansible_default_ipv6"]["address"]}
PREFIX_LENGTHS = {4: 8, 6: 64}
CONTROLLER_IF = "fwctl0"
TARGET_IF = "fwtgt0"
SSH_PORT = 22
PRIVSEP_DIR = "/run/sshd"
SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"))
REQUIRED_PROGRAMS = ("sshd", "ssh", "ssh-keygen", "ss")

# Options for every ssh client these tests start: the key made for the test,
# nothing from ~/.ssh or /etc/ssh, no host key bookkeeping, never a prompt.
SSH_CLIENT_OPTIONS = (
    "-F", "/dev/null",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=no",
    "-o", "IdentitiesOnly=yes",
    "-o", "IdentityAgent=none",
    "-o", "BatchMode=yes",
    "-o", "PasswordAuthentication=no",
    "-o", "LogLevel=ERROR",
)


def missing_programs() -> List[str]:
    return [name for name in REQUIRED_PROGRAMS if shutil.which(name, path=SBIN_PATH) is None]


def keygen(path: Path, comment: str) -> Path:
    """A fresh ed25519 key pair at `path` (and `path`.pub); no network involved."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, capture_output=True, text=True, timeout=30,
    )
    return path


class SshServer:
    """sshd in the foreground (-D) inside one test namespace, configured from files in `workdir` only."""

    def __init__(self, namespace: Namespace, workdir: Path, addresses: Sequence[str], authorized_key: Path) -> None:
        self.namespace = namespace
        self.workdir = workdir
        self.addresses = tuple(addresses)
        self.config = workdir / "sshd_config"
        self.log_path = workdir / "sshd.log"
        self.host_key = workdir / "ssh_host_ed25519_key"
        self.authorized_keys = workdir / "authorized_keys"
        self.pid_file = workdir / "sshd.pid"
        self.authorized_key = authorized_key
        self.process: Optional[subprocess.Popen] = None

    def write_config(self) -> None:
        keygen(self.host_key, "fleetwall-test-host")
        self.authorized_keys.write_text(self.authorized_key.read_text())
        self.authorized_keys.chmod(0o600)
        lines = ["Port %d" % SSH_PORT, "AddressFamily any"]
        lines += ["ListenAddress %s" % address for address in self.addresses]
        lines += [
            "HostKey %s" % self.host_key,
            "PidFile %s" % self.pid_file,
            "AuthorizedKeysFile %s" % self.authorized_keys,
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "AllowUsers root",
            "AllowAgentForwarding no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 20.0) -> None:
        sshd = shutil.which("sshd", path=SBIN_PATH)
        if sshd is None:
            raise RuntimeError("sshd not found (Debian: apt-get install openssh-server; scripts/bootstrap.sh does)")
        self.write_config()
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)
        # -t: refuse a bad configuration now, with sshd's own message.
        self.namespace.run([sshd, "-t", "-f", str(self.config)])
        self.namespace.guard()  # sshd must start in the target namespace, nowhere else
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.namespace.exec_argv([os.path.realpath(sshd), "-D", "-e", "-f", str(self.config)]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        if not wait_until(self.listening, timeout=timeout, interval=0.05):
            log_text = self.log()
            self.stop()
            raise RuntimeError("sshd did not listen on %s port %d within %.0f s; its log:\n%s"
                               % (", ".join(self.addresses), SSH_PORT, timeout, log_text))

    def listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError("sshd exited with status %d; its log:\n%s" % (self.process.returncode, self.log()))
        sockets = self.namespace.run(["ss", "-Hltn"], check=False).stdout
        local = {line.split()[3] for line in sockets.splitlines() if len(line.split()) > 3}
        wanted = {("[%s]:%d" if ":" in address else "%s:%d") % (address, SSH_PORT) for address in self.addresses}
        return wanted <= local

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def session_pids(self) -> List[int]:
        """sshd processes in the namespace: the listener and the per-connection ones it forked."""
        pids = []
        listed = subprocess.run(["ip", "netns", "pids", self.namespace.name], capture_output=True, text=True, timeout=20, check=False)
        for pid in listed.stdout.split():
            try:
                if os.path.basename(os.readlink("/proc/%s/exe" % pid)) == "sshd":
                    pids.append(int(pid))
            except (OSError, ValueError):
                continue
        return pids

    def stop(self) -> None:
        """Kill the listener and every sshd it forked in this namespace; wait for the listener."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if not self.namespace.deleted:
            for pid in self.session_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_until(lambda: not self.session_pids(), timeout=5, interval=0.05)


class SshLab(NamedTuple):
    controller: Namespace
    target: Namespace
    controller_link: Link
    target_link: Link
    client_key: Path
    server: SshServer

    def ssh_argv(self, family: int, command: Sequence[str], connect_timeout: int = 10) -> List[str]:
        """A plain ssh (no connection sharing) from the controller namespace to the target."""
        return self.controller.exec_argv(
            ["ssh", *SSH_CLIENT_OPTIONS, "-o", "ControlMaster=no", "-o", "ConnectTimeout=%d" % connect_timeout,
             "-i", str(self.client_key), "-p", str(SSH_PORT), "root@%s" % TARGET_ADDRESSES[family], "--", *command]
        )

    def ssh(self, family: int, command: Sequence[str], connect_timeout: int = 10) -> subprocess.CompletedProcess:
        return subprocess.run(self.ssh_argv(family, command, connect_timeout), capture_output=True, text=True,
                              timeout=connect_timeout + 30, check=False)


def start_ssh_lab(controller: Namespace, target: Namespace, workdir: Path) -> SshLab:
    """Link the two namespaces, make the keys and start sshd in the target. Stop lab.server when done."""
    workdir.mkdir(parents=True, exist_ok=True)
    controller_link, target_link = veth_pair(controller, CONTROLLER_IF, target, TARGET_IF)
    add_addresses(controller_link, ["%s/%d" % (address, PREFIX_LENGTHS[family]) for family, address in CONTROLLER_ADDRESSES.items()])
    add_addresses(target_link, ["%s/%d" % (address, PREFIX_LENGTHS[family]) for family, address in TARGET_ADDRESSES.items()])
    client_key = keygen(workdir / "client_ed25519", "fleetwall-test-controller")
    server = SshServer(target, workdir / "sshd", list(TARGET_ADDRESSES.values()), client_key.with_suffix(".pub"))
    server.workdir.mkdir()
    server.start()
    return SshLab(controller, target, controller_link, target_link, client_key, server)

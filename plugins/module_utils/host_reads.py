# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the host's tools, and the read-only ones the ruleset module needs first, started early.

Private to the fleetwall.iptables collection. Standard library only, and
nothing else from the collection: the module imports this before
``ansible.module_utils.basic`` and starts the backend check, both families'
saves and ``ipset save`` (``EarlyReads``), so that they run while Python
imports the rest (which takes longer than the tools on a no-op run).
host_tools.py then takes their results instead of running them again, and
starts ``restore --test`` the same way while the module reads the ruleset.

A started tool reads its input from, and writes its output to, temporary
files (``Started``), not pipes: a thread of ours that fed or drained a pipe
would need the interpreter lock, which the module's imports and parsing
hold, so a tool printing a megabyte of rules would stall on a full pipe for
most of that time. AnsibleModule.run_command runs one process and waits for
it, so this runs them with subprocess.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import atexit
import os
import stat
import subprocess
import tempfile
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

# AnsibleModule.get_bin_path looks in these after PATH; find_tool does the same.
SBIN_DIRECTORIES = ("/sbin", "/usr/sbin", "/usr/local/sbin")
EXECUTABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH  # any execute bit, as ansible's is_executable
SAVE_COMMANDS = ("iptables", "ip6tables")  # the families' tools, IPv4 first, as apply_plan.FAMILIES


class Completed(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    @property
    def message(self):
        # type: () -> str
        return (self.stderr or self.stdout).strip()


class HostReads(NamedTuple):
    """What the read-only tools printed, before anything is decided from it."""

    version: Completed  # iptables-save --version
    backend: Optional[Tuple[str, str]]  # backend_of(version): (backend, the other backend's tool suffix)
    saves: List[Completed]  # iptables-save, ip6tables-save
    others: List[Tuple[str, Completed]]  # (iptables or ip6tables, the other backend's save) where that tool exists
    ipset: Optional[Completed]  # ipset save; None without ipset


def _environment():
    # type: () -> Dict[str, str]
    environment = dict(os.environ)
    environment.update(LANG="C", LC_ALL="C", LC_MESSAGES="C")
    return environment


def find_tool(name):
    # type: (str) -> Optional[str]
    """The first executable `name` on PATH or in the sbin directories, as AnsibleModule.get_bin_path finds it.

    The module needs its tools before it imports AnsibleModule (importing
    ansible alone takes longer than starting them), and then keeps using
    this, so the early and the later runs find the same files.
    """
    directories = os.environ.get("PATH", "").split(os.pathsep)
    directories += [directory for directory in SBIN_DIRECTORIES if directory not in directories]
    for directory in directories:
        path = os.path.join(directory, name) if directory else ""
        if path and os.path.exists(path) and not os.path.isdir(path) and os.stat(path).st_mode & EXECUTABLE:
            return path
    return None


class Started:
    """A tool started with its input (if any) in a temporary file and its output going to temporary files."""

    def __init__(self, argv, data=None):
        # type: (Sequence[str], Optional[str]) -> None
        self._output = tempfile.TemporaryFile()
        self._errors = tempfile.TemporaryFile()
        self._result = None  # type: Optional[Completed]
        stdin = subprocess.DEVNULL  # type: Any
        if data is not None:
            stdin = tempfile.TemporaryFile()
            stdin.write(data.encode("utf-8", "surrogateescape"))
            stdin.seek(0)
        try:
            self.process = subprocess.Popen(  # pylint: disable=ansible-bad-function
                list(argv), stdin=stdin, stdout=self._output, stderr=self._errors, env=_environment(), close_fds=True
            )
        finally:
            if data is not None:
                stdin.close()  # the tool has its own descriptor

    def finish(self):
        # type: () -> Completed
        """Wait for the tool; its exit status and output."""
        if self._result is None:
            self.process.wait()
            texts = []  # type: List[str]
            for handle in (self._output, self._errors):
                handle.seek(0)
                texts.append(handle.read().decode("utf-8", "surrogateescape"))
                handle.close()
            self._result = Completed(self.process.returncode, texts[0], texts[1])
        return self._result

    def cancel(self):
        # type: () -> None
        """Kill the tool if it still runs, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


def run(argv, data=None):
    # type: (Sequence[str], Optional[str]) -> Completed
    return Started(argv, data).finish()


def run_together(argvs, inputs=None):
    # type: (Sequence[Sequence[str]], Optional[Sequence[Optional[str]]]) -> List[Completed]
    """Run commands that only read at the same time (with their inputs, if any); their results in order."""
    started = [Started(argv, inputs[index] if inputs else None) for index, argv in enumerate(argvs)]
    return [item.finish() for item in started]


def backend_of(version_output, returncode):
    # type: (str, int) -> Optional[Tuple[str, str]]
    """(backend, the other backend's tool suffix) from `iptables-save --version`; None when it cannot tell."""
    if "nf_tables" in version_output:
        return "nf_tables", "legacy"
    if "legacy" in version_output or returncode == 0:
        return "legacy", "nft"
    return None


class EarlyReads:
    """The backend check, both saves, the other backend's saves and ``ipset save``, started; wait() or cancel().

    `saves` are the paths of iptables-save and ip6tables-save, `ipset` that of
    ipset (None: not installed). The version is read first, because it says
    which backend is the other one; the rest run while the caller goes on.
    """

    def __init__(self, saves, ipset, find):
        # type: (Sequence[str], Optional[str], Callable[[str], Optional[str]]) -> None
        self.saves = list(saves)
        self.ipset = ipset
        self._saving = [Started([path]) for path in self.saves]
        self._ipset = Started([ipset, "save"]) if ipset else None
        self._version = run([self.saves[0], "--version"])
        self._backend = backend_of((self._version.stdout or self._version.stderr).strip(), self._version.returncode)
        self._others = []  # type: List[Tuple[str, Started]]
        if self._backend is not None:
            for command in SAVE_COMMANDS:
                path = find("%s-%s-save" % (command, self._backend[1]))
                if path is not None:
                    self._others.append((command, Started([path])))

    @classmethod
    def begin(cls, find=find_tool):
        # type: (Callable[[str], Optional[str]]) -> Optional[EarlyReads]
        """The reads, started; None when a save tool is missing (host_tools.py then says so)."""
        saves = [find(command + "-save") for command in SAVE_COMMANDS]
        if None in saves:
            return None
        reads = cls([path for path in saves if path], find("ipset"), find)
        atexit.register(reads.cancel)  # a run that ends early (confirm, a bad argument) leaves no tool behind
        return reads

    def matches(self, saves, ipset):
        # type: (Sequence[str], Optional[str]) -> bool
        """Whether these reads ran the tools the caller would run."""
        return list(saves) == self.saves and ipset == self.ipset

    def _started(self):
        # type: () -> List[Started]
        return self._saving + [started for command, started in self._others] + ([self._ipset] if self._ipset else [])

    def wait(self):
        # type: () -> HostReads
        return HostReads(
            self._version,
            self._backend,
            [started.finish() for started in self._saving],
            [(command, started.finish()) for command, started in self._others],
            self._ipset.finish() if self._ipset else None,
        )

    def cancel(self):
        # type: () -> None
        """Stop the reads still running and reap them; harmless once they are done."""
        for started in self._started():
            started.cancel()


def read_host_tools(saves, ipset, find):
    # type: (Sequence[str], Optional[str], Callable[[str], Optional[str]]) -> HostReads
    """EarlyReads' reads, run now."""
    return EarlyReads(saves, ipset, find).wait()

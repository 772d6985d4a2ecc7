# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the host's tools, and the read-only ones the ruleset module needs first, started early.

Private to the fleetwall.iptables collection. Standard library only, and
nothing else from the collection: the module imports this before
``ansible.module_utils.basic`` and starts the backend check, both families'
saves and ``ipset save`` in a background thread (``EarlyReads``), so that they
run while Python imports the rest (which takes longer than the tools on a
no-op run). host_tools.py then takes their results instead of running them
again, and runs ``restore --test`` in the background the same way while the
module reads the ruleset (``Background``). AnsibleModule.run_command runs one process and waits for it, so this
runs them with subprocess.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import atexit
import os
import stat
import subprocess
import threading
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


class Processes:
    """The processes a group of runs started, so that they can be stopped together (cancel)."""

    def __init__(self):
        # type: () -> None
        self._lock = threading.Lock()
        self._started = []  # type: List[Any]
        self.cancelled = False

    def add(self, process):
        # type: (Any) -> None
        with self._lock:
            self._started.append(process)
            if self.cancelled:
                process.kill()

    def cancel(self):
        # type: () -> None
        with self._lock:
            self.cancelled = True
            for process in self._started:
                if process.poll() is None:
                    process.kill()


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


def run(argv, data=None, processes=None):
    # type: (Sequence[str], Optional[str], Optional[Processes]) -> Completed
    process = subprocess.Popen(  # pylint: disable=ansible-bad-function
        list(argv),
        stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
        close_fds=True,
    )
    if processes is not None:
        processes.add(process)
    out, err = process.communicate(data.encode("utf-8", "surrogateescape") if data is not None else None)
    return Completed(
        process.returncode, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "surrogateescape")
    )


def run_together(argvs, inputs=None, processes=None):
    # type: (Sequence[Sequence[str]], Optional[Sequence[Optional[str]]], Optional[Processes]) -> List[Completed]
    """Run commands that only read at the same time (with their inputs, if any); their results in order."""
    results = [None] * len(argvs)  # type: List[Any]

    def one(index):
        # type: (int) -> None
        results[index] = run(argvs[index], inputs[index] if inputs else None, processes)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(argvs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def backend_of(version_output, returncode):
    # type: (str, int) -> Optional[Tuple[str, str]]
    """(backend, the other backend's tool suffix) from `iptables-save --version`; None when it cannot tell."""
    if "nf_tables" in version_output:
        return "nf_tables", "legacy"
    if "legacy" in version_output or returncode == 0:
        return "legacy", "nft"
    return None


def read_host_tools(saves, ipset, find, processes=None):
    # type: (Sequence[str], Optional[str], Callable[[str], Optional[str]], Optional[Processes]) -> HostReads
    """Run the backend check, then both saves, the other backend's saves and ``ipset save`` at the same time.

    `saves` are the paths of iptables-save and ip6tables-save, `ipset` that of
    ipset (None: not installed). The version comes first because it says
    which backend is the other one.
    """
    version = run([saves[0], "--version"], processes=processes)
    backend = backend_of((version.stdout or version.stderr).strip(), version.returncode)
    others = []  # type: List[Tuple[str, str]]
    if backend is not None:
        found = [(command, find("%s-%s-save" % (command, backend[1]))) for command in SAVE_COMMANDS]
        others = [(command, path) for command, path in found if path is not None]
    argvs = [[path] for path in saves] + [[path] for command, path in others] + ([[ipset, "save"]] if ipset else [])
    results = run_together(argvs, processes=processes)
    ipset_result = results[-1] if ipset else None
    other_results = results[len(saves):len(saves) + len(others)]
    return HostReads(version, backend, results[:len(saves)], list(zip([c for c, p in others], other_results)),
                     ipset_result)


class Background:
    """`work(processes)` run in a thread: wait() for its result, or cancel() the processes it started."""

    def __init__(self, work):
        # type: (Callable[[Processes], Any]) -> None
        self._work = work
        self._processes = Processes()
        self._outcome = []  # type: List[Any]
        self._thread = threading.Thread(target=self._run)
        self._thread.daemon = True

    def start(self):
        # type: () -> Background
        atexit.register(self.cancel)  # a run that ends early (confirm, a refusal) leaves no child behind
        self._thread.start()
        return self

    def _run(self):
        # type: () -> None
        try:
            self._outcome.append(self._work(self._processes))
        except Exception as exc:  # pylint: disable=broad-except
            # Raised by wait(), in the caller's thread, as if it had run the work itself.
            self._outcome.append(exc)

    def wait(self):
        # type: () -> Any
        self._thread.join()
        outcome = self._outcome[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def cancel(self):
        # type: () -> None
        """Stop the processes still running and reap them; harmless once they are done."""
        self._processes.cancel()
        if self._thread.ident is not None:
            self._thread.join()


class EarlyReads(Background):
    """read_host_tools, started before the module's imports."""

    def __init__(self, saves, ipset, find):
        # type: (Sequence[str], Optional[str], Callable[[str], Optional[str]]) -> None
        super(EarlyReads, self).__init__(lambda processes: read_host_tools(saves, ipset, find, processes))
        self.saves = list(saves)
        self.ipset = ipset

    @classmethod
    def begin(cls, find=find_tool):
        # type: (Callable[[str], Optional[str]]) -> Optional[EarlyReads]
        """The reads, started; None when a save tool is missing (host_tools.py then says so)."""
        saves = [find(command + "-save") for command in SAVE_COMMANDS]
        if None in saves:
            return None
        reads = cls([path for path in saves if path], find("ipset"), find)
        reads.start()
        return reads

    def matches(self, saves, ipset):
        # type: (Sequence[str], Optional[str]) -> bool
        """Whether these reads ran the tools the caller would run."""
        return list(saves) == self.saves and ipset == self.ipset

"""The read-only tool runs the module starts before its imports: what they run, how they end, how they are found."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.host_reads import (
    EarlyReads,
    Started,
    backend_of,
    find_tool,
    read_host_tools,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.host_tools import HostTools

NF_TABLES_SAVE = 'case "$1" in --version) echo "iptables-save v1.8.9 (nf_tables)";; *) echo "v4 $$";; esac\n'


def tools_in(tmp_path: Path, scripts: dict):
    """Shell scripts named after tools in tmp_path, and a `find` that sees only them."""
    for name, body in scripts.items():
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return lambda name: str(tmp_path / name) if (tmp_path / name).exists() else None


@pytest.mark.parametrize("output, returncode, expected", [
    ("iptables-save v1.8.9 (nf_tables)", 0, ("nf_tables", "legacy")),
    ("iptables-save v1.8.9 (legacy)", 0, ("legacy", "nft")),
    ("iptables-save v1.6.1", 0, ("legacy", "nft")),
    ("iptables-save: unknown option", 2, None),
])
def test_the_backend_is_read_from_the_save_tools_version(output, returncode, expected):
    assert backend_of(output, returncode) == expected


def test_the_other_backends_saves_are_read_only_where_that_tool_exists(tmp_path):
    find = tools_in(tmp_path, {"iptables-save": NF_TABLES_SAVE, "ip6tables-save": "echo v6\n",
                               "iptables-legacy-save": "echo legacy\n"})
    reads = read_host_tools([find("iptables-save"), find("ip6tables-save")], None, find)
    assert [(command, result.stdout) for command, result in reads.others] == [("iptables", "legacy\n")]


def test_a_version_nobody_can_read_starts_no_other_backend_save(tmp_path):
    find = tools_in(tmp_path, {"iptables-save": "exit 2\n", "ip6tables-save": "echo v6\n",
                               "iptables-legacy-save": "echo legacy\n", "iptables-nft-save": "echo nft\n"})
    reads = read_host_tools([find("iptables-save"), find("ip6tables-save")], None, find)
    assert (reads.backend, reads.others) == (None, [])


def test_early_reads_give_the_host_tools_the_same_state_as_reading_late(tmp_path):
    find = tools_in(tmp_path, {name: "exit 0\n" for name in ("iptables-restore", "ip6tables-restore")})
    tools_in(tmp_path, {"iptables-save": 'case "$1" in --version) echo "v1.8.9 (nf_tables)";; *) echo v4;; esac\n',
                        "ip6tables-save": "echo v6\n", "ipset": 'echo "create fw4-a hash:net"\n'})
    early = EarlyReads.begin(find)
    assert HostTools(find).read_host(early) == HostTools(find).read_host()


def test_early_reads_are_not_used_when_they_ran_other_tools(tmp_path):
    find = tools_in(tmp_path, {"iptables-save": NF_TABLES_SAVE, "ip6tables-save": "echo v6\n",
                               "iptables-restore": "exit 0\n", "ip6tables-restore": "exit 0\n"})
    early = EarlyReads.begin(find)
    early.wait()
    (tmp_path / "ipset").write_text("#!/bin/sh\necho sets\n")
    (tmp_path / "ipset").chmod(0o755)
    assert HostTools(find).read_host(early).ipset_saved == "sets\n"


def alive(pid: int) -> bool:
    """Whether a process (or its zombie) exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancelled_early_reads_stop_at_once_and_leave_no_process_behind(tmp_path):
    pids = tmp_path / "pids"
    slow = 'case "$1" in --version) echo "v1.8.9 (nf_tables)";; *) echo $$ >> "%s"; exec sleep 30;; esac\n' % pids
    find = tools_in(tmp_path, {"iptables-save": slow, "ip6tables-save": slow})
    early = EarlyReads.begin(find)
    while not pids.exists() or len(pids.read_text().split()) < 2:
        time.sleep(0.01)
    started = time.monotonic()
    early.cancel()
    waited = time.monotonic() - started
    assert (waited < 5, [alive(int(pid)) for pid in pids.read_text().split()]) == (True, [False] * len(pids.read_text().split()))


def test_no_early_reads_without_both_save_tools(tmp_path):
    assert EarlyReads.begin(tools_in(tmp_path, {"iptables-save": NF_TABLES_SAVE})) is None


def test_tools_are_found_on_path_before_the_sbin_directories(tmp_path, monkeypatch):
    tools_in(tmp_path, {"sh": "exit 0\n"})
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_tool("sh") == str(tmp_path / "sh")


def test_a_file_without_an_execute_bit_is_not_a_tool(tmp_path, monkeypatch):
    (tmp_path / "fwperf-not-a-tool").write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_tool("fwperf-not-a-tool") is None


def test_output_larger_than_a_pipe_buffer_comes_back_whole_from_a_started_tool():
    started = Started(["sh", "-c", "yes fleetwall | head -c 300000"])
    time.sleep(0.2)  # nothing of ours reads meanwhile: the tool writes to a file, not a pipe
    assert (started.process.poll(), len(started.finish().stdout)) == (0, 300000)


def test_a_started_tool_reads_its_input_from_the_text_given():
    assert Started(["cat"], "*filter\nCOMMIT\n").finish().stdout == "*filter\nCOMMIT\n"

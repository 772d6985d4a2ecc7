"""The host's tools as the module runs them: saves read at the same time, the backend check, missing tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.apply_run import ApplyFailed
from ansible_collections.fleetwall.iptables.plugins.module_utils.host_tools import HostTools, run, run_together

TOOLS = ("iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore")


def fake_tools(tmp_path: Path, scripts: dict) -> HostTools:
    """HostTools over shell scripts in tmp_path: `scripts` maps a tool name to its body."""
    for name in TOOLS + tuple(scripts):
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + scripts.get(name, "exit 0\n"))
        path.chmod(0o755)

    def find(name):
        return str(tmp_path / name) if (tmp_path / name).exists() else None

    return HostTools(find)


NF_TABLES_SAVE = 'case "$1" in --version) echo "iptables-save v1.8.9 (nf_tables)";; *) printf "*filter\\n:INPUT DROP [0:0]\\nCOMMIT\\n";; esac\n'


def test_a_missing_tool_is_named():
    with pytest.raises(ApplyFailed, match="^iptables-save was not found; install iptables on this host$"):
        HostTools(lambda name: None)


def test_the_backend_and_both_saves_are_read(tmp_path):
    state = fake_tools(tmp_path, {"iptables-save": NF_TABLES_SAVE, "ip6tables-save": "echo v6\n"}).read_host()
    assert (state.backend, state.saves) == ("nf_tables", {"ipv4": "*filter\n:INPUT DROP [0:0]\nCOMMIT\n", "ipv6": "v6\n"})


def test_rules_in_the_other_backend_are_refused(tmp_path):
    tools = fake_tools(tmp_path, {"iptables-save": NF_TABLES_SAVE,
                                  "iptables-legacy-save": 'printf "*filter\\n-A INPUT -j ACCEPT\\nCOMMIT\\n"\n'})
    with pytest.raises(ApplyFailed, match="^iptables rules are in the legacy backend while iptables uses nf_tables"):
        tools.read_host()


def test_a_failing_save_is_reported_with_its_message(tmp_path):
    tools = fake_tools(tmp_path, {"iptables-save": NF_TABLES_SAVE, "ip6tables-save": "echo 'no kernel module' >&2; exit 1\n"})
    with pytest.raises(ApplyFailed, match="^ip6tables-save failed: no kernel module$"):
        tools.read_host()


def test_restore_feeds_the_text_and_passes_test_and_noflush(tmp_path):
    tools = fake_tools(tmp_path, {"iptables-restore": 'cat > "%s/input"; echo "$*" > "%s/args"\n' % (tmp_path, tmp_path)})
    tools.restore("iptables", "*filter\nCOMMIT\n", test=True, noflush=True)
    assert ((tmp_path / "input").read_text(), (tmp_path / "args").read_text()) == ("*filter\nCOMMIT\n", "--noflush --test\n")


def test_a_refused_restore_returns_its_status_and_message(tmp_path):
    tools = fake_tools(tmp_path, {"iptables-restore": "cat > /dev/null; echo 'iptables-restore: line 3 failed' >&2; exit 2\n"})
    assert tools.restore("iptables", "*filter\nCOMMIT\n") == (2, "iptables-restore: line 3 failed")


def test_commands_run_together_keep_their_order():
    results = run_together([["sh", "-c", "sleep 0.2; echo first"], ["echo", "second"]])
    assert [result.stdout for result in results] == ["first\n", "second\n"]


def test_text_that_is_not_ascii_goes_through_unchanged():
    assert run(["cat"], data="comment: Zürich\n").stdout == "comment: Zürich\n"


def test_both_families_are_tested_at_once_each_with_its_own_input(tmp_path):
    tools = fake_tools(tmp_path, {
        "iptables-restore": 'cat > "%s/v4"; echo "$*" >> "%s/v4"\n' % (tmp_path, tmp_path),
        "ip6tables-restore": 'cat > "%s/v6"; echo "$*" >> "%s/v6"; echo "line 1 failed" >&2; exit 1\n' % (tmp_path, tmp_path),
    })
    outcomes = tools.test_each([("iptables", "four\n", False), ("ip6tables", "six\n", True)])
    assert (outcomes, (tmp_path / "v4").read_text(), (tmp_path / "v6").read_text()) == (
        [(0, ""), (1, "line 1 failed")], "four\n--test\n", "six\n--noflush --test\n")


def test_saves_of_both_families_come_back_in_order(tmp_path):
    tools = fake_tools(tmp_path, {"iptables-save": "sleep 0.2; echo v4\n", "ip6tables-save": "echo v6\n"})
    assert tools.save_each(["iptables", "ip6tables"]) == ["v4\n", "v6\n"]


IPSET_SAVE = "create fw4-group:web hash:net family inet hashsize 64 maxelem 65536 bucketsize 12 initval 0x1\n"


def test_ipset_save_is_read_with_the_rules_when_ipset_exists(tmp_path):
    tools = fake_tools(tmp_path, {"iptables-save": NF_TABLES_SAVE, "ipset": 'test "$1" = save && printf "%s"\n' % IPSET_SAVE})
    assert tools.read_host().ipset_saved == IPSET_SAVE


def test_a_host_without_ipset_reads_no_sets_and_says_why(tmp_path):
    state = fake_tools(tmp_path, {"iptables-save": NF_TABLES_SAVE}).read_host()
    assert (state.ipset_saved, state.ipset_problem) == (None, "ipset was not found")


def test_a_failing_ipset_save_reads_no_sets_and_keeps_its_message(tmp_path):
    tools = fake_tools(tmp_path, {"iptables-save": NF_TABLES_SAVE, "ipset": "echo 'Kernel error received: Protocol not supported' >&2; exit 1\n"})
    assert tools.read_host().ipset_problem == "ipset save failed: Kernel error received: Protocol not supported"


def test_ipset_restore_is_always_exist_restore_fed_the_text(tmp_path):
    tools = fake_tools(tmp_path, {"ipset": 'cat > "%s/input"; echo "$*" > "%s/args"\n' % (tmp_path, tmp_path)})
    tools.ipset_restore("destroy fw4-old\n")
    assert ((tmp_path / "input").read_text(), (tmp_path / "args").read_text()) == ("destroy fw4-old\n", "-exist restore\n")


def test_ipset_commands_without_ipset_ask_to_install_it(tmp_path):
    with pytest.raises(ApplyFailed, match="^ipset was not found; install ipset on this host$"):
        fake_tools(tmp_path, {}).ipset_restore_argv()


def counting_restore(tmp_path: Path) -> HostTools:
    """HostTools whose iptables-restore appends one line per run to tmp_path/runs and refuses 'bad' input."""
    return fake_tools(tmp_path, {
        "iptables-restore": 'echo run >> "%s/runs"; grep -q bad && { echo "line 1 failed" >&2; exit 1; }; exit 0\n' % tmp_path,
        "ipset": "cat > /dev/null\n",
    })


def test_a_text_tested_ahead_is_not_tested_again(tmp_path):
    tools = counting_restore(tmp_path)
    tools.test_ahead([("iptables", "bad\n", False)])
    outcomes = tools.test_each([("iptables", "bad\n", False)])
    assert (outcomes, (tmp_path / "runs").read_text()) == ([(1, "line 1 failed")], "run\n")


def test_a_text_other_than_the_one_tested_ahead_is_tested_itself(tmp_path):
    tools = counting_restore(tmp_path)
    tools.test_ahead([("iptables", "bad\n", False)])
    assert tools.test_each([("iptables", "good\n", False)]) == [(0, "")]


def test_a_test_ahead_does_not_count_once_ipset_has_changed_a_set(tmp_path):
    tools = counting_restore(tmp_path)
    tools.test_ahead([("iptables", "good\n", False)])
    tools.ipset_restore("create fw4-new hash:net family inet\n")  # stops the test ahead, if it still runs

    def runs():
        return (tmp_path / "runs").read_text().count("run") if (tmp_path / "runs").exists() else 0

    before = runs()
    tools.test_each([("iptables", "good\n", False)])
    assert runs() - before == 1

"""The safety guard: iptables runs only inside a live namespace this test process created."""

from __future__ import annotations

import pytest

from ansible_collections.fleetwall.iptables.tests.integration.netns import PREFIX, Namespace, UnsafeNamespaceError


def test_guard_passes_inside_a_fresh_test_namespace(namespace: Namespace) -> None:
    namespace.guard()
    assert "*filter" not in namespace.save(4)  # a fresh namespace has no tables at all


def test_a_namespace_this_process_did_not_create_is_refused() -> None:
    for name in ("fwt", "default", "fwit-1-0", ""):
        with pytest.raises(UnsafeNamespaceError):
            Namespace(name)


def test_a_missing_namespace_is_refused(privileged: None) -> None:
    ghost = Namespace(PREFIX + "999999")
    with pytest.raises(UnsafeNamespaceError, match="ip netns identify"):
        ghost.iptables_command(["iptables-save"])


def test_a_deleted_namespace_is_refused(make_namespace) -> None:
    namespace = make_namespace()
    namespace.delete()
    with pytest.raises(UnsafeNamespaceError):
        namespace.save(4)


def test_iptables_only_runs_through_the_guarded_helper(namespace: Namespace) -> None:
    with pytest.raises(UnsafeNamespaceError):
        namespace.run(["iptables", "-S"])
    with pytest.raises(UnsafeNamespaceError):
        namespace.run(["/usr/sbin/ip6tables-restore"])
    with pytest.raises(ValueError):
        namespace.iptables_command(["sh", "-c", "iptables -F"])

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: ruleset
short_description: Converge a host's iptables and ip6tables rulesets to a compiled fleetwall ruleset
version_added: "0.1.0"
author: fleetwall maintainers (@fleetwall)
description:
  - Takes the output of the P(fleetwall.iptables.compile_ruleset#filter) filter and makes the host's live
    IPv4 and IPv6 rulesets equal to it.
  - Reads the live state with C(iptables-save) and C(ip6tables-save) and compares it in canonical form, so the
    task reports C(changed) only on a real difference, and a second run changes nothing.
  - Validates both families with C(iptables-restore --test) before touching anything, then applies each family
    with one C(iptables-restore). If the second family fails, the first is put back. A detached guardian process
    restores the previous rulesets of both families if the module is killed between the two.
  - Refuses, before changing anything, a ruleset that would stop the controller from opening a new SSH
    connection (O(lockout_check)), a whole-table takeover of a table that holds Docker, Kubernetes or fail2ban
    chains (see O(mode)), and a host whose rules live in the other iptables backend (nf_tables or legacy).
  - With O(rollback_timeout), the previous rulesets come back by themselves unless a later task confirms the new
    ones with O(confirm) over a fresh connection.
options:
  ruleset:
    description:
      - The compiled ruleset for this host, from the P(fleetwall.iptables.compile_ruleset#filter) filter.
      - Required unless O(confirm=true).
    type: dict
  mode:
    description:
      - V(own) makes the whole C(filter) table fleetwall's, built-in chain policies included. It refuses when the
        table holds chains it does not define, unless O(takeover=true).
      - V(coexist) manages only fleetwall's own chains (C(FWL-INPUT), C(FWL-FORWARD), C(FWL-OUTPUT)) and one jump at
        the top of each built-in chain, applied with C(--noflush); every other chain and rule, and the built-in
        policies, are left as they are. A V(drop) or V(reject) default policy becomes the last rule of
        fleetwall's chain; an V(accept) default lets packets fall through to the other tools' rules.
    type: str
    choices: [own, coexist]
    default: own
  takeover:
    description:
      - In O(mode=own), replace the C(filter) table even when it holds chains of other software (Docker,
        Kubernetes, fail2ban, ...). Those chains and their rules are removed.
    type: bool
    default: false
  lockout_check:
    description:
      - When the play reaches the host over SSH, simulate a new TCP connection from the controller's address to
        the SSH server's address and port (as the host sees them in C(SSH_CONNECTION)) against the new ruleset,
        and refuse to apply it if the connection would not be accepted.
    type: bool
    default: true
  allow_lockout:
    description:
      - Apply even when O(lockout_check) finds that the controller would be cut off.
    type: bool
    default: false
  ssh_connection:
    description:
      - The C(SSH_CONNECTION) value (C(client_ip client_port server_ip server_port)) to check for lockout.
      - The action plugin of this module fills it in from the connection itself, because C(become) hides the
        variable from the module. Set it only to check a different path.
    type: str
  rollback_timeout:
    description:
      - Seconds within which a later task must confirm the new rulesets with O(confirm=true); otherwise a detached
        watchdog on the host restores the previous rulesets of both families. V(0) disables the watchdog.
    type: int
    default: 0
  confirm:
    description:
      - Confirm rulesets applied with O(rollback_timeout). The action plugin opens a new connection first, so a
        confirmation proves that the new rulesets still let the controller in.
      - Fails if the watchdog has already restored the previous rulesets.
    type: bool
    default: false
  backup_dir:
    description:
      - Directory on the host for backups of the previous rulesets and the watchdog's state.
    type: path
    default: /var/lib/fleetwall
  backup_keep:
    description:
      - How many backups per family to keep in O(backup_dir).
    type: int
    default: 10
attributes:
  action:
    description: Has a corresponding action plugin, which reads C(SSH_CONNECTION) and resets the connection.
    support: full
  check_mode:
    description: Can run in check mode and return the changed status prediction without modifying the target.
    support: full
    details: Reads the live state, reports what would change and runs the lockout check; changes nothing.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when in diff mode.
    support: full
    details: A unified diff per family between the live rules and the policy's.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
requirements:
  - iptables (nf_tables or legacy backend) with iptables-save, iptables-restore, ip6tables-save, ip6tables-restore
notes:
  - The watchdog is a detached process started from the module. It survives the end of the SSH session, but not a
    reboot; persisting rulesets across reboots is the job of the P(fleetwall.iptables.persistence#role) role.
  - Only the C(filter) table is managed. Other tables (C(nat), C(mangle), ...) are never changed.
seealso:
  - plugin: fleetwall.iptables.compile_ruleset
    plugin_type: filter
  - module: community.general.iptables_state
"""

EXAMPLES = r"""
- name: Compile this host's rulesets
  ansible.builtin.set_fact:
    fleetwall_ruleset: "{{ hostvars | fleetwall.iptables.compile_ruleset(groups, inventory_hostname) }}"

- name: Apply them; roll back by themselves unless confirmed within 60 seconds
  fleetwall.iptables.ruleset:
    ruleset: "{{ fleetwall_ruleset }}"
    rollback_timeout: 60

- name: Confirm over a new connection that Ansible can still get in
  fleetwall.iptables.ruleset:
    confirm: true

- name: On a Docker host, manage only fleetwall's chains
  fleetwall.iptables.ruleset:
    ruleset: "{{ fleetwall_ruleset }}"
    mode: coexist
"""

RETURN = r"""
backend:
  description: The iptables backend the host uses.
  returned: always, except with O(confirm)
  type: str
  sample: nf_tables
rules:
  description: Rules added and removed, per family.
  returned: always, except with O(confirm)
  type: dict
  sample: {"ipv4": {"added": 3, "removed": 1}, "ipv6": {"added": 0, "removed": 0}}
backup:
  description: Paths of the backups of the previous rulesets, per family; empty when nothing changed.
  returned: always, except with O(confirm)
  type: dict
  sample: {"ipv4": "/var/lib/fleetwall/20261122T001500-3f2a.v4", "ipv6": "/var/lib/fleetwall/20261122T001500-3f2a.v6"}
lockout_check:
  description: What the lockout check did.
  returned: always, except with O(confirm)
  type: dict
  sample:
    checked: true
    client: 10.0.0.1
    server: 10.0.0.5
    port: 22
    verdict: ACCEPT
    rule: -A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 22 -m comment --comment "fleetwall_policy.all.inbound[0]" -j ACCEPT
watchdog:
  description: The rollback watchdog, when O(rollback_timeout) is set and something changed.
  returned: when a watchdog was started
  type: dict
  sample: {"token": "20261122T001500-3f2a", "timeout": 60, "pid": 4242}
confirmed:
  description: Tokens of the watchdogs that were confirmed.
  returned: with O(confirm)
  type: list
  elements: str
  sample: ["20261122T001500-3f2a"]
"""

import glob
import json
import os
import re
import subprocess
import sys
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import GUARDIAN_SOURCE
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import (
    coexist_projection,
    coexist_restore_script,
    describe_foreign,
    foreign_chains,
    has_rules,
    live_projection,
    render_desired,
    rule_counts,
    table_text,
    unified_diff,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate

FAMILIES = ((4, "ipv4", "iptables"), (6, "ipv6", "ip6tables"))
EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


class Tools:
    """The iptables binaries of the host."""

    def __init__(self, module):
        self.module = module
        self.paths = {}
        for family_spec in FAMILIES:
            command = family_spec[2]
            for suffix in ("-save", "-restore"):
                name = command + suffix
                path = module.get_bin_path(name)
                if path is None:
                    module.fail_json(msg="%s was not found; install iptables on this host" % name, changed=False)
                self.paths[name] = path

    def save(self, command):
        rc, out, err = self.module.run_command([self.paths[command + "-save"]])
        if rc != 0:
            self.module.fail_json(msg="%s-save failed: %s" % (command, (err or out).strip()), changed=False)
        return out

    def restore(self, command, text, test=False, noflush=False):
        argv = [self.paths[command + "-restore"]]
        if test:
            argv.append("--test")
        if noflush:
            argv.append("--noflush")
        rc, out, err = self.module.run_command(argv, data=text, binary_data=True)
        return rc, (err or out).strip()


def detect_backend(module, tools):
    rc, out, err = module.run_command([tools.paths["iptables-save"], "--version"])
    text = (out or err).strip()
    if "nf_tables" in text:
        backend, other = "nf_tables", "legacy"
    elif "legacy" in text or rc == 0:
        backend, other = "legacy", "nft"
    else:
        module.fail_json(msg="could not tell the iptables backend from: %s" % text, changed=False)
    for family_spec in FAMILIES:
        command = family_spec[2]
        other_save = module.get_bin_path("%s-%s-save" % (command, other))
        if other_save is None:
            continue
        rc, out = module.run_command([other_save])[:2]
        if rc == 0 and has_rules(out):
            module.fail_json(
                msg="%s rules are in the %s backend while %s uses %s; fleetwall would not see them. Remove them "
                "(%s-%s-save shows them) or switch the host's iptables alternative, then try again"
                % (command, other if other != "nft" else "nf_tables", command, backend, command, other),
                changed=False,
            )
    return backend


def failing_line(message, text):
    match = re.search(r"line:? (\d+)", message)
    if not match:
        return message
    number = int(match.group(1))
    lines = text.splitlines()
    if 1 <= number <= len(lines):
        return "%s (line %d: %s)" % (message, number, lines[number - 1])
    return message


def lockout_check(module, ruleset, mode):
    params = module.params
    result = {"checked": False}
    if not params["lockout_check"]:
        result["reason"] = "lockout_check is off"
        return result
    connection = params["ssh_connection"] or os.environ.get("SSH_CONNECTION")
    if not connection:
        result["reason"] = "not connected over SSH"
        return result
    parts = connection.split()
    if len(parts) != 4:
        module.fail_json(msg="ssh_connection must be 'client_ip client_port server_ip server_port', got %r" % connection)
    client, client_port, server, port = parts
    if client.startswith("::ffff:") and "." in client:
        client, server = client[7:], server.replace("::ffff:", "")
    family = 6 if ":" in client else 4
    interface = None
    rc, out = module.run_command(["ip", "-o", "addr", "show"])[:2]
    if rc == 0:
        for line in out.splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[3].split("/")[0] == server:
                interface = fields[1]
    packet = Packet(
        chain="INPUT",
        source=client,
        destination=server,
        protocol="tcp",
        source_port=int(client_port),
        destination_port=int(port),
        in_interface=interface,
    )
    verdict = simulate(ruleset.family(family), packet)
    result.update(
        checked=True, client=client, server=server, port=int(port), verdict=verdict.verdict, rule=verdict.rule
    )
    if verdict.verdict != "ACCEPT" and not params["allow_lockout"]:
        decided_by = verdict.rule or "the %s policy of %s" % (verdict.verdict, verdict.chain)
        if mode == "coexist" and verdict.rule is None:
            return result  # falls through to rules fleetwall does not own
        module.fail_json(
            msg="refusing to apply: the new IPv%d ruleset would not accept a new SSH connection from %s to %s port %s "
            "(decided by: %s). Allow SSH from the controller in the policy, or set allow_lockout: true if "
            "you have another way in" % (family, client, server, port, decided_by),
            lockout_check=result,
            changed=False,
        )
    return result


def start_guardian(module, config):
    # run_command cannot start a process that outlives the module: the guardian must.
    process = subprocess.Popen(  # pylint: disable=ansible-bad-function
        [sys.executable, "-c", GUARDIAN_SOURCE, json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
    )
    return process


def tell_guardian(process, word):
    try:
        process.stdin.write((word + "\n").encode())
        process.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def prune_backups(directory, keep):
    for suffix in ("v4", "v6"):
        backups = sorted(glob.glob(os.path.join(directory, "*.%s" % suffix)))
        for path in backups[:-keep] if keep > 0 else backups:
            os.unlink(path)
            for extra in (path + ".rollback",):
                if os.path.exists(extra):
                    os.unlink(extra)


def confirm(module):
    directory = module.params["backup_dir"]
    pending = sorted(glob.glob(os.path.join(directory, "watchdog-*.pending")))
    rolled_back = sorted(glob.glob(os.path.join(directory, "watchdog-*.rolled-back")))
    if rolled_back and not pending:
        with open(rolled_back[-1]) as handle:
            detail = json.load(handle)
        module.fail_json(
            msg="the watchdog already restored the previous rulesets (%s); the new rulesets were not kept"
            % detail.get("reason"),
            changed=False,
        )
    tokens = [os.path.basename(path)[len("watchdog-"):-len(".pending")] for path in pending]
    if not module.check_mode:
        for path in pending:
            os.unlink(path)
    module.exit_json(changed=bool(tokens), confirmed=tokens)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ruleset=dict(type="dict"),
            mode=dict(type="str", choices=["own", "coexist"], default="own"),
            takeover=dict(type="bool", default=False),
            lockout_check=dict(type="bool", default=True),
            allow_lockout=dict(type="bool", default=False),
            ssh_connection=dict(type="str"),
            rollback_timeout=dict(type="int", default=0),
            confirm=dict(type="bool", default=False),
            backup_dir=dict(type="path", default="/var/lib/fleetwall"),
            backup_keep=dict(type="int", default=10),
        ),
        required_if=[("confirm", False, ("ruleset",))],
        supports_check_mode=True,
    )
    params = module.params
    if params["confirm"]:
        confirm(module)
    if params["rollback_timeout"] < 0:
        module.fail_json(msg="rollback_timeout must be 0 (off) or a number of seconds")
    mode = params["mode"]
    tools = Tools(module)
    backend = detect_backend(module, tools)
    if mode == "own":
        exit_if_unchanged(module, tools, backend)
    try:
        ruleset = ruleset_from_dict(params["ruleset"])
    except ValueError as exc:
        module.fail_json(msg="ruleset: %s" % exc, changed=False)

    plans = []
    for family, key, command in FAMILIES:
        family_ruleset = ruleset.family(family)
        live = tools.save(command)
        before = live_projection(live, mode)
        after = render_desired(family_ruleset, mode)
        if mode == "own":
            defined = [chain.name for table in family_ruleset.tables for chain in table.chains]
            foreign = foreign_chains(live, defined)
            if foreign and not params["takeover"]:
                module.fail_json(
                    msg="the %s filter table holds chains fleetwall does not manage (%s: %s); mode: own would remove "
                    "them. Use mode: coexist to leave them alone, or takeover: true to replace them"
                    % (command, describe_foreign(foreign), ", ".join(foreign)),
                    changed=False,
                )
            apply_text = render_family(family_ruleset)
            rollback_text = table_text(live) or EMPTY_FILTER
            noflush = False
        else:
            apply_text = coexist_restore_script(after, live)
            rollback_text = coexist_restore_script(coexist_projection(live), after)
            noflush = True
        plans.append(
            dict(
                family=family, key=key, command=command, before=before, after=after, apply=apply_text,
                rollback=rollback_text, noflush=noflush, changed=before != after,
            )
        )

    changed = any(plan["changed"] for plan in plans)
    result = dict(
        changed=changed,
        backend=backend,
        mode=mode,
        rules=dict(
            (plan["key"], dict(zip(("added", "removed"), rule_counts(plan["before"], plan["after"])))) for plan in plans
        ),
        backup={},
    )
    if module._diff:
        result["diff"] = [
            dict(before=plan["before"], after=plan["after"], before_header="%s (live)" % plan["command"],
                 after_header="%s (policy)" % plan["command"])
            for plan in plans
        ]
    if changed:
        result["lockout_check"] = lockout_check(module, ruleset, mode)
    else:
        result["lockout_check"] = {"checked": False, "reason": "nothing changes"}
    if module.check_mode or not changed:
        module.exit_json(**result)

    for plan in plans:
        if not plan["changed"]:
            continue
        rc, message = tools.restore(plan["command"], plan["apply"], test=True, noflush=plan["noflush"])
        if rc != 0:
            module.fail_json(
                msg="%s-restore --test refused the new ruleset, nothing was changed: %s"
                % (plan["command"], failing_line(message, plan["apply"])),
                changed=False,
            )

    directory = params["backup_dir"]
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    token = "%s-%s" % (time.strftime("%Y%m%dT%H%M%S"), os.urandom(3).hex())
    rollback_steps = []
    for plan in plans:
        backup = os.path.join(directory, "%s.v%d" % (token, plan["family"]))
        with open(backup, "w") as handle:
            handle.write(plan["before"])
        os.chmod(backup, 0o600)
        with open(backup + ".rollback", "w") as handle:
            handle.write(plan["rollback"])
        result["backup"][plan["key"]] = backup
        argv = [tools.paths[plan["command"] + "-restore"]] + (["--noflush"] if plan["noflush"] else [])
        rollback_steps.append({"argv": argv, "input": backup + ".rollback"})
    pending = os.path.join(directory, "watchdog-%s.pending" % token)
    with open(pending, "w") as handle:
        handle.write(str(params["rollback_timeout"]))
    guardian = start_guardian(
        module,
        {
            "rollback": rollback_steps,
            "pending": pending,
            "rolled_back": os.path.join(directory, "watchdog-%s.rolled-back" % token),
            "timeout": params["rollback_timeout"],
        },
    )

    applied = []
    for plan in plans:
        if not plan["changed"]:
            continue
        rc, message = tools.restore(plan["command"], plan["apply"], noflush=plan["noflush"])
        if rc != 0:
            put_back(tools, applied)
            tell_guardian(guardian, "aborted")
            os.unlink(pending)
            module.fail_json(
                msg="%s-restore failed; the previous rulesets of both families are back in place: %s"
                % (plan["command"], failing_line(message, plan["apply"])),
                changed=False,
            )
        applied.append(plan)

    for plan in plans:
        now = live_projection(tools.save(plan["command"]), mode)
        if now != plan["after"]:
            put_back(tools, applied)
            tell_guardian(guardian, "aborted")
            os.unlink(pending)
            module.fail_json(
                msg="after applying, the live %s rules differ from the policy; the previous rulesets are back. "
                "Difference:\n%s" % (plan["command"], unified_diff(now, plan["after"], plan["command"])),
                changed=False,
            )

    tell_guardian(guardian, "committed")
    if params["rollback_timeout"] > 0:
        result["watchdog"] = dict(token=token, timeout=params["rollback_timeout"], pid=guardian.pid)
    else:
        os.unlink(pending)
    prune_backups(directory, params["backup_keep"])
    module.exit_json(**result)


def exit_if_unchanged(module, tools, backend):
    """The common no-op run, answered before the ruleset text is parsed.

    A compiled ruleset is iptables-save's own text, so when the live filter
    tables already equal it there is nothing to parse, check or apply; with
    thousands of rules, parsing is most of a no-op run's time.
    """
    data = module.params["ruleset"]
    lives = {}
    for family, key, command in FAMILIES:
        text = data.get(key) if isinstance(data, dict) else None
        if not isinstance(text, str):
            return  # malformed: let the parser say what is wrong
        lives[key] = table_text(tools.save(command))
        if lives[key] != text:
            return
    result = dict(
        changed=False,
        backend=backend,
        mode="own",
        rules=dict((key, {"added": 0, "removed": 0}) for family, key, command in FAMILIES),
        backup={},
        lockout_check={"checked": False, "reason": "nothing changes"},
    )
    if module._diff:
        result["diff"] = [
            dict(before=lives[key], after=lives[key], before_header="%s (live)" % command,
                 after_header="%s (policy)" % command)
            for family, key, command in FAMILIES
        ]
    module.exit_json(**result)


def put_back(tools, applied):
    for plan in reversed(applied):
        tools.restore(plan["command"], plan["rollback"], noflush=plan["noflush"])


if __name__ == "__main__":
    main()

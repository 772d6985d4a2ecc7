# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reasoning about a host's live iptables state, as iptables-save prints it.

Private to the fleetwall.iptables collection. Pure text logic, no I/O: the
ruleset module reads the state and runs the commands. Covers the two ways
fleetwall owns a ruleset:

* whole-table ("own"): the filter table is fleetwall's; live and desired are
  compared as canonical texts.
* coexist: only fleetwall's chains (prefix ``FWL-``) and one jump from each
  built-in chain are fleetwall's; Docker, Kubernetes, fail2ban and anything
  else in the table is left as it is. Applied with ``--noflush``.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import (
    BUILTIN_CHAINS,
    DOCKER_USER,
    NAT_BUILTIN_CHAINS,
    Chain,
    FamilyRuleset,
    Rule,
    Table,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import (
    canonical_text,
    render_family,
    render_rule,
)

CHAIN_PREFIX = "FWL-"
JUMP_COMMENT = "fleetwall"
# Chains that belong to software fleetwall knows to coexist with.
FOREIGN_CHAIN_PATTERNS = (
    ("Docker", re.compile(r"^DOCKER")),
    ("Kubernetes", re.compile(r"^(KUBE-|cali-|CILIUM_|FLANNEL)")),
    ("fail2ban", re.compile(r"^f2b-")),
    ("libvirt", re.compile(r"^LIBVIRT_")),
)


class TableText(NamedTuple):
    name: str
    chains: Tuple[Tuple[str, str], ...]  # (name, policy or "-")
    rules: Tuple[str, ...]  # "-A CHAIN ..." lines


def parse_tables(saved):
    # type: (str) -> Dict[str, TableText]
    """Canonical iptables-save text -> its tables."""
    tables = {}  # type: Dict[str, TableText]
    name = None  # type: Optional[str]
    chains = []  # type: List[Tuple[str, str]]
    rules = []  # type: List[str]
    for line in canonical_text(saved).splitlines():
        if line.startswith("*"):
            name, chains, rules = line[1:], [], []
        elif line.startswith(":"):
            chain, policy = line[1:].split(" ")[:2]
            chains.append((chain, policy))
        elif line.startswith("-A "):
            rules.append(line)
        elif line == "COMMIT" and name is not None:
            tables[name] = TableText(name, tuple(chains), tuple(rules))
            name = None
    return tables


def table_text(saved, table="filter"):
    # type: (str, str) -> str
    """One table of a save, canonical; '' when the table does not exist."""
    return _table_text(parse_tables(saved).get(table))


def _table_text(parsed):
    # type: (Optional[TableText]) -> str
    if parsed is None:
        return ""
    lines = ["*" + parsed.name]
    lines += [":%s %s [0:0]" % chain for chain in parsed.chains]
    lines += list(parsed.rules)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def has_rules(saved):
    # type: (str) -> bool
    """Whether a save holds anything beyond empty built-in chains with ACCEPT policies."""
    for table in parse_tables(saved).values():
        if table.rules:
            return True
        for chain, policy in table.chains:
            if chain not in ("INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING") or policy not in ("ACCEPT",):
                return True
    return False


def builtin_chains(table):
    # type: (str) -> Tuple[str, ...]
    return NAT_BUILTIN_CHAINS if table == "nat" else BUILTIN_CHAINS


def hook_chains(table):
    # type: (str) -> Tuple[str, ...]
    """The chains coexist mode hooks a fleetwall chain into: the built-in ones, and Docker's DOCKER-USER."""
    return builtin_chains(table) + ((DOCKER_USER,) if table == "filter" else ())


def foreign_chains(saved, desired_chains, table="filter"):
    # type: (str, Sequence[str], str) -> List[str]
    """User-defined chains in the live table that the desired ruleset does not define."""
    parsed = parse_tables(saved).get(table)
    if parsed is None:
        return []
    builtins = builtin_chains(table)
    return [entry[0] for entry in parsed.chains if entry[0] not in builtins and entry[0] not in desired_chains]


def describe_foreign(chains):
    # type: (Sequence[str]) -> str
    owners = []  # type: List[str]
    for chain in chains:
        owner = next((name for name, pattern in FOREIGN_CHAIN_PATTERNS if pattern.match(chain)), None)
        if owner and owner not in owners:
            owners.append(owner)
    return ", ".join(owners) if owners else "another tool"


def rule_counts(before, after):
    # type: (str, str) -> Tuple[int, int]
    """(rules added, rules removed) between two canonical texts."""
    old = [line for line in before.splitlines() if line.startswith("-A ")]
    new = [line for line in after.splitlines() if line.startswith("-A ")]
    if not old or not new:
        return len(new), len(old)  # a first run (or a flush) needs no diff of thousands of rules
    import difflib  # only when rules change (a run that changes nothing does not import it)

    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def unified_diff(before, after, label):
    # type: (str, str, str) -> str
    import difflib

    return "".join(
        difflib.unified_diff(
            before.splitlines(True), after.splitlines(True), fromfile=label + " (live)", tofile=label + " (policy)"
        )
    )


# ---------------------------------------------------------------- coexist mode


def coexist_chain(builtin):
    # type: (str) -> str
    return CHAIN_PREFIX + builtin


def to_coexist(family_ruleset):
    # type: (FamilyRuleset) -> FamilyRuleset
    """Move every built-in chain's rules into a fleetwall chain.

    The built-in chain's policy is not fleetwall's in coexist mode; a DROP
    default becomes a final DROP rule in fleetwall's chain, and an ACCEPT
    default becomes nothing, so packets fall through to the other tools'
    rules and the built-in policy.
    """
    tables = []  # type: List[Table]
    for table in family_ruleset.tables:
        chains = []  # type: List[Chain]
        for chain in table.chains:
            if chain.name not in hook_chains(table.name):
                chains.append(chain)
                continue
            rules = list(chain.rules)
            if chain.policy and chain.policy != "ACCEPT":
                rules.append(Rule(target=chain.policy, comment="fleetwall default policy"))
            chains.append(Chain(coexist_chain(chain.name), None, tuple(rules)))
        tables.append(Table(table.name, tuple(chains)))
    return FamilyRuleset(family_ruleset.family, tuple(tables))


def jump_rule(builtin):
    # type: (str) -> str
    return render_rule(builtin, Rule(target=coexist_chain(builtin), comment=JUMP_COMMENT))


def coexist_projection(saved, table="filter"):
    # type: (str, str) -> str
    """The part of a live table that is fleetwall's in coexist mode, canonical:
    its chains (sorted by name), the jumps to them from built-in chains, and
    their rules. A jump's position is not part of it: other tools insert
    their own jumps above or below it, and fleetwall does not fight them."""
    parsed = parse_tables(saved).get(table)
    if parsed is None:
        return ""
    ours = sorted(entry[0] for entry in parsed.chains if entry[0].startswith(CHAIN_PREFIX))
    builtins = hook_chains(table)
    jumps = [rule for rule in parsed.rules if _is_jump(rule, builtins)]
    if not ours and not jumps:
        return ""
    lines = ["*" + table]
    lines += [":%s - [0:0]" % chain for chain in ours]
    lines += sorted(jumps, key=lambda rule: (builtins.index(rule.split(" ", 2)[1]), rule))
    for chain in ours:
        lines += [rule for rule in parsed.rules if rule.split(" ", 2)[1] == chain]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _is_jump(rule, builtins=BUILTIN_CHAINS):
    # type: (str, Tuple[str, ...]) -> bool
    chain = rule.split(" ", 2)[1]
    return chain in builtins and (" -j " + CHAIN_PREFIX) in rule


def desired_coexist_projection(coexist_ruleset, table="filter"):
    # type: (FamilyRuleset, str) -> str
    target = coexist_ruleset.table(table)
    ours = sorted(chain.name for chain in target.chains)
    lines = ["*" + table]
    lines += [":%s - [0:0]" % chain for chain in ours]
    lines += [jump_rule(builtin) for builtin in hook_chains(table) if coexist_chain(builtin) in ours]
    by_name = dict((chain.name, chain) for chain in target.chains)
    for chain in ours:
        lines += [render_rule(chain, rule) for rule in by_name[chain].rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def coexist_restore_script(desired_projection, live_saved, table="filter"):
    # type: (str, str, str) -> str
    """iptables-restore --noflush input that turns the live table's fleetwall
    part into ``desired_projection`` (as made by desired_coexist_projection or
    coexist_projection) and touches nothing else. A missing jump is appended
    at the end of its built-in chain, after the rules other tools put there."""
    live = parse_tables(live_saved).get(table)
    live_rules = list(live.rules) if live else []
    live_chains = [entry[0] for entry in live.chains] if live else []
    desired_lines = desired_projection.splitlines()
    desired_chains = [line[1:].split(" ")[0] for line in desired_lines if line.startswith(":")]
    desired_rules = [line for line in desired_lines if line.startswith("-A ")]
    builtins = hook_chains(table)
    desired_jumps = [rule for rule in desired_rules if _is_jump(rule, builtins)]
    live_jumps = [rule for rule in live_rules if _is_jump(rule, builtins)]
    lines = ["*" + table]
    # Declaring a chain under --noflush creates it, or empties it if it exists.
    stale = [chain for chain in live_chains if chain.startswith(CHAIN_PREFIX) and chain not in desired_chains]
    lines += [":%s - [0:0]" % chain for chain in desired_chains + stale]
    if any(rule.startswith("-A %s " % DOCKER_USER) for rule in desired_jumps) and DOCKER_USER not in live_chains:
        lines.append(":%s - [0:0]" % DOCKER_USER)  # Docker keeps a DOCKER-USER it finds; declaring one it made would flush it
    for builtin in builtins:
        wanted = [rule for rule in desired_jumps if rule.split(" ", 2)[1] == builtin]
        present = [rule for rule in live_jumps if rule.split(" ", 2)[1] == builtin]
        if present == wanted:
            continue
        lines += ["-D" + rule[2:] for rule in present]
        # Docker may end DOCKER-USER with a RETURN: fleetwall's jump goes first, the built-in chains' last.
        lines += ["-I %s 1%s" % (builtin, rule[len("-A " + builtin):]) if builtin == DOCKER_USER else rule for rule in wanted]
    lines += [rule for rule in desired_rules if not _is_jump(rule, builtins)]
    lines += ["-X %s" % chain for chain in stale]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render_desired(family_ruleset, mode):
    # type: (FamilyRuleset, str) -> str
    """The canonical text the live state is compared with, per mode."""
    if mode == "coexist":
        coexist = to_coexist(family_ruleset)
        return "".join(desired_coexist_projection(coexist, table.name) for table in coexist.tables)
    return render_family(family_ruleset)


def owns_nat(saved):
    # type: (str) -> bool
    """Whether the live nat table is fleetwall's in mode: own: it holds a rule compiled from a NAT entry.

    A host whose policy has no NAT entry never touches the nat table, so Docker's or an operator's NAT
    rules stay out of the comparison until the policy brings NAT of its own."""
    return _is_owned_nat(parse_tables(saved).get("nat"))


_NAT_ENTRY_COMMENT = re.compile(r' --comment "?(?:fleetwall_policy\..*?|fleetwall_host_rules)\.nat\[')


def _is_owned_nat(parsed):
    # type: (Optional[TableText]) -> bool
    return parsed is not None and any(_NAT_ENTRY_COMMENT.search(rule) for rule in parsed.rules)


def live_projection(saved, mode):
    # type: (str, str) -> str
    """What of a live save fleetwall compares: coexist mode its chains; mode: own the filter table, and the
    nat table once it is fleetwall's (owns_nat)."""
    if mode == "coexist":
        return coexist_projection(saved) + coexist_projection(saved, "nat")
    tables = parse_tables(saved)
    nat = tables.get("nat")
    return _table_text(tables.get("filter")) + (_table_text(nat) if _is_owned_nat(nat) else "")


def coexist_boot_text(family_ruleset):
    # type: (FamilyRuleset) -> str
    """What a boot-time rules file holds in coexist mode: fleetwall's chains and
    their jumps only, in each table it has (filter, nat), with ACCEPT built-in
    policies, so that no other tool's runtime rules (Docker's, for one) are frozen into it."""
    coexist = to_coexist(family_ruleset)
    return coexist_boot_text_of("".join(desired_coexist_projection(coexist, table.name) for table in coexist.tables))


def coexist_boot_text_of(projection):
    # type: (str) -> str
    """The boot file of a coexist projection (desired_coexist_projection's text, one table or several):
    the projection is what coexist mode applies; a boot file also declares each table's built-in chains."""
    lines = []  # type: List[str]
    for line in projection.splitlines():
        lines.append(line)
        if line.startswith("*"):
            lines += [":%s ACCEPT [0:0]" % builtin for builtin in builtin_chains(line[1:])]
            lines.append("")  # DOCKER-USER's place, filled below if the table jumps from it
    for index in [position for position, line in enumerate(lines) if line == ""][::-1]:
        table_end = lines.index("COMMIT", index)
        if any(line.startswith("-A %s " % DOCKER_USER) for line in lines[index:table_end]):
            lines[index] = ":%s - [0:0]" % DOCKER_USER  # at boot, before Docker makes it; Docker keeps it
        else:
            del lines[index]
    return "\n".join(lines) + "\n"

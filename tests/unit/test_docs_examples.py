"""The documentation and the examples say only what the code does.

Every policy, file, rendered ruleset, error message and packet verdict shown in
docs/*.md is marked by an HTML comment on the line before it (invisible when
the page is rendered) and checked here against the compiler as it is now:

``<!-- fleetwall-file: PATH -->``
    The next fenced block is the file PATH (relative to the collection root),
    byte for byte.
``<!-- fleetwall-policy: name=NAME [inventory=DIR] [apply_to=HOST,...] [fails] -->``
    The next ```yaml block holds variables. Without ``apply_to`` they replace
    DIR's group_vars/all.yml (default DIR: examples/lab); with it they are
    added to those hosts only, as host_vars/HOST.yml would be. Every host of
    DIR must then compile, or, with ``fails``, at least one must fail.
``<!-- fleetwall-output: (policy=NAME | inventory=DIR) host=HOST show=WHAT [select=rules] -->``
    The next fenced block is exactly what HOST gets: WHAT is ``ipv4`` or
    ``ipv6`` (the iptables-restore text; ``select=rules`` keeps only the
    ``-A`` lines of policy rules, leaving out baseline and default-policy
    rules), ``error`` (the message) or ``warnings`` (one a line).
``<!-- fleetwall-checks: (policy=NAME | inventory=DIR) host=HOST -->``
    The next ```yaml block lists packets (the keys simulate_packet takes),
    each with the ``verdict`` the simulator must give for HOST.
``<!-- fleetwall-catalog -->``
    The next Markdown table is the built-in service catalog.

A ```yaml block that defines fleetwall_policy, fleetwall_services or
fleetwall_addresses without such a marker is an error: every policy shown is
compiled. After changing the compiler, regenerate the file, output and
catalog blocks with ``.venv/bin/python tests/unit/test_docs_examples.py --update``
and review the diff.

The example inventories under examples/ are loaded by ansible-core itself
(InventoryManager and VariableManager merge group_vars as a play would), and
the example playbooks are run with ansible-playbook against the lab.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import pytest
import yaml

if __name__ == "__main__":  # --update: make the collection importable as pytest's conftest does
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "conftest.py"))

# pylint: disable=wrong-import-position
from ansible.inventory.manager import InventoryManager  # noqa: E402
from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.vars.manager import VariableManager  # noqa: E402

import ansible_collections.fleetwall.iptables as collection_package  # noqa: E402
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import DEFAULT_ADDRESS_QUERY  # noqa: E402
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler  # noqa: E402
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import HostRuleset  # noqa: E402
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy import (  # noqa: E402
    ACTIONS,
    BASELINE_DEFAULTS,
    COMMON_RULE_KEYS,
    DEFAULT_POLICY,
    DEFAULT_PRIORITY,
    KEY_ALIASES,
    REJECT_WITH,
    RULE_KEYS,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError  # noqa: E402
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family  # noqa: E402
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import (  # noqa: E402
    BUILTIN_SERVICES,
    ICMP_TYPES,
    ICMPV6_TYPES,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import simulate  # noqa: E402
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict  # noqa: E402
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.packets import packet_from_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
EXAMPLE_INVENTORIES = sorted(
    str(path.parent.relative_to(ROOT)) for path in (ROOT / "examples").glob("**/inventory.yml")
)
DEFAULT_INVENTORY = "examples/lab"
FLEET_VARIABLES = ("fleetwall_policy", "fleetwall_services", "fleetwall_addresses")

_MARKER = re.compile(r"^\s*<!--\s*fleetwall-([a-z]+)(?::\s*(.*?))?\s*-->\s*$")
_FENCE = re.compile(r"^(\s*)```\s*([A-Za-z0-9_+-]*)\s*$")


# ------------------------------------------------------------------ reading the docs


class Block(NamedTuple):
    """A marked block of a document: what the marker says and what follows it."""

    doc: str  # file name, e.g. "guide.md"
    line: int  # 1-based line of the marker
    kind: str  # file, policy, output, checks, catalog
    args: Dict[str, str]
    lang: str
    indent: str  # the indentation of the fence (blocks inside list items), not part of text
    text: str  # the block's content, each line ending in a newline
    start: int  # 0-based index of the content's first line
    end: int  # 0-based index one past its last line

    @property
    def where(self) -> str:
        return "docs/%s:%d" % (self.doc, self.line)


def _marker_args(text: str) -> Dict[str, str]:
    args = {}
    for word in (text or "").split():
        key, sep, value = word.partition("=")
        args[key] = value if sep else "true"
    return args


def parse_doc(path: Path) -> Tuple[List[Block], List[str]]:
    """The marked blocks of one document, and problems with its markup."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: List[Block] = []
    problems: List[str] = []
    pending: Optional[Tuple[int, str, Dict[str, str]]] = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _MARKER.match(line)
        if marker:
            if pending:
                problems.append("docs/%s:%d: marker without a block after it" % (path.name, pending[0] + 1))
            pending = (index, marker.group(1), _marker_args(marker.group(2)))
            index += 1
            continue
        if pending and pending[1] == "catalog" and line.startswith("|"):
            start = index
            while index < len(lines) and lines[index].startswith("|"):
                index += 1
            text = "".join(item + "\n" for item in lines[start:index])
            blocks.append(Block(path.name, pending[0] + 1, "catalog", pending[2], "", "", text, start, index))
            pending = None
            continue
        fence = _FENCE.match(line)
        if fence:
            indent, lang = fence.group(1), fence.group(2)
            start = index + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end == len(lines):
                problems.append("docs/%s:%d: unclosed code block" % (path.name, index + 1))
                break
            text = "".join((item[len(indent):] if item.startswith(indent) else item.lstrip()) + "\n" for item in lines[start:end])
            if pending:
                blocks.append(Block(path.name, pending[0] + 1, pending[1], pending[2], lang, indent, text, start, end))
            elif lang in ("yaml", "yml"):
                problems.extend(_unmarked_policy(path.name, index + 1, text))
            pending = None
            index = end + 1
            continue
        if pending and line.strip():
            problems.append("docs/%s:%d: marker not directly followed by its block" % (path.name, pending[0] + 1))
            pending = None
        index += 1
    if pending:
        problems.append("docs/%s:%d: marker without a block after it" % (path.name, pending[0] + 1))
    return blocks, problems


def _unmarked_policy(doc: str, line: int, text: str) -> List[str]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if isinstance(data, dict) and any(key in data for key in FLEET_VARIABLES):
        return ["docs/%s:%d: a fleetwall policy without a <!-- fleetwall-policy: ... --> marker" % (doc, line)]
    return []


@functools.lru_cache(maxsize=None)
def all_blocks() -> Tuple[Tuple[Block, ...], Tuple[str, ...]]:
    blocks: List[Block] = []
    problems: List[str] = []
    for path in DOCS:
        found, issues = parse_doc(path)
        blocks.extend(found)
        problems.extend(issues)
    return tuple(blocks), tuple(problems)


def blocks_of(kind: str) -> List[Block]:
    return [block for block in all_blocks()[0] if block.kind == kind]


# ------------------------------------------------------------------ inventories and policies


@functools.lru_cache(maxsize=None)
def _load_inventory(directory: str) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(ROOT / directory)])
    variables = VariableManager(loader=loader, inventory=inventory)
    hostvars = {host.name: dict(variables.get_vars(host=host, include_hostvars=False)) for host in inventory.get_hosts()}
    return hostvars, inventory.get_groups_dict()


def load_inventory(directory: str) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    """hostvars and groups of an inventory directory, as a play would see them."""
    hostvars, groups = _load_inventory(directory)
    return {host: dict(host_vars) for host, host_vars in hostvars.items()}, copy.deepcopy(groups)


def policy_inventory(block: Block) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    directory = block.args.get("inventory", DEFAULT_INVENTORY)
    hostvars, groups = load_inventory(directory)
    variables = yaml.safe_load(block.text)
    assert isinstance(variables, dict), "%s: a policy block must be a mapping of variables" % block.where
    if "apply_to" in block.args:
        targets = block.args["apply_to"].split(",")
        unknown = sorted(set(targets) - set(hostvars))
        assert not unknown, "%s: apply_to names unknown hosts %s" % (block.where, unknown)
        replaced: Tuple[str, ...] = ()
    else:
        targets = list(hostvars)
        group_vars = ROOT / directory / "group_vars" / "all.yml"
        replaced = tuple(yaml.safe_load(group_vars.read_text(encoding="utf-8")) or {}) if group_vars.exists() else ()
    for host in targets:
        host_vars = {key: value for key, value in hostvars[host].items() if key not in replaced}
        host_vars.update(copy.deepcopy(variables))
        hostvars[host] = host_vars
    return hostvars, groups


def policy_blocks() -> Dict[str, Block]:
    named: Dict[str, Block] = {}
    for block in blocks_of("policy"):
        name = block.args.get("name")
        assert name, "%s: a policy marker needs name=NAME" % block.where
        assert name not in named, "%s: policy name %r is also used at %s" % (block.where, name, named[name].where)
        named[name] = block
    return named


def source_inventory(block: Block) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    """The inventory an output or checks block is about."""
    if "policy" in block.args:
        policies = policy_blocks()
        assert block.args["policy"] in policies, "%s: no policy named %r" % (block.where, block.args["policy"])
        return policy_inventory(policies[block.args["policy"]])
    assert "inventory" in block.args, "%s: give policy=NAME or inventory=DIR" % block.where
    return load_inventory(block.args["inventory"])


def compile_for(block: Block) -> HostRuleset:
    hostvars, groups = source_inventory(block)
    assert "host" in block.args, "%s: give host=HOST" % block.where
    return FleetCompiler(hostvars, groups).compile_host(block.args["host"])


# ------------------------------------------------------------------ what the blocks must say


def expected_output(block: Block) -> str:
    show = block.args.get("show")
    assert show in ("ipv4", "ipv6", "ipsets", "error", "warnings"), (
        "%s: show must be ipv4, ipv6, ipsets, error or warnings" % block.where
    )
    try:
        ruleset = compile_for(block)
    except PolicyError as exc:
        if show == "error":
            return str(exc) + "\n"
        raise
    assert show != "error", "%s: the policy compiles; there is no error to show" % block.where
    if show == "warnings":
        return "".join(warning + "\n" for warning in ruleset.warnings)
    if show == "ipsets":
        return ruleset_to_dict(ruleset).get("ipsets", "")
    text = render_family(ruleset.family(4 if show == "ipv4" else 6))
    if block.args.get("select") == "rules":
        text = "".join(
            line + "\n"
            for line in text.splitlines()
            if line.startswith("-A") and "fleetwall baseline" not in line and "fleetwall default" not in line
        )
    return text


def _user_form(entry) -> str:
    protocol = "icmpv6" if entry.protocol == "ipv6-icmp" else entry.protocol
    if entry.ports:
        return "%s/%s" % (protocol, ",".join(port.render().replace(":", "-") for port in entry.ports))
    if entry.icmp_type is not None:
        names = ICMP_TYPES if entry.protocol == "icmp" else ICMPV6_TYPES
        name = next(name for name, value in names.items() if value == entry.icmp_type)
        return "%s/%s" % (protocol, name)
    return protocol


def catalog_table() -> str:
    """The built-in services as a Markdown table, in fleetwall_services' own notation."""
    lines = ["| Service | Matches | Address families |", "| --- | --- | --- |"]
    for name in sorted(BUILTIN_SERVICES):
        entries = BUILTIN_SERVICES[name]
        families = {entry.family for entry in entries}
        if None in families or families == {4, 6}:
            family_text = "IPv4 and IPv6"
        else:
            family_text = "IPv%d only" % families.pop()
        matches = ", ".join("`%s`" % _user_form(entry) for entry in entries)
        lines.append("| `%s` | %s | %s |" % (name, matches, family_text))
    return "".join(line + "\n" for line in lines)


def expected_text(block: Block) -> str:
    """What a generated block (file, output, catalog) must hold."""
    if block.kind == "file":
        path = ROOT / file_path(block)
        assert path.is_file(), "%s: no file %s" % (block.where, path)
        return path.read_text(encoding="utf-8")
    if block.kind == "output":
        return expected_output(block)
    if block.kind == "catalog":
        return catalog_table()
    raise AssertionError("%s: %s blocks are not generated" % (block.where, block.kind))


def file_path(block: Block) -> str:
    """<!-- fleetwall-file: PATH --> (or path=PATH)."""
    return block.args.get("path") or next(iter(block.args), "")


def _ids(blocks: List[Block]) -> List[str]:
    return ["%s:%d" % (block.doc, block.line) for block in blocks]


# ------------------------------------------------------------------ tests: docs


def test_every_doc_marker_has_its_block_and_every_policy_is_marked():
    assert DOCS, "no docs/*.md found"
    assert list(all_blocks()[1]) == []


def test_marker_kinds_are_known():
    unknown = [block.where for block in all_blocks()[0] if block.kind not in ("file", "policy", "output", "checks", "catalog")]
    assert unknown == []


@pytest.mark.parametrize("block", blocks_of("policy"), ids=_ids(blocks_of("policy")))
def test_policy_in_the_docs_compiles_for_every_host(block):
    hostvars, groups = policy_inventory(block)
    compiler = FleetCompiler(hostvars, groups)
    failures = {}
    for host in sorted(hostvars):
        try:
            compiler.compile_host(host)
        except PolicyError as exc:
            failures[host] = str(exc)
    if "fails" in block.args:
        assert failures, "%s is marked 'fails' but every host compiles" % block.where
    else:
        assert failures == {}


@pytest.mark.parametrize(
    "block",
    blocks_of("file") + blocks_of("output") + blocks_of("catalog"),
    ids=_ids(blocks_of("file") + blocks_of("output") + blocks_of("catalog")),
)
def test_block_in_the_docs_shows_what_the_code_gives_now(block):
    assert block.text == expected_text(block), (
        "%s is out of date; run: .venv/bin/python tests/unit/test_docs_examples.py --update" % block.where
    )


@pytest.mark.parametrize("block", blocks_of("checks"), ids=_ids(blocks_of("checks")))
def test_packet_verdicts_in_the_docs_are_what_the_simulator_says(block):
    ruleset = compile_for(block)
    packets = yaml.safe_load(block.text)
    assert isinstance(packets, list) and packets, "%s: a checks block is a list of packets" % block.where
    wrong = []
    for packet in packets:
        fields = dict(packet)
        expected = fields.pop("verdict")
        parsed = packet_from_dict(fields)
        verdict = simulate(ruleset.family(parsed.family), parsed)
        if verdict.verdict != expected:
            wrong.append((packet, verdict.verdict, verdict.rule))
    assert wrong == []


def test_service_catalog_is_in_the_policy_reference():
    assert [block.doc for block in blocks_of("catalog")] == ["policy.md"]


def test_worked_example_and_tutorials_show_the_example_files():
    shown = {file_path(block) for block in blocks_of("file")}
    for directory in EXAMPLE_INVENTORIES:
        assert directory + "/group_vars/all.yml" in shown


def _reference() -> str:
    return (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")


def test_policy_reference_quotes_the_default_address_query():
    assert "\n" + DEFAULT_ADDRESS_QUERY + "\n" in _reference()


def test_policy_reference_documents_every_rule_field_and_alias():
    fields = set(COMMON_RULE_KEYS) | {key for keys in RULE_KEYS.values() for key in keys}
    rows = [line for line in _reference().splitlines() if line.startswith("| `")]
    missing = sorted(field for field in fields if not any(row.startswith("| `%s`" % field) for row in rows))
    assert missing == []
    for alias, field in KEY_ALIASES.items():
        assert "| `%s` (alias `%s`)" % (field, alias) in _reference()


def test_policy_reference_states_the_defaults():
    text = _reference()
    for item, default in BASELINE_DEFAULTS.items():
        assert "| `%s` | %s |" % (item, "on" if default else "off") in text
    for direction, action in DEFAULT_POLICY.items():
        assert "| `%s` | %s | `%s` |" % (direction, ", ".join("`%s`" % name for name in ACTIONS), action) in text
    assert "| `priority` | integer 0–1000 | `%d` |" % DEFAULT_PRIORITY in text
    for name, (ipv4, ipv6) in REJECT_WITH.items():
        assert "| `%s` | `%s` | `%s`" % (name, ipv4, ipv6) in text


# ------------------------------------------------------------------ tests: example inventories


def test_examples_exist():
    assert {"examples/lab", "examples/tutorials/tutorial1", "examples/tutorials/tutorial2"} <= set(EXAMPLE_INVENTORIES)


@pytest.mark.parametrize("directory", EXAMPLE_INVENTORIES)
def test_example_inventory_compiles_every_host_without_warnings(directory):
    hostvars, groups = load_inventory(directory)
    compiler = FleetCompiler(hostvars, groups)
    rulesets = {host: compiler.compile_host(host) for host in sorted(hostvars)}
    assert rulesets and {host: ruleset.warnings for host, ruleset in rulesets.items() if ruleset.warnings} == {}


def test_lab_hosts_have_an_ipv4_and_an_ipv6_address():
    hostvars = load_inventory("examples/lab")[0]
    assert sorted(hostvars) == ["bastion1", "cache1", "db1", "mon1", "web1", "web2"]
    for host_vars in hostvars.values():
        assert [":" in address for address in host_vars["fleetwall_host_addresses"]] == [False, True]


# ------------------------------------------------------------------ tests: what the tutorials intend

SERVER4, SERVER6 = "192.0.2.10", "2001:db8::10"
CLIENT4, CLIENT6 = "198.51.100.20", "2001:db8:ffff::20"


def verdict_of(directory: str, host: str, **packet: Any) -> str:
    hostvars, groups = load_inventory(directory)
    ruleset = FleetCompiler(hostvars, groups).compile_host(host)
    parsed = packet_from_dict(packet)
    return simulate(ruleset.family(parsed.family), parsed).verdict


def tutorial1(**packet: Any) -> str:
    return verdict_of("examples/tutorials/tutorial1", "www1", **packet)


def tutorial2(**packet: Any) -> str:
    return verdict_of("examples/tutorials/tutorial2", "alma8", **packet)


INBOUND4 = {"direction": "inbound", "source": CLIENT4, "destination": SERVER4, "protocol": "tcp"}
OUTBOUND4 = {"direction": "outbound", "source": SERVER4, "destination": CLIENT4, "protocol": "tcp"}


@pytest.mark.parametrize(
    "packet, verdict",
    [
        (dict(INBOUND4, port=22, in_interface="eth0"), "ACCEPT"),
        (dict(INBOUND4, port=80, in_interface="eth0"), "ACCEPT"),
        (dict(INBOUND4, port=443, in_interface="eth0"), "DROP"),
        (dict(INBOUND4, port=22, in_interface="eth1"), "DROP"),
        (dict(INBOUND4, port=80, in_interface="eth0", state="ESTABLISHED"), "ACCEPT"),
        (dict(OUTBOUND4, port=22, out_interface="eth0"), "ACCEPT"),
        (dict(OUTBOUND4, port=80, out_interface="eth0"), "DROP"),
        (dict(OUTBOUND4, port=22, out_interface="eth1"), "DROP"),
        (dict(OUTBOUND4, source_port=22, port=50000, out_interface="eth0", state="ESTABLISHED"), "ACCEPT"),
        (dict(INBOUND4, source_port=22, port=50000, in_interface="eth0", state="ESTABLISHED"), "ACCEPT"),
        (dict(INBOUND4, port=22, in_interface="eth0", direction="forward", out_interface="eth1"), "DROP"),
    ],
    ids=[
        "inbound ssh on eth0 accepted",
        "inbound http on eth0 accepted",
        "inbound https dropped",
        "inbound ssh on another interface dropped",
        "inbound http of an established connection accepted",
        "outbound ssh on eth0 accepted",
        "outbound http dropped",
        "outbound ssh on another interface dropped",
        "ssh server's replies go out",
        "ssh client's replies come in",
        "nothing is forwarded",
    ],
)
def test_tutorial1_intent(packet, verdict):
    assert tutorial1(**packet) == verdict


def test_tutorial1_policy_holds_for_ipv6_too():
    packet = {"source": CLIENT6, "destination": SERVER6, "protocol": "tcp", "in_interface": "eth0"}
    assert [tutorial1(port=port, **packet) for port in (22, 80, 443)] == ["ACCEPT", "ACCEPT", "DROP"]


def test_tutorial1_difference_loopback_is_accepted_unlike_in_rules_sh():
    packet = {"source": "127.0.0.1", "destination": "127.0.0.1", "protocol": "tcp", "port": 5432}
    assert tutorial1(in_interface="lo", **packet) == "ACCEPT"
    assert tutorial1(direction="outbound", out_interface="lo", **packet) == "ACCEPT"


INBOUND2 = {"source": "192.0.2.200", "destination": SERVER4, "protocol": "tcp", "in_interface": "eth0"}


@pytest.mark.parametrize(
    "packet, verdict",
    [
        (dict(INBOUND2, source="203.0.113.5", port=22), "ACCEPT"),
        (dict(INBOUND2, port=22), "DROP"),
        (dict(INBOUND2, port=80), "ACCEPT"),
        (dict(INBOUND2, port=443), "ACCEPT"),
        (dict(INBOUND2, source="192.0.2.66", port=80), "DROP"),
        (dict(INBOUND2, source="198.51.100.20", port=443), "REJECT"),
        (dict(INBOUND2, port=25), "DROP"),
        (dict(INBOUND2, source="127.0.0.1", destination="127.0.0.1", in_interface="lo", port=3306), "ACCEPT"),
        (dict(INBOUND2, source="127.0.0.1", port=3306), "DROP"),
        (dict(INBOUND2, source_port=443, port=40000, state="ESTABLISHED"), "ACCEPT"),
        (dict(INBOUND2, port=80, state="INVALID"), "DROP"),
        ({"direction": "outbound", "source": SERVER4, "destination": CLIENT4, "protocol": "udp", "port": 53}, "ACCEPT"),
        (dict(INBOUND2, source="2001:db8:ffff::20", destination=SERVER6, port=443), "ACCEPT"),
        (dict(INBOUND2, source="2001:db8:ffff::20", destination=SERVER6, port=22), "DROP"),
    ],
    ids=[
        "ssh from the trusted subnet accepted",
        "ssh from elsewhere dropped",
        "http accepted",
        "https accepted",
        "blocked address dropped",
        "blocked subnet rejected",
        "other ports dropped",
        "loopback accepted",
        "loopback address from outside dropped",
        "established accepted",
        "invalid dropped",
        "outbound left open",
        "https over IPv6 accepted",
        "ssh over IPv6 dropped: the trusted subnet has no IPv6 range",
    ],
)
def test_tutorial2_intent(packet, verdict):
    assert tutorial2(**packet) == verdict


# ------------------------------------------------------------------ tests: example playbooks, run by Ansible


def _ansible_playbook(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    program = Path(sys.executable).parent / "ansible-playbook"
    if not program.exists():
        pytest.skip("ansible-playbook is not installed next to %s" % sys.executable)
    collections_root = Path(list(collection_package.__path__)[0]).parents[2]  # .../ansible_collections/fleetwall/iptables
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_root),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    env.pop("ANSIBLE_CONFIG", None)
    return subprocess.run(
        [str(program), *args], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_render_playbook_writes_what_the_compiler_renders(tmp_path):
    output = tmp_path / "rendered"
    result = _ansible_playbook(
        tmp_path,
        "-i", str(ROOT / "examples/lab"),
        str(ROOT / "examples/playbooks/render.yml"),
        "-e", "fleetwall_render_dir=%s" % output,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    hostvars, groups = load_inventory("examples/lab")
    compiler = FleetCompiler(hostvars, groups)
    for host in sorted(hostvars):
        ruleset = compiler.compile_host(host)
        assert (output / (host + ".v4")).read_text() == render_family(ruleset.ipv4)
        assert (output / (host + ".v6")).read_text() == render_family(ruleset.ipv6)


def test_check_playbook_assertions_hold_for_the_lab(tmp_path):
    result = _ansible_playbook(
        tmp_path, "-i", str(ROOT / "examples/lab"), str(ROOT / "examples/playbooks/check-lab.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout and "fleetwall_policy.all.inbound[0]: admin access" in result.stdout


# ------------------------------------------------------------------ regenerating the docs


def update_docs() -> List[str]:
    """Rewrite every generated block from the code; the names of changed documents."""
    changed = []
    for path in DOCS:
        blocks, problems = parse_doc(path)
        if problems:
            raise SystemExit("\n".join(problems))
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        new_lines = list(lines)
        for block in sorted(blocks, key=lambda item: item.start, reverse=True):
            if block.kind in ("file", "output", "catalog"):
                new_lines[block.start:block.end] = [
                    (block.indent + line if line.strip() else line)
                    for line in expected_text(block).splitlines(keepends=True)
                ]
        if new_lines != lines:
            path.write_text("".join(new_lines), encoding="utf-8")
            changed.append(str(path.relative_to(ROOT)))
    return changed


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        raise SystemExit("usage: %s --update" % sys.argv[0])
    print("\n".join(update_docs()) or "docs are up to date")

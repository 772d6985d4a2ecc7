"""Bad input is refused before anything is compiled: a PolicyError whose every
problem names the path of the offending value, and never another exception.

Each case compiles the whole fleet of the shared test inventory (as
compile_fleet does) with one thing broken, and pins the exact message.
"""

from __future__ import annotations

from typing import Any, Dict

import pytest

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError

from ansible_collections.fleetwall.iptables.tests.unit.fleet import GROUPS, inventory


def db_rule(rule: Any, direction: str = "inbound") -> Dict[str, Any]:
    """Inventory arguments whose policy is this one rule for group db."""
    return {"policy": {"db": {direction: [rule]}}}


def services(definitions: Any) -> Dict[str, Any]:
    return {"services": definitions}


def addresses(definitions: Any) -> Dict[str, Any]:
    return {"addresses": definitions}


def web1_vars(**variables: Any) -> Dict[str, Any]:
    """Inventory arguments that give host web1 these variables."""
    return {"host_vars": {"web1": variables}}


# web2 known only by a DNS name, without gathered facts.
WEB2_WITHOUT_ADDRESS = {"web2": {"ansible_host": "web2.example.com", "ansible_default_ipv6": None}}
ICMP_NAMES = (
    "address-mask-reply, address-mask-request, communication-prohibited, destination-unreachable, echo-reply, "
    "echo-request, fragmentation-needed, host-prohibited, host-unreachable, network-prohibited, "
    "network-unreachable, parameter-problem, port-unreachable, protocol-unreachable, redirect, "
    "router-advertisement, router-solicitation, source-quench, source-route-failed, time-exceeded, "
    "timestamp-reply, timestamp-request, ttl-zero-during-reassembly, ttl-zero-during-transit"
)
INTERFACE_RULES = (
    "at most 15 characters in all: letters, digits or _.@-, optionally ending in '+' (prefix match), "
    "optionally preceded by '!' (negation)"
)
REJECT_WITH_NAMES = "admin-prohibited, host-unreachable, net-unreachable, port-unreachable, tcp-reset"
SET_NAME_RULES = "set names start with a letter or '_' and use letters, digits, '_', '.' and '-' ('any' is taken)"
SERVICE_NAME_RULES = "service names may use letters, digits, '_', '.' and '-' only"
PROTOCOL_NAMES = "ah, esp, gre, icmp, icmpv6, ipv6-icmp, sctp, tcp, udp, udplite, vrrp"
NO_ADDRESS_ADVICE = "Set fleetwall_host_addresses for it, gather its facts, or give it an IP ansible_host"

SERVICES = [
    pytest.param(
        db_rule({"service": ["postgress"]}),
        "fleetwall_policy.db.inbound[0].service[0]: unknown service 'postgress' (did you mean 'postgres'?)",
        id="unknown-service-with-close-match",
    ),
    pytest.param(
        db_rule({"service": "frobnicate"}),
        "fleetwall_policy.db.inbound[0].service: unknown service 'frobnicate'",
        id="unknown-service-without-close-match",
    ),
    pytest.param(
        db_rule({"service": 5432}),
        "fleetwall_policy.db.inbound[0].service: a service name must be a string, got integer",
        id="service-as-integer",
    ),
    pytest.param(
        db_rule({"service": []}),
        "fleetwall_policy.db.inbound[0].service: empty list; give at least one service name",
        id="empty-service-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "services": ["http"]}),
        "fleetwall_policy.db.inbound[0].services: 'service' is given twice, as 'service' and as 'services'; keep one",
        id="service-and-its-alias-services",
    ),
    pytest.param(
        db_rule({"services": "ssh", "service": "http"}),
        "fleetwall_policy.db.inbound[0].service: 'service' is given twice, as 'services' and as 'service'; keep one",
        id="alias-services-before-service",
    ),
]

GROUPS_HOSTS_AND_SETS = [
    pytest.param(
        db_rule({"service": "postgres", "from": ["group:wbe"]}),
        "fleetwall_policy.db.inbound[0].from[0]: unknown group 'wbe' (did you mean 'web'?)",
        id="unknown-group-in-from",
    ),
    pytest.param(
        db_rule({"service": "https", "to": ["group:nope"]}, direction="outbound"),
        "fleetwall_policy.db.outbound[0].to[0]: unknown group 'nope'",
        id="unknown-group-in-to",
    ),
    pytest.param(
        {"policy": {"wbe": {"inbound": [{"service": "http"}]}}},
        "fleetwall_policy.wbe: unknown group 'wbe' (did you mean 'web'?)",
        id="unknown-group-as-policy-key",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": "host:bastoin"}),
        "fleetwall_policy.db.inbound[0].from: unknown host 'bastoin' (did you mean 'bastion'?)",
        id="unknown-host",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["ofice"]}),
        "fleetwall_policy.db.inbound[0].from[0]: unknown address set 'ofice' (did you mean 'office'?)",
        id="unknown-address-set",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["web"]}),
        "fleetwall_policy.db.inbound[0].from[0]: unknown address set 'web' (did you mean 'group:web'?)",
        id="address-set-name-that-is-a-group",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["web1"]}),
        "fleetwall_policy.db.inbound[0].from[0]: unknown address set 'web1' (did you mean 'host:web1'?)",
        id="address-set-name-that-is-a-host",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["group:"]}),
        "fleetwall_policy.db.inbound[0].from[0]: 'group:' needs a name after the colon, e.g. group:web",
        id="group-prefix-without-name",
    ),
    pytest.param(
        addresses({"office": ["group:wbe"]}),
        "fleetwall_addresses.office[0]: unknown group 'wbe' (did you mean 'web'?)",
        id="unknown-group-inside-address-set",
    ),
]

ADDRESSES = [
    pytest.param(
        db_rule({"service": "ssh", "from": ["10.0.0.256"]}),
        "fleetwall_policy.db.inbound[0].from[0]: invalid IP address or CIDR '10.0.0.256'",
        id="ipv4-octet-out-of-range",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["2001:db8::g"]}),
        "fleetwall_policy.db.inbound[0].from[0]: invalid IP address or CIDR '2001:db8::g'",
        id="ipv6-with-bad-digit",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["10/8"]}),
        "fleetwall_policy.db.inbound[0].from[0]: invalid IP address or CIDR '10/8'",
        id="cidr-shorthand",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["10.0.0.0/255.255.255.0"]}),
        "fleetwall_policy.db.inbound[0].from[0]: invalid IP address or CIDR '10.0.0.0/255.255.255.0'",
        id="cidr-with-netmask",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["10.0.0.0/33"]}),
        "fleetwall_policy.db.inbound[0].from[0]: prefix length /33 in '10.0.0.0/33' is too long for IPv4 (at most /32)",
        id="ipv4-prefix-too-long",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["2001:db8::/129"]}),
        "fleetwall_policy.db.inbound[0].from[0]: prefix length /129 in '2001:db8::/129' is too long for IPv6 (at most /128)",
        id="ipv6-prefix-too-long",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["10.0.0.1/24"]}),
        "fleetwall_policy.db.inbound[0].from[0]: 10.0.0.1/24 has host bits set; did you mean 10.0.0.0/24?",
        id="cidr-with-host-bits-set",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ["fe80::1%eth0"]}),
        "fleetwall_policy.db.inbound[0].from[0]: 'fe80::1%eth0' has a zone index (%eth0); iptables matches "
        "addresses without one: leave it out and match the link with an interface",
        id="ipv6-scoped-address",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": {"office": True}}),
        "fleetwall_policy.db.inbound[0].from: expected an address or a list of them, got mapping",
        id="from-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": None}),
        "fleetwall_policy.db.inbound[0].from: expected an address or a list of them, got null",
        id="from-without-value",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": []}),
        "fleetwall_policy.db.inbound[0].from: empty list; give at least one address",
        id="empty-from-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": [10]}),
        "fleetwall_policy.db.inbound[0].from[0]: expected an address, CIDR, set name, group:NAME or host:NAME, got integer",
        id="address-as-integer",
    ),
]

PORTS = [
    pytest.param(
        db_rule({"proto": "tcp", "port": 0}),
        "fleetwall_policy.db.inbound[0].port: port 0 is out of range (1-65535)",
        id="port-0",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": [80, 65536]}),
        "fleetwall_policy.db.inbound[0].port[1]: port 65536 is out of range (1-65535)",
        id="port-65536",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": "9000-8000"}),
        "fleetwall_policy.db.inbound[0].port: port range '9000-8000' is reversed (9000 > 8000)",
        id="reversed-port-range",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": "http"}),
        "fleetwall_policy.db.inbound[0].port: port must be a number or a range like '8000-8100', got 'http'",
        id="non-numeric-port",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": "8_0"}),
        "fleetwall_policy.db.inbound[0].port: port must be a number or a range like '8000-8100', got '8_0'",
        id="port-with-underscore",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": True}),
        "fleetwall_policy.db.inbound[0].port: port must be a number or a range like '8000-8100', got True",
        id="port-as-boolean",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": "80,443"}),
        "fleetwall_policy.db.inbound[0].port: write several ports as a list, not '80,443'",
        id="comma-separated-port-string",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": []}),
        "fleetwall_policy.db.inbound[0].port: empty list; give at least one port or port range",
        id="empty-port-list",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": None}),
        "fleetwall_policy.db.inbound[0].port: 'port' has no value; give one or leave the key out",
        id="port-without-value",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "port": 22}),
        "fleetwall_policy.db.inbound[0]: protocol icmp takes no port (only tcp, udp, sctp do)",
        id="port-with-icmp",
    ),
    pytest.param(
        db_rule({"proto": "gre", "source_port": 22}),
        "fleetwall_policy.db.inbound[0]: protocol gre takes no port (only tcp, udp, sctp do)",
        id="source-port-with-gre",
    ),
    pytest.param(
        db_rule({"port": 80}),
        "fleetwall_policy.db.inbound[0].port: 'port' needs 'proto' in the same rule (or use a service)",
        id="port-without-proto",
    ),
]

ICMP = [
    pytest.param(
        db_rule({"proto": "tcp", "icmp_type": "echo-request"}),
        "fleetwall_policy.db.inbound[0].icmp_type: icmp_type needs protocol icmp or icmpv6, not tcp",
        id="icmp-type-with-tcp",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": "echo-reqest"}),
        "fleetwall_policy.db.inbound[0].icmp_type: unknown ICMP type 'echo-reqest' (did you mean 'echo-request'?) "
        "(known: %s)" % ICMP_NAMES,
        id="unknown-icmp-type-name",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": 256}),
        "fleetwall_policy.db.inbound[0].icmp_type: ICMP type 256 must be TYPE or TYPE/CODE with numbers 0-255",
        id="icmp-type-above-255",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": "3/1/1"}),
        "fleetwall_policy.db.inbound[0].icmp_type: ICMP type '3/1/1' must be TYPE or TYPE/CODE with numbers 0-255",
        id="icmp-type-with-two-codes",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": [0, 8]}),
        "fleetwall_policy.db.inbound[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got list",
        id="icmp-type-as-list",
    ),
]

RULE_KEYS_AND_INTERFACES = [
    pytest.param(
        db_rule({"service": "ssh", "form": ["office"]}),
        "fleetwall_policy.db.inbound[0].form: unknown key 'form' (did you mean 'from'?)",
        id="unknown-rule-key",
    ),
    pytest.param(
        db_rule({"service": "ssh", "in_interface": "eth0"}),
        "fleetwall_policy.db.inbound[0].in_interface: unknown key 'in_interface' "
        "(inbound rules take 'interface': the incoming interface)",
        id="in-interface-on-inbound-rule",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": "eth0"}, direction="forward"),
        "fleetwall_policy.db.forward[0].interface: unknown key 'interface' "
        "(forward rules take 'in_interface' and 'out_interface')",
        id="interface-on-forward-rule",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": "enp0s31f6abcdefg"}),
        "fleetwall_policy.db.inbound[0].interface: invalid interface name 'enp0s31f6abcdefg': " + INTERFACE_RULES,
        id="interface-name-too-long",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": "enp0s31f6abcdef+"}),
        "fleetwall_policy.db.inbound[0].interface: invalid interface name 'enp0s31f6abcdef+': " + INTERFACE_RULES,
        id="interface-prefix-too-long-with-plus",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": "eth 0"}),
        "fleetwall_policy.db.inbound[0].interface: invalid interface name 'eth 0': " + INTERFACE_RULES,
        id="interface-name-with-space",
    ),
    pytest.param(
        db_rule({"service": "ssh", "in_interface": "eth/0"}, direction="forward"),
        "fleetwall_policy.db.forward[0].in_interface: invalid interface name 'eth/0': " + INTERFACE_RULES,
        id="interface-name-with-slash",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": "eth0:1"}),
        "fleetwall_policy.db.inbound[0].interface: 'eth0:1' is an address label, not an interface: "
        "iptables sees its packets on 'eth0'",
        id="interface-alias-label",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": 0}),
        "fleetwall_policy.db.inbound[0].interface: interface must be a string, got integer",
        id="interface-as-integer",
    ),
]

STRUCTURE = [
    pytest.param(
        {"policy": {"db": {"inbound": ["ssh"]}}},
        "fleetwall_policy.db.inbound[0]: a rule must be a mapping, got string",
        id="rule-not-a-mapping",
    ),
    pytest.param(
        {"policy": {"db": {"inbound": [None]}}},
        "fleetwall_policy.db.inbound[0]: a rule must be a mapping, got null",
        id="empty-rule-item",
    ),
    pytest.param(
        {"policy": ["db"]},
        "fleetwall_policy: must be a mapping of inventory group to rules, got list",
        id="policy-not-a-mapping",
    ),
    pytest.param(
        {"policy": {"db": [{"service": "ssh"}]}},
        "fleetwall_policy.db: must be a mapping with inbound, outbound and/or forward rule lists, got list",
        id="group-rules-not-a-mapping",
    ),
    pytest.param(
        {"policy": {"db": {"inbound": {"service": "ssh"}}}},
        "fleetwall_policy.db.inbound: must be a list of rules, got mapping",
        id="direction-not-a-list",
    ),
    pytest.param(
        {"policy": {"db": {"input": [{"service": "ssh"}]}}},
        "fleetwall_policy.db.input: unknown key 'input'; allowed: inbound, outbound, forward, nat",
        id="unknown-direction",
    ),
    pytest.param(
        services(["app"]),
        "fleetwall_services: must be a mapping of service name to definition, got list",
        id="services-not-a-mapping",
    ),
    pytest.param(
        {"addresses": ["203.0.113.0/24"], "policy": {"db": {"inbound": [{"service": "ssh"}]}}},
        "fleetwall_addresses: must be a mapping of set name to addresses, got list",
        id="addresses-not-a-mapping",
    ),
    pytest.param(
        addresses({"office": {"hq": "203.0.113.0/24"}}),
        "fleetwall_addresses.office: expected an address or a list of them, got mapping",
        id="address-set-as-mapping",
    ),
    pytest.param(
        addresses({"office": []}),
        "fleetwall_addresses.office: empty list; give at least one address",
        id="empty-address-set",
    ),
]

ACTIONS = [
    pytest.param(
        db_rule({"service": "ssh", "action": "deny"}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got 'deny'",
        id="unknown-action",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "acept"}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got 'acept' "
        "(did you mean 'accept'?)",
        id="misspelt-action",
    ),
    pytest.param(
        db_rule({"service": "ssh", "reject_with": "tcp-reset"}),
        "fleetwall_policy.db.inbound[0].reject_with: reject_with only applies to action: reject",
        id="reject-with-without-reject",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": "icmp-foo"}),
        "fleetwall_policy.db.inbound[0].reject_with: reject_with must be one of %s, got 'icmp-foo'" % REJECT_WITH_NAMES,
        id="unknown-reject-with",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": ["tcp-reset"]}),
        "fleetwall_policy.db.inbound[0].reject_with: reject_with must be one of %s, got ['tcp-reset']"
        % REJECT_WITH_NAMES,
        id="reject-with-as-list",
    ),
    pytest.param(
        db_rule({"proto": "udp", "port": 53, "action": "reject", "reject_with": "tcp-reset"}),
        "fleetwall_policy.db.inbound[0].reject_with: tcp-reset needs a rule that matches protocol tcp only",
        id="tcp-reset-with-udp",
    ),
]

ADDRESS_SET_DEFINITIONS = [
    pytest.param(
        addresses({"office": ["office"]}),
        "fleetwall_addresses.office: address sets include each other in a loop: office -> office",
        id="address-set-includes-itself",
    ),
    pytest.param(
        addresses({"office": ["203.0.113.0/24", "branch"], "branch": ["office"]}),
        "fleetwall_addresses.branch: address sets include each other in a loop: branch -> office -> branch",
        id="address-sets-in-a-2-cycle",
    ),
    pytest.param(
        addresses({"office": ["a"], "a": ["b"], "b": ["office"]}),
        "fleetwall_addresses.a: address sets include each other in a loop: a -> b -> office -> a",
        id="address-sets-in-a-3-cycle",
    ),
    pytest.param(
        addresses({"office": ["203.0.113.0/24"], "my office": ["203.0.113.0/24"]}),
        "fleetwall_addresses.my office: " + SET_NAME_RULES,
        id="address-set-name-with-space",
    ),
    pytest.param(
        addresses({"office": ["203.0.113.0/24"], "any": ["203.0.113.0/24"]}),
        "fleetwall_addresses.any: " + SET_NAME_RULES,
        id="address-set-named-any",
    ),
    pytest.param(
        addresses({"office": ["203.0.113.0/24"], "1net": ["10.0.0.0/8"]}),
        "fleetwall_addresses.1net: " + SET_NAME_RULES,
        id="address-set-name-starting-with-digit",
    ),
]

SERVICE_DEFINITIONS = [
    pytest.param(
        services({"my app": "tcp/8080"}),
        "fleetwall_services.my app: " + SERVICE_NAME_RULES,
        id="service-name-with-space",
    ),
    pytest.param(
        services({"tcp/8080": "tcp/8080"}),
        "fleetwall_services.tcp/8080: " + SERVICE_NAME_RULES,
        id="service-name-with-slash",
    ),
    pytest.param(
        services({"app": {"port": 8080}}),
        "fleetwall_services.app: a service entry needs 'proto'",
        id="service-entry-without-proto",
    ),
    pytest.param(
        services({"app": "tpc/80"}),
        "fleetwall_services.app: unknown protocol 'tpc' in 'tpc/80' (did you mean 'tcp'?); a service entry is "
        "PROTOCOL[/PORT] (e.g. tcp/8080) or a mapping; to combine services, list them in a rule's service field",
        id="unknown-protocol-in-shorthand",
    ),
    pytest.param(
        services({"app": [{"proto": "tpc", "port": 80}]}),
        "fleetwall_services.app[0].proto: unknown protocol 'tpc' (did you mean 'tcp'?); known: " + PROTOCOL_NAMES,
        id="unknown-protocol-in-mapping",
    ),
    pytest.param(
        db_rule({"proto": "ftp"}),
        "fleetwall_policy.db.inbound[0].proto: unknown protocol 'ftp'; known: " + PROTOCOL_NAMES,
        id="unknown-protocol-in-rule",
    ),
    pytest.param(
        services({"app": "ssh"}),
        "fleetwall_services.app: unknown protocol 'ssh' in 'ssh'; a service entry is PROTOCOL[/PORT] "
        "(e.g. tcp/8080) or a mapping; to combine services, list them in a rule's service field",
        id="service-defined-as-another-service",
    ),
    pytest.param(
        services({"app": "tcp/"}),
        "fleetwall_services.app: nothing after the '/' in 'tcp/'; write tcp alone to match all of it",
        id="shorthand-with-nothing-after-slash",
    ),
    pytest.param(
        services({"app": {"proto": "tcp", "prot": 80}}),
        "fleetwall_services.app.prot: unknown key 'prot' (did you mean 'proto'?); "
        "allowed: proto, port, source_port, icmp_type",
        id="unknown-key-in-service-entry",
    ),
    pytest.param(
        services({"app": {"proto": "tcp", "port": 80, "ports": [81]}}),
        "fleetwall_services.app.ports: 'port' is given twice, as 'port' and as 'ports'; keep one",
        id="port-and-ports-in-service-entry",
    ),
    pytest.param(
        services({"app": None}),
        "fleetwall_services.app: expected a service entry or a list of them, got null",
        id="service-without-definition",
    ),
    pytest.param(
        services({"app": 8080}),
        "fleetwall_services.app: a service entry is a string like tcp/8080 or a mapping, got integer",
        id="service-defined-as-bare-port",
    ),
]

TEXT_AND_PRIORITY = [
    pytest.param(
        db_rule({"service": "ssh", "comment": 'the "admin" way'}),
        "fleetwall_policy.db.inbound[0].comment: comment may hold printable ASCII only, without quotes or backslashes",
        id="comment-with-quotes",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": "x" * 201}),
        "fleetwall_policy.db.inbound[0].comment: comment is 201 characters long; at most 200 fit",
        id="comment-too-long",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": "caf\u00e9 wifi"}),
        "fleetwall_policy.db.inbound[0].comment: comment may hold printable ASCII only, without quotes or backslashes",
        id="comment-not-ascii",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": ""}),
        "fleetwall_policy.db.inbound[0].comment: comment must not be empty",
        id="empty-comment",
    ),
    pytest.param(
        db_rule({"service": "ssh", "log": "fleetwall ssh from anywhere: "}),
        "fleetwall_policy.db.inbound[0].log: log prefix is 29 characters long; at most 28 fit",
        id="log-prefix-too-long",
    ),
    pytest.param(
        db_rule({"service": "ssh", "log": 1}),
        "fleetwall_policy.db.inbound[0].log: log prefix must be a string, got integer",
        id="log-as-integer",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": 1001}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got 1001",
        id="priority-above-1000",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": -1}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got -1",
        id="negative-priority",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": True}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got True",
        id="priority-as-boolean",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": "10"}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got '10'",
        id="priority-as-string",
    ),
]

HOST_VARIABLES = [
    pytest.param(
        web1_vars(fleetwall_default_policy={"input": "drop"}),
        "hostvars['web1'].fleetwall_default_policy.input: unknown key 'input'; allowed: inbound, outbound, forward, log",
        id="default-policy-unknown-direction",
    ),
    pytest.param(
        web1_vars(fleetwall_default_policy={"inbound": "deny"}),
        "hostvars['web1'].fleetwall_default_policy.inbound: default policy must be one of accept, drop, reject, "
        "got 'deny'",
        id="default-policy-bad-value",
    ),
    pytest.param(
        web1_vars(fleetwall_default_policy={"log": "yes"}),
        "hostvars['web1'].fleetwall_default_policy.log: log must be true or false, got 'yes'",
        id="default-policy-log-not-boolean",
    ),
    pytest.param(
        web1_vars(fleetwall_default_policy="drop"),
        "hostvars['web1'].fleetwall_default_policy: must be a mapping like {inbound: drop, outbound: accept}, "
        "got string",
        id="default-policy-not-a-mapping",
    ),
    pytest.param(
        web1_vars(fleetwall_baseline={"loopbak": False}),
        "hostvars['web1'].fleetwall_baseline.loopbak: unknown key 'loopbak' (did you mean 'loopback'?); "
        "allowed: loopback, established, drop_invalid, antispoof, icmpv6_essentials, tcp_flag_sanity",
        id="baseline-unknown-key",
    ),
    pytest.param(
        web1_vars(fleetwall_baseline={"loopback": "no"}),
        "hostvars['web1'].fleetwall_baseline.loopback: must be true or false, got 'no'",
        id="baseline-item-not-boolean",
    ),
    pytest.param(
        web1_vars(fleetwall_baseline="off"),
        "hostvars['web1'].fleetwall_baseline: must be true, false or a mapping of baseline item to true/false, "
        "got string",
        id="baseline-not-boolean-or-mapping",
    ),
    pytest.param(
        web1_vars(fleetwall_host_rules={"inbound": [{"service": ["htp"]}]}),
        "hostvars['web1'].fleetwall_host_rules.inbound[0].service[0]: unknown service 'htp' (did you mean 'http'?)",
        id="host-rule-unknown-service",
    ),
    pytest.param(
        web1_vars(fleetwall_host_rules={"inbound": [{"service": "http", "from": ["offce"]}]}),
        "hostvars['web1'].fleetwall_host_rules.inbound[0].from[0]: unknown address set 'offce' (did you mean 'office'?)",
        id="host-rule-unknown-address-set",
    ),
    pytest.param(
        web1_vars(fleetwall_host_rules=[{"service": "http"}]),
        "hostvars['web1'].fleetwall_host_rules: must be a mapping with inbound, outbound and/or forward rule lists, "
        "got list",
        id="host-rules-not-a-mapping",
    ),
]

HOST_ADDRESSES = [
    pytest.param(
        {"host_vars": WEB2_WITHOUT_ADDRESS},
        "fleetwall_policy.db.inbound[0].from (group 'web'): host 'web2' has no IP address: fleetwall_address_query "
        "found 'web2.example.com'. " + NO_ADDRESS_ADVICE,
        id="group-member-without-ip-address",
    ),
    pytest.param(
        dict(db_rule({"service": "ssh", "from": ["host:web2"]}), host_vars=WEB2_WITHOUT_ADDRESS),
        "fleetwall_policy.db.inbound[0].from: host 'web2' has no IP address: fleetwall_address_query "
        "found 'web2.example.com'. " + NO_ADDRESS_ADVICE,
        id="named-host-without-ip-address",
    ),
    pytest.param(
        {"host_vars": {"web2": {"fleetwall_address_query": "addresses[["}}},
        "hostvars['web2'].fleetwall_address_query: invalid JMESPath expression: Expecting: star, got: lbracket: "
        'Parse error at column 10, token "[" (LBRACKET), for expression:\n"addresses[["\n           ^',
        id="address-query-not-jmespath",
    ),
    pytest.param(
        {"host_vars": {"web2": {"fleetwall_address_query": ["ansible_host"]}}},
        "hostvars['web2'].fleetwall_address_query: must be a JMESPath expression string",
        id="address-query-not-a-string",
    ),
    pytest.param(
        {"host_vars": {"web2": {"fleetwall_address_query": "abs(ansible_host)"}}},
        "hostvars['web2'].fleetwall_address_query: the query fails on this host: In function abs(), invalid type "
        "for value: 10.0.1.2, expected one of: ['number'], received: \"string\"",
        id="address-query-fails-on-host",
    ),
    pytest.param(
        {"host_vars": {"web2": {"fleetwall_host_addresses": ["10.0.1.2", "10.0.1.300"]}}},
        "hostvars['web2'].fleetwall_host_addresses[1]: invalid IP address '10.0.1.300'",
        id="host-addresses-with-bad-address",
    ),
    pytest.param(
        {"groups": dict(GROUPS, all=["bastion", "web1", "db1"])},
        "fleetwall_policy.db.inbound[0].from (group 'web'): host 'web2' is in the groups but not in hostvars",
        id="group-member-missing-from-hostvars",
    ),
]


# ---------------------------------------------------------------- policies that would silently mean something else

ACCEPT_ALL_PROBLEM = (
    "this rule names no service, proto, from, to or interface, so it would match every packet; "
    "if that is meant, say so with 'from: any'"
)
RULES_WITHOUT_A_MATCH = {
    "empty": {},
    "comment-only": {"comment": "web tier"},
    "priority-only": {"priority": 10},
    "action-only": {"action": "drop"},
    "reject-only": {"action": "reject", "reject_with": "admin-prohibited"},
    "log-only": {"log": True},
    "comment-and-priority": {"comment": "x", "priority": 900},
}
ACCEPT_ALL = [
    pytest.param(
        db_rule(rule, direction),
        "fleetwall_policy.db.%s[0]: %s" % (direction, ACCEPT_ALL_PROBLEM),
        id="%s-%s-rule-matching-everything" % (direction, name),
    )
    for direction in ("inbound", "outbound", "forward")
    for name, rule in sorted(RULES_WITHOUT_A_MATCH.items())
] + [
    pytest.param(
        web1_vars(fleetwall_host_rules={direction: [rule]}),
        "hostvars['web1'].fleetwall_host_rules.%s[0]: %s" % (direction, ACCEPT_ALL_PROBLEM),
        id="host-%s-%s-rule-matching-everything" % (direction, name),
    )
    for direction in ("inbound", "outbound")
    for name, rule in sorted(RULES_WITHOUT_A_MATCH.items())
]

LINE_BREAK = "%s ends in a line break (what YAML's '>' and '|' add); use '>-' or '|-', or a quoted string"
NOT_PRINTABLE = "%s may hold printable ASCII only, without quotes or backslashes"
TEXTS = {
    "folded-newline": ("app tier\n", LINE_BREAK),
    "crlf": ("app tier\r\n", LINE_BREAK),
    "carriage-return": ("app tier\r", LINE_BREAK),
    "two-newlines": ("app\ntier\n", LINE_BREAK),
    "newline-inside": ("app\ntier", NOT_PRINTABLE),
    "tab": ("app\ttier", NOT_PRINTABLE),
    "line-separator": ("app\u2028tier", NOT_PRINTABLE),
    "paragraph-separator": ("app\u2029tier", NOT_PRINTABLE),
    "nul": ("app\x00tier", NOT_PRINTABLE),
    "delete": ("app\x7ftier", NOT_PRINTABLE),
    "non-ascii": ("caf\u00e9", NOT_PRINTABLE),
    "apostrophe": ("web's", NOT_PRINTABLE),
    "double-quote": ('say "hi"', NOT_PRINTABLE),
    "backslash": ("a\\b", NOT_PRINTABLE),
}
TEXT_FIELDS = {"comment": "comment", "log": "log prefix"}
TEXT_BREAKS = [
    pytest.param(
        db_rule({"service": "ssh", field: text}),
        "fleetwall_policy.db.inbound[0].%s: %s" % (field, problem % what),
        id="%s-%s" % (field, name),
    )
    for field, what in sorted(TEXT_FIELDS.items())
    for name, (text, problem) in sorted(TEXTS.items())
]

GROUP_NAME_PROBLEM = (
    "a group with rules names them in iptables comments, so its name may hold printable ASCII only, "
    "without quotes or backslashes"
)
GROUP_NAMES = {
    "apostrophe": ("web's", "web's"),
    "double-quote": ('we"b', 'we"b'),
    "backslash": ("we\\b", "we\\\\b"),
    "newline": ("we\nb", "we\\nb"),
    "carriage-return": ("we\rb", "we\\rb"),
    "tab": ("we\tb", "we\\tb"),
    "line-separator": ("we\u2028b", "we\\u2028b"),
    "non-ascii": ("w\u00e9b", "w\\xe9b"),
    "nul": ("we\x00b", "we\\x00b"),
    "escape": ("we\x1b[31mb", "we\\x1b[31mb"),
}


def group_named(name: str) -> Dict[str, Any]:
    """Inventory arguments with an extra group of this name holding web1, and a rule for it."""
    groups = {"all": ["bastion", "web1", "web2", "db1"], "ungrouped": [], "bastion": ["bastion"], "web": ["web1", "web2"],
              "db": ["db1"], name: ["web1"]}
    return {"groups": groups, "policy": {name: {"inbound": [{"service": "ssh"}]}}}


GROUP_NAME_CASES = [
    pytest.param(group_named(name), "fleetwall_policy.%s: %s" % (shown, GROUP_NAME_PROBLEM), id="group-name-with-%s" % case)
    for case, (name, shown) in sorted(GROUP_NAMES.items())
]

INTERFACE_KEYS = [("inbound", "interface"), ("outbound", "interface"), ("forward", "in_interface"), ("forward", "out_interface")]
PEER_NAMES = {"eth0@if5": "eth0", "veth1@if12": "veth1", "!eth0@if5": "eth0", "wg0@NONE": "wg0"}
INTERFACE_PEERS = [
    pytest.param(
        db_rule({"service": "ssh", key: name}, direction),
        "fleetwall_policy.db.%s[0].%s: %r is how 'ip link' shows interface %r with its peer; iptables sees %r"
        % (direction, key, name, seen, seen),
        id="%s-%s-%s" % (direction, key, name),
    )
    for direction, key in INTERFACE_KEYS
    for name, seen in sorted(PEER_NAMES.items())
]


def deep_query(depth: int) -> str:
    return "(" * depth + "ansible_host" + ")" * depth


DEPTH = [
    pytest.param(
        web1_vars(fleetwall_address_query=deep_query(depth)),
        "hostvars['web1'].fleetwall_address_query: the expression nests too deeply to parse",
        id="address-query-nested-%d-deep" % depth,
    )
    for depth in (1500, 3000)
]


# Every rule key given a value of the wrong kind.
TYPE_CONFUSION = [
    pytest.param(
        db_rule({"service": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].service: expected a service name or a list of them, got mapping",
        id="service-as-mapping",
    ),
    pytest.param(
        db_rule({"service": [[1]]}),
        "fleetwall_policy.db.inbound[0].service[0]: a service name must be a string, got list",
        id="service-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": None}),
        "fleetwall_policy.db.inbound[0].service: expected a service name or a list of them, got null",
        id="service-as-null",
    ),
    pytest.param(
        db_rule({"service": 1.5}),
        "fleetwall_policy.db.inbound[0].service: a service name must be a string, got number",
        id="service-as-float",
    ),
    pytest.param(
        db_rule({"service": True}),
        "fleetwall_policy.db.inbound[0].service: a service name must be a string, got boolean",
        id="service-as-true",
    ),
    pytest.param(
        db_rule({"service": False}),
        "fleetwall_policy.db.inbound[0].service: a service name must be a string, got boolean",
        id="service-as-false",
    ),
    pytest.param(
        db_rule({"service": ""}),
        "fleetwall_policy.db.inbound[0].service: unknown service ''",
        id="service-as-empty-string",
    ),
    pytest.param(
        db_rule({"proto": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].proto: protocol must be a string, got mapping",
        id="proto-as-mapping",
    ),
    pytest.param(
        db_rule({"proto": [[1]]}),
        "fleetwall_policy.db.inbound[0].proto: protocol must be a string, got list",
        id="proto-as-nested-list",
    ),
    pytest.param(
        db_rule({"proto": None}),
        "fleetwall_policy.db.inbound[0].proto: protocol must be a string, got null",
        id="proto-as-null",
    ),
    pytest.param(
        db_rule({"proto": 1.5}),
        "fleetwall_policy.db.inbound[0].proto: protocol must be a string, got number",
        id="proto-as-float",
    ),
    pytest.param(
        db_rule({"proto": True}),
        "fleetwall_policy.db.inbound[0].proto: protocol must be a string, got boolean",
        id="proto-as-true",
    ),
    pytest.param(
        db_rule({"proto": False}),
        "fleetwall_policy.db.inbound[0].proto: protocol must be a string, got boolean",
        id="proto-as-false",
    ),
    pytest.param(
        db_rule({"proto": ""}),
        "fleetwall_policy.db.inbound[0].proto: "
        "unknown protocol ''; known: ah, esp, gre, icmp, icmpv6, ipv6-icmp, sctp, tcp, udp, udplite, vrrp",
        id="proto-as-empty-string",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].port: expected a port or port range or a list of them, got mapping",
        id="port-as-mapping",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": [[1]]}),
        "fleetwall_policy.db.inbound[0].port[0]: port must be a number or a range like '8000-8100', got list",
        id="port-as-nested-list",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": None}),
        "fleetwall_policy.db.inbound[0].port: 'port' has no value; give one or leave the key out",
        id="port-as-null",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": 1.5}),
        "fleetwall_policy.db.inbound[0].port: port must be a number or a range like '8000-8100', got float",
        id="port-as-float",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": True}),
        "fleetwall_policy.db.inbound[0].port: port must be a number or a range like '8000-8100', got True",
        id="port-as-true",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": False}),
        "fleetwall_policy.db.inbound[0].port: port must be a number or a range like '8000-8100', got False",
        id="port-as-false",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "port": ""}),
        "fleetwall_policy.db.inbound[0].port: port must be a number or a range like '8000-8100', got ''",
        id="port-as-empty-string",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "source_port": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].source_port: expected a port or port range or a list of them, got mapping",
        id="source-port-as-mapping",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "source_port": [[1]]}),
        "fleetwall_policy.db.inbound[0].source_port[0]: port must be a number or a range like '8000-8100', got list",
        id="source-port-as-nested-list",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "source_port": None}),
        "fleetwall_policy.db.inbound[0].source_port: 'source_port' has no value; give one or leave the key out",
        id="source-port-as-null",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "source_port": 1.5}),
        "fleetwall_policy.db.inbound[0].source_port: port must be a number or a range like '8000-8100', got float",
        id="source-port-as-float",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "source_port": True}),
        "fleetwall_policy.db.inbound[0].source_port: port must be a number or a range like '8000-8100', got True",
        id="source-port-as-true",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "source_port": False}),
        "fleetwall_policy.db.inbound[0].source_port: port must be a number or a range like '8000-8100', got False",
        id="source-port-as-false",
    ),
    pytest.param(
        db_rule({"proto": "tcp", "source_port": ""}),
        "fleetwall_policy.db.inbound[0].source_port: port must be a number or a range like '8000-8100', got ''",
        id="source-port-as-empty-string",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got mapping",
        id="icmp-type-as-mapping",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": [[1]]}),
        "fleetwall_policy.db.inbound[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got list",
        id="icmp-type-as-nested-list",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": None}),
        "fleetwall_policy.db.inbound[0].icmp_type: 'icmp_type' has no value; give one or leave the key out",
        id="icmp-type-as-null",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": 1.5}),
        "fleetwall_policy.db.inbound[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got number",
        id="icmp-type-as-float",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": True}),
        "fleetwall_policy.db.inbound[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got boolean",
        id="icmp-type-as-true",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": False}),
        "fleetwall_policy.db.inbound[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got boolean",
        id="icmp-type-as-false",
    ),
    pytest.param(
        db_rule({"proto": "icmp", "icmp_type": ""}),
        "fleetwall_policy.db.inbound[0].icmp_type: "
        "unknown ICMP type '' (known: address-mask-reply, address-mask-request, communication-prohibited, "
        "destination-unreachable, echo-reply, echo-request, fragmentation-needed, host-prohibited, "
        "host-unreachable, network-prohibited, network-unreachable, parameter-problem, port-unreachable, "
        "protocol-unreachable, redirect, router-advertisement, router-solicitation, source-quench, "
        "source-route-failed, time-exceeded, timestamp-reply, timestamp-request, ttl-zero-during-reassembly, "
        "ttl-zero-during-transit)",
        id="icmp-type-as-empty-string",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].from: expected an address or a list of them, got mapping",
        id="from-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": [[1]]}),
        "fleetwall_policy.db.inbound[0].from[0]: "
        "expected an address, CIDR, set name, group:NAME or host:NAME, got list",
        id="from-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": None}),
        "fleetwall_policy.db.inbound[0].from: expected an address or a list of them, got null",
        id="from-as-null",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": 1.5}),
        "fleetwall_policy.db.inbound[0].from: "
        "expected an address, CIDR, set name, group:NAME or host:NAME, got number",
        id="from-as-float",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": True}),
        "fleetwall_policy.db.inbound[0].from: "
        "expected an address, CIDR, set name, group:NAME or host:NAME, got boolean",
        id="from-as-true",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": False}),
        "fleetwall_policy.db.inbound[0].from: "
        "expected an address, CIDR, set name, group:NAME or host:NAME, got boolean",
        id="from-as-false",
    ),
    pytest.param(
        db_rule({"service": "ssh", "from": ""}),
        "fleetwall_policy.db.inbound[0].from: empty address",
        id="from-as-empty-string",
    ),
    pytest.param(
        db_rule({"service": "ssh", "to": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].to: expected an address or a list of them, got mapping",
        id="to-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "to": [[1]]}),
        "fleetwall_policy.db.inbound[0].to[0]: expected an address, CIDR, set name, group:NAME or host:NAME, got list",
        id="to-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "to": None}),
        "fleetwall_policy.db.inbound[0].to: expected an address or a list of them, got null",
        id="to-as-null",
    ),
    pytest.param(
        db_rule({"service": "ssh", "to": 1.5}),
        "fleetwall_policy.db.inbound[0].to: expected an address, CIDR, set name, group:NAME or host:NAME, got number",
        id="to-as-float",
    ),
    pytest.param(
        db_rule({"service": "ssh", "to": True}),
        "fleetwall_policy.db.inbound[0].to: expected an address, CIDR, set name, group:NAME or host:NAME, got boolean",
        id="to-as-true",
    ),
    pytest.param(
        db_rule({"service": "ssh", "to": False}),
        "fleetwall_policy.db.inbound[0].to: expected an address, CIDR, set name, group:NAME or host:NAME, got boolean",
        id="to-as-false",
    ),
    pytest.param(
        db_rule({"service": "ssh", "to": ""}),
        "fleetwall_policy.db.inbound[0].to: empty address",
        id="to-as-empty-string",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].interface: interface must be a string, got mapping",
        id="interface-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": [[1]]}),
        "fleetwall_policy.db.inbound[0].interface: interface must be a string, got list",
        id="interface-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": None}),
        "fleetwall_policy.db.inbound[0].interface: interface must be a string, got null",
        id="interface-as-null",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": 1.5}),
        "fleetwall_policy.db.inbound[0].interface: interface must be a string, got number",
        id="interface-as-float",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": True}),
        "fleetwall_policy.db.inbound[0].interface: interface must be a string, got boolean",
        id="interface-as-true",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": False}),
        "fleetwall_policy.db.inbound[0].interface: interface must be a string, got boolean",
        id="interface-as-false",
    ),
    pytest.param(
        db_rule({"service": "ssh", "interface": ""}),
        "fleetwall_policy.db.inbound[0].interface: "
        "invalid interface name '': at most 15 characters in all: letters, digits or _.@-, optionally ending "
        "in '+' (prefix match), optionally preceded by '!' (negation)",
        id="interface-as-empty-string",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got {'a': 1}",
        id="action-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": [[1]]}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got [[1]]",
        id="action-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": None}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got None",
        id="action-as-null",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": 1.5}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got 1.5",
        id="action-as-float",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": True}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got True",
        id="action-as-true",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": False}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got False",
        id="action-as-false",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": ""}),
        "fleetwall_policy.db.inbound[0].action: action must be one of accept, drop, reject, got ''",
        id="action-as-empty-string",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].reject_with: "
        "reject_with must be one of admin-prohibited, host-unreachable, net-unreachable, port-unreachable, "
        "tcp-reset, got {'a': 1}",
        id="reject-with-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": [[1]]}),
        "fleetwall_policy.db.inbound[0].reject_with: "
        "reject_with must be one of admin-prohibited, host-unreachable, net-unreachable, port-unreachable, "
        "tcp-reset, got [[1]]",
        id="reject-with-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": None}),
        "fleetwall_policy.db.inbound[0].reject_with: "
        "reject_with must be one of admin-prohibited, host-unreachable, net-unreachable, port-unreachable, "
        "tcp-reset, got None",
        id="reject-with-as-null",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": 1.5}),
        "fleetwall_policy.db.inbound[0].reject_with: "
        "reject_with must be one of admin-prohibited, host-unreachable, net-unreachable, port-unreachable, "
        "tcp-reset, got 1.5",
        id="reject-with-as-float",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": True}),
        "fleetwall_policy.db.inbound[0].reject_with: "
        "reject_with must be one of admin-prohibited, host-unreachable, net-unreachable, port-unreachable, "
        "tcp-reset, got True",
        id="reject-with-as-true",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": False}),
        "fleetwall_policy.db.inbound[0].reject_with: "
        "reject_with must be one of admin-prohibited, host-unreachable, net-unreachable, port-unreachable, "
        "tcp-reset, got False",
        id="reject-with-as-false",
    ),
    pytest.param(
        db_rule({"service": "ssh", "action": "reject", "reject_with": ""}),
        "fleetwall_policy.db.inbound[0].reject_with: "
        "reject_with must be one of admin-prohibited, host-unreachable, net-unreachable, port-unreachable, "
        "tcp-reset, got ''",
        id="reject-with-as-empty-string",
    ),
    pytest.param(
        db_rule({"service": "ssh", "log": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].log.a: unknown key 'a'; allowed: prefix, limit",
        id="log-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "log": [[1]]}),
        "fleetwall_policy.db.inbound[0].log: log prefix must be a string, got list",
        id="log-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "log": 1.5}),
        "fleetwall_policy.db.inbound[0].log: log prefix must be a string, got number",
        id="log-as-float",
    ),
    pytest.param(
        db_rule({"service": "ssh", "log": ""}),
        "fleetwall_policy.db.inbound[0].log: log prefix must not be empty",
        id="log-as-empty-string",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].comment: comment must be a string, got mapping",
        id="comment-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": [[1]]}),
        "fleetwall_policy.db.inbound[0].comment: comment must be a string, got list",
        id="comment-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": None}),
        "fleetwall_policy.db.inbound[0].comment: comment must be a string, got null",
        id="comment-as-null",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": 1.5}),
        "fleetwall_policy.db.inbound[0].comment: comment must be a string, got number",
        id="comment-as-float",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": True}),
        "fleetwall_policy.db.inbound[0].comment: comment must be a string, got boolean",
        id="comment-as-true",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": False}),
        "fleetwall_policy.db.inbound[0].comment: comment must be a string, got boolean",
        id="comment-as-false",
    ),
    pytest.param(
        db_rule({"service": "ssh", "comment": ""}),
        "fleetwall_policy.db.inbound[0].comment: comment must not be empty",
        id="comment-as-empty-string",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": {"a": 1}}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got {'a': 1}",
        id="priority-as-mapping",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": [[1]]}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got [[1]]",
        id="priority-as-nested-list",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": None}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got None",
        id="priority-as-null",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": 1.5}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got 1.5",
        id="priority-as-float",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": True}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got True",
        id="priority-as-true",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": False}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got False",
        id="priority-as-false",
    ),
    pytest.param(
        db_rule({"service": "ssh", "priority": ""}),
        "fleetwall_policy.db.inbound[0].priority: priority must be an integer from 0 to 1000, got ''",
        id="priority-as-empty-string",
    ),
]


# Every key of a service definition given a value of the wrong kind.
SERVICE_TYPE_CONFUSION = [
    pytest.param(
        services({"app": [{"proto": {"a": 1}}]}),
        "fleetwall_services.app[0].proto: protocol must be a string, got mapping",
        id="service-proto-as-mapping",
    ),
    pytest.param(
        services({"app": [{"proto": [[1]]}]}),
        "fleetwall_services.app[0].proto: protocol must be a string, got list",
        id="service-proto-as-nested-list",
    ),
    pytest.param(
        services({"app": [{"proto": 1.5}]}),
        "fleetwall_services.app[0].proto: protocol must be a string, got number",
        id="service-proto-as-float",
    ),
    pytest.param(
        services({"app": [{"proto": True}]}),
        "fleetwall_services.app[0].proto: protocol must be a string, got boolean",
        id="service-proto-as-true",
    ),
    pytest.param(
        services({"app": [{"proto": ""}]}),
        "fleetwall_services.app[0].proto: unknown protocol ''; known: " + PROTOCOL_NAMES,
        id="service-proto-as-empty-string",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "port": {"a": 1}}]}),
        "fleetwall_services.app[0].port: expected a port or port range or a list of them, got mapping",
        id="service-port-as-mapping",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "port": [[1]]}]}),
        "fleetwall_services.app[0].port[0]: port must be a number or a range like '8000-8100', got list",
        id="service-port-as-nested-list",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "port": 1.5}]}),
        "fleetwall_services.app[0].port: port must be a number or a range like '8000-8100', got float",
        id="service-port-as-float",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "port": True}]}),
        "fleetwall_services.app[0].port: port must be a number or a range like '8000-8100', got True",
        id="service-port-as-true",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "port": ""}]}),
        "fleetwall_services.app[0].port: port must be a number or a range like '8000-8100', got ''",
        id="service-port-as-empty-string",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "source_port": {"a": 1}}]}),
        "fleetwall_services.app[0].source_port: expected a port or port range or a list of them, got mapping",
        id="service-source-port-as-mapping",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "source_port": [[1]]}]}),
        "fleetwall_services.app[0].source_port[0]: port must be a number or a range like '8000-8100', got list",
        id="service-source-port-as-nested-list",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "source_port": 1.5}]}),
        "fleetwall_services.app[0].source_port: port must be a number or a range like '8000-8100', got float",
        id="service-source-port-as-float",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "source_port": True}]}),
        "fleetwall_services.app[0].source_port: port must be a number or a range like '8000-8100', got True",
        id="service-source-port-as-true",
    ),
    pytest.param(
        services({"app": [{"proto": "tcp", "source_port": ""}]}),
        "fleetwall_services.app[0].source_port: port must be a number or a range like '8000-8100', got ''",
        id="service-source-port-as-empty-string",
    ),
    pytest.param(
        services({"app": [{"proto": "icmp", "icmp_type": {"a": 1}}]}),
        "fleetwall_services.app[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got mapping",
        id="service-icmp-type-as-mapping",
    ),
    pytest.param(
        services({"app": [{"proto": "icmp", "icmp_type": [[1]]}]}),
        "fleetwall_services.app[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got list",
        id="service-icmp-type-as-nested-list",
    ),
    pytest.param(
        services({"app": [{"proto": "icmp", "icmp_type": 1.5}]}),
        "fleetwall_services.app[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got number",
        id="service-icmp-type-as-float",
    ),
    pytest.param(
        services({"app": [{"proto": "icmp", "icmp_type": True}]}),
        "fleetwall_services.app[0].icmp_type: icmp_type must be a name, a number or TYPE/CODE, got boolean",
        id="service-icmp-type-as-true",
    ),
    pytest.param(
        services({"app": [{"proto": "icmp", "icmp_type": ""}]}),
        "fleetwall_services.app[0].icmp_type: unknown ICMP type '' (known: %s)" % ICMP_NAMES,
        id="service-icmp-type-as-empty-string",
    ),
]


CASES = (
    SERVICES
    + GROUPS_HOSTS_AND_SETS
    + ADDRESSES
    + PORTS
    + ICMP
    + RULE_KEYS_AND_INTERFACES
    + STRUCTURE
    + ACTIONS
    + ADDRESS_SET_DEFINITIONS
    + SERVICE_DEFINITIONS
    + TEXT_AND_PRIORITY
    + HOST_VARIABLES
    + HOST_ADDRESSES
    + ACCEPT_ALL
    + TEXT_BREAKS
    + GROUP_NAME_CASES
    + INTERFACE_PEERS
    + DEPTH
    + TYPE_CONFUSION
    + SERVICE_TYPE_CONFUSION
)


@pytest.mark.parametrize("inventory_args, problem", CASES)
def test_bad_input_is_refused_with_its_path(inventory_args, problem):
    hostvars, groups = inventory(**inventory_args)
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_hosts(groups["all"])
    assert exc.value.problems == [problem]


SEVERAL_PROBLEMS = [
    "fleetwall_policy.db.inbound[0].service: unknown service 'postgress' (did you mean 'postgres'?)",
    "fleetwall_policy.db.inbound[0].from[0]: unknown group 'wbe' (did you mean 'web'?)",
    "fleetwall_policy.db.inbound[1].port: port 0 is out of range (1-65535)",
    "fleetwall_policy.web.inbound[0].action: action must be one of accept, drop, reject, got 'allow'",
]


def several_problems_policy():
    return {
        "db": {
            "inbound": [
                {"service": "postgress", "from": ["group:wbe"]},
                {"proto": "tcp", "port": 0},
            ]
        },
        "web": {"inbound": [{"service": "http", "action": "allow"}]},
    }


def test_every_problem_of_a_policy_is_reported_together():
    hostvars, groups = inventory(policy=several_problems_policy())
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_host("db1")
    assert exc.value.problems == SEVERAL_PROBLEMS


def test_several_problems_read_as_one_message_with_a_count():
    hostvars, groups = inventory(policy=several_problems_policy())
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_host("db1")
    assert str(exc.value) == "4 problems in the fleetwall policy:\n" + "\n".join(
        "- " + problem for problem in SEVERAL_PROBLEMS
    )


def test_problems_in_services_addresses_and_policy_are_reported_together():
    hostvars, groups = inventory(
        services={"app": "tcp/8080", "admin": "tcp/0"},
        addresses={"office": ["203.0.113.0/33"]},
        policy={"db": {"inbound": [{"service": "ap"}]}},
    )
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_host("db1")
    assert exc.value.problems == [
        "fleetwall_services.admin.port[0]: port 0 is out of range (1-65535)",
        "fleetwall_addresses.office[0]: prefix length /33 in '203.0.113.0/33' is too long for IPv4 (at most /32)",
        "fleetwall_policy.db.inbound[0].service: unknown service 'ap' (did you mean 'app'?)",
    ]


def test_a_rule_using_a_broken_service_adds_no_second_problem():
    hostvars, groups = inventory(services={"app": "tcp/0"}, policy={"db": {"inbound": [{"service": "app"}]}})
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_host("db1")
    assert exc.value.problems == ["fleetwall_services.app.port[0]: port 0 is out of range (1-65535)"]


def test_a_rule_using_a_broken_address_set_adds_no_second_problem():
    hostvars, groups = inventory(addresses={"office": ["203.0.113.1/24"]})
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_host("db1")
    assert exc.value.problems == [
        "fleetwall_addresses.office[0]: 203.0.113.1/24 has host bits set; did you mean 203.0.113.0/24?"
    ]


def test_one_problem_is_the_whole_message():
    hostvars, groups = inventory(policy={"db": {"inbound": [{"service": "postgress"}]}})
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_host("db1")
    assert str(exc.value) == "fleetwall_policy.db.inbound[0].service: unknown service 'postgress' (did you mean 'postgres'?)"


def test_a_host_missing_from_the_inventory_is_refused():
    hostvars, groups = inventory()
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_host("db9")
    assert exc.value.problems == ["inventory_hostname: unknown host 'db9'"]

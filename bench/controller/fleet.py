# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A synthetic fleet on the controller side: what the reachability role has left in hostvars when
the explain stage starts, for S sources x D destinations x P ports, with no host and no network.

Every destination is a copy of one of the seed lab's hosts as captured by
tests/unit/fixtures/explain/capture.py (seeds-facts.json: real listeners, sysctls and firewall_info
results: firewalld on nftables and on iptables, ufw, iptables-nft and iptables-legacy, nftables),
renumbered.  Each host's variables are shaped as the role leaves them:

- ``reachability_listeners``: listeners_info's result (listeners, sysctls, counters, process_scan,
  routes, interface_addresses, warnings), also in ``ansible_facts`` (set_fact cacheable);
- ``reachability_firewall``: firewall_info's result (layers, ruleset, firewalld, ufw,
  local_addresses, firewall_warnings, verdicts), or ``{failed, msg}`` for the hosts whose layers
  could not be read;
- on the sources, ``reachability_probe`` (the probe module's result) and ``reachability_traces``
  (one trace call for the targets the trace_targets filter picks, made by the trace library's
  own result builder);
- the destinations behind a security group carry ``reachability_cloud``; the loop of
  security_group_info results is made by the real library (cloud.evaluate) against an in-memory
  EC2 API.

The probe replies are what the facts say the wire would show: the source's output rules, the
router's forward rules (and its DNAT port mappings), the security group, the destination's input
rules, then its listeners, evaluated with the collection's own evaluator.  So every explainer path
runs: open, a rule that rejects (ICMP, reset) or drops (nftables, iptables, firewalld, ufw policy),
no listener (TCP reset, UDP port unreachable), a loopback-bound and a wrongly bound service, a
port mapping to a port where nothing listens, a middle hop that drops or rejects, a security
group, an output rule on the source, a host that is not there, a host that is not managed and one
whose firewall could not be read; silent flows get a trace when the role would trace them.
"""

import copy
import ipaddress
import json
import os
import random
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(ROOT, ".collections") not in sys.path:
    sys.path.append(os.path.join(ROOT, ".collections"))   # last: a copy of the collection put first by the caller wins

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp as icmp_tables  # noqa: E402
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import classify  # noqa: E402
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import aws  # noqa: E402
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud.evaluate import security_group_info  # noqa: E402
from ansible_collections.netdiag.reachability.plugins.module_utils.probe import trace as trace_lib  # noqa: E402
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator  # noqa: E402
from ansible_collections.netdiag.reachability.plugins.plugin_utils import plan as plan_lib  # noqa: E402
from ansible_collections.netdiag.reachability.plugins.plugin_utils.listener_match import match_listener  # noqa: E402

SEEDS = os.path.join(ROOT, "tests", "unit", "fixtures", "explain", "seeds-facts.json")

FRONT = "10.200.1"            # the sources' subnet (/24), the router is .1
ROUTER_FRONT = FRONT + ".1"
ROUTER_MGMT = "10.200.255.2"
REGION = "eu-west-1"
MAX_SILENT_HOPS = 6           # the trace library's default: hops 2..6 silent after the router

# destination kinds: (seed host, the ports worth checking on it, expected open; every other port is expected closed)
KINDS = {
    "healthy": ("healthy", ["80/tcp", "22/tcp", "9999/tcp", "8081/tcp", "8082/tcp"]),
    "fwd-nft": ("fwd-nft", ["80/tcp", "8000/tcp", "8443/tcp", "22/tcp"]),   # 8443: a rich rule rejects it (the fix cannot pass)
    "fwd-ipt": ("fwd-ipt", ["80/tcp", "22/tcp"]),
    "loopback": ("loopback", ["8080/tcp", "22/tcp"]),
    "dns": ("dns", ["53/udp", "5353/udp", "22/tcp"]),
    "ipt-reject": ("ipt-reject", ["80/tcp", "22/tcp"]),
    "ipt-legacy": ("ipt-legacy", ["3306/tcp", "22/tcp"]),
    "ufw": ("ufw", ["80/tcp", "22/tcp"]),
    "nft-drop": ("nft-drop", ["80/tcp", "22/tcp"]),
    "cloud": ("healthy", ["80/tcp", "9999/tcp", "22/tcp"]),      # behind a security group (22 and 80 from the front)
    "unread": ("ipt-legacy", ["3306/tcp", "22/tcp"]),            # firewall_info failed on it
}
KIND_ORDER = ["healthy", "fwd-nft", "fwd-ipt", "loopback", "dns", "ipt-reject", "ipt-legacy", "ufw", "nft-drop",
              "cloud", "unread"]
SPECIAL = {  # destinations that are not copies: the router (DNAT port mappings), an address with no host, an unmanaged host
    "router": ["8080/tcp", "8088/tcp", "22/tcp"],
    "ghost": ["80/tcp", "22/tcp"],
    "stranger": ["80/tcp", "443/tcp"],
}
COMMON = [443, 25, 110, 143, 5432, 3389, 6379, 9090, 9200, 11211, 27017, 5672, 2049, 389, 636, 1433, 1521, 5000,
          8443, 8888, 10250, 2379, 6443, 9100, 3000]
SOURCE_OUTPUT_DROP = 5432     # client-00's own output rule drops it (source_firewall)

SHAPES = {
    # name: (sources, destinations, flows -> ports per destination)
    "grid": (10, 50),       # 10 sources x 50 destinations x N/500 ports
    "fleet": (1, 100),      # one source to 100 hosts x N/100 ports (the playbook benchmark's shape)
    "allpairs": (10, 50),   # 10 x 50 x 3 ports (1,500 flows)
}


def shape_of(shape, flows):
    sources, dests = SHAPES[shape]
    if flows % (sources * dests):
        raise ValueError("%d flows do not divide into %d sources x %d destinations" % (flows, sources, dests))
    return sources, dests, flows // (sources * dests)


def ports_for(kind, count):
    first = SPECIAL[kind] if kind in SPECIAL else KINDS[kind][1]
    out = list(first)
    taken = {int(p.split("/")[0]) for p in out if p.endswith("/tcp")}
    extra = [p for p in COMMON if p not in taken] + list(range(20000, 20000 + count))
    out += ["%d/tcp" % p for p in extra[:max(0, count - len(out))]]
    return out[:count], len(first)


def _renumber(data, old, new):
    """``data`` (JSON-able) with the address ``old`` replaced by ``new`` everywhere (values and rule texts)."""
    text = json.dumps(data)
    return json.loads(re.sub(r"(?<![\d.])%s(?![\d])" % re.escape(old), new, text))


def _route(dst, dev, gateway=None, family="ipv4", metric=0, kind="unicast"):
    return {"family": family, "dst": dst, "type": kind, "gateway": gateway, "dev": dev, "metric": metric}


def _addr(interface, address, prefix, family="ipv4", scope="global"):
    return {"interface": interface, "family": family, "address": address, "prefix": prefix, "scope": scope,
            "secondary": False}


def _counters(rng):
    return {"TcpExtListenOverflows": 0, "TcpExtListenDrops": 0, "TcpExtTCPBacklogDrop": 0, "TcpExtTCPReqQFullDrop": 0,
            "TcpExtTCPReqQFullDoCookies": 0, "TcpExtSyncookiesSent": 0, "TcpExtSyncookiesRecv": 0,
            "TcpExtSyncookiesFailed": 0, "TcpAttemptFails": rng.randint(0, 900), "TcpPassiveOpens": rng.randint(100, 20000),
            "TcpOutRsts": rng.randint(0, 2000), "TcpInErrs": 0, "UdpNoPorts": rng.randint(0, 500), "UdpInErrors": 0,
            "UdpRcvbufErrors": 0, "IcmpOutDestUnreachs": rng.randint(0, 500)}


def _listeners_info(seed, address, prefix, gateway, rng, interfaces=None, routes=None):
    """listeners_info's result for a host: the seed's listeners and sysctls, its own addresses and routes."""
    ifaces = interfaces or [("eth0", address, prefix)]
    addrs = [_addr("lo", "127.0.0.1", 8, scope="host"), _addr("lo", "::1", 128, family="ipv6", scope="host")]
    for name, a, p in ifaces:
        addrs.append(_addr(name, a, p))
        addrs.append(_addr(name, "fe80::%x:%x" % (rng.randint(1, 0xffff), rng.randint(1, 0xffff)), 64, family="ipv6",
                           scope="link"))
    if routes is None:
        net = ipaddress.ip_network("%s/%s" % (address, prefix), strict=False)
        routes = [_route("0.0.0.0/0", "eth0", gateway), _route(str(net), "eth0"),
                  _route("fe80::/64", "eth0", family="ipv6", metric=256)]
    return {"listeners": copy.deepcopy(seed["listeners"]), "process_scan": {"enabled": True, "complete": True,
                                                                            "unreadable_pids": []},
            "warnings": [], "sysctls": copy.deepcopy(seed["sysctls"]), "counters": _counters(rng), "routes": routes,
            "interface_addresses": addrs, "changed": False}


def _firewall_info(seed, local):
    fw = copy.deepcopy(seed["firewall"])
    fw["local_addresses"] = local + ["127.0.0.1", "::1"]
    fw["verdicts"] = []
    fw["changed"] = False
    return fw


def _rule(matches, verdict, origin):
    return {"matches": matches, "origin": origin, "statements": [], "verdict": verdict}


def _router_firewall(seed, healthy):
    """The seed router's rules, with the middle-hop drop (8081) and reject (8082) for every healthy copy and the
    port mappings of the router's front address pointing at the first one."""
    fw = copy.deepcopy(seed["firewall"])
    lab, labnat = fw["ruleset"]["tables"]
    rules = []
    for i, addr in enumerate(healthy):
        for port, verdict, what in ((8081, {"kind": "drop"}, "drop comment \"a middle hop that silently drops one port\""),
                                    (8082, {"backend": "nftables", "expr": "admin-prohibited", "kind": "reject", "type": "icmp"},
                                     "reject with icmp admin-prohibited comment \"a middle hop that rejects another port\"")):
            rules.append(_rule([{"key": "dst", "negate": False, "requires": {"family": "ipv4"}, "values": [addr]},
                                {"key": "dport", "negate": False, "requires": {"proto": ["tcp"]}, "values": [port]}],
                               verdict, {"backend": "nftables", "chain": "forward", "family": "inet", "handle": 2 + len(rules),
                                         "table": "lab", "text": "ip daddr %s tcp dport %d %s" % (addr, port, what)}))
    lab["chains"][0]["rules"] = rules
    if healthy:
        labnat.update(_renumber(labnat, "10.200.2.10", healthy[0]))
    return fw


def _rich_reject(fw, port):
    """A firewalld rich rule that rejects ``port``: in the zone's settings and, as firewalld loads it, in its deny chain."""
    fw["firewalld"]["runtime"]["zones"]["public"]["rich_rules"].append(
        'rule family="ipv4" port port="%d" protocol="tcp" reject type="icmp-admin-prohibited"' % port)
    table = next(t for t in fw["ruleset"]["tables"] if t["name"] == "firewalld")
    deny = next(c for c in table["chains"] if c["name"] == "filter_IN_public_deny")
    deny["rules"].append(_rule([{"key": "dport", "negate": False, "values": [port], "requires": {"proto": ["tcp"]}}],
                               {"kind": "reject", "type": "icmpx", "expr": "admin-prohibited"},
                               {"backend": "nftables", "family": "inet", "table": "firewalld", "chain": "filter_IN_public_deny",
                                "handle": 140, "text": "tcp dport %d reject with icmpx admin-prohibited" % port}))


class _FakeEC2(object):
    """The EC2 calls aws.Reader makes, answered from memory: one interface per cloud host, in security group
    sg-web (tcp 22 and 80 from the front subnet), behind a network ACL that allows everything."""

    def __init__(self, addresses):
        self.enis = {a: {"NetworkInterfaceId": "eni-%08x" % i, "InterfaceType": "interface",
                         "Attachment": {"InstanceId": "i-%08x" % i}, "VpcId": "vpc-0bench", "SubnetId": "subnet-0back",
                         "PrivateIpAddress": a, "PrivateIpAddresses": [{"PrivateIpAddress": a, "Primary": True}],
                         "Ipv6Addresses": [], "Groups": [{"GroupId": "sg-0web", "GroupName": "web"}]}
                     for i, a in enumerate(addresses)}

    def can_paginate(self, method):
        return False

    def describe_network_interfaces(self, Filters=None, NetworkInterfaceIds=None):
        values = (Filters or [{}])[0].get("Values") or []
        name = (Filters or [{}])[0].get("Name")
        if name == "group-id":
            return {"NetworkInterfaces": list(self.enis.values())}
        return {"NetworkInterfaces": [self.enis[v] for v in values if v in self.enis]}

    def describe_addresses(self, PublicIps=None):
        return {"Addresses": []}

    def describe_security_groups(self, GroupIds=None):
        return {"SecurityGroups": [{"GroupId": "sg-0web", "GroupName": "web", "VpcId": "vpc-0bench"}]}

    def describe_security_group_rules(self, Filters=None):
        rules = [{"SecurityGroupRuleId": "sgr-0%s" % name, "GroupId": "sg-0web", "IsEgress": False, "IpProtocol": "tcp",
                  "FromPort": port, "ToPort": port, "CidrIpv4": FRONT + ".0/24", "Description": name}
                 for name, port in (("ssh", 22), ("http", 80))]
        rules.append({"SecurityGroupRuleId": "sgr-0egress", "GroupId": "sg-0web", "IsEgress": True, "IpProtocol": "-1",
                      "FromPort": -1, "ToPort": -1, "CidrIpv4": "0.0.0.0/0"})
        return {"SecurityGroupRules": rules}

    def describe_network_acls(self, Filters=None):
        entries = []
        for egress in (False, True):
            entries.append({"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": egress, "CidrBlock": "0.0.0.0/0"})
            entries.append({"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": egress, "CidrBlock": "0.0.0.0/0"})
        return {"NetworkAcls": [{"NetworkAclId": "acl-0back", "IsDefault": True, "Entries": entries}]}


def _cloud_results(queries, addresses):
    """The registered loop of security_group_info over ``queries``, from the real library."""
    client = _FakeEC2(addresses)
    real = aws.connect
    aws.connect = lambda **kwargs: (client, kwargs.get("region") or REGION)
    try:
        results = []
        for q in queries:
            opts = dict(q["options"])
            provider = opts.pop("provider")
            out = security_group_info(provider, addresses=q["addresses"], packets=q["packets"], **opts)
            results.append(dict(out, item=q, changed=False, failed=False, ansible_loop_var="item"))
    finally:
        aws.connect = real
    return {"results": results, "changed": False, "msg": "All items completed", "skipped": False}


def _reply(kind, sender, target, ttl, icmp=None, local_errno=None):
    out = {"kind": kind, "icmp_type": None, "icmp_code": None, "icmp_name": None, "sender": sender,
           "sender_is_target": sender == target, "ttl": ttl}
    if icmp is not None:
        out.update(icmp_type=icmp[0], icmp_code=icmp[1], icmp_name=icmp_tables.icmp_name(4, icmp[0], icmp[1]))
    if local_errno:
        out["local_errno"] = local_errno
    return out


class _Hop(object):
    def __init__(self, ttl, result):
        self.ttl, self.result = ttl, result


def _time_exceeded(address, rng):
    return {"reply": "time-exceeded", "address": address, "icmp_type": 11, "icmp_code": 0,
            "icmp_name": icmp_tables.icmp_name(4, 11, 0), "rtt_ms": round(rng.uniform(0.1, 0.5), 3)}


class Fleet(object):
    """The inputs of the controller's filters for one shape: ``flows`` (reachability_flows), ``groups``,
    ``hostvars``, ``cloud`` (the registered security_group_info loop), ``max_flows`` and ``trace_limit``."""

    def __init__(self, shape, flows, seed=13, trace_limit=30, cloud=True):
        self.rng = random.Random(seed)
        self.n_sources, self.n_dests, self.n_ports = shape_of(shape, flows)
        self.shape, self.trace_limit, self.with_cloud = shape, trace_limit, cloud
        with open(SEEDS) as fh:
            self.seeds = json.load(fh)["hosts"]
        self.truth = {}      # host -> the facts the wire follows (also for hosts whose facts were not read)
        self._build_hosts()
        self._build_flows()
        self.plan = plan_lib.make_plan(self.flows, self.groups, self.hostvars, max_flows=flows)
        if len(self.plan["flows"]) != flows:
            raise AssertionError("the fleet expands to %d flows, not %d" % (len(self.plan["flows"]), flows))
        self._evaluators = {}
        self.cloud = self._cloud()
        self._probe_and_trace()

    # ------------------------------------------------------------ hosts

    def _build_hosts(self):
        rng, seeds = self.rng, self.seeds
        self.hostvars, self.groups = {}, {"all": [], "ungrouped": [], "sources": [], "routers": []}
        self.sources = ["client-%02d" % i for i in range(self.n_sources)]
        dests = ["router", "ghost", "stranger"] + [KIND_ORDER[i % len(KIND_ORDER)] for i in range(self.n_dests - 3)]
        self.dests = []      # (name or None, address, kind)
        healthy = []
        clone = 0
        for kind in dests:
            if kind == "router":
                self.dests.append(("router", ROUTER_FRONT, kind))
            elif kind == "ghost":
                self.dests.append((None, "10.200.2.250", kind))
            elif kind == "stranger":
                self.dests.append((None, "10.200.2.251", kind))
            else:
                address = "10.200.%d.%d" % (2 + clone // 200, 10 + clone % 200)
                self.dests.append(("%s-%03d" % (kind, clone), address, kind))
                if kind == "healthy":
                    healthy.append(address)
                clone += 1
        self.back_subnets = sorted({a.rsplit(".", 1)[0] for dummy, a, k in self.dests if k not in ("router",)})
        # the router: front, one back subnet per 200 destinations, management
        ifaces = [("br-front", ROUTER_FRONT, 24)] + [("br-back%d" % i, net + ".1", 24) for i, net in enumerate(self.back_subnets)]
        ifaces.append(("mgmt0", ROUTER_MGMT, 30))
        routes = [_route("%s.0/24" % a.rsplit(".", 1)[0], name) for name, a, p in ifaces if p == 24]
        routes.append(_route("10.200.255.0/30", "mgmt0"))
        seed = seeds["router"]
        lst = _listeners_info(seed, ROUTER_FRONT, 24, None, rng, interfaces=ifaces, routes=routes)
        fw = _router_firewall(seed, healthy)
        fw["local_addresses"] = [a for dummy, a, p in ifaces] + ["127.0.0.1", "::1"]
        fw.update(verdicts=[], changed=False)
        self._add("router", ROUTER_MGMT, lst, fw, ["routers"])
        self.router_iface = {net: "br-back%d" % i for i, net in enumerate(self.back_subnets)}
        for i, name in enumerate(self.sources):
            address = "%s.%d" % (FRONT, 10 + i)
            seed = _renumber(seeds["client"], "10.200.1.10", address)
            lst = _listeners_info(seed, address, 24, ROUTER_FRONT, rng)
            fw = _firewall_info(seed, [address])
            if i == 0:
                fw["ruleset"]["tables"].append(self._output_drop(SOURCE_OUTPUT_DROP))
                fw["layers"]["nftables"].update(active=True, tables=["inet filter"])
            self._add(name, address, lst, fw, ["sources"])
        for name, address, kind in self.dests:
            if name is None or kind == "router":
                continue
            seed_name = KINDS[kind][0]
            seed = _renumber(seeds[seed_name], seeds[seed_name]["addresses"][0], address)
            net = address.rsplit(".", 1)[0]
            lst = _listeners_info(seed, address, 24, net + ".1", rng)
            fw = _firewall_info(seed, [address])
            if kind == "fwd-nft":
                _rich_reject(fw, 8443)
            truth = fw
            if kind == "unread":
                fw = {"failed": True, "msg": "firewall_info: iptables-save failed: iptables-legacy-save: Permission denied "
                                             "(you must be root)", "changed": False}
            extra = {"reachability_cloud": {"provider": "aws", "region": REGION}} if kind == "cloud" and self.with_cloud else {}
            self._add(name, address, lst, fw, ["tpl_" + kind], truth=truth, **extra)

    def _output_drop(self, port):
        return {"backend": "nftables", "family": "inet", "name": "filter", "sets": {}, "chains": [
            {"hook": "output", "name": "output", "policy": "accept", "priority": 0, "type": "filter", "rules": [
                _rule([{"key": "dport", "negate": False, "requires": {"proto": ["tcp"]}, "values": [port]}], {"kind": "drop"},
                      {"backend": "nftables", "chain": "output", "family": "inet", "handle": 4, "table": "filter",
                       "text": "tcp dport %d drop comment \"no database traffic from the clients\"" % port})]}]}

    def _add(self, name, address, lst, fw, groups, truth=None, **extra):
        hv = {"inventory_hostname": name, "ansible_host": address, "ansible_user": "root", "group_names": sorted(groups),
              "reachability_listeners": lst, "reachability_firewall": fw,
              "ansible_facts": {"discovered_interpreter_python": "/usr/bin/python3", "reachability_listeners": lst,
                                "reachability_firewall": fw}}
        hv.update(extra)
        self.hostvars[name] = hv
        self.groups["all"].append(name)
        for g in groups:
            self.groups.setdefault(g, []).append(name)
        self.truth[name] = plan_lib.host_facts(dict(hv, reachability_firewall=truth or fw))

    # ------------------------------------------------------------ flows

    def _build_flows(self):
        self.flows = []
        targets = {}
        for name, address, kind in self.dests:
            targets.setdefault(kind, []).append(address if kind in SPECIAL else name)  # the router by its front address
        for kind in ["router", "ghost", "stranger"] + [k for k in KIND_ORDER if k in targets]:
            to = targets[kind] if kind in ("router", "ghost", "stranger") else "tpl_" + kind
            ports, first = ports_for(kind, self.n_ports)
            self.flows.append({"name": "clients to %s" % kind, "from": "sources", "to": to, "ports": ports[:first]})
            if ports[first:]:
                self.flows.append({"name": "clients to %s, closed" % kind, "from": "sources", "to": to,
                                   "ports": ports[first:], "expect": "closed"})

    # ------------------------------------------------------------ the wire

    def _evaluate(self, host, packet, path):
        if host not in self._evaluators:
            fw = self.truth[host].get("firewall") or {}
            self._evaluators[host] = Evaluator(fw["ruleset"]) if fw.get("ruleset") else None
        ev = self._evaluators[host]
        if ev is None:
            return {"verdict": "accept"}
        return ev.evaluate(packet, path=path, local_addresses=self.truth[host].get("addresses"))

    def _listening(self, host, address, port, proto, ttl):
        m = match_listener(self.truth[host]["listeners"], address, port, proto)
        if m["accepted"]:
            return _reply("syn-ack" if proto == "tcp" else "udp", address, address, ttl)
        if proto == "tcp":
            return _reply("rst", address, address, ttl)
        return _reply("icmp", address, address, ttl, icmp=(3, 3))

    def wire(self, flow, src_addr):
        """(reply or None, what a trace would see: 'front' silence after the router, 'router' its reject, ...)."""
        address, port, proto = flow["address"], flow["port"], flow["protocol"]
        dest, kind = next((n, k) for n, a, k in self.dests if a == address)
        pkt = {"family": "ipv4", "proto": proto, "src": src_addr, "dst": address, "sport": 40000, "dport": port}
        v = self._evaluate(flow["source"], pkt, "output")
        if v["verdict"] in ("drop", "reject"):
            return _reply("icmp", "local", address, None, icmp=(3, 13), local_errno="EPERM"), None
        back = self.router_iface.get(address.rsplit(".", 1)[0])
        if kind == "ghost":
            return _reply("icmp", address.rsplit(".", 1)[0] + ".1", address, 64, icmp=(3, 1)), "unreachable"
        if kind == "router":
            v = self._evaluate("router", dict(pkt, iif="br-front"), "input")
            nat = v.get("nat")
            if nat and nat.get("dst"):
                inside = next(n for n, a, k in self.dests if a == nat["dst"])
                reply = self._listening(inside, nat["dst"], nat["dport"], proto, 63)
                return dict(reply, sender=address, sender_is_target=True), "reached"
            return self._listening("router", address, port, proto, 64), "reached"
        v = self._evaluate("router", dict(pkt, iif="br-front", oif=back), "forward")
        if v["verdict"] == "drop":
            return None, "front"
        if v["verdict"] == "reject":
            return _reply("icmp", ROUTER_FRONT, address, 64, icmp=(v["reply"]["type"], v["reply"]["code"])), "router"
        if kind == "stranger":
            return (_reply("syn-ack", address, address, 63), "reached") if port == 80 else (None, "front")
        for c in self._cloud_verdicts.get((src_addr, address, port, proto), []):
            if c["verdict"] != "accept":
                return None, "front"
        v = self._evaluate(dest, dict(pkt, iif="eth0"), "input")
        if v["verdict"] == "drop":
            return None, "front"
        if v["verdict"] == "reject":
            rep = v["reply"] or {}
            if rep.get("kind") == "rst":
                return _reply("rst", address, address, 63), "reached"
            return _reply("icmp", address, address, 63, icmp=(rep["type"], rep["code"])), "dest"
        return self._listening(dest, address, port, proto, 63), "reached"

    def _cloud(self):
        if not self.with_cloud:
            self._cloud_verdicts = {}
            return None
        queries = plan_lib.cloud_queries(self.plan, self.hostvars, None)
        if not queries:
            self._cloud_verdicts = {}
            return None
        cloud = _cloud_results(queries, [a for n, a, k in self.dests if k == "cloud"])
        self._cloud_verdicts = plan_lib.cloud_verdicts(cloud)[0]
        return cloud

    def _trace(self, target, seen):
        """The trace library's result for one target, from what the wire shows (hops built as its engine does)."""
        address, port, proto = target["address"], target["port"], target["protocol"]
        rng = self.rng
        if seen is None:    # the source's own output rule: every send fails there
            return trace_lib._verdict(address, address, 4, proto, port, [
                _Hop(ttl, {"reply": None, "local_error": "EPERM"}) for ttl in range(1, MAX_SILENT_HOPS + 1)])
        hops = [_Hop(1, _time_exceeded(ROUTER_FRONT, rng))]
        if seen == "front":
            hops += [_Hop(ttl, None) for ttl in range(2, MAX_SILENT_HOPS + 1)]
        elif seen in ("router", "unreachable"):
            code = 13 if seen == "router" else 1
            sender = ROUTER_FRONT if seen == "router" else address.rsplit(".", 1)[0] + ".1"
            hops.append(_Hop(2, {"reply": "icmp", "address": sender, "icmp_type": 3, "icmp_code": code,
                                 "icmp_name": icmp_tables.icmp_name(4, 3, code), "rtt_ms": round(rng.uniform(0.1, 0.5), 3)}))
        else:
            hops += [_Hop(ttl, None) for ttl in range(2, MAX_SILENT_HOPS + 1)]
        return trace_lib._verdict(address, address, 4, proto, port, hops)

    def _probe_and_trace(self):
        by_key = {}
        for f in self.plan["flows"]:
            by_key[(f["source"], f["address"], f["port"], f["protocol"])] = f
        rng = self.rng
        self.trace_seen = {}
        for src in self.plan["sources"]:
            src_addr = self.hostvars[src]["ansible_host"]
            results, icmp_from = [], set()
            for target in self.plan["probes"][src]:
                for port in target["ports"]:
                    f = by_key[(src, target["host"], port, target["protocol"])]
                    reply, seen = self.wire(f, src_addr)
                    self.trace_seen[(src, f["address"], port, f["protocol"])] = seen
                    state, reason = classify(f["protocol"], reply, 4)
                    if reply is not None and reply["kind"] == "icmp":
                        icmp_from.add(f["address"])
                    results.append({"target": f["address"], "address": f["address"], "family": "ipv4", "port": port,
                                    "protocol": f["protocol"], "state": state, "reason": reason, "reply": reply,
                                    "rtt_ms": None if reply is None else round(rng.uniform(0.15, 0.6), 3),
                                    "retries": 1 if reply is None else 0, "rate_limited": False, "engine": "raw"})
            for r in results:   # a silence next to rejects from the same address may be a rate-limited ICMP error
                if r["reply"] is None and r["address"] in icmp_from and rng.random() < 0.1:
                    r["rate_limited"] = True
            summary = {}
            for r in results:
                summary[r["state"]] = summary.get(r["state"], 0) + 1
            summary["rate_limited"] = sum(1 for r in results if r["rate_limited"])
            probe = {"engine": "raw", "engine_reason": "raw sockets are available (CAP_NET_RAW)", "notes": [],
                     "results": results, "summary": summary, "elapsed_s": round(rng.uniform(4.0, 9.0), 3),
                     "changed": False, "failed": False}
            self.hostvars[src]["reachability_probe"] = probe
            targets = plan_lib.trace_targets(None, probe, limit=self.trace_limit)
            if targets:
                traces = [self._trace(t, self.trace_seen[(src, t["address"], t["port"] or 0, t["protocol"])]) for t in targets]
                self.hostvars[src]["reachability_traces"] = {"results": traces, "elapsed_s": round(rng.uniform(2.0, 6.0), 3),
                                                             "reprobes": 0, "changed": False, "failed": False}

    def inputs(self):
        """Everything the filters are given, as one JSON-able dict (saved for the identity check)."""
        return {"shape": self.shape, "flows": self.flows, "groups": self.groups, "hostvars": self.hostvars,
                "cloud": self.cloud, "max_flows": len(self.plan["flows"]), "trace_limit": self.trace_limit,
                "sources": self.n_sources, "destinations": self.n_dests, "ports": self.n_ports}

# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A source bound to its zone through an ipset (firewall-cmd --zone=internal --add-source=ipset:admins), on the
seeds lab's fwd-nft facts: the culprit is zone internal, named through the ipset and its entry, and the fix offers
the safe options - a rich rule for this source and port only (the default), the port in the zone (open to every
member of the ipset), the entry out of the ipset (the source then falls to zone public) - and the open_ports
planner applies the default."""
import copy
import json

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import client as fwc
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import nftables
from ansible_collections.netdiag.reachability.plugins.plugin_utils import open_ports
from ansible_collections.netdiag.reachability.plugins.plugin_utils.explain.run import explain
from ansible_collections.netdiag.reachability.plugins.plugin_utils.report import markdown

from ..helpers import fixture

RULE = 'rule family="ipv4" source address="10.200.1.10" port port="80" protocol="tcp" accept'
# what firewalld 1.3.3's nftables backend loads for "--zone=internal --add-source=ipset:admins" (seen in the lab)
DISPATCH = {"nftables": [
    {"table": {"family": "inet", "name": "firewalld", "handle": 1}},
    {"set": {"family": "inet", "name": "admins", "table": "firewalld", "type": "ipv4_addr", "handle": 90,
             "flags": ["interval"], "elem": [{"prefix": {"addr": "10.200.1.0", "len": 24}}]}},
    {"chain": {"family": "inet", "table": "firewalld", "name": "filter_INPUT_ZONES", "handle": 80}},
    {"chain": {"family": "inet", "table": "firewalld", "name": "filter_IN_internal", "handle": 81}},
    {"rule": {"family": "inet", "table": "firewalld", "chain": "filter_INPUT_ZONES", "handle": 9000,
              "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@admins"}},
                       {"goto": {"target": "filter_IN_internal"}}]}}]}


@pytest.fixture(scope="module")
def seeds():
    with open(fixture("explain", "seeds-facts.json")) as fh:
        return json.load(fh)


def _rename(obj):
    return json.loads(json.dumps(obj).replace("IN_public", "IN_internal"))


def with_ipset_zone(seeds, ipsets=True, entry="10.200.1.0/24"):
    """fwd-nft's facts with ipset admins (the client's network) bound to zone internal, in the loaded ruleset
    (internal's chains as firewalld makes them for every zone, the set, the dispatch rule first) and in firewalld's
    configuration (runtime and permanent; without ``ipsets``, as facts saved before the ipsets were read)."""
    hosts = copy.deepcopy(seeds["hosts"])
    fw = hosts["fwd-nft"]["firewall"]
    table = next(t for t in fw["ruleset"]["tables"] if t["name"] == "firewalld")
    extra = nftables.parse_nft_json(DISPATCH)["tables"][0]
    table.setdefault("sets", {}).update(extra["sets"])
    clones = []
    for chain in table["chains"]:
        if chain["name"].startswith("filter_IN_public"):
            clone = _rename(chain)
            for rule in clone["rules"]:
                rule["origin"]["handle"] += 5000
            clones.append(clone)
    table["chains"] += clones
    zones_chain = next(c for c in table["chains"] if c["name"] == "filter_INPUT_ZONES")
    zones_chain["rules"].insert(0, extra["chains"][0]["rules"][0])
    for side in ("runtime", "permanent"):
        config = fw["firewalld"][side]
        config["zones"]["internal"]["sources"] = ["ipset:admins"]
        if ipsets:
            config["ipsets"] = {"admins": fwc.normalize_ipset(["", "", "", "hash:net", {}, [entry]])}
    return hosts


def one(seeds, hosts):
    f = next(copy.deepcopy(f) for f in seeds["flows"] if f["address"] == "10.200.2.11" and f["port"] == 80)
    return explain([f], hosts)["flows"][0]


def test_the_culprit_zone_is_the_ipset_zone_and_the_default_fix_is_a_rich_rule(seeds):
    f = one(seeds, with_ipset_zone(seeds))
    c = f["culprit"]
    assert f["cause"] == "host_firewall" and f["conflicts"] == []
    assert (c["layer"], c["zone"], c["zone_from"], c["chain"]) == ("firewalld", "internal", "ipset", "filter_IN_internal")
    assert c["zone_reason"] == "source 10.200.1.10 is in ipset admins (entry 10.200.1.0/24), bound to zone internal"
    assert c["zone_binding"] == {"kind": "ipset", "value": "ipset:admins", "ipset": "admins", "entry": "10.200.1.0/24",
                                 "type": "hash:net"}
    fix = f["fix"]
    assert [x["command"] for x in fix["commands"]] == [
        "firewall-cmd --zone=internal --add-rich-rule='%s'" % RULE,
        "firewall-cmd --permanent --zone=internal --add-rich-rule='%s'" % RULE]
    assert fix["open_ports"] == {"host": "fwd-nft", "backend": "firewalld", "zone": "internal", "ports": ["80/tcp"],
                                 "source": "10.200.1.10", "rich_rules": [RULE]}
    assert fix["checked"]["passes"] is True, fix["checked"]   # tried on the loaded ruleset, in internal's chain
    assert "through ipset admins (entry 10.200.1.0/24)" in fix["summary"] and "every member of the ipset" in fix["summary"]
    assert "--zone=public" not in json.dumps([fix["commands"], fix["open_ports"]])


def test_the_alternatives_say_what_each_opens_and_which_is_the_default(seeds):
    fix = one(seeds, with_ipset_zone(seeds))["fix"]
    rich, port, entry = fix["alternatives"]
    assert [a["option"] for a in fix["alternatives"]] == ["rich_rule", "zone_port", "ipset_entry"]
    assert [a["default"] for a in fix["alternatives"]] == [True, False, False]
    assert rich["commands"] == fix["commands"] and rich["open_ports"] == fix["open_ports"]
    assert [x["command"] for x in port["commands"]] == ["firewall-cmd --zone=internal --add-port=80/tcp",
                                                        "firewall-cmd --permanent --zone=internal --add-port=80/tcp"]
    assert "every source of zone internal: every member of ipset admins (1 entry: 10.200.1.0/24)" in port["why"]
    assert port["open_ports"] == {"host": "fwd-nft", "backend": "firewalld", "zone": "internal", "ports": ["80/tcp"]}
    assert [x["command"] for x in entry["commands"]] == ["firewall-cmd --ipset=admins --remove-entry=10.200.1.0/24",
                                                         "firewall-cmd --permanent --ipset=admins --remove-entry=10.200.1.0/24"]
    assert entry["manual"] is True and entry["open_ports"] is None
    assert "10.200.1.10 then falls to zone public" in entry["why"]
    assert "which does not allow 80/tcp either: the flow stays blocked" in entry["why"]
    assert "entry 10.200.1.0/24 is more than 10.200.1.10: every address of it leaves ipset admins" in entry["why"]


def test_the_markdown_report_lists_the_alternatives_after_the_default(seeds):
    flows = [copy.deepcopy(f) for f in seeds["flows"] if f["address"] == "10.200.2.11" and f["port"] == 80]
    text = markdown(explain(flows, with_ipset_zone(seeds)))
    lines = text.splitlines()
    fix = next(i for i, line in enumerate(lines) if line.startswith("- fix: allow 80/tcp from 10.200.1.10 only"))
    alts = [i for i, line in enumerate(lines) if line.startswith("- alternative fix: ")]
    assert len(alts) == 2 and fix < alts[0] < alts[1], text
    assert lines[alts[0]].startswith("- alternative fix: open 80/tcp in firewalld zone internal on fwd-nft")
    assert lines[alts[0] + 2] == "    - on fwd-nft: `firewall-cmd --permanent --zone=internal --add-port=80/tcp`"
    assert "(manual)" in lines[alts[1]] and "remove 10.200.1.0/24 from ipset admins" in lines[alts[1]]
    assert "rich rule" not in "".join(lines[alts[0]:]), "the default is not repeated as an alternative"


def test_an_entry_of_the_source_alone_is_removed_by_itself(seeds):
    fix = one(seeds, with_ipset_zone(seeds, entry="10.200.1.10"))["fix"]
    entry = fix["alternatives"][2]
    assert entry["commands"][0]["command"] == "firewall-cmd --ipset=admins --remove-entry=10.200.1.10"
    assert "more than" not in entry["why"]


def test_facts_without_ipsets_follow_the_ruleset_and_still_default_to_the_rich_rule(seeds):
    f = one(seeds, with_ipset_zone(seeds, ipsets=False))
    c = f["culprit"]
    assert (c["zone"], c["zone_from"]) == ("internal", "ruleset")
    assert "the deciding rule is in chain filter_IN_internal of zone internal" in c["zone_reason"]
    assert "ipset admins is not defined (or was not read)" in c["zone_reason"]
    assert f["conflicts"] == []
    fix = f["fix"]
    assert fix["open_ports"]["rich_rules"] == [RULE] and fix["open_ports"]["zone"] == "internal"
    # the entry is not known: no removal is offered
    assert [a["option"] for a in fix["alternatives"]] == ["rich_rule", "zone_port"]


def test_the_planner_applies_the_rich_rule_and_verifies_from_the_source(seeds):
    report = explain([next(copy.deepcopy(f) for f in seeds["flows"] if f["address"] == "10.200.2.11" and f["port"] == 80)],
                     with_ipset_zone(seeds))
    plan = open_ports.plan_from_report(report, ["fwd-nft", "client"])
    assert plan["manual"] == []
    assert plan["rules"] == [{"host": "fwd-nft", "backend": "firewalld", "ports": ["80/tcp"], "state": "present",
                              "zone": "internal", "zone_source": None, "source": None, "family": None, "table": None,
                              "chain": None, "forward_to": None, "verify_from": "client", "verify_address": "10.200.2.11",
                              "rich_rules": [RULE]}]


@pytest.mark.parametrize("rule, message", [
    ({"backend": "ufw", "ports": ["80/tcp"], "rich_rules": [RULE]}, "rich_rules are only for backend firewalld (backend is ufw)"),
    ({"backend": "firewalld", "ports": ["80/tcp"], "rich_rules": RULE}, "rich_rules must be a list of firewalld rich rules"),
    ({"backend": "firewalld", "ports": ["80/tcp"], "rich_rules": ["accept"]}, "rich_rules must be a list of firewalld rich rules"),
])
def test_bad_rich_rules_in_a_rule_are_refused_naming_the_rule(rule, message):
    with pytest.raises(Exception) as err:
        open_ports.normalize_rules([rule])
    assert "open_ports_rules[0]: " + message in str(err.value)


def test_a_rule_with_rich_rules_keeps_them_once_each():
    got = open_ports.normalize_rules([{"backend": "firewalld", "zone": "internal", "ports": ["80/tcp"],
                                       "rich_rules": [RULE, " %s " % RULE]}])[0]
    assert got["rich_rules"] == [RULE] and got["ports"] == ["80/tcp"]
    assert open_ports.normalize_rules([{"backend": "firewalld", "ports": ["80/tcp"]}])[0]["rich_rules"] == []


def test_a_runtime_only_entry_is_removed_at_runtime_only(seeds):
    hosts = with_ipset_zone(seeds, entry="10.200.1.10")
    hosts["fwd-nft"]["firewall"]["firewalld"]["permanent"]["ipsets"]["admins"]["entries"] = []
    entry = one(seeds, hosts)["fix"]["alternatives"][2]
    assert [x["command"] for x in entry["commands"]] == ["firewall-cmd --ipset=admins --remove-entry=10.200.1.10"]
    assert entry["summary"] == "remove 10.200.1.10 from ipset admins on fwd-nft (runtime)"

# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bounded mutation fuzzer over the parsers and the evaluator, fed with the real fixtures.

Each target gets the captured fixtures mutated the way broken hosts and hand-edited saved
facts break them (numbers out of range or in other scripts, lines dropped, duplicated or cut,
keys removed, values of the wrong type, deep nesting) and must either succeed or raise the
library's own ``NetdiagError``: any other exception is a crash a user would see as a Python
traceback.  The seed is fixed, so a failure replays; ``NETDIAG_FUZZ_SEED`` and
``NETDIAG_FUZZ_ROUNDS`` run other seeds or longer on demand.  Inputs that once crashed are
replayed first (``CORPUS``).
"""

import copy
import glob
import json
import os
import random
import time

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import NetdiagError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.ports import parse_port_spec
from ansible_collections.netdiag.reachability.plugins.module_utils.capture.flows import analyze
from ansible_collections.netdiag.reachability.plugins.module_utils.cloud import alicloud
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import procfs, sock_diag
from ansible_collections.netdiag.reachability.plugins.module_utils.rules import model, ufw
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.evaluate import Evaluator
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld import xml as firewalld_xml
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.iptables import parse_iptables_save
from ansible_collections.netdiag.reachability.plugins.module_utils.rules.nftables import parse_nft_json

from ..helpers import fixture

SEED = int(os.environ.get("NETDIAG_FUZZ_SEED", "20261207"))
ROUNDS = int(os.environ.get("NETDIAG_FUZZ_ROUNDS", "300"))  # mutations per target
BUDGET = float(os.environ.get("NETDIAG_FUZZ_SECONDS", "4"))  # seconds per target at most

# values that broke parsers: other scripts' digits, out of range, reversed, hex too long, signs
WORDS = ["8\u00b2", "\u0663", "\uff18\uff10", "70000", "65536", "0", "-1", "80:70", "9000-8000", "FFFFF", "0x",
         "zz", "3/x", "abc", "", " ", "1_0", "+5", "4294967296", "99999999999999999999", "\xff", "\x00", "*", "!",
         "--dport", "-j", "COMMIT", ":INPUT ACCEPT [0:0]", "*filter", '"', "'", "\\"]
VALUES = [None, True, 0, -1, 70000, 2 ** 64, 1.5, "", "x", "70000", [], [80, 70], [1], {}, {"a": 1}, [[[]]],
          "8\u00b2", {"range": [80, 70]}, {"set": "x"}, [None]]

PACKETS = [
    {"family": "ipv4", "src": "10.0.0.1", "dst": "10.0.0.2", "proto": "tcp", "dport": 22},
    {"family": "ipv4", "src": "10.200.1.5", "dst": "10.200.2.10", "proto": "tcp", "dport": 80},
    {"family": "ipv4", "src": "192.168.1.9", "dst": "10.0.0.2", "proto": "udp", "dport": 53},
    {"family": "ipv4", "src": "10.0.0.1", "dst": "10.0.0.2", "proto": "icmp"},
    {"family": "ipv6", "src": "fd00::1", "dst": "fd00::2", "proto": "tcp", "dport": 443},
]

# inputs that once escaped as raw Python errors: replayed before the random rounds
CORPUS = {
    "iptables": [
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m rt --rt-type abc -j DROP\nCOMMIT\n",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p icmp --icmp-type 3/x -j DROP\nCOMMIT\n",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m mark --mark zz -j DROP\nCOMMIT\n",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 8\u00b2 -j DROP\nCOMMIT\n",
        "*filter\n:INPUT ACCEPT [0:0]\n:INPUT DROP [0:0]\nCOMMIT\n",
    ],
    "nft": [
        {"nftables": [{"table": {"family": "inet", "name": "t"}}] + [[]] * 1},
        '{"nftables": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"nftables": [{"rule": {"family": "inet", "table": "t", "chain": "c", "expr": ' + '{"a": ' * 5000 + "1"
        + "}" * 5000 + "}}]}",
    ],
    "model": [
        {"tables": [{"backend": "nftables", "family": "inet", "name": "t", "chains": [
            {"name": "input", "hook": "input", "priority": 0, "policy": "accept", "rules": [
                {"matches": [{"key": "dport", "values": "22"}], "verdict": {"kind": "drop"}, "origin": {}}]}]}]},
    ],
    "proc_net": [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000:FFFFF 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n",
    ],
}


class _Crashes(object):
    def __init__(self, target):
        self.target = target
        self.found = []

    def run(self, func, value):
        try:
            func(value)
        except NetdiagError:
            pass
        except RecursionError:
            self.found.append(("RecursionError", "nested too deep", _short(value)))
        except Exception as exc:  # pylint: disable=broad-except  # what the test looks for
            self.found.append((type(exc).__name__, str(exc)[:200], _short(value)))

    def check(self):
        assert not self.found, "%s: %d inputs escaped as raw Python errors, e.g.:\n%s" % (
            self.target, len(self.found), "\n".join("%s: %s\n  input: %s" % f for f in self.found[:5]))


def _short(value):
    text = repr(value)
    return text if len(text) < 400 else text[:400] + "..."


def _read(path, mode="r"):
    with open(path, mode) as fh:
        return fh.read()


# ----------------------------------------------------------------- mutators

def mutate_text(rng, text):
    lines = text.splitlines(True) or [""]
    for dummy in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        i = rng.randrange(len(lines))
        if op == 0:      # a token replaced by a bad word
            words = lines[i].split(" ")
            j = rng.randrange(len(words))
            words[j] = rng.choice(WORDS)
            lines[i] = " ".join(words)
        elif op == 1:    # a number replaced
            words = lines[i].split(" ")
            nums = [j for j, w in enumerate(words) if any(c.isdigit() for c in w)]
            if nums:
                j = rng.choice(nums)
                words[j] = rng.choice(["70000", "80:70", "FFFFF", "8\u00b2", "-1", "4294967296", "0"])
                lines[i] = " ".join(words)
        elif op == 2:    # a line duplicated
            lines.insert(i, lines[i])
        elif op == 3:    # a line dropped
            if len(lines) > 1:
                del lines[i]
        elif op == 4:    # a line cut
            lines[i] = lines[i][:rng.randrange(len(lines[i]) + 1)]
        elif op == 5:    # a word inserted
            lines.insert(i, rng.choice(WORDS) + "\n")
        else:            # two lines swapped
            k = rng.randrange(len(lines))
            lines[i], lines[k] = lines[k], lines[i]
    return "".join(lines)


def mutate_bytes(rng, data):
    data = bytearray(data)
    for dummy in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if not data:
            data.extend(b"\xff\xff\xff\xff")
        i = rng.randrange(len(data))
        if op == 0:
            data[i] = rng.randrange(256)
        elif op == 1:    # a length field set to something huge or tiny
            data[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x0c\x00\x00\x00", b"\x00\x00\x00\xf0"])
        elif op == 2:
            del data[i:]
        else:
            data[i:i] = bytes(rng.randrange(256) for dummy in range(rng.randint(1, 8)))
    return bytes(data)


def _nodes(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, path + (i,))


def mutate_json(rng, data):
    data = copy.deepcopy(data)
    nodes = list(_nodes(data))
    for dummy in range(rng.randint(1, 3)):
        path, dummy_value = rng.choice(nodes)
        if not path:
            continue
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            last = path[-1]
            op = rng.randrange(4)
            if op == 0:
                parent[last] = copy.deepcopy(rng.choice(VALUES))
            elif op == 1 and isinstance(parent, dict):
                del parent[last]
            elif op == 2 and isinstance(parent[last], int) and not isinstance(parent[last], bool):
                parent[last] = rng.choice([70000, 65536, -1, 2 ** 32, 256])
            else:
                nested = []
                cursor = nested
                for dummy in range(rng.choice([3, 80, 300])):
                    cursor.append([])
                    cursor = cursor[0]
                parent[last] = nested
        except (KeyError, IndexError, TypeError):
            continue
    return data


def _rounds(rng, seeds, mutate, crashes, func):
    deadline = time.monotonic() + BUDGET
    for n in range(ROUNDS):
        if time.monotonic() > deadline:
            break
        crashes.run(func, mutate(rng, rng.choice(seeds)))
    return n


def _evaluate(ruleset):
    ev = Evaluator(ruleset)
    for packet in PACKETS:
        for path in ("input", "forward", "output"):
            ev.evaluate(packet, path=path)


# ----------------------------------------------------------------- targets

def _iptables(text):
    _evaluate(parse_iptables_save(text))


def _nft(data):
    _evaluate(parse_nft_json(data))


def _model(data):
    _evaluate(model.from_dict(data))


def test_iptables_save_and_evaluator():
    rng = random.Random(SEED)
    seeds = [_read(p) for p in sorted(glob.glob(fixture("rules", "iptables", "*save"))) + [fixture("rules", "docker", "iptables-nft-save.txt")]]
    crashes = _Crashes("parse_iptables_save")
    for text in CORPUS["iptables"]:
        crashes.run(_iptables, text)
    _rounds(rng, seeds, mutate_text, crashes, _iptables)
    crashes.check()


def test_nft_json_and_evaluator():
    rng = random.Random(SEED + 1)
    seeds = [json.loads(_read(p)) for p in sorted(glob.glob(fixture("rules", "nft", "*.json")))]
    crashes = _Crashes("parse_nft_json")
    for data in CORPUS["nft"]:
        crashes.run(_nft, data)
    _rounds(rng, seeds, mutate_json, crashes, _nft)
    crashes.check()


def test_saved_rulesets_and_evaluator():
    """Saved facts (the rule model as JSON) mutated, then compiled and evaluated."""
    rng = random.Random(SEED + 2)
    seeds = [parse_nft_json(_read(p)) for p in sorted(glob.glob(fixture("rules", "nft", "*.json")))]
    seeds += [parse_iptables_save(_read(p)) for p in sorted(glob.glob(fixture("rules", "iptables", "*save")))]
    crashes = _Crashes("from_dict + Evaluator")
    for data in CORPUS["model"]:
        crashes.run(_model, data)
    _rounds(rng, seeds, mutate_json, crashes, _model)
    crashes.check()


def test_ufw_files():
    rng = random.Random(SEED + 3)
    root = fixture("firewall_info", "scratch-ufw", "etc")
    rules = [_read(os.path.join(root, "ufw", name)) for name in ("user.rules", "user6.rules")]
    conf = _read(os.path.join(root, "ufw", "ufw.conf"))
    defaults = _read(os.path.join(root, "default", "ufw"))
    crashes = _Crashes("ufw")
    _rounds(rng, rules, mutate_text, crashes, lambda text: ufw.parse_user_rules(text, "ipv4"))
    _rounds(rng, [conf], mutate_text, crashes, lambda text: ufw.parse_settings(text, defaults))
    _rounds(rng, [defaults], mutate_text, crashes, lambda text: ufw.parse_settings(conf, text))
    crashes.check()


def test_proc_net_and_counters():
    rng = random.Random(SEED + 4)
    net = fixture("listeners", "server", "proc", "net")
    crashes = _Crashes("procfs")
    for text in CORPUS["proc_net"]:
        crashes.run(lambda t: procfs.parse_proc_net(t, "tcp", 4), text)
    for name, family in (("tcp", 4), ("tcp6", 6), ("udp", 4), ("udp6", 6)):
        _rounds(rng, [_read(os.path.join(net, name))], mutate_text, crashes,
                lambda text, n=name, f=family: procfs.parse_proc_net(text, n.rstrip("6"), f))
    _rounds(rng, [_read(os.path.join(net, "netstat")), _read(os.path.join(net, "snmp"))], mutate_text, crashes,
            lambda text: procfs.parse_kv_tables(text, "netstat"))
    _rounds(rng, [_read(os.path.join(net, "snmp6"))], mutate_text, crashes, lambda text: procfs.parse_snmp6(text, "snmp6"))
    crashes.check()


def test_sock_diag_replies():
    rng = random.Random(SEED + 5)
    seeds = [_read(p, "rb") for p in sorted(glob.glob(fixture("listeners", "*", "sock_diag", "*.bin")))]
    crashes = _Crashes("parse_sock_diag")
    _rounds(rng, seeds, mutate_bytes, crashes, sock_diag.parse_sock_diag)
    crashes.check()


def test_captures(tmp_path):
    rng = random.Random(SEED + 6)
    seeds = [_read(p, "rb") for p in sorted(glob.glob(fixture("pcap", "*.pcap*")))]
    path = str(tmp_path / "fuzz.cap")

    def run(data):
        with open(path, "wb") as fh:
            fh.write(data)
        analyze(path)
    crashes = _Crashes("pcap_info analyze")
    _rounds(rng, seeds, mutate_bytes, crashes, run)
    crashes.check()


def test_firewalld_zone_files(tmp_path):
    rng = random.Random(SEED + 7)
    seeds = [_read(p) for p in sorted(glob.glob(fixture("firewalld", "*", "zones", "*.xml")) +
                                      glob.glob(fixture("firewalld", "usr", "lib", "firewalld", "zones", "*.xml")))]
    seeds.append('<?xml version="1.0" encoding="bogus"?>\n<zone><port port="22" protocol="tcp"/></zone>\n')
    seeds.append('<zone><port port="70000" protocol="tcp"/></zone>\n')
    path = str(tmp_path / "zone.xml")
    from ansible_collections.netdiag.reachability.plugins.module_utils.rules.firewalld.client import normalize_settings

    def run(text):
        with open(path, "w") as fh:
            fh.write(text)
        normalize_settings(firewalld_xml.zone_settings(path))
    crashes = _Crashes("firewalld zone XML")
    _rounds(rng, seeds, mutate_text, crashes, run)
    crashes.check()


class _FakeEcs(object):
    """An Alibaba Cloud client answering from (mutated) recorded response bodies."""

    region = "cn-hangzhou"

    def __init__(self, bodies):
        self.bodies = bodies

    def call(self, action, **params):
        return copy.deepcopy(self.bodies.get(action) or {})

    def pages(self, action, path, **params):
        node = self.call(action)
        for key in path:
            node = (node or {}).get(key)
        return list(node or [])


def test_alicloud_responses():
    rng = random.Random(SEED + 8)
    recorded = json.loads(_read(fixture("alicloud", "web01.json")))["responses"]
    bodies = {}
    for item in recorded:
        bodies.setdefault(item["action"], item["body"])
    crashes = _Crashes("alicloud.read")

    def run(data):
        alicloud.read(_FakeEcs(data), addresses=["172.16.0.10"])
    _rounds(rng, [bodies], mutate_json, crashes, run)
    crashes.check()


def test_port_specs():
    rng = random.Random(SEED + 9)
    crashes = _Crashes("parse_port_spec")
    alphabet = "0123456789-/tcpud \u00b2\u0663\uff18_+x"
    for dummy in range(ROUNDS * 3):
        spec = "".join(rng.choice(alphabet) for dummy in range(rng.randint(0, 12)))
        crashes.run(lambda s: parse_port_spec(s, default_protocol="tcp"), spec)
    for value in VALUES:
        crashes.run(lambda s: parse_port_spec(s, default_protocol="tcp"), value)
    crashes.check()


@pytest.mark.parametrize("spec", ["8\u00b2", "\u0663", "\uff18\uff10", "1_0", "+5"])
def test_digits_of_other_scripts_are_not_ports(spec):
    with pytest.raises(NetdiagError, match="not a number"):
        parse_port_spec(spec, default_protocol="tcp")


def test_explain_facts_filter():
    """The explain_facts filter on mutated saved facts: only AnsibleFilterError reaches the user."""
    from ansible.errors import AnsibleFilterError
    from ansible_collections.netdiag.reachability.plugins.filter.reachability import explain_facts
    rng = random.Random(SEED + 10)
    saved = json.loads(_read(fixture("explain", "seeds-facts.json")))
    found = []
    deadline = time.monotonic() + BUDGET
    for dummy in range(ROUNDS // 10):
        if time.monotonic() > deadline:
            break
        data = mutate_json(rng, {"flows": saved["flows"][:4], "hosts": saved["hosts"]})
        try:
            explain_facts(data.get("flows"), data.get("hosts"))
        except AnsibleFilterError:
            pass
        except Exception as exc:  # pylint: disable=broad-except  # what the test looks for
            found.append("%s: %s" % (type(exc).__name__, exc))
    assert not found, found[:5]

# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real multi-host lab built from Linux network namespaces.

Every host is a network namespace with its own hostname (UTS namespace), its own
sshd on its own address, an ``/etc/netns/<ns>/`` overlay (its own firewalld, ufw and
``/etc/default``), its own firewall and real listeners.  A router namespace bridges
each network and forwards between them; one veth plus one route lets the root
namespace (Ansible) reach every host.  Only the lab's own namespaces, that veth and
that route are touched; :func:`down` removes all of it and is idempotent.

Runs with Debian's ``/usr/bin/python3`` (needs PyYAML) or the project venv.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TOPOLOGY = os.path.join(HERE, "topologies", "seeds.yml")
STATE_ROOT = os.environ.get("NETDIAG_LAB_STATE", "/run/netdiag-lab")
PREFIX = os.environ.get("NETDIAG_LAB_PREFIX", "nd")
LAB_SUPERNET = ipaddress.ip_network("10.200.0.0/16")
FORBIDDEN = [ipaddress.ip_network("192.0.2.0/24")]
LISTENER = os.path.join(HERE, "listener.py")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


class LabError(Exception):
    pass


# --------------------------------------------------------------------------- helpers

def run(argv, check=True, input=None, timeout=60, env=None):
    """Run a command; raise LabError with its output when it fails."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise LabError("command failed (%d): %s\n%s%s" % (proc.returncode, " ".join(argv), proc.stdout, proc.stderr))
    return proc


def nsx(ns, argv, **kw):
    return run(["ip", "netns", "exec", ns] + list(argv), **kw)


def log(msg):
    sys.stderr.write("lab: %s\n" % msg)
    sys.stderr.flush()


def state_dir():
    return os.path.join(STATE_ROOT, PREFIX)


def ns_name(host):
    return "%s-%s" % (PREFIX, host)


def mgmt_ifname():
    return "%s-mgmt" % PREFIX


# --------------------------------------------------------------------------- topology

def load_topology(path=None, scale=0):
    path = path or DEFAULT_TOPOLOGY
    try:
        with open(path) as fh:
            topo = yaml.safe_load(fh)
    except OSError as exc:
        raise LabError("cannot read topology %s: %s" % (path, exc))
    except yaml.YAMLError as exc:
        raise LabError("topology %s is not valid YAML: %s" % (path, exc))
    if not isinstance(topo, dict) or "hosts" not in topo or "networks" not in topo:
        raise LabError("topology %s: needs 'networks' and 'hosts'" % path)
    topo.setdefault("router", {"name": "router"})
    topo.setdefault("management", {"subnet": "10.200.255.0/30", "route": "10.200.0.0/16"})
    topo["path"] = os.path.abspath(path)
    if scale:
        add_scale_hosts(topo, int(scale))
    validate(topo)
    return topo


def add_scale_hosts(topo, count):
    """Add ``count`` plain hosts (sshd + http on 80) on the last network."""
    if not 0 < count <= 200:
        raise LabError("scale %r: must be between 1 and 200" % count)
    net = topo["networks"][-1]
    subnet = ipaddress.ip_network(net["subnet"])
    used = {h["address"] for h in topo["hosts"]} | {net.get("gateway")}
    candidates = (str(a) for a in subnet.hosts() if int(a) - int(subnet.network_address) >= 100)
    free = [a for a in candidates if a not in used]
    if len(free) < count:
        raise LabError("scale %d: network %s has only %d free addresses from .100" % (count, net["name"], len(free)))
    for i in range(count):
        topo["hosts"].append({
            "name": "node%02d" % (i + 1), "network": net["name"], "address": free[i],
            "groups": ["scale"], "listeners": [{"proto": "tcp", "port": 80, "kind": "http"}],
        })


def _addr_in_lab(value, what):
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise LabError("%s: %r is not an IP address" % (what, value))
    if addr not in LAB_SUPERNET or any(addr in f for f in FORBIDDEN):
        raise LabError("%s: %s is outside the lab range %s" % (what, addr, LAB_SUPERNET))
    return addr


def validate(topo):
    nets = {}
    for net in topo["networks"]:
        name = net.get("name")
        if not name or not NAME_RE.match(name) or len(name) > 10:
            raise LabError("network name %r: use 1-10 lowercase letters, digits or '-'" % name)
        try:
            subnet = ipaddress.ip_network(net["subnet"])
        except (KeyError, ValueError) as exc:
            raise LabError("network %s: bad subnet (%s)" % (name, exc))
        if not subnet.subnet_of(LAB_SUPERNET):
            raise LabError("network %s: subnet %s is outside %s" % (name, subnet, LAB_SUPERNET))
        gw = _addr_in_lab(net.get("gateway"), "network %s gateway" % name)
        if gw not in subnet:
            raise LabError("network %s: gateway %s is not in %s" % (name, gw, subnet))
        nets[name] = subnet
    mgmt = ipaddress.ip_network(topo["management"]["subnet"])
    if not mgmt.subnet_of(LAB_SUPERNET) or mgmt.num_addresses < 4:
        raise LabError("management subnet %s must be a /30 or larger inside %s" % (mgmt, LAB_SUPERNET))
    seen = set()
    for host in topo["hosts"]:
        name = host.get("name")
        if not name or not NAME_RE.match(name):
            raise LabError("host name %r: use 1-12 lowercase letters, digits or '-', starting with a letter" % name)
        if name in seen or name == topo["router"]["name"]:
            raise LabError("host name %r is used twice" % name)
        seen.add(name)
        if host.get("network") not in nets:
            raise LabError("host %s: unknown network %r" % (name, host.get("network")))
        for value in [host.get("address")] + list(host.get("extra_addresses", [])):
            addr = _addr_in_lab(value, "host %s address" % name)
            if addr not in nets[host["network"]]:
                raise LabError("host %s: address %s is not in network %s" % (name, addr, host["network"]))
        fw = host.get("firewall") or {"kind": "none"}
        if fw.get("kind") not in ("none", "nftables", "iptables", "firewalld", "ufw"):
            raise LabError("host %s: unknown firewall kind %r" % (name, fw.get("kind")))
        for lst in host.get("listeners", []):
            if lst.get("proto") not in ("tcp", "udp") or not 1 <= int(lst.get("port", 0)) <= 65535:
                raise LabError("host %s: bad listener %r" % (name, lst))


def router_mgmt_addresses(topo):
    mgmt = ipaddress.ip_network(topo["management"]["subnet"])
    hosts = list(mgmt.hosts())
    return hosts[0], hosts[1], mgmt.prefixlen


# --------------------------------------------------------------------------- lock

@contextlib.contextmanager
def lab_lock(wait=0):
    """Serialise lab builds on this machine (only one lab: the root route is shared)."""
    os.makedirs(STATE_ROOT, exist_ok=True)
    fd = os.open(os.path.join(STATE_ROOT, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def boot_id():
    """This boot of the kernel: namespaces never outlive it, saved state on disk may."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _saved_labs():
    if not os.path.isdir(STATE_ROOT):
        return []
    found = []
    for entry in sorted(os.listdir(STATE_ROOT)):
        path = os.path.join(STATE_ROOT, entry, "state.json")
        if os.path.exists(path):
            with open(path) as fh:
                found.append(json.load(fh))
    return found


def is_dead(state):
    """A saved lab whose kernel is gone: saved in an earlier boot (``/run`` on disk, a disk image
    copied to another machine), so none of its namespaces or processes exist any more."""
    if state.get("boot_id"):
        return state["boot_id"] != boot_id()
    router = (state.get("topology") or {}).get("router") or {}
    return not os.path.exists("/run/netns/%s" % ns_name(router.get("name", "router")))


def current_lab():
    """The lab that is up on this machine, as its saved state, or None (a dead lab's leftover
    state does not count: :func:`up` clears it)."""
    for state in _saved_labs():
        if not is_dead(state):
            return state
    return None


def _clear_dead():
    """Remove what labs of an earlier boot left on disk (state, /etc/netns overlays, netns files)."""
    for state in _saved_labs():
        if is_dead(state):
            log("removing the saved state of a lab from an earlier boot (prefix %s)" % state.get("prefix"))
            _teardown(state.get("prefix") or PREFIX)


# --------------------------------------------------------------------------- build

def up(topology=None, scale=0, wait=600):
    """Build the lab; wait up to ``wait`` seconds for another lab to go away."""
    topo = load_topology(topology, scale)
    deadline = time.monotonic() + wait
    while True:
        with lab_lock():
            _clear_dead()
            other = current_lab()
            if other is None:
                started = time.monotonic()
                state = {"prefix": PREFIX, "topology": topo, "state_dir": state_dir(),
                         "status": "building", "pid": os.getpid(), "boot_id": boot_id()}
                os.makedirs(state_dir(), exist_ok=True)
                _save(state)
                try:
                    _build(topo, state)
                except BaseException:
                    log("build failed: tearing down")
                    _teardown(PREFIX)
                    raise
                state["status"] = "up"
                state["build_seconds"] = round(time.monotonic() - started, 2)
                _save(state)
                return state
            if other.get("prefix") == PREFIX and other.get("status") == "up" \
                    and other["topology"].get("path") == topo["path"] \
                    and len(other["topology"]["hosts"]) == len(topo["hosts"]):
                return other
            stale = other.get("pid") and not os.path.exists("/proc/%s" % other["pid"]) \
                and other.get("status") == "building"
            if stale:
                log("removing a lab left half-built by a dead process")
                _teardown(other["prefix"])
                continue
        if time.monotonic() > deadline:
            raise LabError("another lab (prefix %s, %s) is up; run 'labctl down' first"
                           % (other.get("prefix"), other["topology"].get("path")))
        time.sleep(2)


def acquire(topology=None, pin="manual", scale=0, wait=600):
    """Bring the lab up (or reuse the one that is up) and pin it for ``pin``.

    Pins are ``manual`` (``labctl up``: kept until ``labctl down``) or ``pid:<n>`` (a test
    session: dropped when that process is gone).  :func:`release` takes the lab down when the
    last live pin goes.
    """
    state = up(topology, scale=scale, wait=wait)
    with lab_lock():
        state = current_lab() or state
        pins = set(state.get("pins", []))
        pins.add(pin)
        state["pins"] = sorted(pins)
        _save_to(state)
    return state


def release(pin):
    """Drop ``pin``; tear the lab down when no live pin is left. Returns True when it went down."""
    with lab_lock():
        state = current_lab()
        if state is None:
            return False
        pins = [p for p in state.get("pins", []) if p != pin and _pin_alive(p)]
        state["pins"] = pins
        _save_to(state)
        if pins:
            return False
        _teardown(state["prefix"])
        return True


def _pin_alive(pin):
    if pin.startswith("pid:"):
        return os.path.exists("/proc/%s" % pin[4:])
    return True


def _save_to(state):
    sd = state["state_dir"]
    tmp = os.path.join(sd, "state.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=1)
    os.replace(tmp, os.path.join(sd, "state.json"))


def _save(state):
    tmp = os.path.join(state_dir(), "state.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=1)
    os.replace(tmp, os.path.join(state_dir(), "state.json"))


def _build(topo, state):
    sd = state_dir()
    router = topo["router"]["name"]
    rns = ns_name(router)
    root_ip, router_ip, plen = router_mgmt_addresses(topo)
    os.makedirs(os.path.join(sd, "cp"), exist_ok=True)
    os.makedirs(os.path.join(sd, "logs"), exist_ok=True)

    # controller key
    key = os.path.join(sd, "id_ed25519")
    if not os.path.exists(key):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netdiag-lab", "-f", key])
    shutil.copy(key + ".pub", os.path.join(sd, "authorized_keys"))

    # router namespace, bridges, management link
    _add_ns(rns)
    nsx(rns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    for net in topo["networks"]:
        br = "br-" + net["name"]
        subnet = ipaddress.ip_network(net["subnet"])
        nsx(rns, ["ip", "link", "add", br, "type", "bridge"])
        nsx(rns, ["ip", "addr", "add", "%s/%d" % (net["gateway"], subnet.prefixlen), "dev", br])
        nsx(rns, ["ip", "link", "set", br, "up"])
    run(["ip", "link", "add", mgmt_ifname(), "type", "veth", "peer", "name", "mgmt0", "netns", rns])
    run(["ip", "addr", "add", "%s/%d" % (root_ip, plen), "dev", mgmt_ifname()])
    run(["ip", "link", "set", mgmt_ifname(), "up"])
    nsx(rns, ["ip", "addr", "add", "%s/%d" % (router_ip, plen), "dev", "mgmt0"])
    nsx(rns, ["ip", "link", "set", "mgmt0", "up"])
    run(["ip", "route", "add", topo["management"]["route"], "via", str(router_ip), "dev", mgmt_ifname()])
    _router_rules(topo, rns)

    # hosts
    nets = {n["name"]: n for n in topo["networks"]}
    for idx, host in enumerate(topo["hosts"]):
        ns = ns_name(host["name"])
        net = nets[host["network"]]
        plen_h = ipaddress.ip_network(net["subnet"]).prefixlen
        _add_ns(ns)
        peer = "vh%d" % idx
        nsx(rns, ["ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", ns])
        nsx(rns, ["ip", "link", "set", peer, "master", "br-" + net["name"], "up"])
        nsx(ns, ["ip", "addr", "add", "%s/%d" % (host["address"], plen_h), "dev", "eth0"])
        for extra in host.get("extra_addresses", []):
            nsx(ns, ["ip", "addr", "add", "%s/%d" % (extra, plen_h), "dev", "eth0"])
        nsx(ns, ["ip", "link", "set", "eth0", "up"])
        nsx(ns, ["ip", "route", "add", "default", "via", net["gateway"]])
        for route in host.get("routes", []):
            nsx(ns, ["ip", "route", "add"] + route.split())
        for k, v in (host.get("sysctls") or {}).items():
            nsx(ns, ["sysctl", "-qw", "%s=%s" % (k, v)])

    _write_overlays(topo)
    for host in topo["hosts"]:
        _firewall(host)
    firewalld_hosts = [h for h in topo["hosts"] if (h.get("firewall") or {}).get("kind") == "firewalld"]
    for host in firewalld_hosts:
        _start_firewalld(host)
    for host in topo["hosts"]:
        for lst in host.get("listeners", []):
            _start_listener(host, lst)
    # sshd everywhere (router: on its management address)
    for host in topo["hosts"]:
        _start_sshd(host["name"], host["address"])
    _start_sshd(router, str(router_ip))
    for host in firewalld_hosts:
        _wait_firewalld(host)
    _wait_ready(topo, str(router_ip))
    _write_inventory(topo, str(router_ip))


def _add_ns(ns):
    run(["ip", "netns", "add", ns])
    nsx(ns, ["ip", "link", "set", "lo", "up"])


def _router_rules(topo, rns):
    r = topo["router"]
    lines = ["table inet lab {", "  chain forward {", "    type filter hook forward priority filter; policy accept;"]
    for rule in r.get("forward", []):
        text = rule["rule"] if isinstance(rule, dict) else rule
        comment = rule.get("comment") if isinstance(rule, dict) else None
        lines.append("    %s%s" % (text, ' comment "%s"' % comment.replace('"', "'") if comment else ""))
    lines += ["  }", "}"]
    if r.get("dnat"):
        lines += ["table ip labnat {", "  chain prerouting {",
                  "    type nat hook prerouting priority dstnat; policy accept;"]
        for m in r["dnat"]:
            listen, dummy, proto = m["listen"].partition("/")
            addr, dummy, port = listen.rpartition(":")
            comment = (' comment "%s"' % m["comment"].replace('"', "'")) if m.get("comment") else ""
            lines.append("    ip daddr %s %s dport %s dnat to %s%s" % (addr, proto or "tcp", port, m["to"], comment))
        lines += ["  }", "}"]
    nsx(rns, ["nft", "-f", "-"], input="\n".join(lines) + "\n")


def _write_overlays(topo):
    """/etc/netns/<ns>/: hosts for everyone, firewalld/ufw/default for hosts that need them."""
    hosts_lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for h in topo["hosts"]:
        hosts_lines.append("%s\t%s" % (h["address"], h["name"]))
    for net in topo["networks"]:
        hosts_lines.append("%s\t%s-%s" % (net["gateway"], topo["router"]["name"], net["name"]))
    hosts_text = "\n".join(hosts_lines) + "\n"
    for name in [h["name"] for h in topo["hosts"]] + [topo["router"]["name"]]:
        etc = os.path.join("/etc/netns", ns_name(name))
        os.makedirs(etc, exist_ok=True)
        with open(os.path.join(etc, "hosts"), "w") as fh:
            fh.write(hosts_text)
        _add_lab_user(etc)
    for h in topo["hosts"]:
        fw = h.get("firewall") or {}
        etc = os.path.join("/etc/netns", ns_name(h["name"]))
        if fw.get("kind") == "firewalld":
            dst = os.path.join(etc, "firewalld")
            shutil.copytree("/etc/firewalld", dst, symlinks=True)
            conf = os.path.join(dst, "firewalld.conf")
            with open(conf) as fh:
                text = fh.read()
            settings = {"FirewallBackend": fw.get("backend", "nftables"),
                        "DefaultZone": fw.get("default_zone", "public"),
                        "CleanupModulesOnExit": "no", "LogDenied": "off"}
            for k, v in settings.items():
                text, n = re.subn(r"(?m)^%s=.*$" % k, "%s=%s" % (k, v), text)
                if not n:
                    text += "\n%s=%s\n" % (k, v)
            with open(conf, "w") as fh:
                fh.write(text)
            os.makedirs(os.path.join(dst, "zones"), exist_ok=True)
            os.makedirs(os.path.join(dst, "ipsets"), exist_ok=True)
            for ipset, entries in (fw.get("ipsets") or {}).items():
                with open(os.path.join(dst, "ipsets", ipset + ".xml"), "w") as fh:
                    fh.write(_ipset_xml(entries))
            for zone, spec in (fw.get("zones") or {}).items():
                with open(os.path.join(dst, "zones", zone + ".xml"), "w") as fh:
                    fh.write(_zone_xml(zone, spec or {}))
        elif fw.get("kind") == "ufw":
            shutil.copytree("/etc/ufw", os.path.join(etc, "ufw"), symlinks=True)
            shutil.copytree("/etc/default", os.path.join(etc, "default"), symlinks=True)
            # keep ufw from writing sysctls (some are not per-namespace)
            path = os.path.join(etc, "default", "ufw")
            with open(path) as fh:
                text = fh.read()
            text = re.sub(r"(?m)^IPT_SYSCTL=.*$", "IPT_SYSCTL=/dev/null", text)
            with open(path, "w") as fh:
                fh.write(text)


LAB_USER = "netdiag"
LAB_UID = 4242


def _add_lab_user(etc):
    """An unprivileged login user on every host (for tests of what works without root),
    added to the host's own passwd/group/shadow overlay: the machine's files stay untouched."""
    for fname, line in (("passwd", "%s:x:%d:%d:netdiag lab user:/tmp:/bin/sh\n" % (LAB_USER, LAB_UID, LAB_UID)),
                        ("group", "%s:x:%d:\n" % (LAB_USER, LAB_UID)),
                        ("shadow", "%s:!:19000:0:99999:7:::\n" % LAB_USER)):
        with open("/etc/" + fname) as fh:
            text = fh.read()
        if not text.endswith("\n"):
            text += "\n"
        path = os.path.join(etc, fname)
        with open(path, "w") as fh:
            fh.write(text + line)
        os.chmod(path, 0o640 if fname == "shadow" else 0o644)


def _zone_xml(zone, spec):
    from xml.sax.saxutils import quoteattr
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    target = spec.get("target")
    lines.append("<zone%s>" % (" target=%s" % quoteattr(target) if target else ""))
    lines.append("  <short>%s</short>" % zone.capitalize())
    for iface in spec.get("interfaces", []):
        lines.append("  <interface name=%s/>" % quoteattr(iface))
    for src in spec.get("sources", []):
        lines.append("  <source address=%s/>" % quoteattr(src))
    for ipset in spec.get("ipset_sources", []):
        lines.append("  <source ipset=%s/>" % quoteattr(ipset))
    for svc in spec.get("services", []):
        lines.append("  <service name=%s/>" % quoteattr(svc))
    for port in spec.get("ports", []):
        p, dummy, proto = str(port).partition("/")
        # attribute order as firewalld writes it, so a rewrite by firewalld changes nothing
        lines.append("  <port port=%s protocol=%s/>" % (quoteattr(p), quoteattr(proto or "tcp")))
    for rich in spec.get("rich_rules", []):
        lines.append(_rich_rule_xml(rich))
    lines.append("  <forward/>")
    lines.append("</zone>")
    return "\n".join(lines) + "\n"


def _rich_rule_xml(rich):
    """A rich rule: {family, priority, source, port, protocol, action: accept|drop|reject, reject_with}."""
    from xml.sax.saxutils import quoteattr
    attrs = ' family=%s' % quoteattr(rich.get("family", "ipv4"))
    if rich.get("priority") is not None:
        attrs += ' priority=%s' % quoteattr(str(rich["priority"]))
    out = ["  <rule%s>" % attrs]
    if rich.get("source"):
        out.append("    <source address=%s/>" % quoteattr(rich["source"]))
    if rich.get("port"):
        out.append("    <port port=%s protocol=%s/>" % (quoteattr(str(rich["port"])), quoteattr(rich.get("protocol", "tcp"))))
    action = rich.get("action", "reject")
    if action == "reject" and rich.get("reject_with"):
        out.append("    <reject type=%s/>" % quoteattr(rich["reject_with"]))
    else:
        out.append("    <%s/>" % action)
    out.append("  </rule>")
    return "\n".join(out)


def _ipset_xml(entries):
    from xml.sax.saxutils import escape
    lines = ['<?xml version="1.0" encoding="utf-8"?>', '<ipset type="hash:ip">']
    lines += ["  <entry>%s</entry>" % escape(e) for e in entries]
    lines.append("</ipset>")
    return "\n".join(lines) + "\n"


def _firewall(host):
    fw = host.get("firewall") or {}
    ns = ns_name(host["name"])
    kind = fw.get("kind")
    if kind == "nftables":
        nsx(ns, ["nft", "-f", "-"], input=fw["ruleset"])
    elif kind == "iptables":
        variant = fw.get("variant", "nft")
        tool = "iptables-legacy-restore" if variant == "legacy" else "iptables-nft-restore"
        nsx(ns, [tool], input=fw["rules"])
        if fw.get("rules6"):
            tool6 = "ip6tables-legacy-restore" if variant == "legacy" else "ip6tables-nft-restore"
            nsx(ns, [tool6], input=fw["rules6"])
    elif kind == "ufw":
        nsx(ns, ["ufw", "default", fw.get("default_incoming", "deny"), "incoming"])
        nsx(ns, ["ufw", "default", fw.get("default_outgoing", "allow"), "outgoing"])
        for rule in fw.get("rules", []):
            nsx(ns, ["ufw"] + rule.split())
        nsx(ns, ["ufw", "--force", "enable"])


def _bus_socket(host):
    return os.path.join(state_dir(), "hosts", host, "dbus.sock")


def _start_firewalld(host):
    name = host["name"]
    ns = ns_name(name)
    hd = os.path.join(state_dir(), "hosts", name)
    os.makedirs(hd, exist_ok=True)
    sock = _bus_socket(name)
    conf = os.path.join(hd, "dbus.conf")
    with open(conf, "w") as fh:
        fh.write(DBUS_CONF % {"sock": sock})
    _spawn(ns, ["dbus-daemon", "--config-file=" + conf, "--nofork", "--nopidfile"], name, "dbus")
    _wait(lambda: os.path.exists(sock), 10, "dbus socket of %s" % name)
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + sock)
    _spawn(ns, ["firewalld", "--nofork", "--nopid", "--log-target", "file",
                "--log-file", os.path.join(hd, "firewalld.log")], name, "firewalld", env=env)


def _wait_firewalld(host):
    name = host["name"]
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + _bus_socket(name))

    def ready():
        p = run(["ip", "netns", "exec", ns_name(name), "firewall-cmd", "--state"], check=False, env=env)
        return p.returncode == 0 and "running" in p.stdout
    _wait(ready, 90, "firewalld on %s" % name, interval=0.3)


DBUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%(sock)s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow send_type="signal"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"""


def _spawn(ns, argv, host, what, env=None, wrap=None):
    logf = open(os.path.join(state_dir(), "logs", "%s-%s.log" % (host, what)), "ab")
    full = ["ip", "netns", "exec", ns] + (wrap or []) + list(argv)
    proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env, close_fds=True)
    logf.close()
    return proc.pid


def _start_listener(host, lst):
    argv = ["/usr/bin/python3", LISTENER, "--proto", lst["proto"], "--port", str(lst["port"]),
            "--bind", lst.get("bind", "0.0.0.0"), "--kind", lst.get("kind", "banner" if lst["proto"] == "tcp" else "echo"),
            "--name", host["name"]]
    _spawn(ns_name(host["name"]), argv, host["name"], "listen-%s-%s" % (lst["proto"], lst["port"]))


SSHD_CONF = """Port 22
ListenAddress %(addr)s
HostKey %(hostkey)s
AuthorizedKeysFile %(authkeys)s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
UseDNS no
MaxStartups 200:30:400
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
"""


def _start_sshd(name, addr):
    sd = state_dir()
    hd = os.path.join(sd, "hosts", name)
    os.makedirs(hd, exist_ok=True)
    hostkey = os.path.join(hd, "ssh_host_ed25519_key")
    if not os.path.exists(hostkey):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey])
    conf = os.path.join(hd, "sshd_config")
    with open(conf, "w") as fh:
        fh.write(SSHD_CONF % {"addr": addr, "hostkey": hostkey, "authkeys": os.path.join(sd, "authorized_keys")})
    os.makedirs("/run/sshd", exist_ok=True)
    # Own hostname (UTS) and a private mount namespace where /run/dbus/system_bus_socket is
    # this host's own bus, so firewall-cmd and FirewallClient() work with no environment tweak.
    script = ("hostname %s && mount -t tmpfs -o size=1m,mode=755 netdiag-lab /run/dbus && "
              "ln -s %s /run/dbus/system_bus_socket && exec /usr/sbin/sshd -D -e -f %s"
              % (name, _bus_socket(name), conf))
    pid = _spawn(ns_name(name), ["sh", "-c", script], name, "sshd",
                 wrap=["unshare", "--uts", "--mount", "--propagation", "private"])
    with open(os.path.join(hd, "sshd.pid"), "w") as fh:
        fh.write(str(pid))


def _wait(pred, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise LabError("timed out after %ss waiting for %s" % (timeout, what))


def _listening(ns, proto, port):
    # /proc/net/* shows only the reading process's namespace: read it through a process in the ns.
    pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
    for pid in pids:
        try:
            with open("/proc/%s/net/%s" % (pid, proto)) as fh:
                v4 = fh.read()
        except OSError:
            continue
        want = ":%04X" % port
        for line in v4.splitlines()[1:]:
            parts = line.split()
            if parts[1].endswith(want) and (proto == "udp" or parts[3] == "0A"):
                return True
        return False
    return False


def _wait_ready(topo, router_ip):
    pending = []
    for h in topo["hosts"]:
        pending.append((ns_name(h["name"]), "tcp", 22, h["name"] + " sshd"))
        for lst in h.get("listeners", []):
            pending.append((ns_name(h["name"]), lst["proto"], int(lst["port"]),
                            "%s %s/%s" % (h["name"], lst["port"], lst["proto"])))
    pending.append((ns_name(topo["router"]["name"]), "tcp", 22, "router sshd"))
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if not _listening(p[0], p[1], p[2])]
        if pending:
            time.sleep(0.1)
    if pending:
        raise LabError("not listening after 60s: %s" % ", ".join(p[3] for p in pending))
    # end to end from the root namespace (route, router, forwarding): every sshd says hello
    addrs = [(h["name"], h["address"]) for h in topo["hosts"]] + [(topo["router"]["name"], router_ip)]
    deadline = time.monotonic() + 30
    while addrs and time.monotonic() < deadline:
        addrs = [(n, a) for n, a in addrs if not ssh_banner(a)]
        if addrs:
            time.sleep(0.2)
    if addrs:
        raise LabError("sshd not reachable from the root namespace: %s" % ", ".join("%s (%s)" % x for x in addrs))


def ssh_banner(addr, timeout=2.0):
    """True when an sshd at addr:22 sends its banner to the root namespace."""
    with contextlib.suppress(OSError):
        with socket.create_connection((addr, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    return False


def _write_inventory(topo, router_ip):
    sd = state_dir()
    hosts = {}
    groups = {}
    for h in topo["hosts"]:
        hosts[h["name"]] = {"ansible_host": h["address"], "lab_ns": ns_name(h["name"]),
                            "lab_network": h["network"]}
        for g in h.get("groups", []):
            groups.setdefault(g, {"hosts": {}})["hosts"][h["name"]] = {}
    r = topo["router"]
    hosts[r["name"]] = {"ansible_host": router_ip, "lab_ns": ns_name(r["name"]), "lab_network": "management"}
    for g in r.get("groups", ["routers"]):
        groups.setdefault(g, {"hosts": {}})["hosts"][r["name"]] = {}
    inv = {"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_connection": "ssh",
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_private_key_file": os.path.join(sd, "id_ed25519"),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            "ansible_control_path_dir": os.path.join(sd, "cp"),
            "lab_controller_address": str(router_mgmt_addresses(topo)[0]),
        },
        "hosts": hosts,
        "children": groups,
    }}
    with open(os.path.join(sd, "inventory.yml"), "w") as fh:
        fh.write("# generated by tests/lab/labctl for topology %s\n" % topo["path"])
        yaml.safe_dump(inv, fh, default_flow_style=False, sort_keys=False)


# --------------------------------------------------------------------------- teardown

def down(prefix=None):
    """Remove the lab: processes, namespaces, veth+route, overlays, state. Idempotent."""
    with lab_lock():
        started = time.monotonic()
        _clear_dead()
        _teardown(prefix or PREFIX)
        return round(time.monotonic() - started, 2)


def _teardown(prefix):
    sd = os.path.join(STATE_ROOT, prefix)
    namespaces = [n for n in _list_ns() if n.startswith(prefix + "-")]
    # 1. every process inside the lab's namespaces (sshd, firewalld, dbus, listeners, sessions)
    pids = set()
    for ns in namespaces:
        pids |= set(run(["ip", "netns", "pids", ns], check=False).stdout.split())
    # ssh control masters of the lab live in the root namespace: match on the state dir
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    cmd = fh.read().decode(errors="replace")
            except OSError:
                continue
            if sd + "/cp" in cmd and pid != str(os.getpid()):
                pids.add(pid)
    _kill(pids)
    # 2. namespaces (veth pairs and bridges go with them)
    for ns in namespaces:
        run(["ip", "netns", "del", ns], check=False)
    # 3. the root-side veth (its route goes with it)
    ifname = "%s-mgmt" % prefix
    if run(["ip", "link", "show", ifname], check=False).returncode == 0:
        run(["ip", "link", "del", ifname], check=False)
    # 4. overlays and state
    if os.path.isdir("/etc/netns"):
        for entry in os.listdir("/etc/netns"):
            if entry.startswith(prefix + "-"):
                shutil.rmtree(os.path.join("/etc/netns", entry), ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir("/etc/netns")  # only if empty (we may have created it)
    shutil.rmtree(sd, ignore_errors=True)


def _list_ns():
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill(pids):
    pids = {int(p) for p in pids}
    for sig, pause in ((signal.SIGTERM, 1.5), (signal.SIGKILL, 0.5)):
        alive = []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                alive.append(pid)
        if not alive:
            return
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline:
            alive = [p for p in alive if os.path.exists("/proc/%d" % p) and not _zombie(p)]
            if not alive:
                return
            time.sleep(0.05)
        pids = set(alive)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def leftovers(prefix=None):
    """What of a lab is still on the machine (empty when down left nothing)."""
    prefix = prefix or PREFIX
    found = []
    found += ["netns %s" % n for n in _list_ns() if n.startswith(prefix + "-")]
    if run(["ip", "link", "show", "%s-mgmt" % prefix], check=False).returncode == 0:
        found.append("link %s-mgmt" % prefix)
    routes = run(["ip", "route", "show"], check=False).stdout
    found += ["route %s" % line for line in routes.splitlines() if "%s-mgmt" % prefix in line]
    if os.path.isdir("/etc/netns"):
        found += ["/etc/netns/%s" % e for e in os.listdir("/etc/netns") if e.startswith(prefix + "-")]
    with open("/proc/mounts") as fh:
        found += ["mount %s" % line.split()[1] for line in fh if "netdiag-lab" in line.split()[0]]
    sd = os.path.join(STATE_ROOT, prefix)
    if os.path.exists(sd):
        found.append(sd)
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if sd in cmd or LISTENER in cmd:
            found.append("process %s: %s" % (pid, cmd.strip()[:100]))
    return found


# --------------------------------------------------------------------------- use

class Host:
    def __init__(self, spec, ns):
        self.spec = spec
        self.name = spec["name"]
        self.ns = ns
        self.address = spec.get("address")
        self.groups = list(spec.get("groups", []))

    def __repr__(self):
        return "Host(%s, %s)" % (self.name, self.address)


class Lab:
    """A handle on the lab that is up (see docs/lab.md)."""

    def __init__(self, state):
        self.state = state
        self.topology = state["topology"]
        self.prefix = state["prefix"]
        self.dir = state["state_dir"]
        self.inventory = os.path.join(self.dir, "inventory.yml")
        router = dict(self.topology["router"])
        router.setdefault("groups", ["routers"])
        router["address"] = str(router_mgmt_addresses(self.topology)[1])
        self.hosts = {h["name"]: Host(h, "%s-%s" % (self.prefix, h["name"])) for h in self.topology["hosts"]}
        self.hosts[router["name"]] = Host(router, "%s-%s" % (self.prefix, router["name"]))
        self.controller_address = str(router_mgmt_addresses(self.topology)[0])

    def sshd_pid(self, host):
        with open(os.path.join(self.dir, "hosts", host, "sshd.pid")) as fh:
            return int(fh.read().strip())

    def exec(self, host, argv, check=True, timeout=60, input=None):
        """Run argv inside ``host`` exactly as its sshd sees the world (net, mount, uts)."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        full = ["nsenter", "--target", str(self.sshd_pid(host)), "--net", "--mount", "--uts", "--"] + list(argv)
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input, check=False)
        if check and proc.returncode != 0:
            raise LabError("%s on %s failed (%d):\n%s%s" % (argv, host, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def env(self):
        env = dict(os.environ)
        env.setdefault("ANSIBLE_CONFIG", os.path.join(os.path.dirname(os.path.dirname(HERE)), "ansible.cfg"))
        env["ANSIBLE_HOST_KEY_CHECKING"] = "False"
        env.setdefault("ANSIBLE_FORKS", "25")
        return env

    @staticmethod
    def json_env():
        """Environment for ansible/ansible-playbook to print all results as one JSON document."""
        return {"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "lab_json",
                "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callbacks")}

    def ansible_bin(self, name):
        venv = os.path.join(os.path.dirname(os.path.dirname(HERE)), ".venv", "bin", name)
        return venv if os.path.exists(venv) else name

    def module(self, host, module, args=None, check=False, become_user=None, timeout=300):
        """Run one module on ``host`` over ssh; return its result dict."""
        env = self.env()
        env.update(self.json_env())
        argv = [self.ansible_bin("ansible"), host, "-i", self.inventory, "-m", module]
        if args:  # an empty '{}' would be taken as raw params
            argv += ["-a", json.dumps(args)]
        if check:
            argv.append("--check")
        if become_user:
            argv += ["--become", "--become-user", become_user, "--become-method", "su"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            raise LabError("ansible %s on %s: no JSON (rc %d)\n%s\n%s" % (module, host, proc.returncode, proc.stdout, proc.stderr))
        res = data["plays"][0]["tasks"][0]["hosts"][host]
        return res

    def playbook(self, path, extra_vars=None, check=False, diff=False, limit=None, timeout=900, extra_args=()):
        argv = [self.ansible_bin("ansible-playbook"), "-i", self.inventory, path]
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        if limit:
            argv += ["--limit", limit]
        argv += list(extra_args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env(), check=False)


def attach():
    state = current_lab()
    if not state or state.get("status") != "up":
        raise LabError("no lab is up (run 'tests/lab/labctl up')")
    return Lab(state)


def describe(state):
    """Hosts and what each one runs, as text."""
    topo = state["topology"]
    out = ["lab %s (%s): %d hosts + router, built in %ss" % (
        topo.get("name", "?"), topo["path"], len(topo["hosts"]), state.get("build_seconds", "?"))]
    r = topo["router"]
    rip = router_mgmt_addresses(topo)[1]
    out.append("  %-12s %-15s %s" % (r["name"], rip, "router: " + ", ".join(
        "%s %s" % (n["name"], n["gateway"]) for n in topo["networks"])))
    for rule in r.get("forward", []):
        out.append("  %-12s %-15s   forward: %s" % ("", "", rule["rule"] if isinstance(rule, dict) else rule))
    for m in r.get("dnat", []):
        out.append("  %-12s %-15s   dnat: %s -> %s" % ("", "", m["listen"], m["to"]))
    for h in topo["hosts"]:
        fw = h.get("firewall") or {"kind": "none"}
        fwtext = fw["kind"]
        if fw["kind"] == "firewalld":
            fwtext += " (%s backend, zone %s)" % (fw.get("backend", "nftables"), fw.get("default_zone", "public"))
        elif fw["kind"] == "iptables":
            fwtext += " (%s)" % fw.get("variant", "nft")
        elif fw["kind"] == "ufw":
            fwtext += " (incoming %s)" % fw.get("default_incoming", "deny")
        lst = ", ".join("%s/%s%s" % (x["port"], x["proto"], "@" + x["bind"] if x.get("bind") else "")
                        for x in h.get("listeners", [])) or "-"
        out.append("  %-12s %-15s firewall: %-38s listens: %s" % (h["name"], h["address"], fwtext, lst))
    return "\n".join(out)


def socket_open(addr, port, timeout=1.0):
    with contextlib.suppress(OSError):
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    return False

# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""listeners.py replayed on /proc trees captured from real sockets.

The fixtures (tests/unit/fixtures/listeners/{server,client}) were made by capture.py in that
directory: real python3 listeners in a scratch network namespace, copied with the
``ss -Htulpn`` / ``ss -Htlne`` output taken at the same moment, which these tests compare to.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import socket

import pytest

from ansible_collections.netdiag.reachability.plugins.module_utils.gather import listeners as L
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import processes
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import procfs
from ansible_collections.netdiag.reachability.plugins.module_utils.gather import sock_diag
from ansible_collections.netdiag.reachability.plugins.plugin_utils.listener_match import match_listener
from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError, ParseError

from ...helpers import ROOT, fixture

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = fixture("listeners")
SERVER_ADDR = "10.200.200.1"


def fake_root(tmp_path, scenario):
    """Copy a captured tree and turn each ``proc/<pid>/fd.txt`` back into an fd directory of symlinks."""
    dest = str(tmp_path / scenario)
    shutil.copytree(os.path.join(FIXTURES, scenario), dest)
    for listing in glob.glob(os.path.join(dest, "proc", "*", "fd.txt")):
        fd_dir = os.path.join(os.path.dirname(listing), "fd")
        os.mkdir(fd_dir)
        with open(listing) as f:
            for line in f:
                fd, dummy, link = line.rstrip("\n").partition(" -> ")
                os.symlink(link, os.path.join(fd_dir, fd))
        os.unlink(listing)
    return dest


def diag_replay(tree):
    def replay():
        out = {}
        for path in glob.glob(os.path.join(tree, "sock_diag", "*.bin")):
            name = os.path.basename(path)[:-4]
            with open(path, "rb") as f:
                out[(name[:3], int(name[3]))] = f.read()
        return out
    return replay


def ss_address(text):
    """``[::ffff:1.2.3.4]:80`` / ``*:80`` / ``0.0.0.0:80`` -> (address, port)."""
    addr, dummy, port = text.rpartition(":")
    addr = addr.strip("[]")
    if addr == "*":  # ss prints a dual-stack IPv6 wildcard as '*'
        addr = "::"
    return addr, int(port)


def ss_tulpn(path):
    """``ss -Htulpn`` -> set of (protocol, address, port, pid)."""
    out = set()
    with open(path) as f:
        for line in f:
            fields = line.split()
            addr, port = ss_address(fields[4])
            for pid in re.findall(r"pid=(\d+)", line):
                out.add((fields[0], addr, port, int(pid)))
    return out


def ss_tlne(path):
    """``ss -Htlne`` -> {inode: (recv-q, send-q, v6only or None)}."""
    out = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            inode = int(re.search(r"ino:(\d+)", line).group(1))
            v6 = re.search(r"v6only:(\d)", line)
            out[inode] = (int(fields[1]), int(fields[2]), bool(int(v6.group(1))) if v6 else None)
    return out


@pytest.fixture
def server(tmp_path):
    return fake_root(tmp_path, "server")


@pytest.fixture
def gathered(server):
    return L.gather(server, diag=diag_replay(server))


def by_port(result, port, protocol="tcp"):
    return [l for l in result["listeners"] if l["port"] == port and l["protocol"] == protocol]


# --------------------------------------------------------------------------- against ss

def test_same_sockets_and_pids_as_ss(server, gathered):
    ours = set((l["protocol"], l["address"], l["port"], pid)
               for l in gathered["listeners"] for pid in l["pids"])
    assert ours == ss_tulpn(os.path.join(server, "ss-tulpn.txt"))
    assert len(ours) == 22  # 20 sockets; the fork-shared one has 3 holders
    assert gathered["warnings"] == []


def test_queue_backlog_and_v6only_as_ss(server, gathered):
    ss = ss_tlne(os.path.join(server, "ss-tlne.txt"))
    tcp = [l for l in gathered["listeners"] if l["protocol"] == "tcp"]
    assert sorted(l["inode"] for l in tcp) == sorted(ss)
    for l in tcp:
        assert (l["accept_queue"], l["accept_backlog"], l["bindv6only"]) == ss[l["inode"]], l


def test_client_namespace_has_no_listeners(tmp_path):
    tree = fake_root(tmp_path, "client")
    with open(os.path.join(tree, "proc", "net", "tcp")) as f:
        established = [s for s in procfs.parse_proc_net(f.read(), "tcp", 4) if s["state"] == 0x01]
    assert len(established) == 3  # the table is not empty: three connected clients
    assert open(os.path.join(tree, "ss-tulpn.txt")).read().strip() == ""
    assert L.gather(tree, diag=diag_replay(tree))["listeners"] == []


# --------------------------------------------------------------------------- what a user checks

@pytest.mark.parametrize("proto,port,family,address,scope,v6only,accepts_ipv4", [
    ("tcp", 8080, "ipv4", "0.0.0.0", "any", None, True),
    ("tcp", 8081, "ipv4", "127.0.0.1", "loopback", None, True),
    ("tcp", 8082, "ipv4", SERVER_ADDR, "specific", None, True),
    ("tcp", 8083, "ipv6", "::", "any", False, True),
    ("tcp", 8084, "ipv6", "::", "any", True, False),
    ("tcp", 8085, "ipv6", "::1", "loopback", True, False),
    ("tcp", 8086, "ipv6", "::ffff:" + SERVER_ADDR, "specific", False, True),
    ("udp", 53, "ipv4", SERVER_ADDR, "specific", None, True),
    ("udp", 5353, "ipv4", "0.0.0.0", "any", None, True),
    ("udp", 5354, "ipv4", "127.0.0.1", "loopback", None, True),
    ("udp", 5355, "ipv6", "::", "any", False, True),
    ("udp", 5356, "ipv6", "::", "any", True, False),
])
def test_address_scope_and_dual_stack(gathered, proto, port, family, address, scope, v6only, accepts_ipv4):
    (l,) = by_port(gathered, port, proto)
    assert (l["family"], l["address"], l["scope"], l["bindv6only"], l["accepts_ipv4"]) == \
        (family, address, scope, v6only, accepts_ipv4)


def test_udp_has_no_accept_queue(gathered):
    udp = [l for l in gathered["listeners"] if l["protocol"] == "udp"]
    assert len(udp) == 6
    assert all(l["accept_queue"] is None and l["accept_backlog"] is None for l in udp)


def test_accept_queue_depth_and_backlog(gathered):
    (queued,) = by_port(gathered, 8443)
    assert (queued["accept_queue"], queued["accept_backlog"]) == (2, 5)
    (full,) = by_port(gathered, 8444)
    assert (full["accept_queue"], full["accept_backlog"]) == (1, 0)
    (plain,) = by_port(gathered, 8082)
    assert plain["accept_backlog"] == 64


def test_reuseport_group_is_one_entry_per_socket(gathered):
    group = by_port(gathered, 9000)
    assert len(group) == 3
    assert len(set(l["inode"] for l in group)) == 3
    assert len(set(l["pids"][0] for l in group)) == 3
    assert all(len(l["pids"]) == 1 and l["process"] == "python3" for l in group)


def test_fork_shared_socket_lists_every_holder_once(gathered):
    (shared,) = by_port(gathered, 9100)
    assert len(shared["pids"]) == 3
    assert shared["pids"] == sorted(shared["pids"])
    assert [p["pid"] for p in shared["processes"]] == shared["pids"]
    assert all("forked" in p["cmdline"] for p in shared["processes"])


def test_process_details_and_users(gathered):
    (mine,) = by_port(gathered, 7000)
    assert (mine["uid"], mine["user"]) == (65534, "nobody")
    (proc,) = mine["processes"]
    assert (proc["name"], proc["uid"], proc["user"]) == ("python3", 65534, "nobody")
    assert proc["cmdline"].endswith("ndx-lis-listener.py nobody")
    (root_owned,) = by_port(gathered, 8080)
    assert root_owned["user"] == "root"
    assert root_owned["processes"][0]["cmdline"].endswith("main 10.200.200.1 10.200.200.2")
    assert all(l["processes_complete"] is True for l in gathered["listeners"])
    assert all(l["owner"] == "process" for l in gathered["listeners"])


def test_connected_udp_and_accepted_tcp_are_not_listeners(server, gathered):
    with open(os.path.join(server, "proc", "net", "udp")) as f:
        connected = [s for s in procfs.parse_proc_net(f.read(), "udp", 4) if s["state"] == 0x01]
    with open(os.path.join(server, "proc", "net", "tcp")) as f:
        established = [s for s in procfs.parse_proc_net(f.read(), "tcp", 4) if s["state"] == 0x01]
    assert len(connected) == 1 and len(established) == 3
    inodes = set(l["inode"] for l in gathered["listeners"])
    assert connected[0]["inode"] not in inodes


def test_each_fd_dir_is_read_once(server, monkeypatch):
    calls = []
    real = processes.list_dir

    def counting(path):
        calls.append(path)
        return real(path)
    monkeypatch.setattr(processes, "list_dir", counting)
    L.read_listeners(server, diag=None)
    fd_reads = [c for c in calls if c.endswith("/fd")]
    assert len(fd_reads) == 9  # the 9 captured processes
    assert len(set(fd_reads)) == len(fd_reads)


# --------------------------------------------------------------------------- options

@pytest.mark.parametrize("ports,protocols,expected", [
    ([8080], None, [("tcp", 8080)]),
    (["9000-9100"], ["tcp"], [("tcp", 9000)] * 3 + [("tcp", 9100)]),
    (["53/udp", 8082], None, [("tcp", 8082), ("udp", 53)]),
    ([], ["udp"], [("udp", p) for p in (53, 5353, 5354, 5355, 5356, 7001)]),
    ([" 5353 "], ["tcp"], []),
    (["5353"], ["tcp", "udp"], [("udp", 5353)]),
])
def test_port_and_protocol_filters(server, ports, protocols, expected):
    result = L.read_listeners(server, ports=ports, protocols=protocols, diag=None)
    assert [(l["protocol"], l["port"]) for l in result["listeners"]] == expected


@pytest.mark.parametrize("ports,protocols,needle", [
    ([70000], None, "70000"),
    (["http"], None, "'http'"),
    (["90-80"], None, "90 is greater than 80"),
    (["80/icmp"], None, "'icmp'"),
    ([], ["sctp"], "'sctp'"),
])
def test_bad_filters_name_the_value(server, ports, protocols, needle):
    with pytest.raises(InputError) as exc:
        L.read_listeners(server, ports=ports, protocols=protocols, diag=None)
    assert needle in str(exc.value)


def test_without_process_scan(server, monkeypatch):
    def boom(*args):
        raise AssertionError("process scan ran")
    monkeypatch.setattr(L, "scan_processes", boom)
    result = L.read_listeners(server, include_process=False, diag=None)
    assert len(result["listeners"]) == 20
    assert all(l["pids"] == [] and l["processes_complete"] is None and l["owner"] is None
               for l in result["listeners"])
    assert result["process_scan"] == {"enabled": False, "complete": None, "unreadable_pids": []}


def test_unprivileged_view_still_lists_sockets(server, monkeypatch):
    """As user nobody: root's fd tables give EACCES (simulated), nobody's own are readable."""
    real = processes.list_dir
    nobody_pid = next(l for l in L.read_listeners(server, diag=None)["listeners"] if l["port"] == 7000)["pids"][0]

    def as_nobody(path):
        parts = path.rstrip("/").split("/")
        if parts[-1] == "fd" and parts[-2] != str(nobody_pid):
            raise PermissionError(13, "Permission denied", path)
        return real(path)
    monkeypatch.setattr(processes, "list_dir", as_nobody)
    result = L.read_listeners(server, diag=None)
    assert len(result["listeners"]) == 20
    assert len(result["process_scan"]["unreadable_pids"]) == 8
    assert nobody_pid not in result["process_scan"]["unreadable_pids"]
    assert result["process_scan"]["complete"] is False
    seen = [l["port"] for l in result["listeners"] if l["pids"]]
    assert sorted(seen) == [7000, 7001]
    assert all(l["processes_complete"] is False for l in result["listeners"])
    # no visible holder, and some fd tables were unreadable: "could not see it", not "no process"
    assert sorted(l["port"] for l in result["listeners"] if l["owner"] == "process") == [7000, 7001]
    assert all(l["owner"] == "unknown" for l in result["listeners"] if not l["pids"])
    (hidden,) = by_port(result, 8080)
    assert hidden["user"] == "root"  # the socket owner comes from the table, visible anyway
    assert any("could not read the open files of 8 processes" in w and "18 listeners" in w
               and "owner unknown" in w for w in result["warnings"])


def _holder_dir(tree, port, protocol="tcp"):
    """The captured /proc/<pid> of the only process holding the (first) socket on ``port``."""
    l = by_port(L.read_listeners(tree, diag=None), port, protocol)[0]
    (pid,) = l["pids"]
    return os.path.join(tree, "proc", str(pid)), l["inode"]


def test_socket_whose_process_is_gone_has_no_owner(server):
    """Every fd table readable and none holds the socket: it belongs to no process.

    Replays the capture with one reuseport child's /proc/<pid> removed while its socket stays in
    /proc/net/tcp, as when the process exits between the two reads."""
    proc_dir, inode = _holder_dir(server, 9000)  # each of the three holds only its own socket
    shutil.rmtree(proc_dir)
    result = L.read_listeners(server, diag=None)
    (gone,) = [l for l in result["listeners"] if l["inode"] == inode]
    assert (gone["pids"], gone["process"], gone["processes"]) == ([], None, [])
    assert (gone["owner"], gone["processes_complete"]) == ("none", True)
    assert all(l["owner"] == "process" for l in result["listeners"] if l["inode"] != inode)
    assert result["process_scan"] == {"enabled": True, "complete": True, "unreadable_pids": []}
    assert result["warnings"] == ["sock_diag not queried: TCP backlog and IPV6_V6ONLY unknown"]


def test_kernel_socket_has_no_owner(server):
    """A listener no process holds, e.g. an in-kernel server's (nfsd on 2049/tcp): the captured
    table with one more LISTEN line whose inode is in no process's fd table."""
    path = os.path.join(server, "proc", "net", "tcp")
    with open(path) as f:
        lines = f.read().splitlines()
    first = lines[1].split()
    kernel = lines[1].replace(first[1], "00000000:0801", 1).replace(" %s " % first[9], " 4242424 ", 1)
    with open(path, "w") as f:
        f.write("\n".join(lines + [kernel.replace(first[0], "%d:" % (len(lines) - 1), 1)]) + "\n")
    result = L.read_listeners(server, diag=None)
    (nfsd,) = by_port(result, 2049)
    assert (nfsd["inode"], nfsd["address"], nfsd["user"]) == (4242424, "0.0.0.0", "root")
    assert (nfsd["pids"], nfsd["owner"], nfsd["processes_complete"]) == ([], "none", True)
    assert result["process_scan"]["complete"] is True


def test_kernel_socket_seen_unprivileged_is_owner_unknown(server, monkeypatch):
    """The same socket with root's fd tables unreadable: no holder seen, but one may be hidden."""
    proc_dir, inode = _holder_dir(server, 8080)  # the main process, root's
    real = processes.list_dir

    def as_nobody(path):
        if path == os.path.join(proc_dir, "fd"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)
    monkeypatch.setattr(processes, "list_dir", as_nobody)
    result = L.read_listeners(server, diag=None)
    (l,) = by_port(result, 8080)
    assert (l["pids"], l["owner"], l["processes_complete"]) == ([], "unknown", False)
    (other,) = by_port(result, 7000)
    assert (other["owner"], other["processes_complete"]) == ("process", False)
    assert result["process_scan"]["unreadable_pids"] == [int(os.path.basename(proc_dir))]


NOBODY_STATUS = "Name:\tpython3\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n" \
    "Groups:\t%s\nCapEff:\t%s\n"
PROC_MOUNT = "22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw%s\n"


def _self(tree, mount_opts, groups="", cap_eff="0000000000000000"):
    os.makedirs(os.path.join(tree, "proc", "self"))
    with open(os.path.join(tree, "proc", "self", "mountinfo"), "w") as f:
        f.write("1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" + PROC_MOUNT % mount_opts)
    with open(os.path.join(tree, "proc", "self", "status"), "w") as f:
        f.write(NOBODY_STATUS % (groups, cap_eff))


def test_hidepid_hides_other_users_processes(server):
    """As nobody on a /proc mounted hidepid=invisible: root's processes are not listed at all (no
    EACCES to notice), so a socket with no visible holder must still be "unknown"."""
    _self(server, ",hidepid=invisible")
    nobody = by_port(L.read_listeners(server, diag=None), 7000)[0]["pids"][0]
    for pid_dir in glob.glob(os.path.join(server, "proc", "[0-9]*")):
        if os.path.basename(pid_dir) != str(nobody):
            shutil.rmtree(pid_dir)  # what nobody's listing of /proc shows
    result = L.read_listeners(server, diag=None)
    assert result["process_scan"] == {"enabled": True, "complete": False, "unreadable_pids": []}
    assert sorted(l["port"] for l in result["listeners"] if l["owner"] == "process") == [7000, 7001]
    assert all(l["owner"] == "unknown" and l["processes_complete"] is False
               for l in result["listeners"] if not l["pids"])
    assert any("hidepid=invisible" in w and "18 listeners" in w for w in result["warnings"])


@pytest.mark.parametrize("mount_opts,groups,cap_eff,hidden", [
    ("", "", "0000000000000000", None),                                # no hidepid
    (",hidepid=noaccess", "", "0000000000000000", None),               # listed; EACCES shows it
    (",hidepid=1", "", "0000000000000000", None),
    (",hidepid=invisible", "", "0000000000000000", "invisible"),
    (",hidepid=2", "", "0000000000000000", "2"),
    (",hidepid=ptraceable", "", "0000000000000000", "ptraceable"),
    (",hidepid=invisible", "", "000001ffffffffff", None),              # CAP_SYS_PTRACE sees all
    (",hidepid=invisible,gid=1001", "27 1001", "0000000000000000", None),  # the gid= group is exempt
    (",hidepid=invisible,gid=1001", "27", "0000000000000000", "invisible"),
    (",hidepid=ptraceable,gid=1001", "1001", "0000000000000000", "ptraceable"),  # gid= does not apply
])
def test_proc_hides_processes(tmp_path, mount_opts, groups, cap_eff, hidden):
    tree = str(tmp_path)
    _self(tree, mount_opts, groups, cap_eff)
    assert processes.proc_hides_processes(os.path.join(tree, "proc")) == hidden


def test_proc_hides_processes_without_self_files(server):
    """A replayed tree without proc/self (the captured ones) is taken as not hiding anything."""
    assert processes.proc_hides_processes(os.path.join(server, "proc")) is None


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"),
                    reason="needs root to run the reader as another user")
def test_live_reader_as_nobody_sees_socket_but_not_root_process():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(3)
    port = sock.getsockname()[1]
    code = ("import json; from ansible_collections.netdiag.reachability.plugins.module_utils.gather import "
            "listeners; print(json.dumps(listeners.read_listeners(ports=[%d])))" % port)
    try:
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", code],
            env={"PYTHONPATH": os.path.join(ROOT, ".collections"), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, check=True, timeout=60).stdout
    finally:
        sock.close()
    result = json.loads(out)
    (l,) = result["listeners"]
    assert (l["address"], l["port"], l["scope"], l["user"]) == ("127.0.0.1", port, "loopback", "root")
    assert l["accept_backlog"] == 3  # netlink works unprivileged
    assert l["pids"] == [] and l["processes_complete"] is False and l["owner"] == "unknown"
    assert os.getpid() in result["process_scan"]["unreadable_pids"]
    assert result["warnings"]


def test_system_python_gives_the_same_result(server):
    """Targets run the library with /usr/bin/python3: same answer as the test interpreter."""
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no /usr/bin/python3")
    code = ("import json, sys; from ansible_collections.netdiag.reachability.plugins.module_utils.gather import "
            "listeners; print(json.dumps(listeners.gather(sys.argv[1], diag=None), sort_keys=True))")
    out = subprocess.run(["/usr/bin/python3", "-c", code, server], check=True, capture_output=True, text=True,
                         env={"PYTHONPATH": os.path.join(ROOT, ".collections")}).stdout
    assert json.loads(out) == json.loads(json.dumps(L.gather(server, diag=None)))


# --------------------------------------------------------------------------- sysctls, counters

def test_sysctls(server, gathered):
    s = gathered["sysctls"]
    assert s["net.core.somaxconn"] == int(open(os.path.join(server, "proc/sys/net/core/somaxconn")).read())
    lo, hi = open(os.path.join(server, "proc/sys/net/ipv4/ip_local_port_range")).read().split()
    assert s["net.ipv4.ip_local_port_range"] == [int(lo), int(hi)]
    assert sorted(k for k in s if k.endswith("rp_filter")) == [
        "net.ipv4.conf.%s.rp_filter" % i for i in ("all", "default", "lo", "ndx-lis-va")]
    for name in ("net.ipv4.icmp_ratelimit", "net.ipv4.icmp_msgs_per_sec", "net.ipv4.icmp_msgs_burst",
                 "net.ipv4.ip_forward", "net.ipv6.bindv6only"):
        assert isinstance(s[name], int), name


def test_missing_ipv6_sysctls_are_left_out(server):
    shutil.rmtree(os.path.join(server, "proc", "sys", "net", "ipv6"))
    s = procfs.read_sysctls(server)
    assert not any(k.startswith("net.ipv6") for k in s)
    assert "net.core.somaxconn" in s


def test_counters_show_the_overflow_we_caused(gathered):
    c = gathered["counters"]
    # capture.py sent a SYN to a listener whose queue (backlog 0) already held one client
    assert c["TcpExtListenOverflows"] == 1
    assert c["TcpExtListenDrops"] == 1
    assert c["TcpPassiveOpens"] == 3
    assert set(c) >= {"UdpNoPorts", "Udp6NoPorts", "IcmpOutDestUnreachs", "TcpExtSyncookiesSent"}


# --------------------------------------------------------------------------- broken input

def _edit(path, fn):
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(fn(text))


@pytest.mark.parametrize("table,edit,needle", [
    ("tcp", lambda t: t[:t.index("\n", t.index("\n") + 1) + 40], "line 3"),          # truncated mid-line
    ("tcp6", lambda t: t.replace("0A 00000000:", "0A 00000000 ", 1), "queues"),      # not TX:RX any more
    ("udp", lambda t: t.replace(":0035 ", ":00G5 ", 1), "'00G5'"),                   # bad hex port
    ("tcp", lambda t: t.replace("01C8C80A", "01C8C8", 1), "6 hex digits"),         # short address
    ("udp6", lambda t: "garbage\n" + t, "not a socket table"),
])
def test_garbled_socket_table_is_a_clear_error(server, table, edit, needle):
    path = os.path.join(server, "proc", "net", table)
    _edit(path, edit)
    with pytest.raises(ParseError) as exc:
        L.read_listeners(server, diag=None)
    assert needle in str(exc.value)
    assert path in str(exc.value)


def test_missing_ipv4_table_is_an_error_missing_ipv6_is_not(server):
    os.unlink(os.path.join(server, "proc", "net", "tcp6"))
    os.unlink(os.path.join(server, "proc", "net", "udp6"))
    assert all(l["family"] == "ipv4" for l in L.read_listeners(server, diag=None)["listeners"])
    os.unlink(os.path.join(server, "proc", "net", "udp"))
    with pytest.raises(ParseError, match="socket table missing"):
        L.read_listeners(server, diag=None)


def test_garbled_netstat_is_a_clear_error(server):
    path = os.path.join(server, "proc", "net", "netstat")
    _edit(path, lambda t: t.replace(" ListenOverflows", "", 1))
    with pytest.raises(ParseError) as exc:
        procfs.read_counters(server)
    assert "section TcpExt has" in str(exc.value) and path in str(exc.value)


def test_truncated_sock_diag_reply_degrades_with_a_warning(server):
    replay = diag_replay(server)

    def truncated():
        data = replay()
        data[("tcp", 4)] = data[("tcp", 4)][:100]
        return data
    result = L.read_listeners(server, diag=truncated)
    assert any("sock_diag tcp/ipv4" in w and "bad length" in w for w in result["warnings"])
    (l,) = by_port(result, 8080)
    assert l["accept_backlog"] is None
    (v6,) = by_port(result, 8084)
    assert v6["bindv6only"] is True  # the other replies still count


def test_sock_diag_unavailable(server):
    def refused():
        raise OSError(93, "Protocol not supported")
    result = L.read_listeners(server, diag=refused)
    assert any("Protocol not supported" in w for w in result["warnings"])
    (dual,) = by_port(result, 8083)
    assert dual["bindv6only"] is None and dual["accepts_ipv4"] is None


def test_live_sock_diag_parses():
    """The kernel's own reply to our request parses (no namespace needed: read-only dump)."""
    sock = socket.socket(socket.AF_INET6)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(("::1", 0))
    sock.listen(9)
    try:
        info = {}
        for key, data in sock_diag.sock_diag_dump_raw().items():
            info.update(sock_diag.parse_sock_diag(data, str(key)))
        inode = os.fstat(sock.fileno()).st_ino
        assert info[inode] == {"depth": 0, "backlog": 9, "v6only": True}
    finally:
        sock.close()


# --------------------------------------------------------------------------- match_listener

@pytest.mark.parametrize("address,port,proto,accepted,cause,miss,bound", [
    (SERVER_ADDR, 8080, "tcp", True, "ok", None, ("0.0.0.0", 8080)),
    ("127.0.0.1", 8080, "tcp", True, "ok", None, ("0.0.0.0", 8080)),
    (SERVER_ADDR, 8081, "tcp", False, "loopback_only", "loopback_only", ("127.0.0.1", 8081)),
    ("127.0.0.1", 8081, "tcp", True, "ok", None, ("127.0.0.1", 8081)),
    ("10.200.200.9", 8082, "tcp", False, "wrong_address", "other_address", (SERVER_ADDR, 8082)),
    (SERVER_ADDR, 8082, "tcp", True, "ok", None, (SERVER_ADDR, 8082)),
    (SERVER_ADDR, 8083, "tcp", True, "ok", None, ("::", 8083)),
    (SERVER_ADDR, 8084, "tcp", False, "wrong_address", "ipv6_only", ("::", 8084)),
    ("::1", 8084, "tcp", True, "ok", None, ("::", 8084)),
    (SERVER_ADDR, 8085, "tcp", False, "loopback_only", "loopback_only", ("::1", 8085)),
    ("127.0.0.1", 8085, "tcp", False, "wrong_address", "other_address", ("::1", 8085)),
    (SERVER_ADDR, 8086, "tcp", True, "ok", None, ("::ffff:" + SERVER_ADDR, 8086)),
    ("::ffff:" + SERVER_ADDR, 8086, "tcp", True, "ok", None, ("::ffff:" + SERVER_ADDR, 8086)),
    ("::1", 8080, "tcp", False, "wrong_address", "other_address", ("0.0.0.0", 8080)),
    (SERVER_ADDR, 8443, "tcp", True, "ok", None, (SERVER_ADDR, 8443)),
    (SERVER_ADDR, 8444, "tcp", True, "listen_backlog_full", None, (SERVER_ADDR, 8444)),
    (SERVER_ADDR, 5353, "tcp", False, "no_listener", "other_protocol", ("0.0.0.0", 5353)),
    (SERVER_ADDR, 5353, "udp", True, "ok", None, ("0.0.0.0", 5353)),
    (SERVER_ADDR, 53, "udp", True, "ok", None, (SERVER_ADDR, 53)),
    (SERVER_ADDR, 53, "tcp", False, "no_listener", "other_protocol", (SERVER_ADDR, 53)),
    (SERVER_ADDR, 5354, "udp", False, "loopback_only", "loopback_only", ("127.0.0.1", 5354)),
    (SERVER_ADDR, 5356, "udp", False, "wrong_address", "ipv6_only", ("::", 5356)),
    (SERVER_ADDR, 1, "tcp", False, "no_listener", "none", None),
])
def test_match_listener(gathered, address, port, proto, accepted, cause, miss, bound):
    m = match_listener(gathered["listeners"], address, port, proto)
    assert (m["accepted"], m["cause"], m["miss"]) == (accepted, cause, miss), m["reason"]
    got = (m["listener"]["address"], m["listener"]["port"]) if m["listener"] else None
    assert got == bound
    assert str(port) in m["reason"]


def test_match_reasons_read_well(gathered):
    m = match_listener(gathered["listeners"], SERVER_ADDR, 8081, "tcp")
    assert "loopback only" in m["reason"] and "127.0.0.1:8081" in m["reason"] and "python3" in m["reason"]
    m = match_listener(gathered["listeners"], SERVER_ADDR, 8444, "tcp")
    assert "1 queued, backlog 0" in m["reason"]


def test_match_reuseport_group(gathered):
    m = match_listener(gathered["listeners"], SERVER_ADDR, 9000, "tcp")
    assert m["accepted"] and m["listener"] in by_port(gathered, 9000)


def test_match_unknown_v6only(server):
    listeners = L.read_listeners(server, diag=None)["listeners"]
    m = match_listener(listeners, SERVER_ADDR, 8083, "tcp")
    assert (m["accepted"], m["cause"]) == (None, "unknown")
    assert match_listener(listeners, SERVER_ADDR, 8080, "tcp")["cause"] == "ok"


def _l(family, address, port=80, v6only=None, proto="tcp"):
    return {"protocol": proto, "family": family, "address": address, "port": port,
            "scope": procfs.address_scope(address), "bindv6only": v6only, "accept_queue": 0, "accept_backlog": 5}


def test_match_prefers_what_the_kernel_prefers():
    v4_any, v6_any = _l("ipv4", "0.0.0.0"), _l("ipv6", "::", v6only=False)
    exact = _l("ipv4", "10.200.200.1")
    assert match_listener([v6_any, v4_any, exact], "10.200.200.1", 80, "tcp")["listener"] is exact
    assert match_listener([v6_any, v4_any], "10.200.200.1", 80, "tcp")["listener"] is v4_any
    assert match_listener([v4_any, v6_any], "::1", 80, "tcp")["listener"] is v6_any


@pytest.mark.parametrize("address,port,proto,needle", [
    ("10.200.200.300", 80, "tcp", "'10.200.200.300'"),
    ("host.example", 80, "tcp", "'host.example'"),
    (SERVER_ADDR, 0, "tcp", "0"),
    (SERVER_ADDR, "http", "tcp", "'http'"),
    (SERVER_ADDR, 80, "icmp", "'icmp'"),
])
def test_match_bad_input_names_the_value(address, port, proto, needle):
    with pytest.raises(InputError) as exc:
        match_listener([], address, port, proto)
    assert needle in str(exc.value)

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: listeners_info
short_description: List listening sockets, reachability sysctls and listen-overflow counters
version_added: 0.1.0
description:
  - Answers "does the service listen on the port, on which address, and who owns it?" on any
    Linux host, without C(ss) or C(netstat).
  - Reads C(/proc/net/tcp), C(tcp6), C(udp) and C(udp6) for every TCP socket in LISTEN and every
    unconnected bound UDP socket, IPv4 and IPv6, and C(/proc/<pid>/fd) (each process once) for the
    processes holding each socket.
  - The TCP accept backlog and each IPv6 socket's C(IPV6_V6ONLY) are not in C(/proc); they come
    from one C(NETLINK_SOCK_DIAG) dump per protocol and family (what C(ss) uses). When netlink is
    unavailable they are returned as null and a warning says so.
  - Also returns the kernel settings that change reachability, the listen-overflow counters, the routes and the
    interface addresses (both families), so the explainer needs no C(setup) run.
  - Without root, sockets are still all listed; processes whose open files cannot be read are
    named in RV(process_scan.unreadable_pids) and a warning is emitted. A socket no visible process
    holds then has RV(listeners[].owner=unknown) (its owner may be one of those processes), not
    V(none).
author:
  - netdiag.reachability developers (@netdiag)
options:
  ports:
    description:
      - Only report listeners on these ports.
      - Each item is a port (V(80)), a range (V(8000-8010)), or either with a protocol
        (V(53/udp)), which narrows that item to one protocol.
      - Empty means every port.
    type: list
    elements: raw
    default: []
  protocols:
    description:
      - Only report listeners of these protocols.
    type: list
    elements: str
    choices: [tcp, udp]
    default: [tcp, udp]
  include_process:
    description:
      - Find the processes holding each socket (pid, name, command line, user).
      - V(false) skips the scan of C(/proc/<pid>/fd), which is the slowest part on a busy host.
    type: bool
    default: true
extends_documentation_fragment:
  - netdiag.reachability.attributes.info_module
attributes:
  platform:
    platforms: linux
    details: Linux (reads C(/proc) and C(NETLINK_SOCK_DIAG)).
notes:
  - Reads the network namespace the module runs in.
  - C(changed) is always V(false).
seealso:
  - name: ss(8)
    description: The same socket table, from the command line.
    link: https://man7.org/linux/man-pages/man8/ss.8.html
"""

EXAMPLES = r"""
- name: Is anything listening on 8080/tcp, and on which address?
  netdiag.reachability.listeners_info:
    ports: [8080]
    protocols: [tcp]
  register: l

- name: Fail when the service only listens on loopback
  ansible.builtin.assert:
    that: l.listeners | selectattr('scope', 'ne', 'loopback') | list | length > 0
    fail_msg: "8080 is bound to {{ l.listeners | map(attribute='address') | join(', ') }} only"

- name: Every listener, without process details (fast)
  netdiag.reachability.listeners_info:
    include_process: false

- name: DNS, both protocols, and a port range on TCP
  netdiag.reachability.listeners_info:
    ports: [53, 8000-8010/tcp]
"""

RETURN = r"""
listeners:
  description: One entry per listening socket, sorted by protocol, port, family, address.
  returned: always
  type: list
  elements: dict
  contains:
    protocol:
      description: V(tcp) or V(udp).
      returned: always
      type: str
      sample: tcp
    family:
      description: V(ipv4) or V(ipv6) (the socket's family; an IPv4-mapped bind is V(ipv6)).
      returned: always
      type: str
      sample: ipv4
    address:
      description: The bound address; V(0.0.0.0) or V(::) for the wildcard.
      returned: always
      type: str
      sample: 127.0.0.1
    port:
      description: The bound port.
      returned: always
      type: int
      sample: 8080
    scope:
      description:
        - V(any) (wildcard), V(loopback) (127.0.0.0/8, ::1, or mapped loopback) or V(specific)
          (one other address).
      returned: always
      type: str
      sample: loopback
    bindv6only:
      description:
        - For IPv6 sockets, the socket's C(IPV6_V6ONLY) flag. V(true) means an IPv6 wildcard does
          not accept IPv4. Null for IPv4 sockets, or when netlink was unavailable.
      returned: always
      type: bool
      sample: false
    accepts_ipv4:
      description:
        - Whether IPv4 clients can reach this socket at all (IPv4 sockets, IPv4-mapped binds, and
          IPv6 wildcards without C(IPV6_V6ONLY)). Null when unknown.
      returned: always
      type: bool
      sample: true
    inode:
      description: The socket's inode (as in C(socket:[inode]) links and C(ss -e)).
      returned: always
      type: int
      sample: 73378
    uid:
      description: The uid owning the socket (from the socket table; visible without root).
      returned: always
      type: int
      sample: 0
    user:
      description: The name of RV(listeners[].uid), or null when it has none.
      returned: always
      type: str
      sample: root
    accept_queue:
      description: TCP only, connections waiting in the accept queue now; null for UDP.
      returned: always
      type: int
      sample: 0
    accept_backlog:
      description:
        - TCP only, the accept queue's limit (the C(listen()) backlog capped by
          C(net.core.somaxconn)); null for UDP or when netlink was unavailable.
        - The queue is full, and new connections are dropped, when RV(listeners[].accept_queue)
          exceeds it.
      returned: always
      type: int
      sample: 128
    pids:
      description:
        - Every process holding the socket, sorted. A fork-shared socket lists all its processes;
          an C(SO_REUSEPORT) group is one entry per socket. Empty when O(include_process=false)
          or no holder could be seen; RV(listeners[].owner) tells whether no process holds the
          socket or its holder could not be seen.
      returned: always
      type: list
      elements: int
      sample: [1200, 1201]
    process:
      description: Name (comm) of the lowest pid in RV(listeners[].pids), or null.
      returned: always
      type: str
      sample: nginx
    processes:
      description: The processes holding the socket.
      returned: always
      type: list
      elements: dict
      contains:
        pid:
          description: Process id.
          returned: always
          type: int
          sample: 1200
        name:
          description: Process name (C(/proc/<pid>/comm)).
          returned: always
          type: str
          sample: nginx
        cmdline:
          description: Command line, arguments joined by spaces.
          returned: always
          type: str
          sample: "nginx: master process /usr/sbin/nginx"
        uid:
          description: Real uid of the process.
          returned: always
          type: int
          sample: 0
        user:
          description: Name of that uid, or null.
          returned: always
          type: str
          sample: root
    processes_complete:
      description:
        - V(true) when every process's open files could be read, so RV(listeners[].processes) is
          the full list (an empty list then means no process holds the socket); V(false) when
          some could not (not root), so a holder may be missing from it; null when
          O(include_process=false). The same for every listener (RV(process_scan.complete)).
      returned: always
      type: bool
      sample: true
    owner:
      description:
        - Who holds the socket, as far as the process scan can tell.
        - V(process) when RV(listeners[].processes) lists at least one process.
        - V(unknown) when no process was seen holding it and the scan was incomplete (some
          processes' open files could not be read, see RV(process_scan.unreadable_pids), or the
          C(/proc) mount hides other users' processes with C(hidepid)); the owner may be one of
          the processes that could not be seen.
        - V(none) when every process's open files were read and none holds the socket, so it
          belongs to no process; for example a socket of an in-kernel server (nfsd, lockd,
          ksmbd) or one whose process exited while the scan ran.
        - Null when O(include_process=false).
      returned: always
      type: str
      choices: [process, unknown, none]
      sample: process
  sample:
    - protocol: tcp
      family: ipv4
      address: 127.0.0.1
      port: 8080
      scope: loopback
      bindv6only: null
      accepts_ipv4: true
      inode: 73378
      uid: 0
      user: root
      accept_queue: 0
      accept_backlog: 5
      pids: [812]
      process: python3
      processes:
        - {pid: 812, name: python3, cmdline: "python3 -m http.server -b 127.0.0.1 8080", uid: 0, user: root}
      processes_complete: true
      owner: process
sysctls:
  description:
    - Kernel settings that change reachability, by sysctl name; missing ones are left out.
    - C(net.core.somaxconn), C(net.ipv4.tcp_max_syn_backlog), C(net.ipv4.tcp_syncookies),
      C(net.ipv4.ip_local_port_range) (a list of two ints), C(net.ipv4.icmp_ratelimit),
      C(net.ipv4.icmp_msgs_per_sec), C(net.ipv4.icmp_msgs_burst), C(net.ipv4.ip_forward),
      C(net.ipv6.conf.all.forwarding), C(net.ipv6.bindv6only), and
      C(net.ipv4.conf.<all|default|interface>.rp_filter).
  returned: always
  type: dict
  sample:
    net.core.somaxconn: 4096
    net.ipv4.ip_local_port_range: [32768, 60999]
    net.ipv4.icmp_ratelimit: 1000
    net.ipv4.conf.all.rp_filter: 0
    net.ipv4.conf.eth0.rp_filter: 2
    net.ipv4.ip_forward: 0
    net.ipv6.bindv6only: 0
routes:
  description:
    - The host's routes (table main, IPv4 and IPv6), read with C(ip -j route); without C(ip), the IPv4
      routes of C(/proc/net/route). The explainer uses them to find the next hop of a flow and to see a
      host discard a packet or its reply (a V(blackhole), V(unreachable) or V(prohibit) route).
    - A warning says when policy routing rules besides the defaults exist (the routes of table main may
      then not be the ones used). Null when no routes could be read.
  returned: always
  type: list
  elements: dict
  sample:
    - {family: ipv4, dst: 0.0.0.0/0, type: unicast, gateway: 10.200.2.1, dev: eth0, metric: 0}
    - {family: ipv4, dst: 10.200.1.10/32, type: blackhole, gateway: null, dev: null, metric: 0}
interface_addresses:
  description:
    - Every address of every interface, both families, read with C(ip -j address); without C(ip), the
      IPv6 addresses of C(/proc/net/if_inet6) and each interface's primary IPv4 address (a warning says so).
  returned: always
  type: list
  elements: dict
  contains:
    interface:
      description: The interface name.
      returned: always
      type: str
      sample: eth0
    family:
      description: V(ipv4) or V(ipv6).
      returned: always
      type: str
      sample: ipv4
    address:
      description: The address.
      returned: always
      type: str
      sample: 10.200.1.10
    prefix:
      description: The prefix length of the address's subnet.
      returned: always
      type: int
      sample: 24
    scope:
      description: V(global), V(site), V(link) or V(host).
      returned: always
      type: str
      sample: global
    secondary:
      description: Whether an IPv4 address is a secondary one (not its subnet's first on the interface).
      returned: always
      type: bool
      sample: false
counters:
  description:
    - Counters since boot from C(/proc/net/netstat), C(snmp) and C(snmp6), named as C(nstat)
      names them. C(TcpExtListenOverflows)/C(TcpExtListenDrops) grow when accept queues overflow.
    - C(TcpExtListenOverflows), C(TcpExtListenDrops), C(TcpExtTCPBacklogDrop),
      C(TcpExtTCPReqQFullDrop), C(TcpExtTCPReqQFullDoCookies), C(TcpExtSyncookiesSent),
      C(TcpExtSyncookiesRecv), C(TcpExtSyncookiesFailed), C(TcpAttemptFails),
      C(TcpPassiveOpens), C(TcpOutRsts), C(TcpInErrs), C(UdpNoPorts), C(UdpInErrors),
      C(UdpRcvbufErrors), C(IcmpOutDestUnreachs), C(Udp6NoPorts), C(Udp6InErrors),
      C(Udp6RcvbufErrors), C(Icmp6OutDestUnreachs); those the kernel lacks are left out.
  returned: always
  type: dict
  sample:
    TcpExtListenOverflows: 1
    TcpExtListenDrops: 1
    UdpNoPorts: 12
process_scan:
  description: How complete the process scan was.
  returned: always
  type: dict
  contains:
    enabled:
      description: Echoes O(include_process).
      returned: always
      type: bool
      sample: true
    complete:
      description:
        - V(true) when every process's open files could be read; V(false) when some could not
          (permission denied, see RV(process_scan.unreadable_pids)) or when the C(/proc) mount
          hides other users' processes (C(hidepid=invisible) or C(ptraceable) for a reader without
          C(CAP_SYS_PTRACE), which a warning names); null when not enabled.
      returned: always
      type: bool
      sample: false
    unreadable_pids:
      description: Processes whose C(/proc/<pid>/fd) could not be read (permission denied).
      returned: always
      type: list
      elements: int
      sample: [1, 412]
"""

from ansible_collections.netdiag.reachability.plugins.module_utils._common.runner import run_module
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.addresses import add_to
from ansible_collections.netdiag.reachability.plugins.module_utils.gather.listeners import gather


def _gather(module):
    p = module.params
    return add_to(gather(ports=p["ports"], protocols=p["protocols"], include_process=p["include_process"]))


def main():
    run_module(dict(
        ports=dict(type="list", elements="raw", default=[]),
        protocols=dict(type="list", elements="str", choices=["tcp", "udp"], default=["tcp", "udp"]),
        include_process=dict(type="bool", default=True),
    ), _gather, warn=["warnings"])


if __name__ == "__main__":
    main()

from ansible_collections.netdiag.reachability.plugins.module_utils._common import icmp


def test_names_from_the_seeds():
    # seed 000: "Destination unreachable (Port unreachable)"; seed 002: code 10.
    assert icmp.icmp_name(4, 3, 3) == "destination-unreachable/port-unreachable"
    assert icmp.icmp_name(4, 3, 10) == "destination-unreachable/host-prohibited"
    assert icmp.icmp_name(4, 3, 13) == "destination-unreachable/admin-prohibited"
    assert icmp.icmp_name(6, 1, 4) == "destination-unreachable/port-unreachable"
    assert icmp.icmp_name(4, 11) == "time-exceeded"


def test_connect_errno_mapping():
    # LAB-NOTES: 3/3 -> ECONNREFUSED (same as RST); 1/10/13 -> EHOSTUNREACH
    assert icmp.ICMP4_ERRNO[3] == "ECONNREFUSED"
    assert {icmp.ICMP4_ERRNO[c] for c in (1, 10, 13)} == {"EHOSTUNREACH"}


def test_reject_replies():
    assert icmp.nft_reject_reply("ipv4")["code"] == 3
    assert icmp.nft_reject_reply("ipv4", "icmpx", "admin-prohibited")["code"] == 13
    assert icmp.nft_reject_reply("ipv6", "icmpx", "admin-prohibited")["code"] == 1
    assert icmp.nft_reject_reply("ipv4", "icmp", "host-prohibited")["code"] == 10
    assert icmp.nft_reject_reply("ipv4", "tcp reset") == {"kind": "rst"}
    assert icmp.ipt_reject_reply("ipv4")["code"] == 3
    assert icmp.ipt_reject_reply("ipv4", "icmp-host-prohibited")["code"] == 10
    assert icmp.ipt_reject_reply("ipv6", "icmp6-adm-prohibited")["type"] == 1
    assert icmp.ipt_reject_reply("ipv4", "no-such-thing") is None

"""diagnose on the seeds lab, counted in round trips: one read-only module call per gathered host
(no setup run), every flow of a source traced in one trace call, and a host already read (here:
found in a fact cache from an earlier run) not read again unless reachability_regather asks."""
import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FLOWS = os.path.join(ROOT, "tests", "lab", "flows", "seeds.yml")
GATHER_TASK = "Read the host (listeners, addresses, routes, firewall layers) in one call"
TRACE_TASK = "Trace the flows that did not reach an open port (all of this source's at once, one call)"


def diagnose(lab, report_dir, cache_dir, extra=None):
    env = lab.env()
    env.update(lab.json_env())
    env.update({"ANSIBLE_CACHE_PLUGIN": "jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache_dir)})
    argv = [lab.ansible_bin("ansible-playbook"), "-i", lab.inventory, "netdiag.reachability.diagnose", "-e", "@" + FLOWS,
            "-e", json.dumps(dict(extra or {}, reachability_report_dir=str(report_dir)))]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    with open(os.path.join(str(report_dir), "report.json")) as fh:
        return doc, json.load(fh)


def tasks(doc, name):
    # an included role's task is named "ROLE : NAME"
    return [t for play in doc["plays"] for t in play["tasks"] if t["task"].split(" : ")[-1] == name]


def by_host(doc, name):
    """host -> [its results of the task called ``name``]: under the play's strategy free the hosts run an
    included task in several batches, each its own entry in the document."""
    out = {}
    for t in tasks(doc, name):
        for host, res in t["hosts"].items():
            out.setdefault(host, []).append(res)
    return out


def per_host_results(doc):
    """host -> [(task, result)] for every task that ran on a lab host (not skipped)."""
    out = {}
    for play in doc["plays"]:
        for t in play["tasks"]:
            for host, res in t["hosts"].items():
                if host != "localhost" and not res.get("skipped"):
                    out.setdefault(host, []).append((t["task"], res))
    return out


def explained(report):
    """(address, port) -> (what the probe saw, cause, culprit)."""
    out = {}
    for f in report["flows"]:
        seen = (f.get("evidence") or {}).get("observed") or {}
        wire = tuple(seen.get(k) for k in ("state", "reason", "sender", "icmp_type", "icmp_code"))
        out[(f["address"], f["port"])] = (wire, f["cause"], json.dumps(f["culprit"], sort_keys=True))
    return out


@pytest.fixture(scope="module")
def runs(lab, tmp_path_factory):
    cache = tmp_path_factory.mktemp("factcache")
    first = diagnose(lab, tmp_path_factory.mktemp("r1"), cache)
    second = diagnose(lab, tmp_path_factory.mktemp("r2"), cache)
    return {"first": first, "second": second, "cache": cache}


def test_one_read_per_host_and_no_setup(lab, runs):
    doc, dummy = runs["first"]
    reads = by_host(doc, GATHER_TASK)
    assert set(reads) == set(lab.hosts)   # the seed flows touch every host, and the router is on the path
    for host, results in reads.items():
        assert len(results) == 1, (host, len(results))     # one read per host
        res = results[0]
        assert not res.get("skipped"), host
        assert res["changed"] is False
        # kept as the host's facts by the read itself (no set_fact per host)
        assert res["ansible_facts"]["reachability_listeners"]["interface_addresses"], host
        assert "layers" in res["ansible_facts"]["reachability_firewall"], host
    # nothing else reads a host: no setup (its facts), no separate listeners_info / firewall_info
    for host, ran in per_host_results(doc).items():
        for task, res in ran:
            assert "ansible_interfaces" not in (res.get("ansible_facts") or {}), (host, task)
            assert not ("listeners" in res and "routes" in res), (host, task)


def test_every_flow_of_the_source_is_traced_in_one_call(runs):
    doc, report = runs["first"]
    traced = by_host(doc, TRACE_TASK)["client"]
    assert len(traced) == 1
    res = traced[0]
    assert not any("ansible_loop_var" in r for r in res["results"])   # one call, not a loop
    wanted = {(f["address"], f["port"]) for f in report["flows"] if (f.get("evidence") or {}).get("trace")}
    assert {(r["target"], r["port"]) for r in res["results"]} == wanted
    assert len(wanted) >= 4      # the seeds: router drop and reject, host drops
    by_flow = {(f["address"], f["port"]): f for f in report["flows"]}
    assert by_flow[("10.200.2.10", 8081)]["evidence"]["trace"]["verdict"] == "silent_after_hop"
    assert by_flow[("10.200.2.10", 8082)]["evidence"]["trace"]["verdict"] == "rejected"


def test_hosts_in_the_fact_cache_are_not_read_again_and_explain_the_same(runs):
    doc, report = runs["second"]
    reads = by_host(doc, GATHER_TASK)
    assert reads and all(res.get("skipped") for results in reads.values() for res in results)
    first, second = explained(runs["first"][1]), explained(report)
    assert set(second) == set(first)
    # the same evidence on the wire gives the same explanation from the cached reads (a flow whose
    # probe saw something else met a lab that another test session changed in between)
    same_wire = [k for k in first if first[k][0] == second[k][0]]
    assert len(same_wire) >= len(first) - 3, (first, second)
    assert {k: second[k] for k in same_wire} == {k: first[k] for k in same_wire}


def test_regather_reads_them_again(lab, runs, tmp_path):
    doc, report = diagnose(lab, tmp_path, runs["cache"], extra={"reachability_regather": True})
    reads = by_host(doc, GATHER_TASK)
    assert reads and not any(res.get("skipped") for results in reads.values() for res in results)
    assert report["summary"]["flows"] == runs["first"][1]["summary"]["flows"]


def test_a_fleet_gathered_in_two_batches_is_explained_as_one_run(lab, runs, tmp_path):
    """gather (the gather stage alone) twice, on two halves of the flows - each gathering only its
    own hosts - then explain both evidence files together: the flows and their explanations are
    those of the one-run diagnose."""
    import yaml
    with open(FLOWS) as fh:
        flows = yaml.safe_load(fh)["reachability_flows"]
    files = []
    for i, half in enumerate((flows[:4], flows[4:])):
        out = tmp_path / ("batch%d" % i)
        proc = lab.playbook("netdiag.reachability.gather",
                            extra_vars={"reachability_flows": half, "reachability_report_dir": str(out)})
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert (out / "evidence.json").exists() and not (out / "report.json").exists(), "gather explained"
        assert "changed=0" in proc.stdout.split("PLAY RECAP")[1]
        files.append(str(out / "evidence.json"))
    proc = lab.playbook("netdiag.reachability.explain",
                        extra_vars={"reachability_evidence_files": files, "reachability_report_dir": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    merged = explained(json.loads((tmp_path / "report.json").read_text()))
    first = explained(runs["first"][1])
    assert set(merged) == set(first)
    same_wire = [k for k in first if first[k][0] == merged[k][0]]
    assert len(same_wire) >= len(first) - 3, (first, merged)
    assert {k: merged[k] for k in same_wire} == {k: first[k] for k in same_wire}

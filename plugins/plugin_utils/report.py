# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render an explain() report as Markdown and as one self-contained HTML page (a source x
destination matrix coloured by outcome; a click on a cell shows evidence, culprit and fix)."""

from __future__ import annotations

import html
import json

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import REPORT_SCHEMA as SCHEMA

CATEGORY = {
    "ok": "ok", "no_listener": "service", "loopback_only": "service", "wrong_address": "service",
    "listen_backlog_full": "service", "nat": "service", "host_firewall": "firewall", "source_firewall": "firewall",
    "path_block": "firewall", "security_group": "firewall", "host_down": "down", "unknown": "unknown",
}


def _check(report):
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise InputError("not a netdiag.reachability report (schema %r)" % (report or {}).get("schema")
                         if isinstance(report, dict) else "not a netdiag.reachability report: %r" % type(report).__name__)
    return report


def _target(f):
    return "%s/%s" % (f["port"], f["protocol"]) if f["protocol"] != "icmp" else "icmp"


def _dest(f):
    return f.get("destination") or f["address"]


def _culprit_text(f):
    c = f.get("culprit") or {}
    text = c.get("summary") or c.get("text") or ""
    where = []
    if c.get("host"):
        where.append(c["host"])
    if c.get("backend") and c.get("chain"):
        ref = "%s %s %s %s" % (c.get("backend"), c.get("family") or "", c.get("table") or "", c.get("chain"))
        if c.get("handle") is not None:
            ref += " handle %s" % c["handle"]
        elif c.get("line") is not None:
            ref += " line %s" % c["line"]
        where.append(" ".join(ref.split()))
    if c.get("kind") == "hop" and c.get("address"):
        where.append("hop %s%s" % (c["address"], " (TTL %s)" % c["ttl"] if c.get("ttl") else ""))
    return ("%s: %s" % (", ".join(where), text)) if where and text else (text or ", ".join(where))


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(report):
    rep = _check(report)
    s = rep["summary"]
    lines = ["# Reachability report", "",
             "%d flows: %d ok, %d failed, %d not as expected%s." % (
                 s["flows"], s["ok"], s["failed"], s["mismatched"],
                 ", %d with conflicting signals" % s["conflicts"] if s.get("conflicts") else ""), ""]
    if s.get("by_cause"):
        lines.append("By cause: " + ", ".join("%s %d" % (k, v) for k, v in sorted(s["by_cause"].items())))
        lines.append("")
    lines += ["| source | destination | port | expect | state | cause | culprit |", "|---|---|---|---|---|---|---|"]
    for f in rep["flows"]:
        lines.append("| %s | %s (%s) | %s | %s | %s | %s%s | %s |" % (
            _md(f.get("source")), _md(_dest(f)), _md(f["address"]), _target(f), f.get("expect"), f.get("state"),
            f["cause"], "" if f.get("matches_expect") else " **!**", _md(_culprit_text(f))))
    findings = [f for f in rep["flows"] if f["cause"] != "ok" or not f.get("matches_expect") or f.get("conflicts")]
    if findings:
        lines += ["", "## Findings"]
    for f in findings:
        lines += ["", "### %s → %s %s: %s" % (f.get("source"), _dest(f), _target(f), f["cause"]), ""]
        obs = (f.get("evidence") or {}).get("observed") or {}
        wire = obs.get("reason") or "not probed"
        if obs.get("sender"):
            wire += " from %s" % obs["sender"]
            if obs.get("sender_is_target") is False:
                wire += " (not the target)"
        lines.append("- observed: %s, %s" % (f.get("state"), wire))
        if _culprit_text(f):
            lines.append("- culprit: %s" % _culprit_text(f))
        tr = (f.get("evidence") or {}).get("trace")
        if tr and tr.get("reason"):
            lines.append("- trace: %s" % tr["reason"])
        if f.get("decided_by"):
            lines.append("- decided by: %s" % f["decided_by"])
        for c in f.get("conflicts") or []:
            lines.append("- conflict: %s" % c)
        for c in f.get("candidates") or []:
            lines.append("- candidate: %s — %s; to decide: %s" % (
                _md(c.get("host") or c.get("address")), _md(c.get("why")), _md(c.get("decide"))))
        fix = f.get("fix")
        if fix:
            lines.append("- fix: %s%s" % (fix.get("summary"), " (manual)" if fix.get("manual") else ""))
            for cmd in fix.get("commands") or []:
                lines.append("    - on %s: `%s`" % (cmd.get("host") or "?", cmd["command"]))
    return "\n".join(lines) + "\n"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Reachability report</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table.matrix{border-collapse:collapse;margin:1em 0}
.matrix th,.matrix td{border:1px solid #bbb;padding:.3em .5em;text-align:center;font-size:.9em}
.matrix th.src{text-align:left}
td.cell{cursor:pointer;min-width:4.5em}
td.cell.ok{background:#c8efc8} td.cell.service{background:#ffd9a8} td.cell.firewall{background:#f6b3b3}
td.cell.down{background:#d0d0d0} td.cell.unknown{background:#e3cff5}
td.cell.mismatch{outline:3px solid #b00;outline-offset:-3px}
td.cell.selected{box-shadow:inset 0 0 0 3px #225}
.legend span{display:inline-block;padding:.2em .6em;margin-right:.4em;border:1px solid #bbb}
#details{border:1px solid #888;padding:1em;margin-top:1em;max-width:60em}
#details.hidden{display:none}
#details pre{background:#f4f4f4;padding:.6em;overflow:auto;font-size:.85em}
code{background:#f4f4f4;padding:0 .2em}
</style></head><body>
<h1>Reachability report</h1>
<p id="summary">%(summary)s</p>
<p class="legend"><span class="ok" style="background:#c8efc8">ok</span>
<span style="background:#ffd9a8">service / bind / NAT</span>
<span style="background:#f6b3b3">firewall / path / security group</span>
<span style="background:#d0d0d0">host down</span><span style="background:#e3cff5">unknown</span>
&nbsp; a red frame: not as expected</p>
%(matrix)s
<div id="details" class="hidden" role="region" aria-live="polite"></div>
<script type="application/json" id="report-data">%(data)s</script>
<script>
(function(){
  var report = JSON.parse(document.getElementById('report-data').textContent);
  var box = document.getElementById('details');
  function esc(s){return String(s==null?'':s).replace(/[&<>"]/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c];});}
  function show(i){
    var f = report.flows[i];
    var cells = document.querySelectorAll('td.cell.selected');
    for (var k=0;k<cells.length;k++){cells[k].classList.remove('selected');}
    document.querySelector('td.cell[data-flow="'+i+'"]').classList.add('selected');
    var fix = f.fix || {};
    var cmds = (fix.commands||[]).map(function(c){return '<li>on '+esc(c.host)+': <code>'+esc(c.command)+'</code></li>';}).join('');
    var conf = (f.conflicts||[]).map(function(c){return '<li>'+esc(c)+'</li>';}).join('');
    box.innerHTML = '<h2>'+esc(f.source)+' &rarr; '+esc(f.destination||f.address)+' '+esc(f.port)+'/'+esc(f.protocol)+'</h2>'+
      '<p><b>state</b> <span class="state">'+esc(f.state)+'</span> ('+esc(f.reason)+'), '+
      '<b>cause</b> <span class="cause">'+esc(f.cause)+'</span>, expected '+esc(f.expect)+'</p>'+
      '<h3>Culprit</h3><p class="culprit">'+esc(f.culprit_text||'none')+'</p>'+
      (conf?'<h3>Conflicting signals</h3><ul>'+conf+'</ul>':'')+
      '<h3>Fix</h3><p class="fix">'+esc(fix.summary||'nothing to fix')+(fix.manual?' (manual)':'')+'</p>'+(cmds?'<ul>'+cmds+'</ul>':'')+
      '<h3>Evidence</h3><pre>'+esc(JSON.stringify(f.evidence,null,1))+'</pre>';
    box.classList.remove('hidden');
  }
  var tds = document.querySelectorAll('td.cell');
  for (var j=0;j<tds.length;j++){
    tds[j].addEventListener('click', function(){show(parseInt(this.getAttribute('data-flow'),10));});
  }
})();
</script>
</body></html>
"""


def html_page(report):
    rep = _check(report)
    flows = rep["flows"]
    sources = []
    columns = []  # (destination label, target)
    for f in flows:
        if f.get("source") not in sources:
            sources.append(f.get("source"))
        col = (_dest(f), _target(f))
        if col not in columns:
            columns.append(col)
    cell_of = {}
    for i, f in enumerate(flows):
        cell_of[(f.get("source"), _dest(f), _target(f))] = i
    dests = []
    for d, dummy in columns:
        if d not in dests:
            dests.append(d)
    head1 = ['<th rowspan="2">source \\ destination</th>'] + [
        '<th colspan="%d">%s</th>' % (sum(1 for c in columns if c[0] == d), html.escape(str(d))) for d in dests]
    ordered = [c for d in dests for c in columns if c[0] == d]
    head2 = ['<th>%s</th>' % html.escape(t) for dummy, t in ordered]
    rows = []
    for s in sources:
        tds = ['<th class="src">%s</th>' % html.escape(str(s))]
        for d, t in ordered:
            i = cell_of.get((s, d, t))
            if i is None:
                tds.append("<td></td>")
                continue
            f = flows[i]
            classes = ["cell", CATEGORY.get(f["cause"], "unknown")]
            if not f.get("matches_expect"):
                classes.append("mismatch")
            label = f["cause"] if f["cause"] != "ok" else (f.get("state") or "ok")
            tds.append('<td class="%s" data-flow="%d" data-cause="%s" title="%s">%s</td>' % (
                " ".join(classes), i, html.escape(f["cause"]), html.escape(_culprit_text(f)), html.escape(label)))
        rows.append("<tr>%s</tr>" % "".join(tds))
    matrix = '<table class="matrix"><thead><tr>%s</tr><tr>%s</tr></thead><tbody>%s</tbody></table>' % (
        "".join(head1), "".join(head2), "".join(rows))
    s = rep["summary"]
    summary = "%d flows: %d ok, %d failed, %d not as expected. Click a cell for evidence, culprit and fix." % (
        s["flows"], s["ok"], s["failed"], s["mismatched"])
    data = dict(rep, flows=[dict(f, culprit_text=_culprit_text(f)) for f in flows])
    payload = json.dumps(data, sort_keys=True).replace("</", "<\\/")
    return _PAGE % {"summary": html.escape(summary), "matrix": matrix, "data": payload}


def summary_lines(report):
    """A short summary for the end of a playbook run."""
    rep = _check(report)
    s = rep["summary"]
    out = ["%d flows checked: %d ok, %d failed, %d not as expected" % (s["flows"], s["ok"], s["failed"], s["mismatched"])]
    for cause, n in sorted(s.get("by_cause", {}).items()):
        if cause != "ok":
            out.append("  %-20s %d" % (cause, n))
    for f in rep["flows"]:
        if f["cause"] != "ok" or not f.get("matches_expect"):
            out.append("%s -> %s %s: %s%s - %s" % (f.get("source"), _dest(f), _target(f), f["cause"],
                                                   "" if f.get("matches_expect") else " (expected %s)" % f.get("expect"),
                                                   _culprit_text(f)[:160]))
    return out

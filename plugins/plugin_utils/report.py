# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render an explain() report as Markdown, as one self-contained HTML page (findings grouped by
cause with their fix commands, filters, search, each flow's path, and the source x destination
matrix), as JUnit XML for CI systems (one test case per flow) and as the compact data a job's
artifacts carry (set_stats)."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET

from ansible_collections.netdiag.reachability.plugins.module_utils._common.errors import InputError
from ansible_collections.netdiag.reachability.plugins.module_utils._common.verdicts import REPORT_SCHEMA as SCHEMA

CATEGORY = {
    "ok": "ok", "no_listener": "service", "loopback_only": "service", "wrong_address": "service",
    "listen_backlog_full": "service", "nat": "service", "host_firewall": "firewall", "source_firewall": "firewall",
    "path_block": "firewall", "security_group": "firewall", "no_route": "firewall", "host_down": "down", "unknown": "unknown",
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
            for alt in fix.get("alternatives") or []:
                if alt.get("default"):
                    continue
                lines.append("- alternative fix: %s%s — %s" % (
                    _md(alt.get("summary")), " (manual)" if alt.get("manual") else "", _md(alt.get("why"))))
                for cmd in alt.get("commands") or []:
                    lines.append("    - on %s: `%s`" % (cmd.get("host") or "?", cmd["command"]))
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fff}
h1{margin:.2em 0} h2{margin:1.2em 0 .4em;font-size:1.25em}
code,pre{font-family:ui-monospace,monospace}
code{background:#f3f3f3;padding:0 .2em}
.chips button,.controls button{font:inherit;border:1px solid #999;background:#f7f7f7;border-radius:1em;padding:.15em .7em;
  margin:.15em .2em;cursor:pointer}
.chips button.on{background:#225;color:#fff;border-color:#225}
.controls{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc;z-index:3}
.controls label{margin-right:.8em;white-space:nowrap}
.controls input[type=search]{width:18em;font:inherit;padding:.15em .3em}
#shown{color:#555;margin-left:.5em}
.legend span{display:inline-block;padding:.1em .5em;margin-right:.3em;border:1px solid #bbb;font-size:.85em}
.ok{background:#c8efc8} .service{background:#ffd9a8} .firewall{background:#f6b3b3} .down{background:#d0d0d0}
.unknown{background:#e3cff5}
.scroll{overflow:auto;max-height:70vh;border:1px solid #ccc;max-width:100%}
table.matrix{border-collapse:separate;border-spacing:0}
.matrix th,.matrix td{border-right:1px solid #ddd;border-bottom:1px solid #ddd;padding:.15em .35em;font-size:.8em;
  white-space:nowrap}
.matrix thead th{position:sticky;top:0;background:#eee;z-index:2;writing-mode:vertical-rl;transform:rotate(180deg);
  text-align:left;max-height:14em;overflow:hidden;text-overflow:ellipsis}
.matrix thead th.corner{writing-mode:horizontal-tb;transform:none;left:0;z-index:4}
.matrix tbody th{position:sticky;left:0;background:#f6f6f6;text-align:left;z-index:1;max-width:26em;overflow:hidden;
  text-overflow:ellipsis}
td.cell{cursor:pointer;text-align:center;min-width:2.6em}
td.cell.mismatch{outline:2px solid #b00;outline-offset:-2px}
td.cell.off{opacity:.12}
td.cell.selected{box-shadow:inset 0 0 0 3px #225}
tr.hidden,li.hidden,div.hidden,section.hidden{display:none}
.group{border:1px solid #ccc;border-left:.5em solid #999;margin:.6em 0;padding:.3em .8em}
.group.g-firewall{border-left-color:#d44} .group.g-service{border-left-color:#e90} .group.g-down{border-left-color:#888}
.group.g-unknown{border-left-color:#96c} .group.g-ok{border-left-color:#4a4}
.group h3{margin:.3em 0;font-size:1.05em}
.group ul{margin:.2em 0;padding-left:1.2em}
.cmds{background:#f4f4f4;padding:.4em .6em;margin:.3em 0}
.cmd{display:flex;align-items:center;gap:.5em;margin:.15em 0}
.cmd code{flex:1;white-space:pre-wrap;word-break:break-all;background:none}
.cmd .host{color:#555;min-width:7em}
button.copy{font-size:.8em;cursor:pointer}
.flowlink{cursor:pointer;color:#124;text-decoration:underline dotted}
#details{border:1px solid #888;padding:.8em 1em;margin-top:1em;max-width:70em;background:#fcfcfc}
#details.hidden{display:none}
#details pre{background:#f4f4f4;padding:.6em;overflow:auto;font-size:.8em;max-height:30em}
.path{display:flex;flex-wrap:wrap;align-items:stretch;gap:0;margin:.6em 0}
.node{border:2px solid #888;border-radius:.4em;padding:.3em .6em;background:#fff;font-size:.85em;max-width:22em}
.node.reached{border-color:#4a4;background:#eef9ee}
.node.died{border-color:#c00;background:#fde8e8;box-shadow:0 0 0 2px #fbb}
.node.silent{border-style:dashed;color:#777}
.node.unreached{border-color:#bbb;color:#777;background:#f4f4f4}
.node .rule{display:block;margin-top:.2em;font-family:ui-monospace,monospace;font-size:.9em;color:#800;
  white-space:pre-wrap;word-break:break-all}
.arrow{align-self:center;padding:0 .35em;color:#666;font-size:1.2em}
"""

_JS = r"""
(function(){
  var report = JSON.parse(document.getElementById('report-data').textContent);
  var flows = report.flows;
  var state = {failed:false, mismatch:false, cause:'', host:'', q:''};
  var hay = flows.map(function(f){
    return [f.source, f.destination, f.address, f.port, f.protocol, f.state, f.cause, f.culprit_text,
            (f.fix||{}).summary].join(' ').toLowerCase();
  });
  function esc(s){return String(s==null?'':s).replace(/[&<>"']/g,function(c){
    return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c];});}
  function visible(i){
    var f = flows[i];
    if (state.failed && f.cause === 'ok') return false;
    if (state.mismatch && f.matches_expect) return false;
    if (state.cause && f.cause !== state.cause) return false;
    if (state.host && f.source !== state.host && f.destination !== state.host && f.address !== state.host) return false;
    if (state.q && hay[i].indexOf(state.q) < 0) return false;
    return true;
  }
  function apply(){
    var show = flows.map(function(f, i){return visible(i);});
    var n = show.filter(Boolean).length;
    var cells = document.querySelectorAll('td.cell');
    for (var i=0;i<cells.length;i++){cells[i].classList.toggle('off', !show[+cells[i].getAttribute('data-flow')]);}
    var rows = document.querySelectorAll('table.matrix tbody tr');
    for (var r=0;r<rows.length;r++){
      rows[r].classList.toggle('hidden', !rows[r].querySelector('td.cell:not(.off)'));
    }
    var items = document.querySelectorAll('li.finding');
    for (var k=0;k<items.length;k++){items[k].classList.toggle('hidden', !show[+items[k].getAttribute('data-flow')]);}
    var groups = document.querySelectorAll('section.group');
    for (var g=0;g<groups.length;g++){groups[g].classList.toggle('hidden', !groups[g].querySelector('li.finding:not(.hidden)'));}
    document.getElementById('shown').textContent = n + ' of ' + flows.length + ' flows shown';
    var chips = document.querySelectorAll('.chips button');
    for (var c=0;c<chips.length;c++){
      var b = chips[c], k2 = b.getAttribute('data-filter'), v = b.getAttribute('data-value');
      b.classList.toggle('on', k2 === 'all' ? !(state.failed||state.mismatch||state.cause||state.host||state.q)
                                             : (k2 === 'cause' ? state.cause === v : !!state[k2]));
    }
  }
  function sync(){
    document.getElementById('f-failed').checked = state.failed;
    document.getElementById('f-mismatch').checked = state.mismatch;
    document.getElementById('f-cause').value = state.cause;
    document.getElementById('f-host').value = state.host;
    apply();
  }
  document.getElementById('f-failed').addEventListener('change', function(){state.failed = this.checked; apply();});
  document.getElementById('f-mismatch').addEventListener('change', function(){state.mismatch = this.checked; apply();});
  document.getElementById('f-cause').addEventListener('change', function(){state.cause = this.value; apply();});
  document.getElementById('f-host').addEventListener('change', function(){state.host = this.value; apply();});
  document.getElementById('f-search').addEventListener('input', function(){state.q = this.value.trim().toLowerCase(); apply();});
  document.querySelector('.chips').addEventListener('click', function(ev){
    var b = ev.target.closest('button'); if (!b) return;
    var k = b.getAttribute('data-filter');
    if (k === 'all'){state = {failed:false, mismatch:false, cause:'', host:'', q:''}; document.getElementById('f-search').value = '';}
    else if (k === 'cause'){state.cause = state.cause === b.getAttribute('data-value') ? '' : b.getAttribute('data-value');}
    else {state[k] = !state[k];}
    sync();
  });
  function copy(text, button){
    function done(){button.textContent = 'copied'; setTimeout(function(){button.textContent = 'copy';}, 1500);}
    function fallback(){
      var ta = document.createElement('textarea'); ta.value = text; document.body.appendChild(ta); ta.select();
      try {document.execCommand('copy');} catch (e) {}
      document.body.removeChild(ta); done();
    }
    if (navigator.clipboard && navigator.clipboard.writeText){navigator.clipboard.writeText(text).then(done, fallback);}
    else {fallback();}
  }
  document.addEventListener('click', function(ev){
    var b = ev.target.closest('button.copy');
    if (b){copy(b.getAttribute('data-copy'), b); return;}
    var t = ev.target.closest('[data-flow]');
    if (t && (t.classList.contains('cell') || t.classList.contains('flowlink'))){show(+t.getAttribute('data-flow'));}
  });
  function node(cls, title, sub, rule){
    return '<div class="node '+cls+'"><b>'+esc(title)+'</b>'+(sub?'<br>'+esc(sub):'')+
      (rule?'<span class="rule">'+esc(rule)+'</span>':'')+'</div>';
  }
  function pathHtml(f){
    var ev = f.evidence || {}, tr = ev.trace || {}, c = f.culprit || {}, hops = tr.hops || [];
    var r = c.rule || c;
    var ref = r.backend && r.chain ? [r.backend, r.family, r.table, r.chain].filter(Boolean).join(' ') +
      (r.handle != null ? ' handle ' + r.handle : (r.line != null ? ' line ' + r.line : '')) + ': ' : '';
    var ruleText = ref + (r.text || c.text || c.summary || '');
    var died = f.cause !== 'ok';
    var atSource = f.cause === 'source_firewall' || f.cause === 'no_route';
    var out = [node(atSource ? 'died' : 'reached', f.source, f.source_address || '', atSource ? ruleText : '')];
    var blk = tr.blocking_hop || {}, marked = atSource;
    var i = 0;
    while (i < hops.length){
      var h = hops[i];
      if (!h.address){
        var j = i; while (j < hops.length && !hops[j].address){j++;}
        out.push(node('silent', j - i > 1 ? '* x ' + (j - i) : '*', 'TTL ' + h.ttl + (j - i > 1 ? '-' + hops[j-1].ttl : '') + ': silent'));
        i = j; continue;
      }
      if (h.address === f.address){i++; continue;}
      var here = died && !marked && ((blk.address && blk.address === h.address) || (c.kind === 'hop' && c.address === h.address));
      var host = '';
      (ev.path || []).forEach(function(p){ if (c.host && p.host === c.host && here) host = p.host; });
      out.push(node(here ? 'died' : (marked ? 'unreached' : 'reached'), (host ? host + ' ' : '') + h.address,
                    'TTL ' + h.ttl + (h.reply ? ': ' + h.reply : '') + (here && blk.how ? ' (' + blk.how + ')' : ''),
                    here ? ruleText : ''));
      if (here) marked = true;
      i++;
    }
    if (!hops.length){
      (ev.path || []).forEach(function(p){
        var v = p.verdict || {}, blocked = v.verdict && v.verdict !== 'accept';
        var here = died && !marked && blocked;
        out.push(node(here ? 'died' : (marked ? 'unreached' : 'reached'), p.host, v.verdict || '',
                      here ? ((v.rule || {}).text || v.reason || '') : ''));
        if (here) marked = true;
      });
    }
    var dest = (f.destination && f.destination !== f.address) ? f.destination + ' ' + f.address : f.address;
    var atDest = died && !marked;
    var port = f.protocol === 'icmp' ? 'icmp' : f.port + '/' + f.protocol;
    out.push(node(atDest ? 'died' : (died ? 'unreached' : 'reached'), dest, port + ': ' + (f.state || 'not probed'),
                  atDest ? ruleText : ''));
    return '<div class="path">' + out.join('<span class="arrow">&rarr;</span>') + '</div>';
  }
  var box = document.getElementById('details');
  function show(i){
    var f = flows[i];
    var sel = document.querySelectorAll('td.cell.selected');
    for (var k=0;k<sel.length;k++){sel[k].classList.remove('selected');}
    var cell = document.querySelector('td.cell[data-flow="'+i+'"]');
    if (cell) cell.classList.add('selected');
    var fix = f.fix || {};
    var cmds = (fix.commands||[]).map(function(c){
      return '<div class="cmd"><span class="host">on '+esc(c.host)+'</span><code>'+esc(c.command)+'</code>'+
             '<button class="copy" data-copy="'+esc(c.command)+'">copy</button></div>';}).join('');
    var alts = (fix.alternatives||[]).filter(function(a){return !a.default;}).map(function(a){
      return '<li>'+esc(a.summary)+(a.manual?' (manual)':'')+': '+esc(a.why)+(a.commands||[]).map(function(c){
        return '<div class="cmd"><span class="host">on '+esc(c.host)+'</span><code>'+esc(c.command)+'</code>'+
               '<button class="copy" data-copy="'+esc(c.command)+'">copy</button></div>';}).join('')+'</li>';}).join('');
    var conf = (f.conflicts||[]).map(function(c){return '<li>'+esc(c)+'</li>';}).join('');
    var cand = (f.candidates||[]).map(function(c){
      return '<li>'+esc(c.host||c.address)+': '+esc(c.why)+'; to decide: '+esc(c.decide)+'</li>';}).join('');
    box.innerHTML = '<h2>'+esc(f.source)+' &rarr; '+esc(f.destination||f.address)+' '+
      esc(f.protocol === 'icmp' ? 'icmp' : f.port+'/'+f.protocol)+'</h2>'+
      '<p><b>state</b> <span class="state">'+esc(f.state)+'</span> ('+esc(f.reason)+'), '+
      '<b>cause</b> <span class="cause">'+esc(f.cause)+'</span>, expected '+esc(f.expect)+
      (f.matches_expect ? '' : ' <b>(not as expected)</b>')+(f.decided_by ? ', decided by '+esc(f.decided_by) : '')+'</p>'+
      '<h3>Path</h3>'+pathHtml(f)+
      '<h3>Culprit</h3><p class="culprit">'+esc(f.culprit_text||'none')+'</p>'+
      (cand?'<h3>Candidates</h3><ul>'+cand+'</ul>':'')+
      (conf?'<h3>Conflicting signals</h3><ul>'+conf+'</ul>':'')+
      '<h3>Fix</h3><p class="fix">'+esc(fix.summary||'nothing to fix')+(fix.manual?' (manual)':'')+'</p>'+
      (cmds?'<div class="cmds">'+cmds+'</div>':'')+
      (alts?'<h3>Alternative fixes</h3><ul class="alternatives">'+alts+'</ul>':'')+
      '<details><summary>Evidence</summary><pre>'+esc(JSON.stringify(f.evidence,null,1))+'</pre></details>';
    box.classList.remove('hidden');
    box.scrollIntoView({block:'nearest'});
  }
  apply();
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reachability report</title>
<style>%(css)s</style></head><body>
<h1>Reachability report</h1>
<p id="summary">%(summary)s</p>
<div class="controls">
<div class="chips">%(chips)s</div>
<label><input type="checkbox" id="f-failed"> failed</label>
<label><input type="checkbox" id="f-mismatch"> not as expected</label>
<label>cause <select id="f-cause"><option value="">any</option>%(cause_options)s</select></label>
<label>host <select id="f-host"><option value="">any</option>%(host_options)s</select></label>
<label>search <input type="search" id="f-search" placeholder="host, address, port, rule text"></label>
<span id="shown"></span>
</div>
<h2>Findings by cause</h2>
%(groups)s
<div id="details" class="hidden" role="region" aria-live="polite"></div>
<h2>Matrix</h2>
<p class="legend"><span class="ok">ok</span><span class="service">service / bind / NAT</span>
<span class="firewall">firewall / path / security group</span><span class="down">host down</span>
<span class="unknown">unknown</span> a red frame: not as expected. %(orientation)s Click a cell for the path, the
culprit and the fix.</p>
<div class="scroll">%(matrix)s</div>
<script type="application/json" id="report-data">%(data)s</script>
<script>%(js)s</script>
</body></html>
"""

SHORT = {"ok": "ok", "no_listener": "nolsn", "loopback_only": "lo", "wrong_address": "addr", "host_firewall": "fw",
         "source_firewall": "srcfw", "path_block": "path", "security_group": "sg", "nat": "nat",
         "listen_backlog_full": "backlog", "host_down": "down", "no_route": "route", "unknown": "?"}


def _e(value):
    return html.escape(str(value if value is not None else ""), quote=True)


GROUP_OPEN = 8  # a group lists its flows open up to this many; more are one click away


def _groups(flows):
    """Findings (flows that failed or are not as expected) grouped by cause, each group with its fix commands."""
    by_cause = {}
    for i, f in enumerate(flows):
        if f["cause"] != "ok" or not f.get("matches_expect"):
            by_cause.setdefault(f["cause"], []).append(i)
    if not by_cause:
        return "<p>No findings: every flow is ok and as expected.</p>"
    out = []
    for cause in sorted(by_cause, key=lambda c: (-len(by_cause[c]), c)):
        idx = by_cause[cause]
        cmds, seen = [], set()
        for i in idx:
            for c in (flows[i].get("fix") or {}).get("commands") or []:
                key = (c.get("host") or "?", c.get("command"))
                try:
                    new = key not in seen
                    seen.add(key)
                except TypeError:   # a command that is no string, in a report made by hand
                    new = key not in cmds
                if new:
                    cmds.append(key)
        items = []
        for i in idx:
            f = flows[i]
            items.append('<li class="finding" data-flow="%d"><span class="flowlink" data-flow="%d">%s</span>%s: %s</li>' % (
                i, i, _e(flow_name(f)), "" if f.get("matches_expect") else " <b>(not as expected)</b>",
                _e(_culprit_text(f) or (f.get("fix") or {}).get("summary") or f.get("reason") or "")))
        block = ""
        if cmds:
            script = "\n".join("# on %s\n%s" % (h, c) for h, c in cmds)
            block = '<div class="cmds"><b>fix commands</b> <button class="copy" data-copy="%s">copy</button>%s</div>' % (
                _e(script), "".join('<div class="cmd"><span class="host">on %s</span><code>%s</code>'
                                    '<button class="copy" data-copy="%s">copy</button></div>' % (_e(h), _e(c), _e(c))
                                    for h, c in cmds))
        out.append('<section class="group g-%s" data-cause="%s"><h3>%s - %d flow%s</h3>%s'
                   '<details%s><summary>the flows</summary><ul>%s</ul></details></section>' % (
                       CATEGORY.get(cause, "unknown"), _e(cause), _e(cause), len(idx), "" if len(idx) == 1 else "s", block,
                       " open" if len(idx) <= GROUP_OPEN else "", "".join(items)))
    return "\n".join(out)


def _matrix(flows):
    """Sources x (destination, port); the longer side goes down the page so that hundreds of flows stay readable."""
    sources, targets, cell_of = {}, {}, {}   # dicts as ordered sets: first seen first
    for i, f in enumerate(flows):
        src = f.get("source")
        tgt = (_dest(f), f.get("address"), _target(f))
        sources.setdefault(src, None)
        targets.setdefault(tgt, None)
        cell_of.setdefault((src, tgt), i)
    sources, targets = list(sources), list(targets)
    by_target = len(targets) >= len(sources)
    rows, cols = (targets, sources) if by_target else (sources, targets)

    def label(item, is_target):
        if not is_target:
            return str(item)
        dest, addr, tgt = item
        return "%s%s %s" % (dest, "" if dest == addr else " (%s)" % addr, tgt)
    head = ['<th class="corner">%s</th>' % ("destination \\ source" if by_target else "source \\ destination")]
    head += ['<th title="%s">%s</th>' % (_e(label(c, not by_target)), _e(label(c, not by_target))) for c in cols]
    body = []
    for r in rows:
        tds = ['<th title="%s">%s</th>' % (_e(label(r, by_target)), _e(label(r, by_target)))]
        for c in cols:
            i = cell_of.get((c, r) if by_target else (r, c))
            if i is None:
                tds.append("<td></td>")
                continue
            f = flows[i]
            classes = ["cell", CATEGORY.get(f["cause"], "unknown")]
            if not f.get("matches_expect"):
                classes.append("mismatch")
            text = f["cause"] if f["cause"] != "ok" else (f.get("state") or "ok")
            tds.append('<td class="%s" data-flow="%d" data-cause="%s" title="%s">%s</td>' % (
                " ".join(classes), i, _e(f["cause"]), _e("%s: %s" % (flow_name(f), text)),
                _e(SHORT.get(f["cause"], f["cause"]) if f["cause"] != "ok" else "ok")))
        body.append("<tr>%s</tr>" % "".join(tds))
    orientation = ("One row per destination and port, one column per source." if by_target else
                   "One row per source, one column per destination and port.")
    return ('<table class="matrix"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % ("".join(head), "".join(body)),
            orientation)


def html_page(report):
    """One self-contained page (no network): findings grouped by cause with copyable fix commands, filters
    (failed, not as expected, cause, host), search, each flow's path, and the matrix."""
    rep = _check(report)
    flows = rep["flows"]
    s = rep["summary"]
    causes = sorted({f["cause"] for f in flows})
    hosts = sorted({str(h) for f in flows for h in (f.get("source"), f.get("destination") or f.get("address")) if h})
    chips = ['<button data-filter="all">all %d</button>' % len(flows),
             '<button data-filter="failed">failed %d</button>' % s["failed"],
             '<button data-filter="mismatch">not as expected %d</button>' % s["mismatched"]]
    chips += ['<button class="%s" data-filter="cause" data-value="%s">%s %d</button>' % (
        CATEGORY.get(c, "unknown"), _e(c), _e(c), sum(1 for f in flows if f["cause"] == c)) for c in causes]
    matrix, orientation = _matrix(flows)
    summary = "%d flows: %d ok, %d failed, %d not as expected%s." % (
        s["flows"], s["ok"], s["failed"], s["mismatched"],
        ", %d with conflicting signals" % s["conflicts"] if s.get("conflicts") else "")
    data = dict(rep, flows=[dict(f, culprit_text=_culprit_text(f)) for f in flows])
    payload = json.dumps(data, sort_keys=True).replace("<", "\\u003c")  # nothing in it can end or open an element
    return _PAGE % {
        "css": _CSS, "js": _JS, "summary": _e(summary), "chips": "".join(chips),
        "cause_options": "".join('<option value="%s">%s</option>' % (_e(c), _e(c)) for c in causes),
        "host_options": "".join('<option value="%s">%s</option>' % (_e(h), _e(h)) for h in hosts),
        "groups": _groups(flows), "orientation": orientation, "matrix": matrix, "data": payload}


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


def _fix_text(f):
    fix = f.get("fix") or {}
    lines = []
    if fix.get("summary"):
        lines.append("fix: %s%s" % (fix["summary"], " (manual)" if fix.get("manual") else ""))
    for cmd in fix.get("commands") or []:
        lines.append("  on %s: %s" % (cmd.get("host") or "?", cmd.get("command")))
    return lines


def flow_name(f):
    """One line that names a flow: ``client -> web01 (10.0.0.5) 80/tcp``."""
    dest = _dest(f)
    where = dest if dest == f.get("address") else "%s (%s)" % (dest, f.get("address"))
    return "%s -> %s %s" % (f.get("source"), where, _target(f))


def flow_details(f):
    """The lines a CI system shows for a flow: what was seen, the cause, the culprit and the fix."""
    obs = (f.get("evidence") or {}).get("observed") or {}
    wire = f.get("reason") or obs.get("reason") or "not probed"
    if obs.get("sender"):
        wire += " from %s" % obs["sender"]
    lines = ["expected: %s" % f.get("expect"),
             "observed: %s (%s)" % (f.get("state"), wire),
             "cause: %s" % f.get("cause")]
    if _culprit_text(f):
        lines.append("culprit: %s" % _culprit_text(f))
    if f.get("decided_by"):
        lines.append("decided by: %s" % f["decided_by"])
    for c in f.get("conflicts") or []:
        lines.append("conflict: %s" % c)
    for c in f.get("candidates") or []:
        lines.append("candidate: %s - %s; to decide: %s" % (c.get("host") or c.get("address"), c.get("why"), c.get("decide")))
    return lines + _fix_text(f)


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text):
    """Text that XML 1.0 can carry (rule comments may hold control characters)."""
    return _NOT_XML.sub("\ufffd", str(text if text is not None else ""))


def junit_xml(report, suite="netdiag.reachability"):
    """JUnit XML: one test case per flow, failed when the flow's outcome differs from its expect;
    the failure's message is the cause and the culprit, its text the details and the fix."""
    rep = _check(report)
    if not isinstance(suite, str) or not suite.strip():
        raise InputError("suite must be a non-empty string, got %r" % (suite,))
    flows = rep["flows"]
    failures = sum(1 for f in flows if not f.get("matches_expect"))
    attrs = {"name": _x(suite), "tests": str(len(flows)), "failures": str(failures), "errors": "0", "skipped": "0"}
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(root, "testsuite", attrs)
    props = ET.SubElement(ts, "properties")
    for key in ("schema", "version"):
        ET.SubElement(props, "property", {"name": key, "value": _x(rep.get(key))})
    for f in flows:
        tc = ET.SubElement(ts, "testcase", {"classname": _x("%s.%s" % (suite, f.get("source"))), "name": _x(flow_name(f))})
        details = "\n".join(flow_details(f))
        if not f.get("matches_expect"):
            culprit = _culprit_text(f)
            message = "expected %s, %s%s" % (f.get("expect"), f.get("cause"), ": " + culprit if culprit else "")
            failure = ET.SubElement(tc, "failure", {"type": _x(f.get("cause")), "message": _x(message[:1000])})
            failure.text = _x(details)
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = _x(details)
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def stats(report):
    """What a job's artifacts carry (set_stats, as AWX shows them): the summary, whether every flow
    was as expected, and one compact verdict per flow (no evidence)."""
    rep = _check(report)
    s = rep["summary"]
    flows = []
    for f in rep["flows"]:
        fix = f.get("fix") or {}
        flows.append({
            "flow": flow_name(f), "source": f.get("source"), "destination": _dest(f), "address": f.get("address"),
            "port": f.get("port"), "protocol": f.get("protocol"), "expect": f.get("expect"), "state": f.get("state"),
            "reason": f.get("reason"), "cause": f.get("cause"), "matches_expect": bool(f.get("matches_expect")),
            "culprit": _culprit_text(f) or None, "decided_by": f.get("decided_by"),
            "fix": fix.get("summary"), "fix_manual": bool(fix.get("manual")) if fix else None,
            "fix_commands": [{"host": c.get("host"), "command": c.get("command")} for c in fix.get("commands") or []],
        })
    summary = dict(s, as_expected=not s.get("mismatched"), text=summary_lines(rep))
    return {"summary": summary, "flows": flows}

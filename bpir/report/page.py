"""The report's HTML: one file, styles and script inline, nothing fetched at view time."""

from __future__ import annotations

import json
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { background: #263238; color: #fff; padding: 10px 20px; }
header h1 { font-size: 20px; margin: 0 0 4px 0; } header p { margin: 0; font-size: 12px; color: #cfd8dc; }
nav a { color: #b3e5fc; margin-right: 12px; font-size: 13px; }
.layout { display: grid; grid-template-columns: minmax(0, 1fr) 380px; gap: 16px; padding: 0 16px; }
section { margin: 16px 0; } h2 { font-size: 17px; border-bottom: 1px solid #ddd; }
.bpir-graph { max-height: 75vh; overflow: auto; border: 1px solid #ddd; background: #fff; }
.bpir-graph g.node { cursor: pointer; } .bpir-graph g.node.selected polygon, .bpir-graph g.node.selected ellipse,
.bpir-graph g.node.selected path { stroke: #d62728; stroke-width: 3; }
#panel { position: sticky; top: 8px; align-self: start; max-height: 96vh; overflow: auto; border: 1px solid #ccc;
         padding: 8px 12px; margin-top: 16px; background: #fafafa; font-size: 13px; }
pre { background: #f5f5f5; padding: 8px; overflow: auto; font-size: 12px; max-height: 60vh; }
table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; } .note { color: #555; font-size: 12px; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var body = document.body;
  window.addEventListener("error", function () { body.dataset.errors = String(Number(body.dataset.errors || 0) + 1); });
  var data = JSON.parse(document.getElementById("node-data").textContent);
  var panel = document.getElementById("panel-body");
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function row(dl, key, value) { if (value === undefined || value === "" || value === null) return; dl.appendChild(el("dt", key)); dl.appendChild(el("dd", String(value))); }
  function show(graph, id) {
    var info = (data[graph] || {})[id];
    if (!info) return false;
    panel.textContent = "";
    var title = info.kind === "op" ? (info.region_op ? info.region_op + " in #" + info.index + " " + info.op : "#" + info.index + " " + info.op)
                                   : (info.kind === "input" ? (info.role ? info.role + " " : "") + "input %" + info.name : info.label);
    panel.appendChild(el("h3", title));
    var dl = el("dl");
    row(dl, "graph", graph); row(dl, "type", info.type || (info.types || []).join(", "));
    row(dl, "inputs", (info.inputs || []).join(", ")); row(dl, "source line", info.region_loc || info.loc);
    row(dl, "saved from", info.origin);
    if (info.time_ms !== undefined) row(dl, "time (profile)", info.time_ms.toFixed(4) + " ms");
    panel.appendChild(dl);
    var attrs = info.attrs || {};
    Object.keys(attrs).forEach(function (k) { panel.appendChild(el("h4", "attribute " + k)); panel.appendChild(el("pre", attrs[k])); });
    var code = info.code || {};
    Object.keys(code).forEach(function (b) { panel.appendChild(el("h4", b + " code for this node")); panel.appendChild(el("pre", code[b], "code")); });
    panel.dataset.shown = graph + ":" + id;
    return true;
  }
  var count = 0, first = [];
  document.querySelectorAll(".bpir-graph").forEach(function (div) {
    var graph = div.dataset.graph, nodes = div.querySelectorAll("g.node");
    nodes.forEach(function (g) {
      var t = g.querySelector("title");
      if (!t) return;
      count += 1;
      g.addEventListener("click", function () {
        document.querySelectorAll("g.node.selected").forEach(function (s) { s.classList.remove("selected"); });
        g.classList.add("selected");
        show(graph, t.textContent);
      });
    });
    div.dataset.nodes = String(nodes.length);
    if (nodes.length) first.push(nodes[Math.min(nodes.length - 1, 1)]);
  });
  body.dataset.nodes = String(count);
  if (location.hash === "#selftest") {
    var ok = 0;
    first.forEach(function (g) { g.dispatchEvent(new MouseEvent("click", { bubbles: true })); if (panel.dataset.shown) ok += 1; });
    body.dataset.selftest = ok + "/" + first.length + " " + (panel.dataset.shown || "");
  }
  body.dataset.ready = "1";
})();
"""


def section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{escape(title)}</h2>\n{body}\n</section>'


def pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def table(header: list[str], rows: list[list[str]], ident: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table{f' id={ident!r}' if ident else ''}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]], node_data: dict) -> str:
    """The whole document: a nav over ``sections`` (id, title, html), the node panel, the script."""
    nav = "".join(f'<a href="#{i}">{escape(t)}</a>' for i, t, _ in sections)
    body = "\n".join(section(*s) for s in sections)
    payload = json.dumps(node_data, separators=(",", ":")).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head>
<body>
<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p><nav>{nav}</nav></header>
<div class="layout"><main>
{body}
</main>
<aside id="panel"><h2>Node</h2><div id="panel-body"><p class="note">Click a node in a graph to see its type,
attributes, source line and generated code.</p></div></aside></div>
<script id="node-data" type="application/json">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""

"""``/docs``: the API's reference, rendered in the browser from ``/openapi.json``.

FastAPI's own docs page (Swagger UI) loads its script and styles from a CDN, which an offline
machine cannot reach; this page is self-contained (no external assets) and lists every
operation, its parameters, body fields, answers and required role.
"""

from __future__ import annotations

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>refunds HTTP API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.6rem;border-radius:4px}
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.4rem .9rem}
.m{font-weight:700;display:inline-block;min-width:4.5rem}
.get{color:#0a6}.post{color:#05c}.delete{color:#c22}
code{background:#f1f1f1;padding:0 .2rem}table{border-collapse:collapse;margin:.3rem 0}
td,th{border-bottom:1px solid #eee;padding:.15rem .6rem;text-align:left;vertical-align:top}
</style></head>
<body><h1 id="title">refunds HTTP API</h1>
<p>Machine-readable: <a href="openapi.json">openapi.json</a></p>
<pre id="about"></pre><div id="ops">Loading...</div>
<script>
"use strict";
function el(tag, text, cls){const e=document.createElement(tag);
  if(text!==undefined&&text!==null)e.textContent=String(text);if(cls)e.className=cls;return e;}
function ref(spec, s){while(s&&s.$ref){s=spec.components.schemas[s.$ref.split("/").pop()];}
  return s||{};}
function typeOf(spec, s){s=s||{};if(s.$ref)return s.$ref.split("/").pop();
  if(s.anyOf)return s.anyOf.map(x=>typeOf(spec,x)).join(" | ");
  if(s.enum)return s.enum.map(x=>JSON.stringify(x)).join(" | ");
  if(s.type==="array")return typeOf(spec,s.items)+"[]";return s.type||"any";}
function table(rows, head){const t=el("table");const h=el("tr");
  head.forEach(x=>h.appendChild(el("th",x)));t.appendChild(h);
  rows.forEach(r=>{const tr=el("tr");r.forEach(x=>tr.appendChild(el("td",x)));t.appendChild(tr);});
  return t;}
function fields(spec, schema){const s=ref(spec, schema);const req=new Set(s.required||[]);
  return Object.entries(s.properties||{}).map(([n,p])=>
    [n, typeOf(spec,p), req.has(n)?"required":"optional", p.description||p.title||""]);}
fetch("openapi.json").then(r=>r.json()).then(spec=>{
  document.getElementById("title").textContent=spec.info.title+" "+spec.info.version;
  document.getElementById("about").textContent=spec.info.description||"";
  const ops=document.getElementById("ops");ops.textContent="";
  Object.entries(spec.paths).forEach(([path,item])=>Object.entries(item).forEach(([m,op])=>{
    const box=el("div",null,"op");const head=el("h3");
    head.appendChild(el("span",m.toUpperCase(),"m "+m));head.appendChild(el("code",path));
    box.appendChild(head);if(op.summary)box.appendChild(el("p",op.summary));
    if(op.description)box.appendChild(el("pre",op.description));
    if(op.security)box.appendChild(el("p","Authorization: Bearer <token>"));
    if(op.parameters&&op.parameters.length){box.appendChild(el("h4","Parameters"));
      box.appendChild(table(op.parameters.map(p=>[p.name,p.in,typeOf(spec,p.schema),
        p.required?"required":"optional",p.description||""]),
        ["name","in","type","","description"]));}
    const body=op.requestBody&&op.requestBody.content["application/json"];
    if(body){box.appendChild(el("h4","Body ("+typeOf(spec,body.schema)+")"));
      box.appendChild(table(fields(spec,body.schema),["field","type","","description"]));}
    box.appendChild(el("h4","Answers"));
    box.appendChild(table(Object.entries(op.responses).map(([c,r])=>{
      const j=r.content&&r.content["application/json"];
      return [c,r.description||"",j?typeOf(spec,j.schema):""];}),["status","meaning","body"]));
    ops.appendChild(box);}));
  const schemas=el("div");schemas.appendChild(el("h2","Schemas"));
  Object.entries(spec.components.schemas||{}).forEach(([n,s])=>{
    schemas.appendChild(el("h3",n));if(s.description)schemas.appendChild(el("p",s.description));
    if(s.properties)schemas.appendChild(table(fields(spec,s),["field","type","","description"]));
    else if(s.enum)schemas.appendChild(el("p",typeOf(spec,s)));});
  ops.appendChild(schemas);
}).catch(e=>{document.getElementById("ops").textContent="cannot load openapi.json: "+e;});
</script></body></html>
"""

// The dashboard's page and script, served as they are (no build step, no CDN). The script builds
// every view from the audit stream (/ws/audit) and the job list (/ui/api/jobs), and shows the
// chain's verification (/ui/api/verify). Values are set with textContent only.

export const INDEX_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>coreason-enclave dashboard</title>
<link rel="stylesheet" href="/ui/uplot.css">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 9px;text-align:left}
.ok{color:#07672b}.bad{color:#b00020}.bar{background:#eee;width:220px;height:10px;position:relative;display:inline-block}
.bar i{position:absolute;left:0;top:0;bottom:0;background:#3a78c2}.bar b{position:absolute;top:-3px;bottom:-3px;width:2px;background:#b00020}
.bar u{position:absolute;top:-3px;bottom:-3px;width:2px;background:#e08a00}code{font-size:12px}
</style></head><body>
<h1>coreason-enclave &mdash; federation dashboard</h1>
<div id="chain">audit chain: <span id="chain-status">checking...</span></div>
<h2>Jobs</h2><table id="jobs"><thead><tr><th>job</th><th>status</th><th>rounds</th><th>reason</th></tr></thead><tbody></tbody></table>
<h2>Rounds of job <span id="job-id">-</span></h2>
<div id="chart"></div>
<table id="rounds"><thead><tr><th>round</th><th>accuracy</th><th>loss</th><th>sites</th><th>examples</th><th>seconds</th><th>model sha256</th></tr></thead><tbody></tbody></table>
<h2>Privacy budget per site (target <span id="target">-</span>, ceiling 5.0)</h2>
<table id="epsilon"><thead><tr><th>site</th><th>epsilon spent</th><th></th></tr></thead><tbody></tbody></table>
<h2>Sites and attestation</h2>
<table id="sites"><thead><tr><th>site</th><th>evidence</th><th>measurement</th><th>TCB</th><th>verdict</th><th>reason</th><th>last verified</th><th>state</th></tr></thead><tbody></tbody></table>
<h2>Audit tail</h2>
<table id="audit"><thead><tr><th>seq</th><th>time</th><th>actor</th><th>kind</th><th>payload</th></tr></thead><tbody></tbody></table>
<script src="/ui/uplot.js"></script><script src="/ui/app.js"></script>
</body></html>
`;

export const APP_JS = `"use strict";
const CEILING = 5.0;
const S = { entries: [], job: null, rounds: [], eps: new Map(), sites: new Map(), target: null, last: 0 };
const $ = (s) => document.querySelector(s);
function row(tbody, cells, attrs) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c;
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
  return tr;
}
const fix = (x, d) => (typeof x === "number" ? x.toFixed(d) : "-");
let plot = null;
function chart() {
  const xs = S.rounds.map((r) => r.round);
  const data = [xs, S.rounds.map((r) => r.accuracy ?? null), S.rounds.map((r) => r.loss ?? null)];
  if (!plot) {
    plot = new uPlot({ width: 640, height: 240, title: "accuracy and loss per round",
      scales: { x: { time: false } },
      series: [{ label: "round" }, { label: "accuracy", stroke: "#3a78c2", width: 2 }, { label: "loss", stroke: "#e08a00", width: 2, dash: [6, 4] }],
      axes: [{ label: "round" }, {}] }, data, $("#chart"));
  } else plot.setData(data);
}
function render() {
  $("#job-id").textContent = S.job || "-";
  $("#target").textContent = S.target == null ? "-" : String(S.target);
  const rb = $("#rounds tbody"); rb.textContent = "";
  for (const r of S.rounds) row(rb, [String(r.round), fix(r.accuracy, 4), fix(r.loss, 4), String(r.sites), String(r.examples), fix(r.seconds, 2), r.model_sha256.slice(0, 16)], { "data-round": String(r.round) });
  const eb = $("#epsilon tbody"); eb.textContent = "";
  for (const [site, e] of S.eps) {
    const bar = document.createElement("span"); bar.className = "bar";
    const fill = document.createElement("i"); fill.style.width = Math.min(100, (e / CEILING) * 100) + "%"; bar.appendChild(fill);
    if (S.target != null) { const t = document.createElement("u"); t.style.left = (S.target / CEILING) * 100 + "%"; t.title = "target"; bar.appendChild(t); }
    const c = document.createElement("b"); c.style.left = "calc(100% - 2px)"; c.title = "ceiling 5.0"; bar.appendChild(c);
    row(eb, [site, e.toFixed(4), bar], { "data-site": site });
  }
  const sb = $("#sites tbody"); sb.textContent = "";
  for (const [site, s] of S.sites) {
    const v = document.createElement("span"); v.textContent = s.verdict || "-"; v.className = s.verdict === "TRUSTED" ? "ok" : "bad";
    row(sb, [site, s.kind || "-", (s.measurement || "-").slice(0, 16), s.tcb || "-", v, s.reason || "-", s.at || "-", s.state || "active"], { "data-site": site });
  }
  const ab = $("#audit tbody"); ab.textContent = "";
  for (const e of S.entries.slice(-15).reverse()) {
    const p = document.createElement("code"); p.textContent = JSON.stringify(e.payload).slice(0, 140);
    row(ab, [String(e.seq), e.at, e.actor, e.kind, p]);
  }
  chart();
}
function take(e) {
  S.entries.push(e); S.last = e.seq;
  if (S.entries.length > 500) S.entries.shift();
  const p = e.payload;
  if (e.kind === "job_started") { S.job = p.job_id; S.rounds = []; S.eps = new Map(); S.sites = new Map(); S.target = p.target_epsilon ?? null; }
  if (p.job_id && S.job && p.job_id !== S.job && e.kind !== "job_started") return;
  const site = (id) => { if (!S.sites.has(id)) S.sites.set(id, {}); return S.sites.get(id); };
  if (e.kind === "attestation_verdict") Object.assign(site(p.site), { kind: p.evidence_kind, measurement: p.measurement, tcb: p.tcb, verdict: p.verdict, reason: p.reason, at: e.at });
  if (e.kind === "budget_spent") S.eps.set(p.site, p.epsilon_after);
  if (e.kind === "update_rejected") site(p.site).state = p.state + " (" + p.reason + ")";
  if (e.kind === "round_aggregated") S.rounds.push(p);
}
let timer = null;
function schedule() { if (!timer) timer = setTimeout(() => { timer = null; render(); }, 100); }
function connect() {
  const ws = new WebSocket("wss://" + location.host + "/ws/audit?from=" + (S.last + 1));
  ws.onmessage = (m) => { take(JSON.parse(m.data)); schedule(); };
  ws.onclose = () => setTimeout(connect, 1000);
}
async function poll() {
  try {
    const jobs = await (await fetch("/ui/api/jobs")).json();
    const jb = $("#jobs tbody"); jb.textContent = "";
    for (const j of jobs) row(jb, [j.job_id, j.status, j.rounds_completed + "/" + j.rounds, j.reason || ""], { "data-job": j.job_id });
    const v = await (await fetch("/ui/api/verify")).json();
    const s = $("#chain-status");
    s.textContent = v.intact
      ? "intact, " + v.entries + " entries, signed through seq " + v.signedThrough + (v.head && v.head.seq > v.signedThrough ? " (" + (v.head.seq - v.signedThrough) + " pending the next signed head)" : "")
      : "NOT intact at seq " + v.problem.seq + " (" + v.problem.kind + "): " + v.problem.message;
    s.className = v.intact ? "ok" : "bad";
  } catch (err) { /* the next poll retries */ }
  setTimeout(poll, 1500);
}
connect(); poll();
`;

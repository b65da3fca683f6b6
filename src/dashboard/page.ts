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
#chart{display:flex;flex-wrap:wrap;gap:12px}.muted{color:#666}tr.out td{background:#fff4f4}
</style></head><body>
<h1>coreason-enclave &mdash; federation dashboard</h1>
<div id="chain">audit chain: <span id="chain-status">checking...</span></div>
<h2>Jobs</h2><table id="jobs"><thead><tr><th>job</th><th>status</th><th>rounds</th><th>reason</th></tr></thead><tbody></tbody></table>
<h2>Rounds of job <span id="job-id">-</span></h2>
<div id="chart"><div id="chart-accuracy"></div><div id="chart-loss"></div></div>
<p id="baseline-note">non-private baseline: <span id="baseline">not known for this job (the coordinator pools no training data: --baseline-data)</span></p>
<table id="rounds"><thead><tr><th>round</th><th>accuracy</th><th>loss</th><th>sites</th><th>examples</th><th>seconds</th><th>model sha256</th></tr></thead><tbody></tbody></table>
<h2>Privacy budget per site (target <span id="target">-</span>, ceiling 5.0)</h2>
<table id="epsilon"><thead><tr><th>site</th><th>epsilon spent</th><th></th></tr></thead><tbody></tbody></table>
<h2>Sites and attestation</h2>
<table id="sites"><thead><tr><th>site</th><th>evidence</th><th>measurement</th><th>TCB</th><th>verdict</th><th>failed check</th><th>last verified</th><th>state</th><th>excluded or dropped</th></tr></thead><tbody></tbody></table>
<h2>Audit tail</h2>
<table id="audit"><thead><tr><th>seq</th><th>time</th><th>actor</th><th>kind</th><th>payload</th></tr></thead><tbody></tbody></table>
<script src="/ui/uplot.js"></script><script src="/ui/app.js"></script>
</body></html>
`;

export const APP_JS = `"use strict";
const CEILING = 5.0;
// What each check the verifiers and the trust policy run establishes (docs/attestation.md); the
// ledger names the failed check, never its sentence. \`enclave verify\` prints the full detail.
const CHECKS = {
  "format": "the evidence is not in its kind's format", "signature": "the evidence's signature does not verify",
  "kind-consistency": "the evidence's bytes are another kind than labelled", "label-consistency": "the evidence's label (hardware, simulated, insecure) does not match its bytes",
  "policy.kind": "this evidence kind or label is not allowed by the trust policy", "policy.debug": "a debuggable guest or enclave",
  "policy.measurement": "the launch measurement is not in the policy's allow-list", "policy.product": "the processor product is not allowed",
  "policy.vmpl": "the report was requested at a VMPL the policy refuses", "policy.min_tcb": "the TCB is below the policy's minimum",
  "policy.min_guest_svn": "the guest SVN is below the policy's minimum", "policy.min_isv_svn": "the ISV SVN is below the policy's minimum",
  "policy.tcb_status": "Intel's TCB status is not one the policy accepts", "policy.firmware_versions": "GPU firmware versions are not allowed",
  "policy.rim_authenticity": "the GPU reference values are not authentic", "policy.rim_versions": "the GPU reference values do not match",
  "policy.binding": "the evidence does not bind this session's nonce and TLS key (replayed or relayed)",
  "policy.runtime_measurement": "the isolated runtime's measurement is not allowed", "policy.age": "the evidence is too old",
};
const S = { entries: [], job: null, rounds: [], eps: new Map(), sites: new Map(), target: null, last: 0, baselines: new Map() };
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
// Rounds are integers: ticks at 1, 2, 5, 10, ... rounds apart, never at 1.5.
// The labels drawn are also kept on the chart's root (data-round-ticks), for a reader and a test.
const roundAxis = { label: "round", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
  values: (u, v) => { const out = v.map((x) => (Number.isInteger(x) ? String(x) : "")); u.root.dataset.roundTicks = out.join(","); return out; } };
const roundScale = { time: false, range: (u, min, max) => [Math.min(1, min), Math.max(min + 1, max)] };
const plots = {};
function chart(id, title, metric, color) {
  const xs = S.rounds.map((r) => r.round);
  const b = S.baselines.get(S.job);
  const series = [{ label: "round" }, { label: metric, stroke: color, width: 2, points: { show: true, size: 6 } }];
  const data = [xs, S.rounds.map((r) => r[metric] ?? null)];
  if (b) { series.push({ label: "non-private baseline", stroke: "#555", width: 1.5, dash: [6, 4], points: { show: false } }); data.push(xs.map(() => b[metric])); }
  const key = id + ":" + series.length;
  if (!plots[id] || plots[id].key !== key) {
    if (plots[id]) plots[id].plot.destroy();
    plots[id] = { key, plot: new uPlot({ width: 520, height: 240, title, scales: { x: roundScale }, series, axes: [roundAxis, {}] }, data, $("#" + id)) };
  } else plots[id].plot.setData(data);
}
function siteState(s) {
  const last = s.out[s.out.length - 1];
  if (!last) return s.verdict ? "active" : "-";
  return last.round >= s.activeRound ? last.state + " (" + last.reason + ")" : "active";
}
function render() {
  $("#job-id").textContent = S.job || "-";
  $("#target").textContent = S.target == null ? "-" : String(S.target);
  const b = S.baselines.get(S.job);
  $("#baseline").textContent = b ? "accuracy " + fix(b.accuracy, 4) + ", loss " + fix(b.loss, 4) + " (" + b.examples + " pooled examples, " + b.epochs + " epochs)" : "not known for this job (the coordinator pools no training data: --baseline-data)";
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
    const m = document.createElement("code"); m.textContent = s.measurement || "-"; m.title = s.measurement || "";
    const failed = s.failed ? s.failed + ": " + (CHECKS[s.failed] || "see enclave verify") : s.verdict === "UNTRUSTED" ? s.reason : "-";
    const tcb = (s.tcb || "-") + (s.tcbStatus ? " (" + s.tcbStatus + ")" : "");
    const out = s.out.map((o) => "round " + o.round + ": " + o.state + " (" + o.reason + ")").join("; ") || "-";
    const state = siteState(s);
    row(sb, [site, s.kind || "-", m, tcb, v, failed, s.at || "-", state, out], { "data-site": site, class: state === "active" ? "" : "out" });
  }
  const ab = $("#audit tbody"); ab.textContent = "";
  for (const e of S.entries.slice(-15).reverse()) {
    const p = document.createElement("code"); p.textContent = JSON.stringify(e.payload).slice(0, 140);
    row(ab, [String(e.seq), e.at, e.actor, e.kind, p]);
  }
  chart("chart-accuracy", "test accuracy per round", "accuracy", "#3a78c2");
  chart("chart-loss", "test loss per round", "loss", "#e08a00");
}
function take(e) {
  S.entries.push(e); S.last = e.seq;
  if (S.entries.length > 500) S.entries.shift();
  const p = e.payload;
  if (e.kind === "baseline_measured") S.baselines.set(p.job_id, p);
  if (e.kind === "job_started") { S.job = p.job_id; S.rounds = []; S.eps = new Map(); S.sites = new Map(); S.target = p.target_epsilon ?? null; }
  if (p.job_id && S.job && p.job_id !== S.job && e.kind !== "job_started") return;
  const site = (id) => { if (!S.sites.has(id)) S.sites.set(id, { out: [], activeRound: 0 }); return S.sites.get(id); };
  if (e.kind === "attestation_verdict") Object.assign(site(p.site), { kind: p.evidence_kind, measurement: p.measurement, tcb: p.tcb, tcbStatus: p.tcb_status, verdict: p.verdict, reason: p.reason, failed: p.failed_check, at: e.at });
  if (e.kind === "budget_spent") S.eps.set(p.site, p.epsilon_after);
  if (e.kind === "update_received") site(p.site).activeRound = p.round + 1;
  if (e.kind === "update_rejected") site(p.site).out.push({ round: p.round, state: p.state, reason: p.reason });
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

import { escapeXml, lineChart, type Series } from "./svg-chart.js";

export interface RoundRow {
  round: number;
  clients: number;
  loss: number;
  accuracy: number;
  /** Wall time of the round (attest, train, aggregate, evaluate). */
  seconds: number;
  /** Spent epsilon per client after the round. */
  epsilon: Record<string, number>;
}

export interface ReportInput {
  title: string;
  subtitle: string;
  rounds: RoundRow[];
  baselineAccuracy?: number;
  /** Examples in the held-out test set every round (and the baseline) is scored on. */
  testExamples: number;
  /** What the run was trained with: strategy, rounds, local plan, DP parameters. */
  hyperparameters: [string, string][];
  targetEpsilon: number;
  summary: [string, string][];
  clients: { id: string; epsilon: number; delta: number; examples: number; status: string }[];
}

/** A self-contained HTML report (inline SVG, no scripts, no external assets). */
export function renderHtmlReport(r: ReportInput): string {
  const acc: Series[] = [
    { name: "global model", points: r.rounds.map((x) => ({ x: x.round, y: x.accuracy * 100 })) },
  ];
  if (r.baselineAccuracy !== undefined) {
    acc.push({
      name: "non-private baseline",
      dashed: true,
      points: r.rounds.map((x) => ({ x: x.round, y: r.baselineAccuracy! * 100 })),
    });
  }
  const ids = [...new Set(r.rounds.flatMap((x) => Object.keys(x.epsilon)))];
  const eps: Series[] = ids.map((id) => ({
    name: id,
    points: r.rounds.filter((x) => id in x.epsilon).map((x) => ({ x: x.round, y: x.epsilon[id] })),
  }));
  const loss: Series[] = [{ name: "test loss", points: r.rounds.map((x) => ({ x: x.round, y: x.loss })) }];
  const times = r.rounds.map((x) => x.seconds);
  const perRound = times.length
    ? `${(times.reduce((a, b) => a + b, 0) / times.length).toFixed(2)} s mean, ${Math.min(...times).toFixed(2)}–${Math.max(...times).toFixed(2)} s`
    : "–";
  const facts: [string, string][] = [
    ...r.summary,
    ["test set", `${r.testExamples} held-out examples (every round's accuracy and loss, and the baseline)`],
    ["time per round", perRound],
  ];
  const table = (rows: [string, string][]) =>
    `<table><tbody>${rows.map(([k, v]) => `<tr><th>${escapeXml(k)}</th><td>${escapeXml(v)}</td></tr>`).join("")}</tbody></table>`;
  const row = (cells: string[]) => `<tr>${cells.map((c) => `<td>${escapeXml(c)}</td>`).join("")}</tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(r.title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:980px;color:#222}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0} table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ddd;padding:.35rem .7rem;text-align:left} th{background:#f5f5f5}
.charts{display:flex;flex-wrap:wrap;gap:1rem} .card{border:1px solid #eee;border-radius:6px;padding:.5rem}
</style></head><body>
<h1>${escapeXml(r.title)}</h1><p class="sub">${escapeXml(r.subtitle)}</p>
${table(facts)}
<h2>Hyperparameters</h2>
${table(r.hyperparameters)}
<div class="charts">
<div class="card">${lineChart(acc, {
    title: "Test accuracy per round",
    xLabel: "round",
    yLabel: "accuracy (%)",
    // Zoom to where the curves are: a 0..100 axis flattens a 2-point gap into nothing.
    yMin: Math.max(0, Math.floor(Math.min(...acc.flatMap((s) => s.points.map((p) => p.y))) / 5) * 5 - 5),
    yMax: 100,
  })}</div>
<div class="card">${lineChart(eps, {
    title: "Privacy spent per client",
    xLabel: "round",
    yLabel: "epsilon",
    yMin: 0,
    guides: [{ y: r.targetEpsilon, label: `target ε = ${r.targetEpsilon}` }],
  })}</div>
<div class="card">${lineChart(loss, { title: "Test loss per round", xLabel: "round", yLabel: "loss" })}</div>
</div>
<h2>Clients</h2>
<table><thead><tr><th>client</th><th>epsilon</th><th>delta</th><th>examples</th><th>status</th></tr></thead><tbody>
${r.clients.map((c) => row([c.id, c.epsilon.toFixed(4), String(c.delta), String(c.examples), c.status])).join("\n")}
</tbody></table>
<h2>Rounds</h2>
<table><thead><tr><th>round</th><th>clients</th><th>accuracy</th><th>loss</th><th>seconds</th>${ids.map((i) => `<th>ε ${escapeXml(i)}</th>`).join("")}</tr></thead><tbody>
${r.rounds
  .map((x) =>
    row([
      String(x.round),
      String(x.clients),
      (x.accuracy * 100).toFixed(2) + "%",
      x.loss.toFixed(4),
      x.seconds.toFixed(2),
      ...ids.map((i) => (i in x.epsilon ? x.epsilon[i].toFixed(3) : "–")),
    ]),
  )
  .join("\n")}
</tbody></table>
</body></html>
`;
}

import { describe, expect, it } from "vitest";
import { renderHtmlReport, type ReportInput } from "./html-report.js";

const input = (): ReportInput => ({
  title: "t",
  subtitle: "s",
  rounds: [1, 2, 3].map((round) => ({
    round,
    clients: 3,
    loss: 0.5 / round,
    accuracy: 0.8 + round / 100,
    seconds: round === 2 ? 1.5 : 0.5,
    // three sites with the same shard size spend exactly the same epsilon: the lines coincide
    epsilon: { "site-a": round, "site-b": round, "site-c": round / 2 },
  })),
  baselineAccuracy: 0.9,
  testExamples: 114,
  hyperparameters: [
    ["learning rate", "0.05"],
    ["local epochs per round", "1"],
  ],
  targetEpsilon: 3,
  summary: [["job", "j"]],
  clients: [],
});

/** The epsilon chart's SVG (the second chart). */
const epsilonChart = (html: string) => html.split("<svg")[2];

describe("renderHtmlReport", () => {
  it("draws each site with its own dash pattern and marker, and says which lines coincide", () => {
    const svg = epsilonChart(renderHtmlReport(input()));
    const paths = [
      ...svg.matchAll(/<path d="M[^"]*" fill="none" stroke="[^"]*" stroke-width="2"([^/]*)\/>/g),
    ];
    expect(paths).toHaveLength(3);
    expect(new Set(paths.map((p) => p[1])).size).toBe(3); // three distinct dash attributes
    expect(svg).toContain("<circle"); // site-a's markers
    expect(svg).toContain("<rect"); // site-b's squares
    expect(svg).toContain("site-b (= site-a)");
    expect(svg).not.toContain("site-c (=");
  });

  it("states the hyperparameters, the test-set size and the time per round", () => {
    const html = renderHtmlReport(input());
    expect(html).toContain("<h2>Hyperparameters</h2>");
    expect(html).toMatch(/<th>learning rate<\/th><td>0\.05<\/td>/);
    expect(html).toContain("114 held-out examples");
    expect(html).toContain("0.83 s mean, 0.50–1.50 s");
    expect(html).toMatch(/<th>seconds<\/th>/);
    expect(html).toContain("<td>1.50</td>");
  });

  it("keeps a long legend inside the chart", () => {
    const i = input();
    for (const r of i.rounds) for (let k = 0; k < 30; k++) r.epsilon[`s${k}`] = k + r.round;
    const svg = epsilonChart(renderHtmlReport(i));
    expect(svg).toMatch(/… and \d+ more \(see the tables\)/);
  });
});

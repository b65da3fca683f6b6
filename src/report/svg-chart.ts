/** A small, dependency-free SVG line chart for reports (static, printable, no scripts). */

export interface Series {
  name: string;
  points: { x: number; y: number }[];
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  yMin?: number;
  yMax?: number;
  /** Horizontal reference lines, e.g. the epsilon target. */
  guides?: { y: number; label: string }[];
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
/** Per-series dash patterns and marker shapes, so lines that overlap stay apart in print and grey. */
const DASHES = ["", "7 3", "2 3", "9 3 2 3", "4 4", "1 5", "12 4", "5 2 1 2"];
const MARKERS = ["circle", "square", "triangle", "diamond", "cross", "plus", "triangle-down", "bar"] as const;

/** One marker shape at (x, y), about 6 px across. */
function marker(shape: (typeof MARKERS)[number], x: number, y: number, color: string): string {
  const f = (n: number) => n.toFixed(1);
  const stroke = `fill="#fff" stroke="${color}" stroke-width="1.5"`;
  switch (shape) {
    case "circle":
      return `<circle cx="${f(x)}" cy="${f(y)}" r="3" ${stroke}/>`;
    case "square":
      return `<rect x="${f(x - 3)}" y="${f(y - 3)}" width="6" height="6" ${stroke}/>`;
    case "triangle":
      return `<path d="M${f(x)},${f(y - 3.5)} L${f(x + 3.5)},${f(y + 3)} L${f(x - 3.5)},${f(y + 3)} Z" ${stroke}/>`;
    case "triangle-down":
      return `<path d="M${f(x)},${f(y + 3.5)} L${f(x + 3.5)},${f(y - 3)} L${f(x - 3.5)},${f(y - 3)} Z" ${stroke}/>`;
    case "diamond":
      return `<path d="M${f(x)},${f(y - 4)} L${f(x + 4)},${f(y)} L${f(x)},${f(y + 4)} L${f(x - 4)},${f(y)} Z" ${stroke}/>`;
    case "cross":
      return `<path d="M${f(x - 3)},${f(y - 3)} L${f(x + 3)},${f(y + 3)} M${f(x - 3)},${f(y + 3)} L${f(x + 3)},${f(y - 3)}" stroke="${color}" stroke-width="1.8"/>`;
    case "plus":
      return `<path d="M${f(x - 4)},${f(y)} L${f(x + 4)},${f(y)} M${f(x)},${f(y - 4)} L${f(x)},${f(y + 4)}" stroke="${color}" stroke-width="1.8"/>`;
    case "bar":
      return `<rect x="${f(x - 1.5)}" y="${f(y - 4)}" width="3" height="8" fill="${color}"/>`;
  }
}

/** For each series, the first earlier one with exactly the same points (drawn on top of it). */
function sameAs(series: Series[]): (string | undefined)[] {
  const key = (s: Series) => JSON.stringify(s.points);
  return series.map((s, i) => series.slice(0, i).find((t) => key(t) === key(s))?.name);
}

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export function lineChart(series: Series[], o: LineChartOptions): string {
  const W = o.width ?? 700;
  const H = o.height ?? 320;
  const m = { l: 56, r: 200, t: 36, b: 44 };
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y).concat((o.guides ?? []).map((g) => g.y));
  const xMin = Math.min(...xs, 1);
  const xMax = Math.max(...xs, xMin + 1);
  let yMin = o.yMin ?? Math.min(...ys, 0);
  let yMax = o.yMax ?? Math.max(...ys, 1e-9);
  if (yMax === yMin) {
    yMax += 1;
    yMin -= 1;
  }
  const px = (x: number) => m.l + ((x - xMin) / (xMax - xMin)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - yMin) / (yMax - yMin)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(o.title)}">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(
    `<text x="${W / 2 - m.r / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${escapeXml(o.title)}</text>`,
  );
  for (const t of niceTicks(yMin, yMax)) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(t)}" y2="${py(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 6}" y="${py(t) + 4}" text-anchor="end" font-size="11">${t}</text>`);
  }
  for (const t of niceTicks(xMin, xMax, Math.min(10, Math.max(1, Math.round(xMax - xMin))))) {
    parts.push(`<text x="${px(t)}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle" font-size="12">${escapeXml(o.xLabel)}</text>`,
  );
  parts.push(
    `<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(o.yLabel)}</text>`,
  );
  for (const g of o.guides ?? []) {
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${py(g.y)}" y2="${py(g.y)}" stroke="#999" stroke-dasharray="6 4"/>`,
    );
    parts.push(
      `<text x="${W - m.r - 4}" y="${py(g.y) - 4}" text-anchor="end" font-size="11" fill="#555">${escapeXml(g.label)}</text>`,
    );
  }
  const same = sameAs(series);
  const room = Math.floor((H - m.t - 14) / 18);
  const shown = series.length > room ? room - 1 : series.length;
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const dash = s.dashed ? "5 3" : DASHES[i % DASHES.length];
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : "";
    const shape = MARKERS[i % MARKERS.length];
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ");
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dashAttr}/>`);
    for (const p of s.points) parts.push(marker(shape, px(p.x), py(p.y), color));
    const ly = m.t + 14 + i * 18;
    if (i >= shown) {
      if (i === shown)
        parts.push(
          `<text x="${W - m.r + 8}" y="${ly}" font-size="12">… and ${series.length - shown} more (see the tables)</text>`,
        );
      return;
    }
    parts.push(
      `<line x1="${W - m.r + 8}" x2="${W - m.r + 36}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${dashAttr}/>`,
    );
    parts.push(marker(shape, W - m.r + 22, ly - 4, color));
    const label = same[i] ? `${s.name} (= ${same[i]})` : s.name;
    parts.push(`<text x="${W - m.r + 42}" y="${ly}" font-size="12">${escapeXml(label)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

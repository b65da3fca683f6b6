#!/usr/bin/env node
// Benchmark runner: `npm run bench` (builds, then runs every bench/*.bench.mjs).
//
//   node bench/run.mjs [--json] [--filter NAME] [--list]
//
// Each bench file exports `async function run({ json, filter })` returning an array of flat
// records ({ bench: "kernels", op: ..., ... }). Benches import the built code from ../dist.
//   --json         one JSON object per record per line on stdout (anything a bench prints goes
//                  to stderr, so stdout stays machine-readable)
//   --filter NAME  run the benches whose name (file name without .bench.mjs) contains NAME, or
//                  that NAME starts with (so "dpsgd-a" selects dpsgd, which sub-filters itself)
// Without --json a bench may print its own readable lines; if it prints nothing, the runner
// prints its records as a table. Exit code 1 if any bench threw.
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const SUFFIX = ".bench.mjs";

function parseArgs(argv) {
  const opts = { json: false, filter: undefined, list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") opts.json = true;
    else if (a === "--list") opts.list = true;
    else if (a === "--filter") opts.filter = argv[++i];
    else if (a.startsWith("--filter=")) opts.filter = a.slice("--filter=".length);
    else if (a === "--help" || a === "-h") {
      console.log("usage: node bench/run.mjs [--json] [--filter NAME] [--list]");
      process.exit(0);
    } else {
      console.error(`bench: unknown argument ${a}`);
      process.exit(2);
    }
  }
  if (opts.filter !== undefined && opts.filter.trim() === "") {
    console.error("bench: --filter needs a name");
    process.exit(2);
  }
  return opts;
}

function formatTable(records) {
  const cols = [];
  for (const r of records) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v) =>
    v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  const rows = records.map((r) => cols.map((c) => cell(r[c])));
  const width = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const numeric = cols.map((_, i) => rows.every((r) => r[i] === "" || !Number.isNaN(Number(r[i]))));
  const fmt = (cells) =>
    cells
      .map((s, i) => (numeric[i] ? s.padStart(width[i]) : s.padEnd(width[i])))
      .join("  ")
      .trimEnd();
  return [fmt(cols), fmt(width.map((w) => "-".repeat(w))), ...rows.map(fmt)].join("\n");
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const names = readdirSync(here)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
  const selected = names.filter((n) => !opts.filter || n.includes(opts.filter) || opts.filter.startsWith(n));
  if (opts.list) {
    for (const n of selected) console.log(n);
    return 0;
  }
  if (selected.length === 0) {
    console.error(`bench: no bench matches ${opts.filter ? `--filter ${opts.filter}` : "bench/*.bench.mjs"}`);
    return 1;
  }
  if (!existsSync(join(here, "..", "dist", "index.js")))
    console.error("bench: dist/ is missing; run `npm run build` first (npm run bench does)");

  let failed = 0;
  for (const name of selected) {
    const log = console.log;
    let printed = 0;
    console.log = opts.json
      ? (...a) => console.error(...a)
      : (...a) => {
          printed++;
          log(...a);
        };
    let records = [];
    try {
      const mod = await import(pathToFileURL(join(here, name + SUFFIX)).href);
      if (typeof mod.run !== "function") throw new Error(`${name}${SUFFIX} does not export run()`);
      records = (await mod.run({ json: opts.json, filter: opts.filter })) ?? [];
    } catch (e) {
      failed++;
      console.error(`bench ${name} failed: ${e?.stack ?? e}`);
    } finally {
      console.log = log;
    }
    records = records.map((r) => ({ bench: name, ...r }));
    if (opts.json) for (const r of records) console.log(JSON.stringify(r));
    else if (printed === 0 && records.length > 0) console.log(`\n== ${name} ==\n${formatTable(records)}`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();

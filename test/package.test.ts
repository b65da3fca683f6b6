// The package as a user receives it: `npm pack`, unpacked into an empty project whose node_modules
// holds only the declared runtime dependencies (linked from this repository's node_modules, so the
// test stays offline), then imported through every documented entry point and run from its bin.
// Needs `npm run build` first (npm test does it).
import { execFileSync } from "node:child_process";
import { builtinModules } from "node:module";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  name: string;
  dependencies: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
};

let tmp = "";
let app = "";
let installed = "";
let packed: string[] = [];

function unpack(tarball: string, into: string): void {
  mkdirSync(into, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", into, "--strip-components=1"]);
}

function runApp(source: string): string {
  writeFileSync(join(app, "main.mjs"), source);
  return execFileSync(process.execPath, ["main.mjs"], { cwd: app, encoding: "utf8" });
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "enclave-pack-"));
  const out = execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], {
    cwd: REPO,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  packed = info.files.map((f) => f.path);
  app = join(tmp, "app");
  installed = join(app, "node_modules", pkg.name);
  unpack(join(tmp, info.filename), installed);
  for (const dep of Object.keys(pkg.dependencies)) {
    mkdirSync(dirname(join(app, "node_modules", dep)), { recursive: true });
    symlinkSync(join(REPO, "node_modules", dep), join(app, "node_modules", dep), "dir");
  }
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "first-day", type: "module" }));
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the packed tarball", () => {
  it("ships the build, the bin, the bundled data, the schemas, the docs and the native sources only", () => {
    const top = new Set(packed.map((p) => p.split("/")[0]));
    expect([...top].sort()).toEqual(
      [
        "README.md",
        "bin",
        "data",
        "dist",
        "docs",
        "native",
        "package.json",
        "proto",
        "schemas",
        "scripts",
      ].sort(),
    );
    expect(packed.filter((p) => /\.test\.|\.map$|^test\/|^src\/|^bench\//.test(p))).toEqual([]);
    expect(packed).toContain("native/binding.gyp");
    // 889 before the allow-list; the compiled modules (.js + .d.ts) are most of what is left.
    expect(packed.length).toBeLessThan(700);
  });

  it("points every export at a file in the tarball", () => {
    const targets = Object.values(pkg.exports).flatMap((t) =>
      typeof t === "string" ? [t] : [t.types, t.default],
    );
    for (const t of targets) {
      const path = t.replace(/^\.\//, "");
      if (path.endsWith("*")) expect(packed.some((p) => p.startsWith(path.slice(0, -1)))).toBe(true);
      else expect(packed, t).toContain(path);
    }
  });

  it("imports only node built-ins and declared runtime dependencies from its compiled code", () => {
    const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
    const bare = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".js")) {
          const text = readFileSync(p, "utf8");
          for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["']([^"'./][^"']*)["']/g))
            bare.add(m[1]);
        }
      }
    };
    walk(join(installed, "dist"));
    const packages = [...bare].map((s) =>
      s.startsWith("node:")
        ? s.slice(5)
        : s.startsWith("@")
          ? s.split("/").slice(0, 2).join("/")
          : s.split("/")[0],
    );
    expect(packages.filter((p) => !allowed.has(p))).toEqual([]);
    // Test-only libraries stay out of what consumers install (src/identity imports @peculiar/x509).
    for (const dev of ["cbor-x", "pkijs"]) expect(Object.keys(pkg.dependencies)).not.toContain(dev);
  });
});

describe("an empty project using the installed package", () => {
  it("imports the root surface, every subpath, package.json and the bundled data", () => {
    const subpaths = Object.keys(pkg.exports).filter(
      (k) => k !== "." && !k.includes("*") && !k.endsWith(".json"),
    );
    const out = runApp(`
      import { createRequire } from "node:module";
      import { readFileSync } from "node:fs";
      import { fileURLToPath } from "node:url";
      import * as root from "coreason-enclave";
      import meta from "coreason-enclave/package.json" with { type: "json" };
      import { globalNorm } from "coreason-enclave/tensor";
      const subs = {};
      for (const s of ${JSON.stringify(subpaths)}) subs[s] = Object.keys(await import("coreason-enclave" + s.slice(1))).length;
      const csv = fileURLToPath(import.meta.resolve("coreason-enclave/data/breast-cancer-wisconsin.csv"));
      const schema = fileURLToPath(import.meta.resolve("coreason-enclave/schemas/FederationJob.schema.json"));
      const eps = root.computeEpsilon({ accountant: "rdp", sampleRate: 256 / 60000, noiseMultiplier: 1.1, steps: 14062, delta: 1e-5 });
      const norm = globalNorm(new Map([["w", { shape: [2], data: Float32Array.of(3, 4) }]]));
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({
        version: meta.version,
        rootNames: Object.keys(root).length,
        hasRunSimulation: typeof root.runSimulation,
        subs,
        csvRows: readFileSync(csv, "utf8").trim().split("\\n").length,
        schemaId: JSON.parse(readFileSync(schema, "utf8")).$id ?? "",
        epsilon: eps.epsilon,
        norm,
        pgLoaded: loaded.some((p) => p.includes("/node_modules/pg/")),
      }));
    `);
    const r = JSON.parse(out) as Record<string, unknown> & { subs: Record<string, number> };
    expect(r.version).toBe("0.1.0");
    expect(r.hasRunSimulation).toBe("function");
    // A small surface: the user API, not the internals.
    expect(r.rootNames).toBeLessThan(60);
    for (const s of subpaths) expect(r.subs[s], s).toBeGreaterThan(0);
    expect(r.csvRows).toBe(570);
    expect(r.epsilon).toBeCloseTo(2.5965, 3);
    expect(r.norm).toBe(5);
    // pg is loaded lazily, only when DATABASE_URL selects a PostgreSQL server.
    expect(r.pgLoaded).toBe(false);
  });

  it("keeps internals off the root export", async () => {
    const root = await import("../src/index.js");
    for (const internal of ["sampleLogGamma", "IDX_LABELS_MAGIC", "TypeScriptKernels", "rdpOfOneStep"])
      expect(Object.keys(root)).not.toContain(internal);
  });

  it("runs the CLI from the package's bin", () => {
    const out = execFileSync(
      process.execPath,
      [
        join(installed, "bin", "enclave.js"),
        "budget",
        "--sample-rate",
        "0.01",
        "--noise-multiplier",
        "1.1",
        "--steps",
        "1000",
        "--delta",
        "1e-5",
        "--json",
      ],
      { cwd: app, encoding: "utf8" },
    );
    expect(out).toContain("epsilon");
  });
});

#!/usr/bin/env node
// Builds the optional native kernels (native/) with node-gyp during `npm install`.
// It must never fail the install: without a compiler, make or node-gyp, or when the build or its
// self-check fails, it prints one line and exits 0, and the TypeScript kernels are used instead.
// A binary that builds but fails the self-check is deleted, so `auto` never picks it.
// ENCLAVE_SKIP_NATIVE=1 skips the build.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const buildDir = join(nativeDir, "build");
const logFile = join(buildDir, "build-native.log");
const addonFile = join(buildDir, "Release", "enclave_kernels.node");
const BUILD_TIMEOUT_MS = 10 * 60 * 1000;

function finish(message) {
  console.log(`coreason-enclave: ${message}`);
  process.exit(0);
}

function fallback(reason, withLog = false) {
  const log = withLog ? ` Details: ${relative(root, logFile)}` : "";
  // Only reached before node-gyp ran or after it failed (rebuild deletes the old output first).
  if (existsSync(addonFile)) finish(`native kernels not rebuilt (${reason}); keeping the existing build.`);
  finish(`native kernels not built (${reason}); using the TypeScript kernels.${log}`);
}

process.on("uncaughtException", (e) => fallback(`build script error: ${e?.code ?? e?.name ?? "unknown"}`));

function commandWorks(command) {
  if (!command) return false;
  const r = spawnSync(`${command} --version`, { shell: true, stdio: "ignore", timeout: 30_000 });
  return r.status === 0;
}

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp, // set by npm for lifecycle scripts
    join(
      dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
    join(dirname(process.execPath), "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  ];
  for (const c of candidates) if (c && existsSync(c)) return [process.execPath, c];
  if (commandWorks("node-gyp")) return ["node-gyp"];
  return null;
}

// Use the headers that ship with this Node (its prefix) rather than letting node-gyp download them.
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? [`--nodedir=${prefix}`] : [];
}

function writeLog(text) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(logFile, text);
}

// Loads the fresh binary in a separate process and checks a small gemm on every CPU path.
const SELF_CHECK = `
const m = require(process.argv[1]);
const a = Float32Array.from([1, 2, 3, 4, 5, 6]);       // 2x3
const b = Float32Array.from([7, 8, 9, 10, 11, 12]);    // 3x2
const want = [58, 64, 139, 154];
for (const p of m.paths()) {
  const c = new Float32Array(4).fill(NaN);
  m.create(p, 1).gemm(false, false, 2, 2, 3, a, b, c, 0);
  if (want.some((v, i) => c[i] !== v)) { console.log("self-check failed on " + p); process.exit(1); }
}
console.log(m.paths().join(", "));
`;

function main() {
  if (/^(1|true|yes)$/i.test(process.env.ENCLAVE_SKIP_NATIVE ?? "")) fallback("ENCLAVE_SKIP_NATIVE is set");
  if (!existsSync(join(nativeDir, "binding.gyp"))) fallback("native sources are missing");
  const cxx = process.env.CXX?.trim();
  if (cxx ? !commandWorks(cxx) : !["c++", "g++", "clang++"].some(commandWorks))
    fallback("no working C++ compiler");
  if (process.platform !== "win32" && !commandWorks("make")) fallback("make is not installed");
  const gyp = findNodeGyp();
  if (!gyp) fallback("node-gyp not found");

  const [cmd, ...pre] = gyp;
  const r = spawnSync(cmd, [...pre, "rebuild", "--release", "--jobs=max", ...nodedirArgs()], {
    cwd: nativeDir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  writeLog(`${r.stdout ?? ""}\n${r.stderr ?? ""}\n${r.error ? String(r.error) : ""}\n`);
  if (r.status !== 0 || !existsSync(addonFile))
    fallback(r.error?.code === "ETIMEDOUT" ? "build timed out" : "compilation failed", true);

  const check = spawnSync(process.execPath, ["-e", SELF_CHECK, addonFile], {
    encoding: "utf8",
    timeout: 60_000,
  });
  if (check.status !== 0) {
    writeLog(`self-check failed:\n${check.stdout ?? ""}\n${check.stderr ?? ""}\n`);
    rmSync(addonFile, { force: true });
    fallback("the built addon failed its self-check", true);
  }
  finish(`native kernels built (CPU paths: ${check.stdout.trim()})`);
}

main();

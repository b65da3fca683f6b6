import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("../..", import.meta.url).pathname;

/** A pid that is certainly not running: the largest pid Linux allows, plus one. */
const DEAD_PID = 4194305;

function run(file: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ["--import", "tsx", file, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, DATABASE_URL: "" },
    });
    let out = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (out += b));
    child.on("error", rej);
    child.on("exit", (code) => res({ code: code ?? -1, out }));
  });
}

describe("the embedded database lock, with real processes", () => {
  it(
    "admits one process at a time over many contended trials, with a dead pid in the lock file",
    { timeout: 120_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "enclave-lock-"));
      const script = join(dir, "contender.mts");
      // Each contender tries `trials` times, each at a shared wall-clock start: while it holds the
      // lock it creates `held` with O_EXCL, so two holders at once are seen as EEXIST.
      writeFileSync(
        script,
        `import { openSync, closeSync, rmSync, writeFileSync } from "node:fs";
         import { join } from "node:path";
         import { lockEmbeddedDatabase } from ${JSON.stringify(join(root, "src/storage/database.ts"))};
         const [db, t0, trials] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
         let held = 0, overlaps = 0;
         for (let t = 0; t < trials; t++) {
           const start = t0 + t * 150;
           while (Date.now() < start) await new Promise((r) => setTimeout(r, 1));
           // the previous holder died without cleaning up: its pid is still in the lock file
           try { writeFileSync(join(db, ".enclave-lock"), "${DEAD_PID}", { flag: "wx" }); } catch {}
           let release;
           try { release = await lockEmbeddedDatabase(db); } catch (e) { if (e.code !== "DATABASE_LOCKED") throw e; continue; }
           held++;
           try { closeSync(openSync(join(db, "held"), "wx")); } catch { overlaps++; }
           await new Promise((r) => setTimeout(r, 20));
           rmSync(join(db, "held"), { force: true });
           await release();
         }
         console.log(JSON.stringify({ held, overlaps }));`,
      );
      const db = join(dir, "db");
      const trials = 20;
      const t0 = Date.now() + 3000; // after every contender has started
      const results = await Promise.all(
        [0, 1, 2, 3].map(() => run(script, [db, String(t0), String(trials)])),
      );
      const stats = results.map((r) => {
        expect(r.code, r.out).toBe(0);
        return JSON.parse(r.out.trim().split("\n").pop()!) as { held: number; overlaps: number };
      });
      expect(stats.reduce((s, x) => s + x.overlaps, 0)).toBe(0);
      const held = stats.reduce((s, x) => s + x.held, 0);
      // The dead pid never blocks: trials were won (on a loaded machine a late contender may win a
      // trial again after its holder left, or a slow holder may span two trials).
      expect(held).toBeGreaterThanOrEqual(trials / 2);
    },
  );
});

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger, silentLogger } from "../logging/logger.js";
import { weightsHash } from "../model/safetensors.js";
import type { RuntimeEvent } from "../runtime/task-runtime.js";
import { ROUND_DATA_ROOT, pinKernels, smallRound } from "../../test/support/isolated-task.js";
import { parseAgentConfigText } from "./agent-config-file.js";
import { startAgentProcess } from "./agent-process.js";

pinKernels();
const dir = mkdtempSync(join(tmpdir(), "agent-isolation-"));
const config = parseAgentConfigText(`node_id: site-1\ndata_root: ${dir}\nsidecar_port: 0\n`);
const start = (mode: "microvm" | "process", cacheDir = join(dir, "no-cache")) =>
  startAgentProcess({
    config,
    configDir: dir,
    workspace: join(dir, `ws-${mode}`),
    mode: "SIMULATED",
    logger: silentLogger,
    databaseUrl: "",
    isolation: { mode, cacheDir, provider: "auto" },
  });

describe("enclave agent --isolation", () => {
  it("refuses to start under microvm without hydrated assets, naming the fix", async () => {
    await expect(start("microvm")).rejects.toMatchObject({
      code: "RUNTIME_ASSETS_INVALID",
      message: expect.stringContaining("run enclave runtime hydrate"),
    });
  });

  it("runs its rounds in the guest, logging the guest's events (ids, digests and numbers only)", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: "info",
      destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    });
    const agent = await startAgentProcess({
      config: parseAgentConfigText(`node_id: site-1\ndata_root: ${ROUND_DATA_ROOT}\nsidecar_port: 0\n`),
      configDir: dir,
      workspace: join(dir, "ws-round"),
      mode: "SIMULATED",
      logger,
      databaseUrl: "",
      isolation: { mode: "process", cacheDir: join(dir, "no-cache"), provider: "auto" },
    });
    try {
      const out = await agent.agent.run(smallRound());
      expect(out.status).toBe("ok");
      const events = lines.filter((l) => l.runtime_event).map((l) => l.runtime_event as RuntimeEvent);
      expect(events.map((e) => e.event)).toEqual(["boot", "task_start", "task_end", "exit"]);
      expect(events[2]).toMatchObject({ source: "guest", model_sha256: weightsHash(out.weights) });
      for (const e of events)
        for (const v of Object.values(e))
          expect(String(v)).toMatch(/^(?:[a-z_]+|[0-9a-f]{64}|-?[0-9.e+-]+)$/);
    } finally {
      await agent.stop();
    }
  });
});

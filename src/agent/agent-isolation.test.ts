import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { TrainTask } from "../federation/task.js";
import { silentLogger } from "../logging/logger.js";
import { parseAgentConfigText } from "./agent-config-file.js";
import { startAgentProcess } from "./agent-process.js";

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

  it("never trains a federated round outside its isolated runtime: it refuses the round, typed", async () => {
    const agent = await start("process");
    try {
      await expect(agent.agent.run({} as TrainTask)).rejects.toMatchObject({
        code: "ISOLATED_TASK_UNAVAILABLE",
      });
    } finally {
      await agent.stop();
    }
  });
});

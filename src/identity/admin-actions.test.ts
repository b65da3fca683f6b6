import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  AdminActionLog,
  appendAdminAction,
  readAdminActions,
  type AdminActionRecord,
} from "./admin-actions.js";
import { createProjectCa } from "./certificates.js";

const dir = mkdtempSync(join(tmpdir(), "enclave-admin-actions-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const approve: AdminActionRecord = {
  action: "approve",
  serial: "0a1b",
  participant: "site-c",
  role: "site",
  actor: "admin/alice",
  at: "2026-12-03T12:00:00.000Z",
};

describe("the CA's admin action log", () => {
  it("appends signed records the coordinator reads back in order", async () => {
    const ca = await createProjectCa("demo");
    const path = join(dir, "log.json");
    appendAdminAction(path, ca, approve);
    appendAdminAction(path, ca, { action: "revoke", serial: "0a1b", actor: "ca/demo", at: approve.at });
    expect(readAdminActions(path, ca.certPem).map((a) => [a.action, a.actor])).toEqual([
      ["approve", "admin/alice"],
      ["revoke", "ca/demo"],
    ]);
  });

  it("refuses an edited record, another CA's log and a record with a field of free text", async () => {
    const ca = await createProjectCa("demo");
    const other = await createProjectCa("demo");
    const path = join(dir, "edited.json");
    appendAdminAction(path, ca, approve);
    const doc = JSON.parse(readFileSync(path, "utf8"));
    doc.actions[0].actor = "admin/mallory";
    writeFileSync(join(dir, "e.json"), JSON.stringify(doc));
    expect(() => readAdminActions(join(dir, "e.json"), ca.certPem)).toThrow(/not signed by the project CA/);
    expect(() => readAdminActions(path, other.certPem)).toThrow(/not signed by the project CA/);
    doc.actions[0].note = "a sentence";
    writeFileSync(join(dir, "f.json"), JSON.stringify(doc));
    expect(() => readAdminActions(join(dir, "f.json"), ca.certPem)).toThrow(/admin action log/);
  });

  it("hands the coordinator every action at each change, and names the problem of a log that stops verifying", async () => {
    const ca = await createProjectCa("demo");
    const path = join(dir, "watched.json");
    const seen: number[] = [];
    const log = new AdminActionLog(path, ca.certPem, (a) => seen.push(a.length));
    log.refresh(); // no file yet: no actions
    appendAdminAction(path, ca, approve);
    log.refresh();
    log.refresh(); // unchanged: not handed again
    writeFileSync(path, readFileSync(path, "utf8").replace("site-c", "site-x"));
    log.refresh();
    expect(seen).toEqual([1]);
    expect(log.problem).toMatch(/not signed by the project CA/);
  });
});

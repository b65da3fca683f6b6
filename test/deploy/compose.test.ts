import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseAgentConfigText } from "../../src/agent/agent-config-file.js";
import { buildProgram } from "../../src/cli/main.js";

/**
 * deploy/compose.yaml against the runtime contract. No container engine runs on these machines, so
 * the file is checked as data: the security options and devices the contract fixes, the database
 * override, read-only data, and a command the real CLI accepts.
 */
const deploy = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../deploy/${name}`, import.meta.url)), "utf8");
const compose = parse(deploy("compose.yaml"), { uniqueKeys: true, strict: true }) as {
  services: Record<string, Record<string, unknown>>;
};
const agent = compose.services.agent!;

describe("deploy/compose.yaml", () => {
  it("drops every capability and forbids gaining one, with the contract's seccomp baseline", () => {
    expect(agent.cap_drop).toEqual(["ALL"]);
    expect(agent.cap_add).toBeUndefined();
    expect(agent.privileged).toBeUndefined();
    expect([...(agent.security_opt as string[])].sort()).toEqual([
      "no-new-privileges:true",
      "seccomp:unconfined",
    ]);
  });

  it("passes exactly /dev/kvm and /dev/vhost-vsock through, at the same paths", () => {
    expect(agent.devices).toEqual(["/dev/kvm:/dev/kvm", "/dev/vhost-vsock:/dev/vhost-vsock"]);
    // Rootless Podman opens the devices with the user's own groups, not with privileges.
    expect(agent.group_add).toEqual(["keep-groups"]);
  });

  it("lets DATABASE_URL from the environment override the embedded ledger", () => {
    expect((agent.environment as Record<string, string>).DATABASE_URL).toBe("${DATABASE_URL:-}");
  });

  it("mounts data and configuration read-only and keeps the root filesystem read-only", () => {
    expect(agent.read_only).toBe(true);
    const volumes = agent.volumes as string[];
    const target = (path: string) => volumes.find((v) => v.endsWith(`:${path}`) || v.includes(`:${path}:`));
    expect(target("/var/lib/enclave/data")).toMatch(/:ro$/);
    expect(target("/etc/enclave/agent.yaml")).toMatch(/:ro$/);
    expect(agent.ports).toBeUndefined();
  });

  it("runs a command the CLI accepts, with a config the agent accepts", () => {
    const argv = agent.command as string[];
    const verb = buildProgram().commands.find((c: Command) => c.name() === argv[0]);
    expect(verb, `enclave ${argv[0]}`).toBeDefined();
    const known = new Set(verb!.options.map((o) => o.long));
    for (const flag of argv.filter((a) => a.startsWith("--"))) expect(known, flag).toContain(flag);
    for (const o of verb!.options.filter((o) => o.mandatory)) expect(argv).toContain(o.long);
    const conf = argv[argv.indexOf("--conf") + 1];
    expect((agent.volumes as string[]).some((v) => v.startsWith("./agent.yaml:" + conf))).toBe(true);
    expect(parseAgentConfigText(deploy("agent.yaml")).data_root).toBe("/var/lib/enclave/data");
  });

  it("holds no other service that could loosen the contract", () => {
    expect(Object.keys(compose.services)).toEqual(["agent"]);
  });
});

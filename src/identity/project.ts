import { readFile, stat } from "node:fs/promises";
import { z } from "zod";
import { parseConfigText } from "../schemas/config-text.js";
import { parseContract } from "../schemas/contract.js";
import { IdentityError } from "./errors.js";

const Name = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

/** `project.yaml`: the participants `enclave provision` makes a startup kit for. */
export const ProjectConfig = z
  .object({
    name: Name,
    coordinator: z
      .object({
        /** The host name (or address) agents and admins dial; the coordinator's certificate names it. */
        host: z.string().min(1, "must be a non-empty string").max(253, "must be at most 253 characters"),
        port: z
          .number()
          .int("must be an integer")
          .min(1, "must be >= 1")
          .max(65535, "must be <= 65535")
          .default(7339),
        /** Its participant name (default "coordinator"). */
        name: Name.default("coordinator"),
      })
      .strict(),
    sites: z.array(Name).min(1, "must list at least one site"),
    admins: z.array(Name).min(1, "must list at least one admin"),
  })
  .strict()
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    const all: [string, (string | number)[]][] = [
      [p.coordinator.name, ["coordinator", "name"]],
      ...p.sites.map((s, i): [string, (string | number)[]] => [s, ["sites", i]]),
      ...p.admins.map((s, i): [string, (string | number)[]] => [s, ["admins", i]]),
    ];
    for (const [name, path] of all) {
      if (seen.has(name))
        ctx.addIssue({ code: "custom", path, message: "must be unique among all participants" });
      seen.add(name);
    }
  })
  .meta({
    id: "ProjectConfig",
    description: "The participants of a federation project (enclave provision).",
  });
export type ProjectConfig = z.output<typeof ProjectConfig>;

const MAX_PROJECT_BYTES = 256 * 1024;

export function parseProjectText(text: string): ProjectConfig {
  return parseContract(ProjectConfig, parseConfigText(text, "project"), "project");
}

export async function loadProject(path: string): Promise<ProjectConfig> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new IdentityError(
      "IDENTITY_INVALID",
      `project file cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  if (size > MAX_PROJECT_BYTES)
    throw new IdentityError("IDENTITY_INVALID", `project file exceeds ${MAX_PROJECT_BYTES} bytes`);
  return parseProjectText(await readFile(path, "utf8"));
}

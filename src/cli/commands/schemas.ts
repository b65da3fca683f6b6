import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { jsonSchemas } from "../../schemas/index.js";

export function registerSchemasCommand(program: Command): void {
  program
    .command("schemas")
    .description("write the JSON Schema of every published contract (for Python and other callers)")
    .option("--out <dir>", "output directory (prints to stdout when omitted)")
    .action((opts: { out?: string }) => {
      const schemas = jsonSchemas();
      if (!opts.out) {
        process.stdout.write(JSON.stringify(schemas, null, 2) + "\n");
        return;
      }
      mkdirSync(opts.out, { recursive: true });
      for (const [name, schema] of Object.entries(schemas)) {
        writeFileSync(join(opts.out, `${name}.schema.json`), JSON.stringify(schema, null, 2) + "\n");
      }
    });
}

import type { Command } from "commander";
import { jsonSchemas } from "../../schemas/index.js";
import { checkOutputDir, writeOutputFiles } from "../output-path.js";

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
      const out = checkOutputDir(opts.out, "--out");
      writeOutputFiles(
        out,
        Object.fromEntries(
          Object.entries(schemas).map(([name, schema]) => [
            `${name}.schema.json`,
            JSON.stringify(schema, null, 2) + "\n",
          ]),
        ),
      );
    });
}

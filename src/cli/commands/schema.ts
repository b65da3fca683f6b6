import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { Command } from "commander";
import { ValidationError } from "../../errors.js";
import { inferCsvSchema } from "../../data/schema-inference.js";
import { choiceFlag } from "../flags.js";

interface InferFlags {
  out?: string;
  label?: string;
  categories?: string;
  delimiter?: "," | ";" | "\t" | "|";
  force: boolean;
}

/** `enclave schema infer data.csv`: a schema draft to review, with no data value in it or on the terminal. */
export function registerSchemaCommand(program: Command): void {
  const schema = program.command("schema").description("dataset schema files");
  schema
    .command("infer")
    .description(
      "write a draft schema of a CSV (types, nullability, power-of-ten ranges) for review; category values only for --categories",
    )
    .argument("<file>", "CSV file (.csv or .csv.gz) with a header line")
    .option("--out <file>", "where to write the schema (default <file without .csv>.schema.json)")
    .option("--label <column>", "label column (default: the last column)")
    .option(
      "--categories <columns>",
      "comma-separated columns whose distinct values you confirm may be written (list the label to write its classes)",
    )
    .option("--delimiter <d>", "field delimiter", choiceFlag([",", ";", "\t", "|"] as const))
    .option("--force", "overwrite an existing schema file", false)
    .action((file: string, f: InferFlags) => {
      const path = resolve(file);
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(path);
      } catch (err) {
        throw new ValidationError("schema infer", [
          { path: "<file>", rule: `cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})` },
        ]);
      }
      const out = resolve(f.out ?? path.replace(/\.csv(\.gz)?$/i, "") + ".schema.json");
      if (existsSync(out) && !f.force)
        throw new ValidationError("schema infer", [
          { path: "--out", rule: `${out} exists (pass --force to overwrite)` },
        ]);
      const r = inferCsvSchema(bytes, basename(path), {
        label: f.label,
        categories: f.categories
          ?.split(",")
          .map((c) => c.trim())
          .filter(Boolean),
        delimiter: f.delimiter,
      });
      writeFileSync(out, JSON.stringify(r.schema, null, 2) + "\n");
      const omitted = r.columns.filter((c) => c.valuesOmitted);
      process.stdout.write(
        [
          `wrote ${out} (${r.columns.length} columns, ${r.rows} rows seen): review it before use`,
          ...r.columns.map(
            (c) =>
              `  ${c.name.padEnd(24)} ${c.type.padEnd(8)}${c.distinct !== undefined ? ` ${c.distinct} distinct values${c.valuesOmitted ? ", not written" : ", written (confirmed)"}` : ""}`,
          ),
          "  numeric ranges are rounded outward to a power of ten: tighten them to what the data may hold",
          ...(omitted.length > 0
            ? [
                `  not loadable yet: list the allowed values of ${omitted.map((c) => c.name).join(", ")} by hand, or rerun with --categories ${omitted.map((c) => c.name).join(",")} to confirm the values found`,
              ]
            : []),
          "",
        ].join("\n"),
      );
    });
}

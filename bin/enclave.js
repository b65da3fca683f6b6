#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the prepare script).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
if (!existsSync(entry)) {
  process.stderr.write(
    "enclave: the build output is missing; run `npm install` (or `npm run build`) first\n",
  );
  process.exit(2);
}
await import(entry);

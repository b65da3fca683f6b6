import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const DATA = new URL("../../data/", import.meta.url).pathname;

/**
 * The same records of the bundled breast-cancer dataset, presented five ways in `dir`: the file
 * as shipped (CRLF), another name, LF line endings, gzip, and the rows in reverse order. Each gets
 * the bundled schema without its pinned file hash (a pin would refuse every other presentation).
 */
export function writePresentations(dir: string): string[] {
  const shipped = readFileSync(join(DATA, "breast-cancer-wisconsin.csv"), "utf8");
  const text = shipped.replace(/\r\n/g, "\n");
  const schema = JSON.parse(readFileSync(join(DATA, "breast-cancer-wisconsin.schema.json"), "utf8"));
  delete schema.sha256;
  const [header, ...rows] = text.trimEnd().split("\n");
  const files: Record<string, string | Buffer> = {
    "original.csv": shipped,
    "another-name.csv": shipped,
    "lf.csv": text,
    "compressed.csv.gz": gzipSync(text),
    "reversed.csv": [header, ...rows.reverse()].join("\n") + "\n",
  };
  return Object.entries(files).map(([name, body]) => {
    writeFileSync(join(dir, name), body);
    writeFileSync(join(dir, name.replace(/\.csv(\.gz)?$/, ".schema.json")), JSON.stringify(schema));
    return join(dir, name);
  });
}

import { basename, join } from "node:path";
import type { LoadedDataset } from "../data/load.js";

/** A dataset's files as an isolated task gets them: the dataset's guest name, and every file by guest name. */
export interface TaskInputs {
  /** The dataset's file name inside the guest's data root (what the guest's Data Sentry loads). */
  dataset: string;
  /** Guest name -> host path: the only files the runtime exposes to the task, read-only. */
  inputs: Record<string, string>;
}

/**
 * The files a dataset loaded from `dataRoot` is made of (the data file, its schema, IDX labels), by
 * their base names: the guest's Data Sentry finds the schema beside the data as the host's did. An
 * image folder (a directory) has none a runtime takes in this build: undefined.
 */
export function datasetTaskInputs(
  dataRoot: string,
  { source, schema }: Pick<LoadedDataset, "source" | "schema">,
): TaskInputs | undefined {
  if (schema.format === "image_folder") return undefined;
  const names = [source.id, source.schemaId];
  if (schema.format === "idx") names.push(schema.labels_file);
  const inputs: Record<string, string> = {};
  for (const n of names) if (n) inputs[basename(n)] = join(dataRoot, n);
  return { dataset: basename(source.id), inputs };
}

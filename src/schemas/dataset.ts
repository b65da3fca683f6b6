import { z } from "zod";

/**
 * The declared shape of a dataset, kept next to the data (`<name>.schema.json` or `.schema.yaml`).
 * The Data Sentry refuses any file that does not match it, so the schema is the data owner's
 * statement of what may be trained on.
 */

export const DEFAULT_MAX_ROWS = 1_000_000;
export const MAX_ROWS_CEILING = 100_000_000;
export const MAX_DATASET_COLUMNS = 100_000;
export const MAX_CLASSES = 10_000;

/** Column names are also used in error messages, so they are restricted to plain printable text. */
export const ColumnName = z
  .string()
  .min(1, "must be a non-empty string")
  .max(128, "must be at most 128 characters")
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_ .()/-]*$/, "must use only letters, digits, space and _ . - ( ) /");

export const CategoryValue = z
  .string()
  .min(1, "must be a non-empty string")
  .max(256, "must be at most 256 characters")
  // eslint-disable-next-line no-control-regex -- the rule is exactly "no control characters"
  .regex(/^[^\u0000-\u001f\u007f-\u009f]+$/, "must not contain control characters");

const unique = (xs: readonly string[]) => new Set(xs).size === xs.length;

export const ColumnType = z.enum(["float", "int", "category"]);
export type ColumnType = z.infer<typeof ColumnType>;

export const DatasetColumn = z
  .object({
    name: ColumnName,
    type: ColumnType,
    /** Inclusive lower bound (numeric columns). */
    min: z.number("must be a finite number").optional(),
    /** Inclusive upper bound (numeric columns). */
    max: z.number("must be a finite number").optional(),
    /** Allowed values of a category column. */
    values: z
      .array(CategoryValue)
      .min(1, "must list at least one value")
      .max(MAX_CLASSES, `must list at most ${MAX_CLASSES} values`)
      .refine(unique, "must not contain duplicates")
      .optional(),
    /** An empty cell is accepted only when true (stored as missing: NaN, imputed by standardisation). */
    nullable: z.boolean().default(false),
    /** Float columns only: accept NaN / Infinity / -Infinity tokens. */
    allow_non_finite: z.boolean().default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (c.type === "category") {
      if (!c.values) issue("values", "is required for a category column");
      if (c.min !== undefined) issue("min", "is only allowed on numeric columns");
      if (c.max !== undefined) issue("max", "is only allowed on numeric columns");
    } else if (c.values) {
      issue("values", "is only allowed on category columns");
    }
    if (c.allow_non_finite && c.type !== "float") issue("allow_non_finite", "is only allowed on float columns");
    if (c.min !== undefined && c.max !== undefined && c.min > c.max) issue("min", "must be <= max");
    if (c.type === "int") {
      if (c.min !== undefined && !Number.isInteger(c.min)) issue("min", "must be an integer on an int column");
      if (c.max !== undefined && !Number.isInteger(c.max)) issue("max", "must be an integer on an int column");
    }
  });
export type DatasetColumn = z.output<typeof DatasetColumn>;

export const DatasetLabel = z
  .object({
    column: ColumnName,
    /** Class names in class-index order: the i-th entry is encoded as label i. */
    classes: z
      .array(CategoryValue)
      .min(2, "must list at least two classes")
      .max(MAX_CLASSES, `must list at most ${MAX_CLASSES} classes`)
      .refine(unique, "must not contain duplicates"),
  })
  .strict();
export type DatasetLabel = z.output<typeof DatasetLabel>;

const RowLimits = {
  min_rows: z.number().int("must be an integer").min(1, "must be >= 1").default(1),
  max_rows: z
    .number()
    .int("must be an integer")
    .min(1, "must be >= 1")
    .max(MAX_ROWS_CEILING, `must be <= ${MAX_ROWS_CEILING}`)
    .default(DEFAULT_MAX_ROWS),
};

const Sha256 = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits (SHA-256)")
  .optional();

export const CsvDatasetSchema = z
  .object({
    format: z.literal("csv"),
    description: z.string().max(4000, "must be at most 4000 characters").optional(),
    /** False when the file has no header line (columns are then taken by position). */
    header: z.boolean().default(true),
    delimiter: z.enum([",", ";", "\t", "|"]).default(","),
    columns: z
      .array(DatasetColumn)
      .min(2, "must declare at least two columns (a feature and the label)")
      .max(MAX_DATASET_COLUMNS, `must declare at most ${MAX_DATASET_COLUMNS} columns`),
    label: DatasetLabel,
    /** Feature columns in model-input order; defaults to every non-label column in file order. */
    features: z.array(ColumnName).min(1, "must list at least one feature").optional(),
    ...RowLimits,
    /** Pins the exact file: the Sentry refuses a file whose SHA-256 differs. */
    sha256: Sha256,
    /**
     * Declared standardisation statistics, in feature order. Every site of a federation must scale
     * its inputs the same way; fitting them on one site's (possibly skewed) rows would not.
     */
    standardization: z
      .object({
        mean: z.array(z.number().finite("must be finite")),
        std: z.array(z.number().positive("must be > 0").finite("must be finite")),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if (s.standardization) {
      const n = s.features?.length ?? s.columns.length - 1;
      if (s.standardization.mean.length !== n) issue(["standardization", "mean"], `must have one entry per feature (${n})`);
      if (s.standardization.std.length !== n) issue(["standardization", "std"], `must have one entry per feature (${n})`);
    }
    const names = s.columns.map((c) => c.name);
    if (!unique(names)) issue(["columns"], "column names must be unique");
    const byName = new Map(s.columns.map((c) => [c.name, c]));
    const labelCol = byName.get(s.label.column);
    if (!labelCol) {
      issue(["label", "column"], "must name a declared column");
    } else {
      if (labelCol.nullable) issue(["label", "column"], "the label column must not be nullable");
      if (labelCol.type === "float") issue(["label", "column"], "the label column must be of type category or int");
      if (labelCol.type === "category" && labelCol.values) {
        const declared = new Set(labelCol.values);
        if (declared.size !== s.label.classes.length || !s.label.classes.every((c) => declared.has(c))) {
          issue(["label", "classes"], "must hold exactly the label column's declared values");
        }
      }
      if (labelCol.type === "int") {
        s.label.classes.forEach((c, i) => {
          if (!/^(0|-?[1-9][0-9]{0,14})$/.test(c)) issue(["label", "classes", i], "must be a canonical integer");
        });
      }
    }
    if (s.features) {
      if (!unique(s.features)) issue(["features"], "must not contain duplicates");
      s.features.forEach((f, i) => {
        if (!byName.has(f)) issue(["features", i], "must name a declared column");
        if (f === s.label.column) issue(["features", i], "must not include the label column");
      });
    } else if (s.columns.length < 2) {
      issue(["columns"], "must declare at least one feature column besides the label");
    }
    if (s.min_rows > s.max_rows) issue(["min_rows"], "must be <= max_rows");
  });
export type CsvDatasetSchema = z.output<typeof CsvDatasetSchema>;

export const IdxDatasetSchema = z
  .object({
    format: z.literal("idx"),
    description: z.string().max(4000, "must be at most 4000 characters").optional(),
    /** The IDX label file, in the same directory as the image file the dataset id names. */
    labels_file: z
      .string()
      .min(1, "must be a non-empty string")
      .max(255, "must be at most 255 characters")
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, "must be a plain file name (letters, digits, _ . -)"),
    /** Required [height, width] of every image (e.g. [28, 28] for Fashion-MNIST). */
    image_shape: z
      .tuple([
        z.number().int("must be an integer").min(1, "must be >= 1").max(65535, "must be <= 65535"),
        z.number().int("must be an integer").min(1, "must be >= 1").max(65535, "must be <= 65535"),
      ])
      .optional(),
    classes: z
      .array(CategoryValue)
      .min(2, "must list at least two classes")
      .max(256, "must list at most 256 classes (IDX labels are bytes)")
      .refine(unique, "must not contain duplicates"),
    ...RowLimits,
    sha256: Sha256,
    labels_sha256: Sha256,
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.min_rows > s.max_rows) ctx.addIssue({ code: "custom", path: ["min_rows"], message: "must be <= max_rows" });
  });
export type IdxDatasetSchema = z.output<typeof IdxDatasetSchema>;

/**
 * A directory of images, one subfolder per class (named as the class), each image a PNG or a
 * binary PGM (P5) of exactly `image_shape`; the dataset id names the directory.
 */
export const ImageFolderDatasetSchema = z
  .object({
    format: z.literal("image_folder"),
    description: z.string().max(4000, "must be at most 4000 characters").optional(),
    image_shape: z.tuple([
      z.number().int("must be an integer").min(1, "must be >= 1").max(4096, "must be <= 4096"),
      z.number().int("must be an integer").min(1, "must be >= 1").max(4096, "must be <= 4096"),
    ]),
    /** 1: grayscale (a color PNG is refused unless its red, green and blue agree); 3: RGB. */
    channels: z.union([z.literal(1), z.literal(3)]).default(1),
    classes: z
      .array(
        CategoryValue.regex(
          /^[A-Za-z0-9_][A-Za-z0-9_ .-]*$/,
          "must be a plain folder name (letters, digits, space, _ . -)",
        ),
      )
      .min(2, "must list at least two classes")
      .max(65536, "must list at most 65536 classes")
      .refine(unique, "must not contain duplicates"),
    ...RowLimits,
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.min_rows > s.max_rows) ctx.addIssue({ code: "custom", path: ["min_rows"], message: "must be <= max_rows" });
  });
export type ImageFolderDatasetSchema = z.output<typeof ImageFolderDatasetSchema>;

export const DatasetSchema = z
  .discriminatedUnion("format", [CsvDatasetSchema, IdxDatasetSchema, ImageFolderDatasetSchema])
  .meta({
    id: "DatasetSchema",
    description: "Declared columns, types, ranges and label classes of a dataset; checked by the Data Sentry.",
  });
export type DatasetSchema = z.output<typeof DatasetSchema>;
export type DatasetSchemaInput = z.input<typeof DatasetSchema>;

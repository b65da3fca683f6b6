// Data: the Data Sentry (input validation), loaders, preprocessing and simulation partitioners.
export * from "./csv-loader.js";
export * from "./dataset-error.js";
export * from "./dataset.js";
export * from "./distributions.js";
export * from "./fashion-mnist.js";
export * from "./identity.js";
export * from "./idx.js";
export * from "./image-folder.js";
export * from "./load.js";
export * from "./partition.js";
export * from "./schema-file.js";
export * from "./sentry.js";
export * from "./split.js";
export * from "./standardize.js";
export * from "./synthetic.js";
export * from "./bundled.js";

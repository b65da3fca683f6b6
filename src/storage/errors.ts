import { EnclaveError } from "../errors.js";

/** Codes of the storage layer's own errors. */
export type StorageErrorCode =
  /** DATABASE_URL names a server that cannot be reached. */
  | "DATABASE_UNAVAILABLE"
  /** Another process holds the embedded database. */
  | "DATABASE_LOCKED"
  /** A schema name that is not a plain identifier. */
  | "DATABASE_SCHEMA_NAME"
  /** The workspace is not a directory. */
  | "WORKSPACE_INVALID"
  /** A migration already applied to the database differs from the one this build ships. */
  | "MIGRATION_CHANGED"
  /** The database was migrated by a newer build than this one. */
  | "MIGRATION_FROM_NEWER_VERSION"
  /** A component's migration list is not numbered 1, 2, 3, ... (a defect in this build). */
  | "MIGRATION_LIST_INVALID";

export class StorageError extends EnclaveError<StorageErrorCode> {}

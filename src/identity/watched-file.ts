import { statSync } from "node:fs";

/**
 * A CA-signed file a coordinator re-reads when it changes (the revocation list, the admin action
 * log): `reread` runs `read` when the file's mtime moved since the last good read. A missing file
 * is left alone; a read that throws keeps the last good state and its message is `problem`.
 */
export class WatchedFile {
  private mtime = -1;
  problem: string | null = null;

  constructor(private readonly path: string | undefined) {}

  reread(read: (path: string) => void): void {
    if (!this.path) return;
    let m: number;
    try {
      m = statSync(this.path).mtimeMs;
    } catch {
      return;
    }
    if (m === this.mtime) return;
    try {
      read(this.path);
      this.mtime = m;
      this.problem = null;
    } catch (err) {
      this.problem = err instanceof Error ? err.message : "unreadable";
    }
  }
}

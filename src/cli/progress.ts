/** A one-line progress bar on stderr, drawn only on a terminal (logs stay clean in CI). */
export class ProgressBar {
  private last = 0;
  private readonly tty: boolean;
  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(done: number, total: number, suffix = ""): void {
    if (!this.tty) return;
    const now = Date.now();
    if (done < total && now - this.last < 80) return;
    this.last = now;
    const width = 30;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    this.stream.write(`\r${this.label} ${bar} ${done}/${total} ${suffix}\x1b[K`);
  }

  done(): void {
    if (this.tty) this.stream.write("\n");
  }
}

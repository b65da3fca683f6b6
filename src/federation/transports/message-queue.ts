/**
 * One direction of a streaming session: messages pushed by one side, taken by the stream as an
 * async iterable. `push` resolves once the queue is below `highWater` again, so a sender of a
 * large model's chunks waits for the network instead of buffering the whole model twice.
 */
export class MessageQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private readonly drained: (() => void)[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private failure: Error | null = null;

  constructor(private readonly highWater = 8) {}

  /** Queue a message; resolves when there is room again (at once after `end`). */
  push(item: T): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.items.push(item);
    this.wake?.();
    if (this.items.length < this.highWater) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  /** No more messages: the iterator ends (or throws `error`) once the queue is empty. */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error ?? null;
    this.wake?.();
    for (const d of this.drained.splice(0)) d();
  }

  get closed(): boolean {
    return this.ended;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      while (this.items.length > 0) {
        const item = this.items.shift()!;
        if (this.items.length < this.highWater) for (const d of this.drained.splice(0)) d();
        yield item;
      }
      if (this.ended) {
        if (this.failure) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }
}

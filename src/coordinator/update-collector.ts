import type { TaskOutcome } from "../federation/task.js";
import type { ClientUpdate, RoundAggregator } from "../strategies/types.js";

/**
 * Phase collect's sink: each update is folded into the round's aggregate as soon as it arrives
 * (memory O(model) for a streaming strategy), or, when `ordered`, in invitation order through a
 * reorder buffer that releases each update the moment its turn comes. A malformed update
 * (AggregationError) drops that client; the round goes on.
 */
export class UpdateCollector {
  /** Epsilon each reporting client's agent gave, by client id. */
  readonly epsilon: Record<string, number> = {};
  examples = 0;
  contributors = 0;
  private readonly slots: (ClientUpdate | null | undefined)[];
  private next = 0;

  constructor(
    private readonly aggregation: RoundAggregator,
    invited: number,
    private readonly ordered: boolean,
    private readonly rejected: (clientId: string, err: unknown) => Promise<void>,
  ) {
    this.slots = Array.from({ length: invited }, () => undefined);
  }

  /** The outcome of invitee `index`, agent `clientId` (null: nothing to aggregate from it). */
  async deliver(index: number, clientId: string, outcome: TaskOutcome | null): Promise<void> {
    // The update is the invited agent's, whatever id its outcome claims.
    const update = outcome ? toUpdate(clientId, outcome) : null;
    if (!this.ordered) {
      if (update) await this.fold(update);
      return;
    }
    this.slots[index] = update;
    while (this.next < this.slots.length && this.slots[this.next] !== undefined) {
      const u = this.slots[this.next];
      this.slots[this.next++] = null; // release it as soon as it is folded in
      if (u) await this.fold(u);
    }
  }

  private async fold(update: ClientUpdate): Promise<void> {
    try {
      this.aggregation.add(update);
    } catch (err) {
      await this.rejected(update.clientId, err);
      return;
    }
    this.examples += update.numExamples;
    this.contributors++;
  }
}

function toUpdate(clientId: string, out: TaskOutcome): ClientUpdate {
  return {
    clientId,
    weights: out.weights,
    numExamples: out.numExamples,
    controlDelta: out.controlDelta,
    metrics: out.metrics.loss !== undefined ? { loss: out.metrics.loss } : undefined,
  };
}

/** A request that can be recorded as unfinished: see {@link UnfinishedRequests}. */
export interface UnfinishedRequest {
  /** Records the request now as `unfinished`, unless it is recorded already. Never rejects. */
  giveUp(): Promise<void>;
}

/**
 * The requests whose client went away and that have not ended yet, each with its deadline: `ms`
 * after its client left, or at shutdown ({@link giveUpAll}), each is recorded as unfinished. One
 * per recorder, shared by its requests: a request pays for it only once its client has left.
 *
 * @example
 * const unfinished = new UnfinishedRequests(options.unfinishedAfterMs);
 * unfinished.wait(tracked); // its client left
 * unfinished.done(tracked); // it was recorded: the deadline goes
 */
export class UnfinishedRequests {
  private readonly deadlines = new Map<UnfinishedRequest, NodeJS.Timeout>();

  constructor(readonly ms: number) {}

  /** Starts the request's deadline. */
  wait(request: UnfinishedRequest): void {
    const deadline = setTimeout(() => void request.giveUp(), this.ms);
    deadline.unref();
    this.deadlines.set(request, deadline);
  }

  /** The request has its row: its deadline goes, and it is let go. */
  done(request: UnfinishedRequest): void {
    const deadline = this.deadlines.get(request);
    if (deadline === undefined) return;
    clearTimeout(deadline);
    this.deadlines.delete(request);
  }

  /** Shutdown: records every request still waiting now. Never rejects. */
  async giveUpAll(): Promise<void> {
    await Promise.all([...this.deadlines.keys()].map((request) => request.giveUp()));
  }
}

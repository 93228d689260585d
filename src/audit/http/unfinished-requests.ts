/** A request that can be recorded as unfinished: see {@link UnfinishedRequests}. */
export interface UnfinishedRequest {
  /** When it began (`performance.now()`): its deadline is `ms` after. */
  readonly startedAt: number;
  /** Records the request now as `unfinished`, unless it is recorded already. Never rejects. */
  giveUp(): Promise<void>;
}

/**
 * The requests in flight, each recorded as unfinished `ms` after it began if it has no row by then,
 * whether its client is still connected or not; at shutdown ({@link giveUpAll}) each still in
 * flight after a short grace is recorded so too. One per recorder, shared by its requests: a
 * request costs an entry in a set, not a timer. The set keeps the order in which the requests
 * began, so the order of their deadlines: one timer, armed for the oldest, sweeps it.
 *
 * @example
 * const unfinished = new UnfinishedRequests(options.unfinishedAfterMs);
 * unfinished.begin(tracked); // the request is tracked: its deadline runs
 * unfinished.done(tracked); // it was recorded: it is let go
 */
export class UnfinishedRequests {
  private readonly inFlight = new Set<UnfinishedRequest>();
  /** Armed for the oldest request's deadline while one is in flight (then re-armed for the next); unref'd. */
  private sweep: NodeJS.Timeout | undefined;
  /** At shutdown: called once no request is in flight. */
  private emptied: (() => void) | undefined;

  constructor(readonly ms: number) {}

  /** The request is in flight: its deadline runs from its `startedAt` (requests begin in the order they started). */
  begin(request: UnfinishedRequest): void {
    this.inFlight.add(request);
    this.sweep ??= this.arm(request.startedAt + this.ms);
  }

  /** The request has its row: it is let go. */
  done(request: UnfinishedRequest): void {
    if (!this.inFlight.delete(request)) return;
    if (this.inFlight.size === 0) this.emptied?.();
  }

  /**
   * Shutdown: waits up to `graceMs` for the requests in flight to end on their own, then records
   * every one still in flight as unfinished. Never rejects.
   */
  async giveUpAll(graceMs: number): Promise<void> {
    if (this.inFlight.size > 0) {
      let grace: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.emptied = resolve;
        grace = setTimeout(resolve, graceMs);
      });
      clearTimeout(grace);
      this.emptied = undefined;
    }
    const left = [...this.inFlight];
    this.inFlight.clear();
    clearTimeout(this.sweep);
    this.sweep = undefined;
    await Promise.all(left.map((request) => request.giveUp()));
  }

  private arm(due: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.expire(), Math.max(0, Math.ceil(due - performance.now())));
    timer.unref();
    return timer;
  }

  /** Records the requests past their deadline, oldest first, and arms the timer for the next one's. */
  private expire(): void {
    this.sweep = undefined;
    const now = performance.now();
    for (const request of this.inFlight) {
      const due = request.startedAt + this.ms;
      if (due > now) {
        this.sweep = this.arm(due);
        return;
      }
      this.inFlight.delete(request);
      void request.giveUp();
    }
    if (this.inFlight.size === 0) this.emptied?.();
  }
}

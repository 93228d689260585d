import { type ChaosApp } from './app-process';

/** The most entries pending (queued or in flight to the database) and the largest RSS seen, per app. */
export type Peaks = Record<string, { pending: number; rssBytes: number }>;

/**
 * Samples the running apps' `/health` (`pending`) and resident memory every `intervalMs` until
 * stopped, keeping the peak of each per app name (a restarted app continues its name's peaks).
 *
 * @example
 * const sampler = PeakSampler.start(() => [context.apps.sync, context.apps.async], 250);
 * const peaks = await sampler.stop(); // { sync: { pending: 412, rssBytes: 98_000_000 }, … }
 */
export class PeakSampler {
  private readonly peaks: Peaks = {};
  private running = true;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly apps: () => ChaosApp[],
    private readonly intervalMs: number,
  ) {
    this.loop = this.run();
  }

  static start(apps: () => ChaosApp[], intervalMs: number): PeakSampler {
    return new PeakSampler(apps, intervalMs);
  }

  async stop(): Promise<Peaks> {
    this.running = false;
    await this.loop;
    return this.peaks;
  }

  private async run(): Promise<void> {
    while (this.running) {
      await Promise.all(this.apps().map((app) => this.sample(app)));
      await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
    }
  }

  private async sample(app: ChaosApp): Promise<void> {
    const [health, rss] = await Promise.all([app.health(), app.rssBytes()]);
    const peak = (this.peaks[app.name] ??= { pending: 0, rssBytes: 0 });
    peak.pending = Math.max(peak.pending, health?.pending ?? 0);
    peak.rssBytes = Math.max(peak.rssBytes, rss ?? 0);
  }
}

/**
 * A refresh that never overlaps itself: while one run is in flight, every further call
 * shares one follow-up run, started once the current run has settled (failed or not), so
 * what changed meanwhile is fetched once, never lost and never fetched twice at a time.
 */
export class CoalescedRun {
  constructor(private readonly _job: () => Promise<void>) {}

  /** Run the job now, or share the follow-up run when one is in flight. */
  run(): Promise<void> {
    if (this._inFlight) {
      this._followUp ??= this._inFlight
        .catch(() => undefined) // that run's caller sees its error; this call runs anyway
        .then(() => {
          this._followUp = null;
          return this.run();
        });
      return this._followUp;
    }
    this._inFlight = this._job().finally(() => {
      this._inFlight = null;
    });
    return this._inFlight;
  }

  private _inFlight: Promise<void> | null = null;
  private _followUp: Promise<void> | null = null;
}

/** Someone waiting: told the outcome, or `undefined` when they waited too long. */
type Answer<T> = (outcome: T | undefined) => void;

interface Guest<T> {
  /** `performance.now()` when they came in. */
  since: number;
  answer: Answer<T>;
}

/**
 * Requests waiting for one render, answered together when it is over. A herd of a thousand
 * requests for one cold page costs one array and one timer here, not a promise race and a
 * timer each: after the render, every waiter is answered in one synchronous loop, in the order
 * they came (the cost per waiter is what sending the page costs, which is what decides how soon
 * the last of them has it).
 *
 * Nobody waits longer than `patienceMs`: a single timer, re-armed for whoever came in first
 * among those still waiting, lets each one go with `undefined` once their own time is up.
 */
export class WaitingRoom<T> {
  private readonly guests: Guest<T>[] = [];
  /** Index of the first guest still waiting (the ones before it were let go). */
  private first = 0;
  private timer: NodeJS.Timeout | undefined;
  private outcome: { value: T | undefined } | undefined;

  constructor(
    private readonly patienceMs: number,
    /** Told when an answer throws, so one broken waiter does not keep the others waiting. */
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Whether the outcome is known (everyone waiting has been told). */
  get isOpen(): boolean {
    return this.outcome !== undefined;
  }

  /** Waits for the outcome; once it is known, `answer` is called at once. */
  join(answer: Answer<T>): void {
    if (this.outcome !== undefined) {
      this.tell(answer, this.outcome.value);
      return;
    }
    this.guests.push({ since: performance.now(), answer });
    if (this.timer === undefined) this.arm(this.patienceMs);
  }

  /** Answers everyone still waiting with `value`, first come first served. Only the first call counts. */
  open(value: T | undefined): void {
    if (this.outcome !== undefined) return;
    this.outcome = { value };
    this.disarm();
    const { guests } = this;
    for (let i = this.first; i < guests.length; i += 1) this.tell(guests[i].answer, value);
    guests.length = 0;
    this.first = 0;
  }

  private tell(answer: Answer<T>, value: T | undefined): void {
    try {
      answer(value);
    } catch (error) {
      this.onError(error);
    }
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.letImpatientGo(), ms);
    this.timer.unref(); // a waiting request never keeps the process alive by itself
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private letImpatientGo(): void {
    this.timer = undefined;
    // Timers run on the loop's millisecond clock, which may be up to 1 ms behind this one.
    const limit = performance.now() - this.patienceMs + 1;
    const { guests } = this;
    while (this.first < guests.length && guests[this.first].since <= limit) {
      const { answer } = guests[this.first];
      this.first += 1;
      this.tell(answer, undefined);
    }
    if (this.first < guests.length) {
      this.arm(Math.max(1, guests[this.first].since + this.patienceMs - performance.now()));
    } else {
      guests.length = 0;
      this.first = 0;
    }
  }
}

/** An injectable clock for `isr({ now })`: time moves only when a test says so. */
export function fakeClock(start = Date.UTC(2026, 0, 1)) {
  let time = start;
  return {
    now: () => time,
    advance(ms: number) {
      time += ms;
    },
    advanceSeconds(seconds: number) {
      time += seconds * 1000;
    },
  };
}

/**
 * The library reports to `console` by default (its `logger` option). Tests that check what it
 * reports inject a logger of their own; everywhere else its expected warnings and reports
 * (a failing route, a store outage on purpose) would only be noise in a passing run. Those
 * lines, and only those — they start with `[express-isr]` — are kept out of the output.
 * Everything else a test prints still shows.
 */
for (const level of ['warn', 'error'] as const) {
  const original = console[level].bind(console);
  console[level] = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('[express-isr]')) return;
    original(...args);
  };
}

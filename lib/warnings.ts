/**
 * Doubtful-but-legal set-ups get a warning with a stable code, printed once per process
 * (express-rate-limit's validations do the same). Silence one with
 * `EXPRESS_ISR_SILENCE=ISR_SHORT_SECRET,…` in the environment.
 */
const printed = new Set<string>();

export function warnOnce(logger: Pick<Console, 'warn'>, code: string, message: string): void {
  if (printed.has(code)) return;
  printed.add(code);
  const silenced = (process.env.EXPRESS_ISR_SILENCE ?? '').split(',').map((c) => c.trim());
  if (silenced.includes(code)) return;
  logger.warn(
    `[express-isr] ${code}: ${message} (README: #${code.toLowerCase().replace(/_/g, '-')})`,
  );
}

/**
 * Doubtful-but-legal set-ups get a warning with a stable code, printed once per process
 * (express-rate-limit's validations do the same). Silence one with the `silence` option of
 * `isr()`, or for any part of the package with `EXPRESS_ISR_SILENCE=ISR_SHORT_SECRET,…` in the
 * environment. Every code is explained in the README under Warnings.
 */
import { redactForDebug } from './redact';

const printed = new Set<string>();

export function warnOnce(
  logger: Pick<Console, 'warn'>,
  code: string,
  message: string,
  silence: readonly string[] = [],
): void {
  if (printed.has(code)) return;
  const silenced = [
    ...silence,
    ...(process.env.EXPRESS_ISR_SILENCE ?? '').split(',').map((c) => c.trim()),
  ];
  if (silenced.includes(code)) return;
  printed.add(code);
  // A warning names a URL now and then: what could carry a credential is redacted, as in logs.
  logger.warn(`[express-isr] ${code}: ${redactForDebug(message)} (README: #${code.toLowerCase()})`);
}

/**
 * Forgets which warnings were printed, as if the process had just started. For this
 * package's own tests only (each test then sees its own warnings whatever ran before it); not
 * exported from the package's entry points.
 */
export function forgetPrintedWarnings(): void {
  printed.clear();
}

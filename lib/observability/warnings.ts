/**
 * Doubtful-but-legal set-ups get a warning with a stable code, printed once per process
 * (express-rate-limit's validations do the same). Silence one with the `silence` option of
 * `isr()`, or for any part of the package with `EXPRESS_ISR_SILENCE=ISR_SHORT_SECRET,…` in the
 * environment. Every code is explained in the README under Warnings.
 */
import { redactForDebug } from './redact';

/**
 * Every warning the package prints, by code: the one table, each with its README heading
 * (Warnings). A code not in it does not compile, so none goes out undocumented.
 */
export const WARNINGS = {
  ISR_MEMORY_STORE_IN_CLUSTER: 'the memory store in production with several processes',
  ISR_SHORT_REVALIDATE: 'a revalidate window under 5 seconds',
  ISR_MOUNTED_AFTER_ROUTES: 'isr() mounted after routes',
  ISR_SET_COOKIE: 'a page that sets a cookie is never cached',
  ISR_COOKIES_READ: 'a page read cookies and no sessionCookies are named',
  ISR_UNKEYED_HEADER: 'a page read a header it does not Vary on',
  ISR_NO_APP: 'no app to render pages with',
  ISR_UNKNOWN_OPTION: 'an option isr() does not know',
  ISR_SHORT_SECRET: 'a webhook secret under 16 characters',
  ISR_TAG_NOT_SENT: 'a tag that cannot go into the CDN tag header',
  ISR_TAGS_TRUNCATED: 'more tags than fit in the CDN tag header',
} as const;

export type WarningCode = keyof typeof WARNINGS;

/**
 * Set on the cache `isr()` returns: its `warn(code, message)`, which honours its `silence` and
 * `logger` options. The webhook router warns through it, so that `isr({ silence })` reaches
 * the router's warnings too.
 */
export const CACHE_WARN = Symbol('express-isr.warn');

const printed = new Set<string>();

/**
 * Prints the warning `code` once per process, unless `silence` (the `silence` option) or
 * `EXPRESS_ISR_SILENCE` names it.
 */
export function warnOnce(
  logger: Pick<Console, 'warn'>,
  code: WarningCode,
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
